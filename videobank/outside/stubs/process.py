"""An outside-service stub (national ID check, core banking) run as a process of its own, for
tests and demos: started on a free port, its output kept for assertions, its fault controls
reachable over HTTP. Each stub's ``testing`` module subclasses this with its command.

The process gets its keys from ``env`` (the API key its callers present, the admin key of its
developer endpoints); a key missing there is this process's setting of the same name (the test
session's keys: tests/keys.py). It is started with ``--dev-endpoints`` unless told otherwise:
the fault switches are what a test drives it with.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parents[3]  # where manage.py is


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StubProcess:
    command = ""  # the management command that serves the stub
    name = "stub"  # for thread names and error messages
    api_key_setting = ""  # e.g. COREBANK_STUB_API_KEY
    admin_key_setting = ""  # e.g. COREBANK_STUB_ADMIN_KEY

    def __init__(self, *, env: dict[str, str], port: int | None = None, dev_endpoints: bool = True):
        self.env = dict(env)
        for name in (self.api_key_setting, self.admin_key_setting):
            if not self.env.get(name):
                self.env[name] = str(getattr(settings, name, "") or "")
        self.dev_endpoints = dev_endpoints
        self.port = port or free_port()
        self.popen: subprocess.Popen | None = None
        self.startup_s: float | None = None
        self._lines: list[str] = []
        self._lines_changed = threading.Condition()
        self._ready = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api_key(self) -> str:
        """The key the stub's API wants in X-Api-Key."""
        return self.env[self.api_key_setting]

    def admin_key(self) -> str:
        """The key its developer endpoints want in X-Admin-Key."""
        return self.env[self.admin_key_setting]

    def start(self, timeout: float = 30.0):
        started = time.monotonic()
        flags = ["--dev-endpoints"] if self.dev_endpoints else []
        self.popen = subprocess.Popen(
            [sys.executable, "manage.py", self.command, "--port", str(self.port), *flags],
            cwd=ROOT,
            env={**self.env, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        self._reader = threading.Thread(target=self._read, daemon=True, name=f"{self.name}-log")
        self._reader.start()
        if not self._ready.wait(timeout) or self.popen.poll() is not None:
            self.stop()
            raise RuntimeError(f"{self.name} did not start:\n{self.log()[-4000:]}")
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

    def wait_for_log(self, text: str, timeout: float = 30.0, *, count: int = 1) -> bool:
        """Wait until the process has printed ``text`` (e.g. that it answered a request), on
        ``count`` lines."""
        with self._lines_changed:
            return self._lines_changed.wait_for(
                lambda: sum(text in line for line in self._lines) >= count, timeout
            )

    def control(self, **fields) -> dict:
        """POST /v1/_control with the stub's admin key (outage, latency, error rate, reset...);
        without fields, GET: the faults in force."""
        request = urllib.request.Request(  # noqa: S310 - our own http:// URL
            f"{self.url}/v1/_control",
            data=json.dumps(fields).encode() if fields else None,
            headers={"Content-Type": "application/json", "X-Admin-Key": self.admin_key()},
            method="POST" if fields else "GET",
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

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
