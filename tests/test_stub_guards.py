"""Outside-system stubs never in production, tried through the processes a bank runs.

- A production daphne serves no /ext/ route (the embedded one does: the paths are right).
- Production refuses to start — ``manage.py check`` (as every management command), daphne at
  application load, a Celery worker at start — while a key is unset or a published value, or
  ``COREBANK_URL`` / ``KYC_NATIONAL_CHANNELS`` is unset or points at a stub path; the message
  names the setting. ``VIDEOBANK_INSECURE_TEST_KEYS`` changes nothing of it. Deploying
  ``.env.example`` as it is refuses to start too.
- A stub as its own process serves its developer endpoints only when started with
  ``--dev-endpoints``, and refuses to start with a published or missing key.

None of these processes reaches a database or Redis: their addresses here lead nowhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from kyc.national_stub.testing import StubServer as NationalStubServer
from tests.keys import session_keys
from tests.livestack import free_port
from videobank.checks import SECRET_SETTINGS
from workflows.corebank_stub.testing import CoreBankStubServer

# Each test runs a command, server or worker in a process of its own.
pytestmark = pytest.mark.process

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
NOWHERE = {
    "DATABASE_URL": "postgres://nobody@127.0.0.1:1/not-contacted",
    "REDIS_URL": "redis://127.0.0.1:1/0",
}
# Whatever the test session runs on, these processes get their own profile and settings.
SESSION_ONLY = {
    "VIDEOBANK_PROFILE", "SQLITE_PATH", "DJANGO_SECRET_KEY", "RECORDING_MASTER_KEYS",
    "WORKFLOW_RECEIPT_KEYS", "KYC_NATIONAL_KEYS", "COREBANK_STUB_KEYS", "COREBANK_URL",
    "KYC_NATIONAL_CHANNELS", "QUEUE_TICKER",
    "DJANGO_SETTINGS_MODULE",
}  # fmt: skip


def production_env(tmp_path: Path, **changes: str | None) -> dict[str, str]:
    """A well-configured production process (random keys, outside systems at their own
    addresses), then ``changes`` (None: unset). The insecure-test-keys flag is on throughout:
    it must not let anything through."""
    env = {k: v for k, v in os.environ.items() if k not in SESSION_ONLY}
    env.update(
        NOWHERE,
        VIDEOBANK_PROFILE="production",
        VIDEOBANK_VAR_DIR=str(tmp_path / "var"),
        RECORDING_DIR=str(tmp_path / "recordings"),
        QUEUE_TICKER="off",
        VIDEOBANK_INSECURE_TEST_KEYS="1",
        PYTHONUNBUFFERED="1",
    )
    env.update(session_keys(env))
    assert env["COREBANK_URL"].startswith("http://127.0.0.1:9/")  # a core of its own
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def run(argv: list[str], env: dict[str, str], timeout: float = 60) -> tuple[int, str]:
    done = subprocess.run(
        argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    return done.returncode, done.stdout + done.stderr


def manage_check(env: dict[str, str]) -> tuple[int, str]:
    return run([sys.executable, "manage.py", "check"], env)


# --- production refuses to start -----------------------------------------------------------------
UNSET, PUBLISHED, STUB_PATH = "E001", "E003", "E002"
REFUSED = {
    "DJANGO_SECRET_KEY": [
        (None, UNSET),
        ("embedded-profile-not-secret", PUBLISHED),
        ("change-me", PUBLISHED),
    ],
    "RECORDING_MASTER_KEYS": [
        (None, UNSET),
        ("test:dGVzdC1vbmx5LW1hc3Rlci1rZXktMzItYnl0ZXMhISE=", PUBLISHED),
        ("2026-11:REPLACE_WITH_BASE64_32_BYTES", PUBLISHED),
    ],
    "WORKFLOW_RECEIPT_KEYS": [
        (None, UNSET),
        ("test:dGVzdC1vbmx5LXJlY2VpcHQta2V5LTMyLWJ5dGVzISE=", PUBLISHED),
        ("2026-12:REPLACE_WITH_BASE64_32_BYTES", PUBLISHED),
    ],
    "KYC_NATIONAL_KEYS": [
        (None, UNSET),
        ("test:dGVzdC1vbmx5LW5hdGlvbmFsLWtleS0zMi1ieXRlcyE=", PUBLISHED),
    ],
    "COREBANK_STUB_KEYS": [
        (None, UNSET),
        ("test:dGVzdC1vbmx5LWNvcmViYW5rLXN0dWIta2V5LTMyYnk=", PUBLISHED),
    ],
    "COREBANK_API_KEY": [(None, UNSET), ("videobank-corebank-stub", PUBLISHED)],
    "KYC_NATIONAL_API_KEY": [(None, UNSET), ("videobank-national-stub", PUBLISHED)],
    "COREBANK_URL": [
        (None, UNSET),
        ("http://127.0.0.1:8000/ext/core-bank/v1", STUB_PATH),  # the embedded default
        ("https://bank.example/ext/core-bank/v1/", STUB_PATH),
    ],
    "KYC_NATIONAL_CHANNELS": [
        (None, UNSET),
        (
            "http://127.0.0.1:8000/ext/national-id/v1/primary,"
            "http://127.0.0.1:8000/ext/national-id/v1/secondary",
            STUB_PATH,
        ),
        ("https://idcheck.example/v1/a,http://10.0.0.5/ext/national-id/v1/secondary", STUB_PATH),
    ],
}
WORDS = {
    UNSET: "is not set",
    PUBLISHED: "still has a published default value",
    STUB_PATH: "points at the stub path",
}


def test_a_well_configured_production_process_starts(tmp_path):
    """The baseline every refusal below changes one setting of: it passes the checks."""
    status, output = manage_check(production_env(tmp_path))
    assert (status, output.strip()) == (0, "System check identified no issues (0 silenced).")


def test_every_key_setting_is_checked():
    assert sorted(name for name, _ in SECRET_SETTINGS) == sorted(
        name for name in REFUSED if not name.endswith(("_URL", "_CHANNELS"))
    )


@pytest.mark.parametrize("name", list(REFUSED))
def test_manage_py_check_refuses_a_setting_unset_published_or_a_stub(tmp_path, name):
    cases = REFUSED[name]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(
            pool.map(lambda case: manage_check(production_env(tmp_path, **{name: case[0]})), cases)
        )
    for (value, code), (status, output) in zip(cases, results, strict=True):
        assert status != 0, (value, output)
        assert f"(videobank.{code}) {name} {WORDS[code]}" in output, (value, output)
        assert f"HINT: Set {name}" in output  # and says what to do
        # Only this setting is refused: the rest of the configuration is sound.
        refused = [line for line in output.splitlines() if "(videobank.E" in line]
        assert all(f") {name} " in line for line in refused), output


def test_daphne_refuses_to_load_the_application(tmp_path):
    for name, value, code in (
        ("COREBANK_API_KEY", "videobank-corebank-stub", PUBLISHED),
        ("KYC_NATIONAL_CHANNELS", "http://127.0.0.1:8000/ext/national-id/v1/primary", STUB_PATH),
        ("DJANGO_SECRET_KEY", None, UNSET),
    ):
        status, output = run(
            [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(free_port()),
             "videobank.asgi:application"],
            production_env(tmp_path, **{name: value}),
        )  # fmt: skip
        assert status != 0, output
        assert "daphne (videobank.asgi) refuses to start on the production profile" in output
        assert f"videobank.{code}: {name} {WORDS[code]}" in output


def test_a_celery_worker_refuses_to_start(tmp_path):
    status, output = run(
        [str(BIN / "celery"), "-A", "videobank", "worker", "--concurrency", "1",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        production_env(tmp_path, COREBANK_URL="http://127.0.0.1:8000/ext/core-bank/v1"),
    )  # fmt: skip
    assert status != 0, output
    assert "celery worker refuses to start on the production profile" in output
    assert f"videobank.E002: COREBANK_URL {WORDS[STUB_PATH]} /ext/core-bank" in output


def _env_example() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#") and "=" in line:
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def test_deploying_env_example_as_it_is_refuses_to_start(tmp_path):
    """.env.example is published: whatever key it shows is no secret."""
    example = _env_example()
    env = {k: os.environ[k] for k in ("PATH", "PYTHONPATH", "HOME", "LANG") if k in os.environ}
    env.update(
        example,
        VIDEOBANK_VAR_DIR=str(tmp_path / "var"),
        RECORDING_DIR=str(tmp_path / "recordings"),
        SQLITE_TEST_PATH=str(tmp_path / "test.sqlite3"),
    )
    assert example["VIDEOBANK_PROFILE"] == "production"
    status, output = manage_check(env)
    assert status != 0, output
    for name, _ in SECRET_SETTINGS:
        assert f"{name} is not set" in output or f"{name} {WORDS[PUBLISHED]}" in output, name
    assert "TURN_SECRET still has a published default value" in output


# --- no stub in a production server ------------------------------------------------------------
STUB_ROUTES = [
    ("GET", "/ext/core-bank/v1/health"),
    ("GET", "/ext/core-bank/v1/_control"),
    ("GET", "/ext/core-bank/v1/_dev/otp?customer_ref=CIF000000001"),
    ("POST", "/ext/core-bank/v1/customers/lookup"),
    ("POST", "/ext/core-bank/v1/operations/transfer"),
    ("GET", "/ext/national-id/v1/health"),
    ("GET", "/ext/national-id/v1/_control"),
    ("POST", "/ext/national-id/v1/primary/verify"),
]


def request(url: str, method: str = "GET") -> int:
    data = b"{}" if method == "POST" else None
    req = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - our http:// URL
    try:
        with urllib.request.urlopen(req, timeout=10) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


class Daphne:
    def __init__(self, env: dict[str, str], log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        with log.open("wb") as out:
            self.popen = subprocess.Popen(
                [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(self.port),
                 "videobank.asgi:application"],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def wait_up(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if request(self.url + "/healthz") == 200:
                    return
            except OSError:
                pass
            if self.popen.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"daphne did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.1)  # polling a child server for readiness

    def stop(self) -> None:
        self.popen.terminate()
        try:
            self.popen.wait(10)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()


RESOLVE = """
import json, sys
import django
django.setup()
from django.urls import Resolver404, resolve
found = {}
for path in sys.argv[1:]:
    try:
        found[path] = resolve(path.partition("?")[0]).view_name
    except Resolver404:
        found[path] = None
