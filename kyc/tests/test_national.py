"""Our client of the national ID check against the stub running as its own process.

Checks run as on the embedded profile: the Celery task eagerly, on a thread of its own; a test
waits for the result (it listens to ``events.NationalCheckFinished`` in the KYC panel's stead).
The backoff between retries goes through the outside kit's clock, a virtual one here
(``virtual_time``), so the delays are asserted without being waited.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import threading
import urllib.parse
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from celery.exceptions import Retry
from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone
from PIL import Image

from kyc.errors import BadImage, KycError
from kyc.national import services, tasks
from kyc.national.models import CheckStatus, NationalCheck
from kyc.national.selectors import national_check_get
from kyc.national.services import national_check_retry, national_check_start
from kyc.national_stub.models import Citizen, StubRequest
from kyc.national_stub.seed import CITIZENS, MISMATCH_EXAMPLE, NOT_FOUND_NUMBERS, registry_seed
from kyc.national_stub.services import citizen_register, stub_channels, stub_control_set
from kyc.national_stub.testing import StubServer, free_port
from tests.fixtures import starts_processes
from videobank import events
from videobank.keyring import sealed_key_id
from videobank.outside.testing import ResultWaiter, WorkerDeliveries, run_series_eagerly

ZHANG = CITIZENS[0]
REVOKED = CITIZENS[2]

# --- the result hook: how a test waits for a check to finish ----------------------------------
results = ResultWaiter()


def result_hook(*, check_id) -> None:
    results.notify(check_id)


def hook_calls(check: NationalCheck) -> int:
    return len(results.seen(check.id))


def broken_hook(*, check_id) -> None:
    raise RuntimeError("the panel is gone")


@pytest.fixture
def result_hook_listening():
    """The test's result hook hears every finished check, instead of the identity check."""
    with events.listening(events.NationalCheckFinished, result_hook):
        yield


def wait_final(check: NationalCheck, timeout: float = 30.0) -> NationalCheck:
    assert results.wait(check.id, timeout), f"check {check.id} got no result"
    return national_check_get(check_id=check.id)


# --- fixtures ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
@starts_processes
def stub(django_db_setup):
    from tests.livestack import stack_env

    server = StubServer(env=stack_env()).start()
    yield server
    server.stop()


@pytest.fixture
def national(transactional_db, stub, settings, monkeypatch, virtual_time, result_hook_listening):
    settings.KYC_NATIONAL_CHANNELS = [stub.channel_url("primary"), stub.channel_url("secondary")]
    settings.KYC_NATIONAL_CACHE_S = 600
    # The worker path: test_worker_path_requeues_with_backoff_then_gives_up.
    run_series_eagerly(
        settings, monkeypatch, tasks.national_check, timeout_s=2.0, max_retries=3, backoff_s=0.5
    )
    registry_seed()
    for channel in stub_channels():
        stub_control_set(channel=channel, latency_ms=0, jitter_ms=0, error_rate=0.0)
    yield SimpleNamespace(
        stub=stub, sleeps=virtual_time.sleeps, time=virtual_time, settings=settings
    )
    assert tasks.national_check_threads_join(30), "a national check thread did not end"


def start(**kwargs) -> NationalCheck:
    args = {
        "name": ZHANG.name,
        "id_number": ZHANG.id_number,
        "portrait_jpeg": None,
        "business_risk": "high",
    }
    return national_check_start(**{**args, **kwargs})


def asked(check: NationalCheck) -> int:
    """How many times the outside service answered this check's request id (0 or 1)."""
    return StubRequest.objects.filter(request_id=check.request_id).count()


def clear_values(check: NationalCheck) -> list[str]:
    return [str(getattr(check, f.attname)) for f in NationalCheck._meta.concrete_fields]


