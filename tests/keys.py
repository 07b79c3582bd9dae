"""Random keys for one test session: every process of the session (the test run itself, the
servers, workers and stubs it starts) reads the same ones from the environment, and nothing
published opens anything (production refuses published keys: videobank/checks.py).

``session_keys_export()`` fills the environment's unset keys; the test plugin (tests/fixtures.py)
calls it before Django reads its settings, ``tests/livestack.py`` and the benches again before
they start processes. ``python tests/keys.py`` prints them as shell exports (``.ci/run``).
Standard library only: ``.ci/run`` runs it before the virtualenv exists.
"""

from __future__ import annotations

import base64
import os
import secrets
import shlex

# A placeholder for the outside systems on the production profile: a test that talks to one
# points its settings at the stub process it started (tests/livestack.py does the same for the
# servers). Port 9 (discard): nothing answers there.
UNSTARTED_SYSTEM = "http://127.0.0.1:9"


def _token() -> str:
    return secrets.token_urlsafe(32)


def _master_key() -> str:
    return "session:" + base64.b64encode(secrets.token_bytes(32)).decode()


def profile(environ=os.environ) -> str:
    """The profile the settings will choose (videobank/settings/__init__.py)."""
    return environ.get("VIDEOBANK_PROFILE") or (
        "production" if environ.get("REDIS_URL") else "embedded"
    )


def session_keys(environ=os.environ) -> dict[str, str]:
    """The keys (and, on the production profile, outside-system URLs) still missing from
    ``environ``: a client's key and the key its stub expects are one value."""
    keys: dict[str, str] = {}
    for client, stub in (
        ("COREBANK_API_KEY", "COREBANK_STUB_API_KEY"),
        ("KYC_NATIONAL_API_KEY", "NATIONAL_STUB_API_KEY"),
    ):
        shared = environ.get(client) or environ.get(stub) or _token()
        keys[client] = environ.get(client) or shared
        keys[stub] = environ.get(stub) or shared
    keys["COREBANK_STUB_ADMIN_KEY"] = environ.get("COREBANK_STUB_ADMIN_KEY") or _token()
    keys["NATIONAL_STUB_ADMIN_KEY"] = environ.get("NATIONAL_STUB_ADMIN_KEY") or _token()
    if profile(environ) == "production":
        keys["DJANGO_SECRET_KEY"] = environ.get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(50)
        keys["RECORDING_MASTER_KEYS"] = environ.get("RECORDING_MASTER_KEYS") or _master_key()
        # A key per use, each "id:base64(32 bytes)" (videobank/keyring.py).
        for name in ("WORKFLOW_RECEIPT_KEYS", "KYC_NATIONAL_KEYS", "COREBANK_STUB_KEYS"):
            keys[name] = environ.get(name) or _master_key()
        keys["COREBANK_URL"] = environ.get("COREBANK_URL") or f"{UNSTARTED_SYSTEM}/core-bank/v1"
        keys["KYC_NATIONAL_CHANNELS"] = environ.get("KYC_NATIONAL_CHANNELS") or ",".join(
            f"{UNSTARTED_SYSTEM}/national-id/v1/{channel}" for channel in ("primary", "secondary")
        )
    return {name: value for name, value in keys.items() if environ.get(name) != value}


def session_keys_export(environ=os.environ) -> dict[str, str]:
    """Put the missing keys into ``environ`` (this process and every process it starts)."""
    missing = session_keys(environ)
    environ.update(missing)
    return missing


if __name__ == "__main__":
    for name, value in session_keys().items():
        print(f"export {name}={shlex.quote(value)}")  # noqa: T201 - the shell reads it
