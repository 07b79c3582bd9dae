"""The core-banking stub as a process of its own, for tests and demos:
``CoreBankStubServer(env=...).start()``; point the client at ``server.base_url``
(``COREBANK_URL``)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from .conf import stub_setting
from .views import DEFAULT_API_KEY

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CoreBankStubServer:
    """``manage.py corebank_stub`` on a free port; its output is kept for assertions.

    ``env`` must point the process at the caller's database (e.g. ``tests.livestack.stack_env()``)
    so the customers the caller seeds are the ones the stub serves."""

    def __init__(self, *, env: dict[str, str], port: int | None = None):
        self.env = env
        self.port = port or free_port()
        self.popen: subprocess.Popen | None = None
        self.startup_s: float | None = None
        self._lines: list[str] = []
        self._lines_changed = threading.Condition()
        self._ready = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """What ``COREBANK_URL`` should be for a client of this stub."""
        return f"{self.url}/v1"

    def start(self, timeout: float = 30.0) -> CoreBankStubServer:
        started = time.monotonic()
        self.popen = subprocess.Popen(
            [sys.executable, "manage.py", "corebank_stub", "--port", str(self.port)],
            cwd=ROOT,
            env={**self.env, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        self._reader = threading.Thread(target=self._read, daemon=True, name="corebank-stub-log")
        self._reader.start()
        if not self._ready.wait(timeout) or self.popen.poll() is not None:
            self.stop()
            raise RuntimeError(f"core-bank stub did not start:\n{self.log()[-4000:]}")
        self.startup_s = time.monotonic() - started
        return self

    def _read(self) -> None:
        assert self.popen is not None
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            with self._lines_changed:
                self._lines.append(line)
                self._lines_changed.notify_all()
            if "listening on" in line:
                self._ready.set()
        self._ready.set()  # exited: let start() see it

    def log(self) -> str:
        with self._lines_changed:
            return "".join(self._lines)

    def wait_for_log(self, text: str, timeout: float = 30.0) -> bool:
        """Wait until the process has printed ``text`` (e.g. that it answered a request)."""
        with self._lines_changed:
            return self._lines_changed.wait_for(
                lambda: any(text in line for line in self._lines), timeout
            )

    def control(self, **fields) -> dict:
        """POST /v1/_control with the stub's key: ``control(outage=True)``,
        ``control(reset=True)``, ``control(lose_answers=1)``."""
        request = urllib.request.Request(  # noqa: S310 - our own http:// URL
            f"{self.base_url}/_control",
            data=json.dumps(fields).encode(),
            headers={
                "Content-Type": "application/json",
                "X-Api-Key": stub_setting("COREBANK_STUB_API_KEY", DEFAULT_API_KEY),
            },
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return json.load(response)

    def stop(self) -> None:
        if self.popen is None:
            return
        if self.popen.poll() is None:
            self.popen.terminate()
        try:
            self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
        self._reader.join(5)
        if self.popen.stdout is not None:
            self.popen.stdout.close()

    def __enter__(self) -> CoreBankStubServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# The name the national stub's helper has, for symmetry in callers.
StubServer = CoreBankStubServer
