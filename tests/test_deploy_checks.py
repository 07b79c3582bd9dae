"""``python manage.py check --deploy`` on the production profile: no warning, no error.

Run as a deployment runs it: a separate process whose environment is the production profile's
(``deploy_env``), not the test harness's (which turns HTTPS redirects and secure-only cookies off
for its plain-HTTP test servers: tests/fixtures.py).
"""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys

import pytest

from tests.fixtures import TEST_PLAIN_HTTP
from tests.keys import session_keys
from tests.livestack import ROOT

# Each test runs a command, server or worker in a process of its own.
pytestmark = pytest.mark.process

# Variables of the test run that a deployment would not have.
HARNESS_ONLY = {*TEST_PLAIN_HTTP, "DJANGO_DEBUG", "ICE_SERVERS"}


def deploy_env(**changes: str) -> dict[str, str]:
    """The production profile as a bank configures it (.env.example), with fresh keys. A test
    passes ``changes`` (a value of None removes the variable)."""
    env = {k: v for k, v in os.environ.items() if k not in HARNESS_ONLY}
    # Every key and outside system production asks for (videobank/checks.py), fresh.
    env.update(session_keys({"VIDEOBANK_PROFILE": "production"}))
    env.update(
        VIDEOBANK_PROFILE="production",
        DJANGO_SETTINGS_MODULE="videobank.settings",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="bank.example",
        DJANGO_CSRF_TRUSTED_ORIGINS="https://bank.example",
        DJANGO_SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https",
        DATABASE_URL=os.environ.get("DATABASE_URL", "postgres://videobank@127.0.0.1:5432/bank"),
        REDIS_URL=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        RECORDING_MASTER_KEYS="2026-12:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        STUN_URLS="stun:stun.bank.example:3478",
        TURN_URLS="turn:turn.bank.example:3478?transport=udp",
        TURN_SECRET=secrets.token_urlsafe(32),
    )
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def deploy_check(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.mark.parametrize(
    "keys",
    [
        lambda: {},  # a deployment's own keys
        # The test harness's session keys (tests/keys.py) are as strong as a deployment's: its
        # servers run the same checks.
        lambda: session_keys({"VIDEOBANK_PROFILE": "production"}),
    ],
    ids=["deployment keys", "test-harness keys"],
)
def test_check_deploy_is_clean_on_the_production_profile(keys):
    result = deploy_check(deploy_env(**keys()))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues (0 silenced)." in output, output


def test_check_deploy_names_what_a_deployment_turned_off():
    # The check can fail: plain HTTP and cookies in clear are each named.
    result = deploy_check(
        deploy_env(DJANGO_SECURE_SSL_REDIRECT="false", DJANGO_SESSION_COOKIE_SECURE="false")
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "security.W008" in output
    assert "security.W012" in output
