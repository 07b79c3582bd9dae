"""The core-banking stub as a process of its own, for tests and demos:
``CoreBankStubServer(env=...).start()``; point the client at ``server.base_url``
(``COREBANK_URL``)."""

from __future__ import annotations

from videobank.outside.stubs.process import StubProcess, free_port

__all__ = ["CoreBankStubServer", "StubServer", "free_port"]


class CoreBankStubServer(StubProcess):
    """``manage.py corebank_stub`` on a free port; its output is kept for assertions.

    ``env`` must point the process at the caller's database (e.g. ``tests.livestack.stack_env()``)
    so the customers the caller seeds are the ones the stub serves. ``control(outage=True)``,
    ``control(reset=True)``, ``control(lose_answers=1)`` flip its faults."""

    command = "corebank_stub"
    name = "core-bank stub"
    api_key_setting = "COREBANK_STUB_API_KEY"
    admin_key_setting = "COREBANK_STUB_ADMIN_KEY"

    @property
    def base_url(self) -> str:
        """What ``COREBANK_URL`` should be for a client of this stub."""
        return f"{self.url}/v1"


# The name the national stub's helper has, for symmetry in callers.
StubServer = CoreBankStubServer
