"""The queue ticker's housekeeping jobs (settings.QUEUE_TICKER_JOBS)."""

from __future__ import annotations

import logging

import pytest

from queueing import ticker

ran: list[str] = []


def job_fails() -> None:
    ran.append("fails")
    raise RuntimeError("core bank unreachable")


def job_records() -> None:
    ran.append("records")


class _HeldLease:
    def held(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _clean(monkeypatch):
    ran.clear()
    monkeypatch.setattr(ticker, "_lease", _HeldLease())
    monkeypatch.setattr(ticker, "_ticks", 0)


JOBS = ["queueing.tests.test_ticker.job_fails", "queueing.tests.test_ticker.job_records"]


@pytest.mark.django_db
def test_jobs_run_on_the_first_tick_then_every_n(settings):
    settings.QUEUE_TICKER_JOBS = ["queueing.tests.test_ticker.job_records"]
    for _ in range(ticker.JOBS_EVERY_TICKS + 1):
        assert ticker.tick_once(standalone=True)
    assert ran == ["records", "records"]


@pytest.mark.django_db
def test_a_failing_job_is_logged_and_the_others_still_run(settings, caplog):
    settings.QUEUE_TICKER_JOBS = JOBS
    with caplog.at_level(logging.ERROR, logger="queueing.ticker"):
        assert ticker.tick_once(standalone=True)
    assert ran == ["fails", "records"]
    assert "ticker job queueing.tests.test_ticker.job_fails failed" in caplog.text


def test_the_core_bank_resume_is_a_default_job():
    from django.conf import settings

    assert "workflows.corebank.services.submissions_resume" in settings.QUEUE_TICKER_JOBS
