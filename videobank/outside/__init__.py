"""One kit for outside systems (the national ID check, core banking, whatever comes next).

No domain knowledge lives here; every app may import it.

- ``http``: the client of an outside service: httpx with explicit timeouts, retries of transient
  failures with exponential back-off and jitter (tenacity), a circuit breaker per service per
  process (``breaker``), idempotency keys passed through; it says "unavailable" in words.
- ``tasks``: the retrying task: a Celery task on a worker (one attempt per delivery, re-queued
  with a countdown), the whole series on a thread of its own when Celery is eager; idempotent.
  ``retry``: the one back-off rule both use; ``once``: the row of a request id made once.
- ``stubs``: the stand-ins' toolkit: fault controls (outage, latency, jitter, error rate), the
  API and admin key checks, the stub process's start-up key check and ``--dev-endpoints``,
  idempotent answers, one JSON error shape; ``stubs.process`` runs a stub as a test process.
- ``clock``: the time the kit waits and measures with (tests drive it: ``testing``).
- ``testing``: what tests of a client or a stub share.

Why these libraries and not others, and what the breaker's state means: docs/adr/0006.
"""