# --- outcomes ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "id_number", "status", "outcome", "en", "zh"),
    [
        (ZHANG.name, ZHANG.id_number, "passed", "pass", "passed", "通过"),
        # As OCR or a typist may give it: full-width digits, a space.
        (ZHANG.name, "１１０１０１ １９９００３０７１２３３", "passed", "pass", "passed", "通过"),
        ("张伟", NOT_FOUND_NUMBERS[1], "failed", "not_found", "no record", "没有这个身份证号码"),
        (*MISMATCH_EXAMPLE, "failed", "mismatch", "name does not match", "姓名与身份证号码不一致"),
        (REVOKED.name, REVOKED.id_number, "failed", "revoked", "revoked", "已注销"),
    ],
)
def test_outcomes_reach_the_teller_in_words(national, name, id_number, status, outcome, en, zh):
    check = start(name=name, id_number=id_number)
    assert check.status == CheckStatus.PENDING
    check = wait_final(check)
    assert (check.status, check.outcome) == (status, outcome)
    assert en in check.detail
    assert zh in check.detail_zh
    assert (check.channel, check.attempts, check.factors) == ("primary", 1, 2)
    assert hook_calls(check) == 1
    assert national.sleeps == []
    assert asked(check) == 1
    # The clear number is nowhere in the row; the query it was asked with is wiped.
    clean = "".join(c for c in id_number if c.isalnum()).translate(
        str.maketrans("０１２３４５６７８９", "0123456789")
    )
    assert check.id_number_masked == clean[:6] + "********" + clean[-4:]
    assert not any(clean in value for value in clear_values(check))
    assert not any(name in value for value in clear_values(check))  # nor the name: 张*
    assert check.name_masked == name[0] + "*" * (len(name) - 1)
    assert bytes(check.sealed_query) == b""
    assert (check.expires_at is not None) == (outcome == "pass")


@pytest.fixture(scope="module")
def photos():
    from tests.media import face_photos

    return face_photos()


@pytest.mark.parametrize(
    ("photo", "status", "en", "zh"),
    [
        ("obama2", "passed", "passed", "通过"),
        ("biden", "failed", "face does not match", "人像与登记照片不一致"),
    ],
)
def test_three_factor_check(national, photos, photo, status, en, zh):
    reference = np.asarray(Image.open(photos["obama"]).convert("RGB"))
    citizen_register(name=ZHANG.name, id_number=ZHANG.id_number, portrait=reference)
    check = wait_final(start(portrait_jpeg=Path(photos[photo]).read_bytes()))
    assert (check.status, check.factors) == (status, 3)
    assert en in check.detail
    assert zh in check.detail_zh
    assert check.similarity is not None
    assert f"{check.similarity:.2f}" in check.detail or status == "passed"
    assert StubRequest.objects.get(request_id=check.request_id).factors == 3


@pytest.mark.parametrize(
    ("kwargs", "error", "code"),
    [
        ({"id_number": "11010119900307123"}, KycError, "bad_id_number"),
        ({"id_number": "110101199003071234"}, KycError, "bad_id_number"),  # check character
        ({"id_number": None}, KycError, "bad_id_number"),
        ({"name": "  "}, KycError, "bad_name"),
        ({"name": "张" * 51}, KycError, "bad_name"),
        ({"business_risk": "medium"}, KycError, "bad_risk"),
        ({"request_id": "has space"}, KycError, "bad_request_id"),
        ({"portrait_jpeg": b"not a picture"}, BadImage, "not_image"),
    ],
)
def test_unusable_input_is_refused_before_anything_is_asked(db, kwargs, error, code):
    with pytest.raises(error) as refused:
        start(**kwargs)
    assert refused.value.code == code
    assert refused.value.detail
    assert refused.value.detail_zh != refused.value.detail  # Chinese words too
    assert not NationalCheck.objects.exists()


# --- failover, retries, unavailable ----------------------------------------------------------
def _primary_slower_than_the_timeout(n) -> None:
    n.settings.KYC_NATIONAL_TIMEOUT_S = 0.3
    stub_control_set(channel="primary", latency_ms=1500)


def _primary_refuses(national):
    closed = f"http://127.0.0.1:{free_port()}/v1/primary"  # nothing listens there
    national.settings.KYC_NATIONAL_CHANNELS = [closed, national.stub.channel_url("secondary")]


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (lambda n: stub_control_set(channel="primary", outage=True), "primary: HTTP 503 outage"),
        (
            lambda n: stub_control_set(channel="primary", error_rate=1.0),
            "primary: HTTP 500 internal",
        ),
        (_primary_refuses, "primary: connection refused"),
        (
            _primary_slower_than_the_timeout,
            "primary: no answer within 0.3 s",
        ),
    ],
    ids=["outage", "error", "refused", "timeout"],
)
def test_primary_down_fails_over_to_secondary(national, fault, reason):
    fault(national)
    check = wait_final(start())
    assert (check.status, check.channel, check.attempts) == ("passed", "secondary", 1)
    assert check.last_error == reason
    assert national.sleeps == []  # failover within the attempt, no retry needed
    if "no answer" in reason:
        # The slow primary answers late; the first recorded answer (the secondary's) stands.
        assert national.stub.wait_for_log(f"request {check.request_id} replayed -> pass")
        assert StubRequest.objects.get(request_id=check.request_id).channel == "secondary"


