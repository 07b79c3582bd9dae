"""The client of an outside service: JSON over HTTP with timeouts, retries and a breaker.

- Timeouts: ``timeout_s`` for connecting and for each read and write (httpx); never through an
  environment proxy (these are the bank's internal services); one connection pool per process.
- Retries (tenacity): up to ``retries`` more tries of a *transient* failure, waiting
  ``backoff`` (exponential, with jitter) or what a ``Retry-After`` asks (when it is no longer
  than the longest back-off). Transient: the connection could not be made (the request never
  left: any request), a timeout, a dropped connection, HTTP 502/503/504 (only a request that is
  safe to send twice: ``idempotent``, or one with an ``idempotency_key``), HTTP 429 with
  ``Retry-After`` (the service refused before doing anything). Never retried: a 4xx refusal, a
  500, an open circuit.
- Breaker (``breaker``): every missed answer counts, every answer (2xx-4xx) closes; while the
  circuit is open a call is not sent and fails at once.
- An ``idempotency_key`` goes in the ``Idempotency-Key`` header of every try, the same.

An answer (any status below 500, but 429) is returned as ``Answer``; no answer raises
``OutsideUnavailable`` with the reason (for logs) and words (for a person). What an answer
means is the adapter's business (kyc.national.backends, workflows.corebank.backends).
"""

from __future__ import annotations

import email.utils
import logging
import math
import os
import threading
import urllib.parse
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import tenacity
from tenacity import retry_if_exception, stop_after_attempt

from . import clock
from .breaker import ServiceBreaker, service_breaker
from .conf import outside_setting
from .errors import OutsideService, OutsideUnavailable
from .retry import Backoff

log = logging.getLogger(__name__)

GATEWAY_STATUSES = (502, 503, 504)
IN_CALL_BACKOFF = Backoff(first_s=0.2, max_s=1.6, jitter_s=0.1)


@dataclass(frozen=True)
class Answer:
    status: int
    data: Any  # the decoded JSON body; None when the body is empty or not JSON
    content: bytes
    reason: str  # the HTTP reason phrase


class _NoAnswer(Exception):
    """One try got no answer (inside the client; callers see OutsideUnavailable)."""

    def __init__(
        self,
        reason: str,
        *,
        sent: bool,
        transient: bool = True,
        retry_after_s: float | None = None,
        breaker_open: bool = False,
    ):
        super().__init__(reason)
        self.reason = reason
        self.sent = sent
        self.transient = transient
        self.retry_after_s = retry_after_s
        self.breaker_open = breaker_open

    def retryable(self, *, idempotent: bool, longest_wait_s: float) -> bool:
        if self.breaker_open or not self.transient:
            return False
        if self.retry_after_s is not None:
            return self.retry_after_s <= longest_wait_s
        return idempotent or not self.sent


def url_checked(url: str, *, setting: str) -> str:
    """An http(s) base URL without its trailing slash; ValueError naming the setting."""
    if not url:
        raise ValueError(f"{setting} is not set")
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"{setting}: {url!r} is not an http(s) URL")
    return url.rstrip("/")


def _retry_after_s(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(tz=UTC)).total_seconds())


def _connect_reason(exc: httpx.ConnectError) -> str:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError) or "Connection refused" in str(cause):
            return "connection refused"
        cause = cause.__cause__ or cause.__context__
    return f"cannot connect ({exc})"


_shared: tuple[int, httpx.Client] | None = None
_shared_lock = threading.Lock()


def _process_client() -> httpx.Client:
    """One httpx client per process, shared by every outside service (thread-safe; its TLS
    context and connection pool made once, not per call); a forked process (a Celery worker
    child) makes its own rather than share its parent's sockets."""
    global _shared
    with _shared_lock:
        if _shared is None or _shared[0] != os.getpid():
            # An internal service: never through an environment proxy.
            _shared = (os.getpid(), httpx.Client(trust_env=False))
        return _shared[1]