print(json.dumps(found))
"""


def routes(env: dict[str, str]) -> dict[str, str | None]:
    """What the profile's URL conf routes each stub path to (a view name, or None)."""
    status, output = run(
        [sys.executable, "-c", RESOLVE, *(path for _, path in STUB_ROUTES)],
        {**env, "DJANGO_SETTINGS_MODULE": "videobank.settings"},
    )
    assert status == 0, output
    return json.loads(output.strip().splitlines()[-1])


def test_a_production_server_serves_no_stub_route(tmp_path):
    server = Daphne(production_env(tmp_path), tmp_path / "production.log")
    try:
        server.wait_up()
        answers = {path: request(server.url + path, method) for method, path in STUB_ROUTES}
    finally:
        server.stop()
    assert answers == {path: 404 for _, path in STUB_ROUTES}


def test_the_stub_paths_are_routed_on_the_embedded_profile_only(tmp_path):
    """The same paths are the mounted stubs on the embedded profile (so production's 404s are the
    profile's doing, not a wrong path)."""
    embedded = {k: v for k, v in os.environ.items() if k not in SESSION_ONLY}
    embedded.update(VIDEOBANK_PROFILE="embedded", VIDEOBANK_VAR_DIR=str(tmp_path / "var"))
    assert routes(embedded) == {
        "/ext/core-bank/v1/health": "corebank_stub:health",
        "/ext/core-bank/v1/_control": "corebank_stub:control",
        "/ext/core-bank/v1/_dev/otp?customer_ref=CIF000000001": "corebank_stub:dev-otp",
        "/ext/core-bank/v1/customers/lookup": "corebank_stub:customer-lookup",
        "/ext/core-bank/v1/operations/transfer": "corebank_stub:operation",
        "/ext/national-id/v1/health": "national_stub:health",
        "/ext/national-id/v1/_control": "national_stub:control",
        "/ext/national-id/v1/primary/verify": "national_stub:verify",
    }
    assert routes(production_env(tmp_path)) == {path: None for _, path in STUB_ROUTES}