def test_a_primary_that_keeps_timing_out_is_skipped_at_once_until_the_cool_down(national):
    """Each check waits for a primary that does not answer in time, then fails over; after
    KYC_NATIONAL_BREAKER_FAILURES such checks the primary's circuit opens and the next check goes
    to the secondary without asking it; after the cool-down a check tries the primary again."""
    national.settings.KYC_NATIONAL_TIMEOUT_S = 0.3
    national.settings.KYC_NATIONAL_BREAKER_FAILURES = 2
    stub_control_set(channel="primary", latency_ms=1500)
    for n in range(2):
        check = wait_final(start(request_id=f"slow-primary-{n}"))
        assert (check.status, check.channel) == ("passed", "secondary")
        assert check.last_error == "primary: no answer within 0.3 s"
    check = wait_final(start(request_id="slow-primary-2"))
    assert (check.status, check.channel, check.attempts) == ("passed", "secondary", 1)
    assert check.last_error == (
        "primary: not asked: the circuit is open after 2 failures in a row "
        "(last: no answer within 0.3 s); a trial call in 30 s"
    )
    assert national.sleeps == []  # failover within the attempt: the teller waited for nothing

    stub_control_set(channel="primary", latency_ms=0)  # the primary is back
    national.time.advance(30)
    check = wait_final(start(request_id="slow-primary-3"))
    assert (check.status, check.channel, check.last_error) == ("passed", "primary", "")


def test_both_down_retries_with_backoff_then_unavailable_then_teller_retry(national):
    for channel in stub_channels():
        stub_control_set(channel=channel, outage=True)
    check = start()
    check = wait_final(check)
    # 1 attempt + 3 retries, each over both channels, with exponential backoff between them.
    assert national.sleeps == [0.5, 1.0, 2.0]
    assert (check.status, check.attempts, check.series) == ("unavailable", 4, 1)
    assert check.detail == "The national ID service is not answering; try again."
    assert check.detail_zh == "公民身份核查服务暂时没有响应，请重试。"
    assert check.last_error == "primary: HTTP 503 outage; secondary: HTTP 503 outage"
    assert hook_calls(check) == 1
    assert asked(check) == 0

    # The service comes back; the teller presses "retry".
    for channel in stub_channels():
        stub_control_set(channel=channel, outage=False)
    retried = national_check_retry(check_id=check.id)
    assert (retried.status, retried.series, retried.detail) == ("pending", 2, "")
    check = wait_final(retried)
    assert (check.status, check.outcome, check.channel) == ("passed", "pass", "primary")
    assert (check.attempts, check.series) == (5, 2)
    assert national.sleeps == [0.5, 1.0, 2.0]  # the new series passed at its first attempt
    assert asked(check) == 1  # the same request id, answered once
    assert hook_calls(check) == 2


def test_service_recovering_during_backoff_passes_without_the_teller(national):
    for channel in stub_channels():
        stub_control_set(channel=channel, outage=True)

    def meanwhile(seconds: float) -> None:
        if len(national.sleeps) == 2:  # back while we wait for the third attempt
            stub_control_set(channel="secondary", outage=False)

    national.time.during_sleep = meanwhile
    check = wait_final(start())
    assert national.sleeps == [0.5, 1.0]
    assert (check.status, check.channel, check.attempts) == ("passed", "secondary", 3)


