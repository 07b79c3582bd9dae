"""One circuit breaker per outside service per process.

After ``failures`` answers missed in a row (refused, timed out, 5xx) the circuit opens: calls
are not sent and fail at once, in words, instead of each waiting its timeout. After
``cooldown_s`` it is half-open: the next call is sent as a trial; an answer closes the circuit,
another miss opens it for a new cool-down. A circuit is a process's own view (each daphne or
Celery process finds out by itself); its state is in the log (opened / closed) and in
``breaker_states()``.

The breaker is the ``circuitbreaker`` library's (no lock is held while a call runs, so one slow
call does not queue the process's other calls behind it, as pybreaker's would); this subclass
reads the kit's clock (``videobank.outside.clock``) so tests drive the cool-down.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from circuitbreaker import STATE_OPEN, CircuitBreaker

from . import clock

log = logging.getLogger(__name__)


class ServiceBreaker(CircuitBreaker):
    def __init__(self, *, name: str, failures: int, cooldown_s: float, counts: type[Exception]):
        super().__init__(
            failure_threshold=failures,
            recovery_timeout=cooldown_s,
            expected_exception=counts,
            name=name,
        )
        self._opened = clock.monotonic()

    def configure(self, *, failures: int, cooldown_s: float) -> None:
        """Settings read again (a test or an operator changed them)."""
        self._failure_threshold = failures
        self._recovery_timeout = cooldown_s

    @property
    def open_remaining(self) -> float:  # the library's, on the kit's clock
        return self._opened + self._recovery_timeout - clock.monotonic()

    def __exit__(self, exc_type, exc_value, traceback) -> bool:  # type: ignore[exit-return]  # the library declares bool
        failed = exc_type is not None and self.is_failure(exc_type, exc_value)
        was = self.state
        super().__exit__(exc_type, exc_value, traceback)
        if failed and self._state == STATE_OPEN:
            self._opened = clock.monotonic()  # (re)opened now, by the kit's clock
            if was != STATE_OPEN:
                log.warning(
                    "outside service %s: circuit open after %d failures in a row (last: %s); "
                    "a trial call in %g s",
                    self.name,
                    self.failure_count,
                    getattr(exc_value, "reason", exc_value),
                    self._recovery_timeout,
                )
        elif not failed and was != "closed":
            log.info("outside service %s: circuit closed (it answered)", self.name)
        return False

    def refusal(self) -> str:
        """Why a call was not sent, for the log and an operator."""
        last = self.last_failure
        return (
            f"not asked: the circuit is open after {self.failure_count} failures in a row "
            f"(last: {getattr(last, 'reason', last)}); a trial call in "
            f"{max(0.0, self.open_remaining):.0f} s"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "failures": self.failure_count,
            "open_remaining_s": max(0.0, self.open_remaining) if self.opened else 0.0,
        }


_breakers: dict[str, ServiceBreaker] = {}
_lock = threading.Lock()


def service_breaker(
    name: str, *, failures: int, cooldown_s: float, counts: type[Exception]
) -> ServiceBreaker | None:
    """The process's breaker of service ``name`` (None: ``failures`` 0, no breaker)."""
    if failures <= 0:
        return None
    if cooldown_s <= 0:
        raise ValueError(f"{name}: a breaker's cool-down must be more than 0 s")
    with _lock:
        breaker = _breakers.get(name)
        if breaker is None:
            breaker = _breakers[name] = ServiceBreaker(
                name=name, failures=failures, cooldown_s=cooldown_s, counts=counts
            )
        else:
            breaker.configure(failures=failures, cooldown_s=cooldown_s)
        return breaker


def breaker_states() -> dict[str, dict[str, Any]]:
    """Every breaker of this process: state (closed, open, half_open), failures in a row, the
    seconds until the trial call."""
    with _lock:
        return {name: breaker.as_dict() for name, breaker in _breakers.items()}


def breakers_reset() -> None:
    """Forget every breaker (tests: each starts with closed circuits)."""
    with _lock:
        _breakers.clear()