# --- a stub as its own process --------------------------------------------------------------------
STUBS = {
    "core-bank": (CoreBankStubServer, ["/v1/_control", "/v1/_dev/otp?customer_ref=CIF000000001"]),
    "national-id": (NationalStubServer, ["/v1/_control"]),
}


@pytest.mark.parametrize("stub", list(STUBS))
def test_a_stub_process_serves_developer_endpoints_only_when_asked(stub):
    from tests.livestack import stack_env

    server_cls, dev_paths = STUBS[stub]
    with server_cls(env=stack_env(), dev_endpoints=False) as server:
        assert request(f"{server.url}/v1/health") == 200
        assert {path: request(server.url + path) for path in dev_paths} == dict.fromkeys(
            dev_paths, 404
        )
    with server_cls(env=stack_env()) as server:  # --dev-endpoints: there, behind the admin key
        assert {path: request(server.url + path) for path in dev_paths} == dict.fromkeys(
            dev_paths, 403
        )


@pytest.mark.parametrize(
    ("stub", "api", "admin", "flags", "words"),
    [
        ("corebank_stub", "COREBANK_STUB_API_KEY", "COREBANK_STUB_ADMIN_KEY", [],
         "COREBANK_STUB_API_KEY still has a published default value"),
        ("national_id_stub", "NATIONAL_STUB_API_KEY", "NATIONAL_STUB_ADMIN_KEY", [],
         "NATIONAL_STUB_API_KEY still has a published default value"),
        ("corebank_stub", "", "COREBANK_STUB_ADMIN_KEY", ["--dev-endpoints"],
         "COREBANK_STUB_ADMIN_KEY is not set"),
        ("national_id_stub", "", "NATIONAL_STUB_ADMIN_KEY", ["--dev-endpoints"],
         "NATIONAL_STUB_ADMIN_KEY must differ from NATIONAL_STUB_API_KEY"),
    ],
)  # fmt: skip
def test_a_stub_process_refuses_to_start_with_public_or_missing_keys(
    tmp_path, stub, api, admin, flags, words
):
    env = production_env(tmp_path)
    if api:  # a published API key
        env[api] = {"corebank_stub": "videobank-corebank-stub"}.get(stub, "videobank-national-stub")
    elif "must differ" in words:  # the admin key is the API key
        env[admin] = env["NATIONAL_STUB_API_KEY"]
    else:
        env.pop(admin, None)
    status, output = run(
        [sys.executable, "manage.py", stub, "--port", str(free_port()), *flags], env, timeout=30
    )
    assert status != 0, output
    assert "the stub refuses to start" in output
    assert words in output
    assert "listening on" not in output