def test_worker_path_requeues_with_backoff_then_gives_up(national, monkeypatch):
    """Production: one attempt per task run, re-queued with a countdown (no worker sleeps)."""
    monkeypatch.setattr(services, "_dispatch", lambda check_id: None)  # we play the worker
    for channel in stub_channels():
        stub_control_set(channel=channel, outage=True)
    check = start()
    worker = WorkerDeliveries(tasks.national_check)
    for retries in range(3):
        with pytest.raises(Retry):
            worker.deliver(check.id, retries=retries)
    assert worker.countdowns == [0.5, 1.0, 2.0]
    assert worker.deliver(check.id, retries=3) == "unavailable"
    assert national_check_get(check_id=check.id).attempts == 4
    # A finished check is not asked again by a late duplicate delivery.
    stub_control_set(channel="primary", outage=False)
    assert worker.deliver(check.id, retries=0) == "unavailable"
    assert asked(check) == 0


def test_retry_only_when_there_is_something_to_retry(national, monkeypatch):
    answered = wait_final(start())
    with pytest.raises(KycError) as refused:
        national_check_retry(check_id=answered.id)
    assert refused.value.code == "not_retryable"

    # A check that is running is left alone; one stuck pending (its worker died) is re-run.
    with monkeypatch.context() as patched:
        patched.setattr(services, "_dispatch", lambda check_id: None)
        stuck = start(request_id="stuck-1")
        assert national_check_retry(check_id=stuck.id).series == 1
    NationalCheck.objects.filter(pk=stuck.pk).update(
        updated_at=timezone.now() - timedelta(minutes=10)
    )
    assert national_check_retry(check_id=stuck.id).series == 2
    assert wait_final(stuck).status == "passed"


# --- idempotency -------------------------------------------------------------------------------
def test_same_request_id_is_one_question(national):
    first = wait_final(start(request_id="call-9-check-1"))
    again = start(request_id="call-9-check-1")
    assert again.id == first.id
    assert NationalCheck.objects.count() == 1
    recorded = StubRequest.objects.get()
    assert (recorded.request_id, recorded.replays) == ("call-9-check-1", 0)
    with pytest.raises(KycError) as reused:
        start(request_id="call-9-check-1", name=CITIZENS[1].name, id_number=CITIZENS[1].id_number)
    assert reused.value.code == "request_id_reused"


# --- keys --------------------------------------------------------------------------------------
def test_a_sealed_query_still_opens_after_the_national_key_and_the_secret_key_rotate(
    national, monkeypatch
):
    """The query waits sealed under KYC_NATIONAL_KEYS; the operator puts a new key first (the
    old one still listed) and changes SECRET_KEY too: the check still runs, and the keyed hashes
    made before still find the pass for the cache."""
    k1 = "k1:" + base64.b64encode(os.urandom(32)).decode()
    national.settings.KYC_NATIONAL_KEYS = k1
    monkeypatch.setattr(services, "_dispatch", lambda check_id: None)  # run by hand below
    check = start(business_risk="low")
    assert sealed_key_id(check.sealed_query) == "k1"
    assert ZHANG.id_number.encode() not in bytes(check.sealed_query)

    national.settings.KYC_NATIONAL_KEYS = "k2:" + base64.b64encode(os.urandom(32)).decode() + ","
    national.settings.KYC_NATIONAL_KEYS += k1
    national.settings.SECRET_KEY = "a-completely-new-secret-key-" + os.urandom(8).hex()
    done = services.national_check_run(check_id=check.id)
    assert (done.status, done.outcome, asked(done)) == ("passed", "pass", 1)
    reused = start(business_risk="low")
    assert (reused.from_cache, reused.cache_source) == (True, check.id)
    # New checks are sealed under the new key.
    fresh = start(business_risk="high")
    assert sealed_key_id(fresh.sealed_query) == "k2"

    # A key dropped while a query still waits under it: the check cannot run; the teller is
    # told in words (and may start a new check), the log says which setting.
    national.settings.KYC_NATIONAL_KEYS = "k3:" + base64.b64encode(os.urandom(32)).decode()
    failed = services.national_check_run(check_id=fresh.id)
    assert failed.status == "unavailable"
    assert "not answering" in failed.detail
    assert "KYC_NATIONAL_KEYS" in failed.last_error
    assert asked(failed) == 0
    with pytest.raises(KycError, match="start a new check"):
        national_check_retry(check_id=fresh.id)


