"""The outside-systems kit (videobank/outside/) against a real local HTTP server.

What a caller of an outside service notices: a transient failure (refused, timed out, 502-504,
429 with Retry-After) is tried again after an exponential back-off with jitter, with the same
idempotency key; a refusal (4xx) or a 500 is not; a timeout is a timeout; after N missed answers
in a row the service's circuit opens and a call fails at once, in words, without reaching the
service, until a trial call after the cool-down. And the retrying task: the series retries only
what is transient, gives up in words after its last retry, and a worker re-queues with the same
back-off. Time is the kit's virtual clock (``virtual_time``): no test sleeps.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

import pytest
from celery.exceptions import Retry

from tests.livestack import free_port
from videobank.outside.breaker import breaker_states
from videobank.outside.errors import OutsideService, OutsideUnavailable
from videobank.outside.http import OutsideClient
from videobank.outside.retry import Backoff
from videobank.outside.tasks import RetryingTask
from videobank.outside.testing import WorkerDeliveries

SERVICE = OutsideService(name="test-service", en="the test service", zh="测试服务")
HOLD = "hold"  # a planned answer: keep the request until the test ends (a service that hangs)


# --- a tiny outside service ----------------------------------------------------------------------
@dataclass
class Service:
    """Answers each request with the next planned answer ((status, body, headers) or HOLD;
    200 {"ok": true} when the plan is empty) and keeps what it was sent."""

    plan: list = field(default_factory=list)
    seen: list = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""  # where the fixture serves it

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        with self.lock:
            self.seen.append({"headers": dict(handler.headers), "body": json.loads(body or b"{}")})
            planned = self.plan.pop(0) if self.plan else (200, {"ok": True}, {})
        if planned == HOLD:
            self.release.wait(30)
            return
        status, payload, headers = planned
        raw = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(raw)))
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(raw)

    def sent(self) -> int:
        with self.lock:
            return len(self.seen)


@pytest.fixture
def service():
    state = Service()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            state.answer(self)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    # shutdown() waits for the server's next poll: a short interval ends each test at once.
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    state.release.set()
    server.shutdown()
    server.server_close()


def client(url: str, **kwargs: Any) -> OutsideClient:
    options: dict[str, Any] = {
        "timeout_s": 5.0,
        "retries": 3,
        "backoff": Backoff(first_s=0.1, max_s=0.8, jitter_s=0.05),
        "breaker_failures": 0,  # no breaker unless a test asks for one
    }
    options.update(kwargs)
    return OutsideClient(service=SERVICE, base_url=url, headers={"X-Api-Key": "k"}, **options)


def unavailable(call) -> OutsideUnavailable:
    with pytest.raises(OutsideUnavailable) as caught:
        call()
    return caught.value


# --- retries -------------------------------------------------------------------------------------
def test_transient_failures_are_retried_with_backoff_and_the_same_idempotency_key(
    service, virtual_time
):
    service.plan = [(503, {"error": "outage"}, {}), (502, {}, {}), (504, {}, {})]
    answer = client(service.url).post(
        "/operations/transfer", json={"amount": "1.00"}, idempotent=True, idempotency_key="k-1"
    )
    assert (answer.status, answer.data) == (200, {"ok": True})
    assert service.sent() == 4
    # Doubling from 0.1 s, each with up to 0.05 s of jitter.
    bases = (0.1, 0.2, 0.4)
    assert all(b <= w <= b + 0.05 for w, b in zip(virtual_time.sleeps, bases, strict=True))
    assert virtual_time.sleeps != list(bases)  # the jitter is there
    keys = {seen["headers"]["Idempotency-Key"] for seen in service.seen}
    assert keys == {"k-1"}
    assert all(seen["body"] == {"amount": "1.00"} for seen in service.seen)


def test_after_the_last_retry_the_caller_is_told_in_words(service, virtual_time):
    service.plan = [(503, {"error": "outage"}, {})] * 4
    refused = unavailable(lambda: client(service.url).post("/q", json={}, idempotent=True))
    assert service.sent() == 4  # the first try and three retries
    assert refused.reason == "HTTP 503 outage"
    assert refused.detail == "The test service is not answering; please try again shortly."
    assert refused.detail_zh == "测试服务暂时没有响应，请稍后重试。"
    assert len(virtual_time.sleeps) == 3


@pytest.mark.parametrize("status", [400, 401, 404, 409, 413, 422])
def test_a_refusal_is_an_answer_and_never_retried(service, virtual_time, status):
    service.plan = [(status, {"error": "refused", "detail": "no"}, {})]
    answer = client(service.url).post("/q", json={}, idempotent=True)
    assert (answer.status, answer.data["error"]) == (status, "refused")
    assert service.sent() == 1
    assert virtual_time.sleeps == []


def test_a_500_is_no_answer_and_not_retried(service, virtual_time):
    service.plan = [(500, {"error": "internal"}, {})]
    refused = unavailable(lambda: client(service.url).post("/q", json={}, idempotent=True))
    assert refused.reason == "HTTP 500 internal"
    assert service.sent() == 1
    assert virtual_time.sleeps == []


def test_a_request_that_may_have_been_carried_out_is_not_sent_twice(service, virtual_time):
    """A 503 after the request left: only a request safe to repeat is sent again."""
    service.plan = [(503, {"error": "outage"}, {})]
    refused = unavailable(lambda: client(service.url).post("/pin", json={}, idempotent=False))
    assert (refused.reason, service.sent(), virtual_time.sleeps) == ("HTTP 503 outage", 1, [])


def test_a_connection_refused_is_retried_even_when_not_idempotent(virtual_time):
    """The request never left: trying again cannot do it twice."""
    closed = f"http://127.0.0.1:{free_port()}"
    refused = unavailable(lambda: client(closed).post("/pin", json={}, idempotent=False))
    assert refused.reason == "connection refused"
    assert len(virtual_time.sleeps) == 3


def test_429_waits_what_the_service_asks_and_only_when_it_says(service, virtual_time):
    service.plan = [(429, {"error": "slow_down"}, {"Retry-After": "1"})]
    answer = client(service.url, backoff=Backoff(first_s=0.5, max_s=4.0)).post(
        "/q", json={}, idempotent=False
    )
    assert (answer.status, virtual_time.sleeps, service.sent()) == (200, [1.0], 2)
    # Without Retry-After (or asking longer than the longest back-off): no answer, at once.
    service.plan = [(429, {"error": "slow_down"}, {})]
    assert unavailable(
        lambda: client(service.url).post("/q", json={}, idempotent=True)
    ).reason == "HTTP 429 slow_down"  # fmt: skip
    service.plan = [(429, {"error": "slow_down"}, {"Retry-After": "3600"})]
    assert unavailable(lambda: client(service.url).post("/q", json={}, idempotent=True))
    assert (virtual_time.sleeps, service.sent()) == ([1.0], 4)


def test_a_timeout_is_honoured(service, virtual_time):
    service.plan = [HOLD, HOLD]
    started = time.monotonic()
    refused = unavailable(
        lambda: client(service.url, timeout_s=0.3, retries=1).post("/q", json={}, idempotent=True)
    )
    elapsed = time.monotonic() - started
    assert refused.reason == "no answer within 0.3 s"
    assert service.sent() == 2  # the try and its retry, each given up after 0.3 s
    assert 0.6 <= elapsed < 3.0


# --- the circuit breaker -------------------------------------------------------------------------
def test_the_circuit_opens_after_n_failures_answers_at_once_and_half_opens_after_the_cool_down(
    service, virtual_time
):
    breaking = client(service.url, retries=0, breaker_failures=3, breaker_cooldown_s=30)
    service.plan = [(503, {"error": "outage"}, {})] * 3
    for _ in range(3):
        assert unavailable(lambda: breaking.post("/q", json={}, idempotent=True)).reason == (
            "HTTP 503 outage"
        )
    assert breaker_states()["test-service"]["state"] == "open"

    # Open: the next call is not sent (the service would hang now) and fails at once, in words.
    service.plan = [HOLD]
    started = time.monotonic()
    refused = unavailable(lambda: breaking.post("/q", json={}, idempotent=True))
    assert time.monotonic() - started < 1.0
    assert service.sent() == 3
    assert refused.breaker_open
    assert refused.reason == (
        "not asked: the circuit is open after 3 failures in a row (last: HTTP 503 outage); "
        "a trial call in 30 s"
    )
    assert "not answering" in refused.detail
    assert "暂时没有响应" in refused.detail_zh

    # Half-open after the cool-down: one trial; a miss opens it again for a new cool-down.
    service.plan = [(503, {"error": "outage"}, {})]
    virtual_time.advance(30)
    assert breaker_states()["test-service"]["state"] == "half_open"
    assert unavailable(lambda: breaking.post("/q", json={}, idempotent=True)).reason == (
        "HTTP 503 outage"
    )
    assert service.sent() == 4
    assert breaker_states()["test-service"]["state"] == "open"
    assert unavailable(lambda: breaking.post("/q", json={}, idempotent=True)).breaker_open
    assert service.sent() == 4

    # The next trial gets an answer: closed, and calls go through again.
    virtual_time.advance(30)
    assert breaking.post("/q", json={}, idempotent=True).status == 200
    assert breaker_states()["test-service"] == {
        "state": "closed", "failures": 0, "open_remaining_s": 0.0
    }  # fmt: skip
    assert breaking.post("/q", json={}, idempotent=True).status == 200
    assert service.sent() == 6


def test_a_refusal_is_an_answer_for_the_breaker_too(service, virtual_time):
    breaking = client(service.url, retries=0, breaker_failures=2, breaker_cooldown_s=30)
    service.plan = [(503, {}, {}), (404, {"error": "no_such"}, {}), (503, {}, {})]
    unavailable(lambda: breaking.post("/q", json={}, idempotent=True))
    assert breaking.post("/q", json={}, idempotent=True).status == 404  # an answer: not a miss
    unavailable(lambda: breaking.post("/q", json={}, idempotent=True))
    assert breaker_states()["test-service"]["state"] == "closed"  # 1 miss in a row, not 2


def test_retries_stop_at_an_open_circuit(service, virtual_time):
    """A caller retrying in the call does not hammer a service whose circuit just opened."""
    service.plan = [(503, {"error": "outage"}, {})] * 5
    refused = unavailable(
        lambda: client(service.url, retries=5, breaker_failures=2).post(
            "/q", json={}, idempotent=True
        )
    )
    assert service.sent() == 2
    assert refused.breaker_open
    assert len(virtual_time.sleeps) == 2  # the wait before the try the breaker refused


# --- the retrying task ---------------------------------------------------------------------------
class NoAnswer(Exception):
    pass


class Job:
    """A piece of work on an outside service, as an app's services would keep it."""

    rows: dict = {}
    failures_left: dict = {}

    @classmethod
    def attempt(cls, *, job_id: uuid.UUID):
        row = cls.rows[job_id]
        if row.status != "pending":
            return row
        row.attempts += 1
        if cls.failures_left.get(job_id) == "bug":
            raise ValueError("a bug")
        if cls.failures_left.get(job_id, 0) > 0:
            cls.failures_left[job_id] -= 1
            raise NoAnswer("no answer")
        row.status = "done"
        return row

    @classmethod
    def give_up(cls, *, job_id: uuid.UUID, reason: str = ""):
        row = cls.rows[job_id]
        if row.status == "pending":
            row.status, row.reason = "unavailable", reason
        return row

    @classmethod
    def waiting(cls, *, job_id: uuid.UUID, seconds: float) -> None:
        cls.rows[job_id].waits.append(seconds)


