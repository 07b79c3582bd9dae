"""The query of a check that has not run yet (name, ID number, portrait), kept sealed in the
database, and the keyed hashes that match a person without keeping them.

A Celery worker needs the clear query to ask the service, and tasks take ids, not personal data
(the broker is not a place for it). AES-256-GCM under ``KYC_NATIONAL_KEYS`` (its own key setting,
see ``videobank.keyring``: never SECRET_KEY); the sealed value names the key it was sealed with,
so a query sealed before a rotation still opens while its key stays listed; the check's id is
the associated data, so a sealed query cannot be moved to another check.
"""

from __future__ import annotations

import json
import uuid

from videobank.keyring import NATIONAL_KEYS, keyring

_QUERY = "query"


def query_seal(*, check_id: uuid.UUID, query: dict) -> bytes:
    return keyring(NATIONAL_KEYS).seal(
        json.dumps(query).encode(), purpose=_QUERY, context=check_id.bytes
    )


def query_unseal(*, check_id: uuid.UUID, sealed: bytes) -> dict:
    """The query; ``videobank.keyring.SealBroken`` if it was sealed for another check (or
    altered), ``KeyNotConfigured`` if its key is no longer listed."""
    return json.loads(
        keyring(NATIONAL_KEYS).unseal(bytes(sealed), purpose=_QUERY, context=check_id.bytes)
    )


def person_hashes(kind: str, value: str) -> list[str]:
    """HMAC-SHA256 (hex) of a name or an ID number under each listed key, the current key's
    first: the first is stored, any of them matches (a rotation keeps the cache working)."""
    ring = keyring(NATIONAL_KEYS)
    return [
        ring.mac(value.encode(), purpose=f"hash {kind}", key_id=key_id).hex()
        for key_id in ring.keys
    ]