# --- cache -------------------------------------------------------------------------------------
def test_low_risk_pass_is_reused_within_the_window(national):
    live = wait_final(start(business_risk="low"))
    cached = start(business_risk="low")
    # Answered at once, without asking the service.
    assert (cached.status, cached.from_cache, cached.cache_source) == ("passed", True, live.id)
    assert cached.expires_at == live.expires_at
    assert "reused" in cached.detail
    assert "沿用" in cached.detail_zh
    assert asked(cached) == 0
    assert StubRequest.objects.count() == 1
    assert wait_final(cached).status == "passed"  # the panel hears of it like any result
    # The same number with another name is another question.
    other = wait_final(start(business_risk="low", name="张小伟"))
    assert (other.from_cache, other.outcome) == (False, "mismatch")


def test_a_pass_is_not_reused_after_the_window(national):
    live = wait_final(start(business_risk="low"))
    # The same pass, as if it had been given 601 s ago (the window is 600 s).
    ago = timedelta(seconds=601)
    NationalCheck.objects.filter(pk=live.pk).update(
        finished_at=live.finished_at - ago, expires_at=live.expires_at - ago
    )
    again = start(business_risk="low")
    assert (again.status, again.from_cache) == ("pending", False)
    assert wait_final(again).outcome == "pass"
    assert asked(again) == 1


def test_a_pass_is_never_reused_for_high_risk_business(national):
    wait_final(start(business_risk="low"))
    again = start(business_risk="high")
    assert (again.status, again.from_cache) == ("pending", False)
    assert wait_final(again).channel == "primary"
    assert asked(again) == 1


def test_a_pass_is_never_reused_for_a_three_factor_check(national, photos):
    wait_final(start(business_risk="low"))
    reference = np.asarray(Image.open(photos["obama"]).convert("RGB"))
    citizen_register(name=ZHANG.name, id_number=ZHANG.id_number, portrait=reference)
    again = start(business_risk="low", portrait_jpeg=Path(photos["obama3"]).read_bytes())
    assert (again.status, again.from_cache, again.factors) == ("pending", False, 3)
    assert wait_final(again).status == "passed"
    assert asked(again) == 1


def test_a_failed_or_unavailable_result_is_never_reused(national):
    failed = wait_final(
        start(business_risk="low", name=MISMATCH_EXAMPLE[0], id_number=MISMATCH_EXAMPLE[1])
    )
    again = start(business_risk="low", name=MISMATCH_EXAMPLE[0], id_number=MISMATCH_EXAMPLE[1])
    assert not again.from_cache
    assert wait_final(again).outcome == failed.outcome == "mismatch"
    assert asked(again) == 1

    for channel in stub_channels():
        stub_control_set(channel=channel, outage=True)
    down = wait_final(
        start(business_risk="low", name=CITIZENS[1].name, id_number=CITIZENS[1].id_number)
    )
    assert down.status == "unavailable"
    for channel in stub_channels():
        stub_control_set(channel=channel, outage=False)
    later = start(business_risk="low", name=CITIZENS[1].name, id_number=CITIZENS[1].id_number)
    assert (later.status, later.from_cache) == ("pending", False)
    assert wait_final(later).status == "passed"


# --- robustness and privacy --------------------------------------------------------------------
def test_a_broken_result_hook_does_not_break_the_check(national, caplog):
    with events.listening(events.NationalCheckFinished, broken_hook):
        check = start()
        assert tasks.national_check_threads_join(30)
    check = national_check_get(check_id=check.id)
    assert (check.status, check.outcome) == ("passed", "pass")
    assert "listener kyc.tests.test_national.broken_hook failed" in caplog.text
    assert "the panel is gone" in caplog.text
    assert asked(check) == 1  # the check was not asked again for it


def test_client_logs_mask_numbers_and_names(national, caplog):
    caplog.set_level(logging.INFO, logger="kyc.national")
    stub_control_set(channel="primary", outage=True)
    wait_final(start())
    wait_final(start(name=REVOKED.name, id_number=REVOKED.id_number))
    assert "110101********1233" in caplog.text
    assert "张*" in caplog.text
    for secret in (ZHANG.id_number, REVOKED.id_number, ZHANG.name, REVOKED.name):
        assert secret not in caplog.text
    assert Citizen.objects.count() == len(CITIZENS)