job_task = RetryingTask(
    "tests.outside_kit.job",
    settings="OUTSIDE_KIT_JOB",
    attempt=Job.attempt,
    give_up=Job.give_up,
    retry_on=NoAnswer,
    on_wait=Job.waiting,
)


@pytest.fixture
def job(settings, virtual_time):
    settings.OUTSIDE_KIT_JOB_RETRY_BACKOFF_S = 0.5
    settings.OUTSIDE_KIT_JOB_RETRY_MAX_BACKOFF_S = 2.0
    settings.OUTSIDE_KIT_JOB_MAX_RETRIES = 4

    def make(failures) -> uuid.UUID:
        job_id = uuid.uuid4()
        Job.rows[job_id] = SimpleNamespace(status="pending", attempts=0, reason="", waits=[])
        Job.failures_left[job_id] = failures
        return job_id

    return make


def test_the_series_retries_what_is_transient_with_capped_backoff(job, virtual_time):
    job_id = job(failures=3)
    assert job_task.series(str(job_id)) == "done"
    assert Job.rows[job_id].attempts == 4
    assert virtual_time.sleeps == [0.5, 1.0, 2.0]
    assert Job.rows[job_id].waits == [0.5, 1.0, 2.0]  # told before each wait


def test_the_series_gives_up_after_its_last_retry(job, virtual_time):
    job_id = job(failures=99)
    assert job_task.series(str(job_id)) == "unavailable"
    assert Job.rows[job_id].attempts == 5  # the first attempt and four retries
    assert virtual_time.sleeps == [0.5, 1.0, 2.0, 2.0]


def test_a_bug_is_not_retried_and_gives_up_in_words(job, virtual_time, caplog):
    job_id = job(failures="bug")
    assert job_task.series(str(job_id)) == "unavailable"
    assert (Job.rows[job_id].attempts, virtual_time.sleeps) == (1, [])
    assert Job.rows[job_id].reason == "internal error (see the server log)"
    assert "a bug" in caplog.text


def test_a_worker_requeues_with_the_same_backoff_and_a_late_delivery_changes_nothing(job):
    job_id = job(failures=99)
    worker = WorkerDeliveries(job_task)
    for retries in range(4):
        with pytest.raises(Retry):
            worker.deliver(job_id, retries=retries)
    assert worker.countdowns == [0.5, 1.0, 2.0, 2.0]
    assert Job.rows[job_id].waits == [0.5, 1.0, 2.0, 2.0]
    assert worker.deliver(job_id, retries=4) == "unavailable"
    Job.failures_left[job_id] = 0
    assert worker.deliver(job_id, retries=0) == "unavailable"  # finished: left as it is
    assert Job.rows[job_id].attempts == 5
