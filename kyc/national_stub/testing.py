"""The stub as a process of its own, for tests and demos: ``StubServer(env=...).start()``."""

from __future__ import annotations

from django.conf import settings

from videobank.stubprocess import StubProcess, free_port

from .views import DEFAULT_API_KEY

__all__ = ["StubServer", "free_port"]


class StubServer(StubProcess):
    """``manage.py national_id_stub`` on a free port; its output is kept for assertions.

    ``env`` must point the process at the caller's database (e.g. ``tests.livestack.stack_env()``)
    so the registry the caller seeds is the one the stub answers from. ``control(channel=
    "primary", outage=True)`` flips its faults."""

    command = "national_id_stub"
    name = "national ID stub"

    def api_key(self) -> str:
        return getattr(settings, "NATIONAL_STUB_API_KEY", DEFAULT_API_KEY)

    def channel_url(self, channel: str) -> str:
        return f"{self.url}/v1/{channel}"
