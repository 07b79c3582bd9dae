"""The stub as a process of its own, for tests and demos: ``StubServer(env=...).start()``."""

from __future__ import annotations

from videobank.outside.stubs.process import StubProcess, free_port

__all__ = ["StubServer", "free_port"]


class StubServer(StubProcess):
    """``manage.py national_id_stub`` on a free port; its output is kept for assertions.

    ``env`` must point the process at the caller's database (e.g. ``tests.livestack.stack_env()``)
    so the registry the caller seeds is the one the stub answers from. ``control(channel=
    "primary", outage=True)`` flips its faults."""

    command = "national_id_stub"
    name = "national ID stub"
    api_key_setting = "NATIONAL_STUB_API_KEY"
    admin_key_setting = "NATIONAL_STUB_ADMIN_KEY"

    def channel_url(self, channel: str) -> str:
        return f"{self.url}/v1/{channel}"