# --- the embedded profile: the stub served by the same process's ASGI app ----------------------
async def serve_asgi(app) -> tuple[asyncio.Server, int]:
    """A minimal HTTP/1.1 front (one request per connection) for an ASGI app, in the running
    event loop — standing in for daphne, so that the caller and the stub share one loop and one
    process as they do on the embedded profile."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            request_line, *lines = head.split("\r\n")
            method, target, _ = request_line.split(" ", 2)
            headers = [
                (k.strip().lower().encode("latin-1"), v.strip().encode("latin-1"))
                for k, _, v in (line.partition(":") for line in lines if line)
            ]
            body = await reader.readexactly(int(dict(headers).get(b"content-length", b"0")))
            path, _, query = target.partition("?")
            scope = {
                "type": "http",
                "asgi": {"version": "3.0"},
                "http_version": "1.1",
                "method": method,
                "scheme": "http",
                "path": urllib.parse.unquote(path),
                "raw_path": path.encode(),
                "query_string": query.encode(),
                "root_path": "",
                "headers": headers,
                "client": writer.get_extra_info("peername")[:2],
                "server": writer.get_extra_info("sockname")[:2],
            }
            sent = False

            async def receive():
                nonlocal sent
                if not sent:
                    sent = True
                    return {"type": "http.request", "body": body, "more_body": False}
                await asyncio.Future()  # the client stays until the answer is written

            status, out_headers, chunks = 500, [], []

            async def send(message):
                nonlocal status, out_headers
                if message["type"] == "http.response.start":
                    status, out_headers = message["status"], message.get("headers", [])
                elif message["type"] == "http.response.body":
                    chunks.append(message.get("body", b""))

            await app(scope, receive, send)
            writer.write(f"HTTP/1.1 {status} -\r\n".encode())
            for key, value in out_headers:
                if key.lower() != b"connection":
                    writer.write(key + b": " + value + b"\r\n")
            writer.write(b"Connection: close\r\n\r\n" + b"".join(chunks))
            await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


@pytest.mark.django_db(transaction=True)
@pytest.mark.urls("tests.stub_urls")  # the stub mounted as on the embedded profile, any profile
async def test_embedded_check_from_a_consumer_leaves_its_thread_free(
    settings, monkeypatch, result_hook_listening
):
    """On the embedded profile the check is started from a consumer (``database_sync_to_async``:
    one thread for every consumer of the process) and asks the stub mounted in the same process
    and event loop. The check must not hold that thread while the outside service is slow, and
    the stub must be answered from another thread (no deadlock)."""
    from channels.db import database_sync_to_async
    from django.core.asgi import get_asgi_application

    from videobank.outside.stubs import faults as stub_faults

    monkeypatch.setitem(tasks.national_check_task.app.conf, "task_always_eager", True)
    # Threads of this test's "server" close their connections when done (on Postgres an open
    # one would keep the test database from being dropped).
    monkeypatch.setitem(connections.settings[DEFAULT_DB_ALIAS], "CONN_MAX_AGE", 0)
    server, port = await serve_asgi(get_asgi_application())
    base = f"http://127.0.0.1:{port}/ext/national-id/v1"
    settings.KYC_NATIONAL_CHANNELS = [f"{base}/primary", f"{base}/secondary"]
    await database_sync_to_async(registry_seed)()

    # The stub holds the query until the test lets it answer.
    at_the_stub, answer_now = threading.Event(), threading.Event()

    def held(seconds: float) -> None:
        at_the_stub.set()
        answer_now.wait(30)

    monkeypatch.setattr(stub_faults, "latency_sleep", held)
    try:
        check = await asyncio.wait_for(
            database_sync_to_async(national_check_start)(
                name=ZHANG.name,
                id_number=ZHANG.id_number,
                portrait_jpeg=None,
                business_risk="high",
            ),
            timeout=10,
        )
        assert check.status == "pending"
        assert await asyncio.to_thread(at_the_stub.wait, 10)  # the stub has the query
        # While the service takes its time, the consumers' thread serves other work.
        pending = await asyncio.wait_for(
            database_sync_to_async(NationalCheck.objects.filter(status="pending").count)(),
            timeout=10,
        )
        assert pending == 1
        answer_now.set()
        final = await database_sync_to_async(wait_final)(check)
        assert (final.status, final.channel) == ("passed", "primary")
    finally:
        answer_now.set()
        server.close()
        await server.wait_closed()
        assert await asyncio.to_thread(tasks.national_check_threads_join, 30)