class OutsideClient:
    def __init__(
        self,
        *,
        service: OutsideService,
        base_url: str,
        headers: dict[str, str],
        timeout_s: float,
        retries: int = 0,
        backoff: Backoff = IN_CALL_BACKOFF,
        breaker_failures: int = 5,
        breaker_cooldown_s: float = 30.0,
    ):
        self.service = service
        self.base_url = base_url.rstrip("/")
        self.headers = dict(headers)
        self.timeout_s = float(timeout_s)
        self.retries = max(0, int(retries))
        self.backoff = backoff
        self.breaker_failures = int(breaker_failures)
        self.breaker_cooldown_s = float(breaker_cooldown_s)

    @classmethod
    def from_settings(
        cls,
        *,
        service: OutsideService,
        prefix: str,
        base_url: str,
        headers: dict[str, str],
        timeout_s: float | None = None,
        default_timeout_s: float = 3.0,
    ) -> OutsideClient:
        """A client configured by ``<prefix>_TIMEOUT_S``, ``<prefix>_HTTP_RETRIES``,
        ``<prefix>_HTTP_RETRY_BACKOFF_S``, ``<prefix>_BREAKER_FAILURES`` and
        ``<prefix>_BREAKER_COOLDOWN_S`` (settings, else the environment, else the default)."""
        first = outside_setting(f"{prefix}_HTTP_RETRY_BACKOFF_S", 0.2, float)
        return cls(
            service=service,
            base_url=base_url,
            headers=headers,
            timeout_s=timeout_s
            if timeout_s is not None
            else outside_setting(f"{prefix}_TIMEOUT_S", default_timeout_s, float),
            retries=outside_setting(f"{prefix}_HTTP_RETRIES", 0, int),
            backoff=Backoff(first_s=first, max_s=first * 8, jitter_s=first / 2),
            breaker_failures=outside_setting(f"{prefix}_BREAKER_FAILURES", 5, int),
            breaker_cooldown_s=outside_setting(f"{prefix}_BREAKER_COOLDOWN_S", 30.0, float),
        )

    # --- the breaker -----------------------------------------------------------------------------
    def breaker(self) -> ServiceBreaker | None:
        return service_breaker(
            self.service.name,
            failures=self.breaker_failures,
            cooldown_s=self.breaker_cooldown_s,
            counts=_NoAnswer,
        )

    # --- requests --------------------------------------------------------------------------------
    def post(
        self,
        path: str,
        *,
        json: Any,
        idempotent: bool,
        idempotency_key: str | None = None,
    ) -> Answer:
        return self.request(
            "POST", path, json=json, idempotent=idempotent, idempotency_key=idempotency_key
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        idempotent: bool,
        idempotency_key: str | None = None,
    ) -> Answer:
        """Send, retry what is transient, return the answer; OutsideUnavailable if none.
        ``idempotent``: the request may be carried out twice without harm (a read, a query
        with its own request id); a request with an ``idempotency_key`` is."""
        headers = dict(self.headers)
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
            idempotent = True
        longest_wait_s = self.backoff.max_s if math.isfinite(self.backoff.max_s) else 60.0
        retrying = tenacity.Retrying(
            stop=stop_after_attempt(self.retries + 1),
            wait=self._wait,
            retry=retry_if_exception(
                lambda exc: (
                    isinstance(exc, _NoAnswer)
                    and exc.retryable(idempotent=idempotent, longest_wait_s=longest_wait_s)
                )
            ),
            sleep=clock.sleep,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        try:
            return retrying(self._try, method, f"{self.base_url}{path}", headers, json)
        except _NoAnswer as exc:
            raise OutsideUnavailable(
                exc.reason,
                service=self.service,
                breaker_open=exc.breaker_open,
                retry_after_s=exc.retry_after_s,
            ) from exc

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, _NoAnswer) and exc.retry_after_s is not None:
            return exc.retry_after_s
        return self.backoff.wait()(state)

    def _before_sleep(self, state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        log.warning(
            "outside service %s: %s; try %d of %d in %.2f s",
            self.service.name,
            getattr(exc, "reason", exc),
            state.attempt_number + 1,
            self.retries + 1,
            state.next_action.sleep if state.next_action else 0.0,
        )

    def _try(self, method: str, url: str, headers: dict[str, str], body: Any) -> Answer:
        breaker = self.breaker()
        if breaker is not None and breaker.opened:
            raise _NoAnswer(breaker.refusal(), sent=False, breaker_open=True)
        with breaker if breaker is not None else nullcontext():
            return self._send(method, url, headers, body)

    def _send(self, method: str, url: str, headers: dict[str, str], body: Any) -> Answer:
        late = f"no answer within {self.timeout_s:g} s"
        try:
            response = _process_client().request(
                method, url, json=body, headers=headers, timeout=httpx.Timeout(self.timeout_s)
            )
        except httpx.ConnectTimeout as exc:
            raise _NoAnswer(late, sent=False) from exc
        except httpx.TimeoutException as exc:
            raise _NoAnswer(late, sent=True) from exc
        except httpx.ConnectError as exc:
            raise _NoAnswer(_connect_reason(exc), sent=False) from exc
        except httpx.TransportError as exc:
            raise _NoAnswer(f"connection dropped ({type(exc).__name__})", sent=True) from exc
        try:
            data = response.json() if response.content else None
        except ValueError:
            data = None
        status = response.status_code
        if status >= 500 or status == 429:
            word = str(data.get("error") or "") if isinstance(data, dict) else ""
            retry_after_s = (
                _retry_after_s(response.headers.get("Retry-After"))
                if status in (429, 503)
                else None
            )
            raise _NoAnswer(
                f"HTTP {status} {word}".strip(),
                sent=True,
                # 429 only when the service said when: it refused before doing anything.
                transient=status in GATEWAY_STATUSES or retry_after_s is not None,
                retry_after_s=retry_after_s,
            )
        return Answer(
            status=status, data=data, content=response.content, reason=response.reason_phrase
        )
