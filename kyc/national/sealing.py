"""The query of a check that has not run yet (ID number, portrait), kept sealed in the database.

A Celery worker needs the clear number to ask the service, and tasks take ids, not personal data
(the broker is not a place for it). AES-256-GCM with a key derived from SECRET_KEY; the check's
id is the associated data, so a sealed query cannot be moved to another check.
"""

from __future__ import annotations

import json
import os
import uuid

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

_INFO = b"videobank kyc.national sealed query v1"


def _key() -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
        settings.SECRET_KEY.encode()
    )


def query_seal(*, check_id: uuid.UUID, query: dict) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(_key()).encrypt(nonce, json.dumps(query).encode(), check_id.bytes)


def query_unseal(*, check_id: uuid.UUID, sealed: bytes) -> dict:
    """The query; cryptography's InvalidTag if it was sealed for another check or another key."""
    sealed = bytes(sealed)
    return json.loads(AESGCM(_key()).decrypt(sealed[:12], sealed[12:], check_id.bytes))
