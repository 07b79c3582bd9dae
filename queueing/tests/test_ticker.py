"""The queue ticker's housekeeping jobs (who listens to ``events.Housekeeping``)."""

from __future__ import annotations

import logging

import pytest

from queueing import ticker
from recordings.services import recordings_sweep
from videobank import events
from workflows.corebank.services import submissions_resume

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


@pytest.mark.django_db
def test_jobs_run_on_the_first_tick_then_every_n(django_capture_on_commit_callbacks):
    # The ticker runs in autocommit, where housekeeping runs at once; here each test is a
    # transaction, so its commit is played.
    with (
        events.listening(events.Housekeeping, job_records),
        django_capture_on_commit_callbacks(execute=True),
    ):
        for _ in range(ticker.jobs_every_ticks() + 1):
            assert ticker.tick_once(standalone=True)
    assert ran == ["records", "records"]


@pytest.mark.django_db
def test_a_failing_job_is_logged_and_the_others_still_run(
    caplog, django_capture_on_commit_callbacks
):
    with (
        events.listening(events.Housekeeping, job_fails, job_records),
        django_capture_on_commit_callbacks(execute=True),
        caplog.at_level(logging.ERROR, logger="videobank.events"),
    ):
        assert ticker.tick_once(standalone=True)
    assert ran == ["fails", "records"]
    assert "listener queueing.tests.test_ticker.job_fails failed" in caplog.text
    assert "core bank unreachable" in caplog.text


def test_the_core_bank_resume_and_the_recordings_sweep_are_housekeeping_jobs():
    assert submissions_resume in events.listeners(events.Housekeeping)
    assert recordings_sweep in events.listeners(events.Housekeeping)
