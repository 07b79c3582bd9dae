"""Start the real server processes of a profile against the test database.

Embedded profile: one daphne process (media worker inside, tasks eager).
Production profile: N daphne processes, media worker(s) and a Celery worker, sharing Postgres and
Redis. Every process gets the test database's name so that what a test writes, they see.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from tests.keys import session_keys_export

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stack_env() -> dict[str, str]:
    """The environment of the current (test) settings, pointed at the test database, with the
    session's random keys (tests/keys.py: the test plugin put them in this environment first)."""
    session_keys_export()
    env = dict(os.environ)
    db = settings.DATABASES["default"]
    env["VIDEOBANK_PROFILE"] = settings.PROFILE
    env["RECORDING_DIR"] = str(settings.RECORDING_DIR)
    env["VIDEOBANK_VAR_DIR"] = str(settings.VAR_DIR)
    env["PYTHONUNBUFFERED"] = "1"
    # Tellers are available again right after a hang-up unless a test wants wrap-up.
    env.setdefault("QUEUE_WRAP_UP_S", "0")
    # Every test customer connects from 127.0.0.1: the anonymous side's limits stay out of the
    # way unless a test sets them (tests/test_queue_limits.py does).
    for name in (
        "QUEUE_CALL_REQUESTS_PER_IP",
        "QUEUE_CALL_REQUESTS_PER_DEVICE",
        "QUEUE_OPEN_CALLS_PER_IP",
        "QUEUE_OPEN_CALLS_PER_DEVICE",
        "QUEUE_PRIORITY_CLAIMS_PER_IP",
    ):
        env.setdefault(name, "0")
    if settings.PROFILE == "embedded":
        env["SQLITE_PATH"] = str(db["NAME"])
    else:
        user = db.get("USER") or ""
        auth = f"{user}:{db['PASSWORD']}@" if db.get("PASSWORD") else (f"{user}@" if user else "")
        host, port = db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432
        env["DATABASE_URL"] = f"postgres://{auth}{host}:{port}/{db['NAME']}"
    return env


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class LiveStack:
    log_dir: Path
    servers: int = 1
    media_workers: int | None = None  # default: 0 embedded, 1 production
    celery: bool | None = None  # default: production only
    urls: list[str] = field(default_factory=list)
    national_stub_url: str = ""  # the stub's /v1 base: <url>/primary and <url>/secondary
    corebank_url: str = ""  # the core-banking stub's /v1 base
    # Production: the stub processes serve their developer endpoints (fault switches, behind
    # their admin keys) only if a test asks; the bank's servers never mount a stub.
    stub_dev_endpoints: bool = False
    processes: list[Process] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.urls[0]

    @property
    def production(self) -> bool:
        return settings.PROFILE == "production"

    def start(self) -> LiveStack:
        env = stack_env()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        media = self.media_workers if self.media_workers is not None else int(self.production)
        celery = self.celery if self.celery is not None else self.production
        ports = [free_port() for _ in range(self.servers)]
        # The national-ID stub: a process of its own in production (at /v1 of its own port:
        # the production servers mount no stub and refuse a stub path), mounted in the (first)
        # server on the embedded profile.
        stub_port = free_port() if self.production else ports[0]
        stub = f"http://127.0.0.1:{stub_port}" + (
            "/v1" if self.production else "/ext/national-id/v1"
        )
        env["KYC_NATIONAL_CHANNELS"] = f"{stub}/primary,{stub}/secondary"
        self.national_stub_url = stub
        # The core-banking stub, the same way.
        core_port = free_port() if self.production else ports[0]
        core = f"http://127.0.0.1:{core_port}" + ("/v1" if self.production else "/ext/core-bank/v1")
        env["COREBANK_URL"] = core
        env.setdefault("COREBANK_STUB_LATENCY_MS", "20")
        env.setdefault("COREBANK_STUB_JITTER_MS", "0")
        self.corebank_url = core
        try:
            if self.production:
                dev = ["--dev-endpoints"] if self.stub_dev_endpoints else []
                self._spawn(
                    "corebank-stub",
                    [
                        str(BIN / "python"),
                        "manage.py",
                        "corebank_stub",
                        "--port",
                        str(core_port),
                        *dev,
                    ],
                    env,
                )
                self._spawn(
                    "national-stub",
                    [
                        str(BIN / "python"),
                        "manage.py",
                        "national_id_stub",
                        "--port",
                        str(stub_port),
                        *dev,
                    ],
                    env,
                )
            for i in range(media):
                self._spawn(f"media-{i}", [str(BIN / "python"), "manage.py", "media_worker"], env)
            ticker = self.production and env.get("QUEUE_TICKER", "process") == "process"
            if ticker:
                self._spawn("ticker", [str(BIN / "python"), "manage.py", "queue_ticker"], env)
            if celery:
                self._spawn(
                    "celery",
                    [
                        str(BIN / "celery"),
                        "-A",
                        "videobank",
                        "worker",
                        "-l",
                        "info",
                        "--concurrency",
                        "1",
                        "--without-gossip",
                        "--without-mingle",
                    ],
                    env,
                )
            for i, port in enumerate(ports):
                self._spawn(
                    f"daphne-{i}",
                    [
                        str(BIN / "daphne"),
                        "-b",
                        "127.0.0.1",
                        "-p",
                        str(port),
                        "videobank.asgi:application",
                    ],
                    env,
                )
                self.urls.append(f"http://127.0.0.1:{port}")
            for i in range(media):
                self.wait_log(f"media-{i}", r"media worker listening")
            if celery:
                self.wait_log("celery", r"ready\.")
            if ticker:
                self.wait_log("ticker", r"queue ticker running")
            if self.production:
                self.wait_log("national-stub", r"national ID stub listening")
                self.wait_log("corebank-stub", r"core-bank stub listening")
            for url in self.urls:
                self._wait_http(url + "/healthz")
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        log_path = self.log_dir / f"{name}.log"
        log = log_path.open("wb")
        popen = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.processes.append(Process(name, popen, log_path))

    def process(self, name: str) -> Process:
        return next(p for p in self.processes if p.name == name)

    def wait_log(self, name: str, pattern: str, timeout: float = 60.0) -> None:
        proc = self.process(name)
        deadline = time.monotonic() + timeout
        while not re.search(pattern, proc.log()):
            if proc.popen.poll() is not None:
                raise RuntimeError(f"{name} exited early:\n{proc.log()[-4000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} not ready:\n{proc.log()[-4000:]}")
            time.sleep(0.1)  # polling a child's log for readiness

    def _wait_http(self, url: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        return
            except OSError:
                pass
            for proc in self.processes:
                if proc.popen.poll() is not None:
                    raise RuntimeError(f"{proc.name} exited early:\n{proc.log()[-4000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer")
            time.sleep(0.1)  # polling a child server for readiness

    def stop(self) -> None:
        for proc in self.processes:
            if proc.popen.poll() is None:
                proc.popen.terminate()
        for proc in self.processes:
            try:
                proc.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait()
        self.processes.clear()
        self.urls.clear()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.log()[-3000:]}" for p in self.processes)
