"""Sealing of recording segments: AES-256-GCM under the recording's data key.

A sealed segment is ``MAGIC + nonce(12) + ciphertext + tag(16)``. The additional authenticated data
names the segment's slot (recording, side, index), so a segment copied over another one, or into
another recording, fails to open just like a tampered or truncated one.
"""

import os
import uuid

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"VBSEG1"
NONCE_BYTES = 12
TAG_BYTES = 16
DATA_KEY_BYTES = 32
# HKDF label of the key that authenticates a recording's sealed manifest: the data key itself
# only ever seals segments (AES-GCM); the manifest gets a key of its own derived from it.
MANIFEST_KEY_INFO = b"videobank/recording-manifest/v1"


class SegmentIntegrityError(Exception):
    """A sealed segment is not what was written: tampered, truncated, misplaced or foreign."""


def new_data_key() -> bytes:
    return os.urandom(DATA_KEY_BYTES)


def segment_aad(recording_id: uuid.UUID | str, side: str, index: int) -> bytes:
    # The format version is part of the AAD so a future format cannot be confused with this one.
    return f"videobank/segment/v1|{uuid.UUID(str(recording_id))}|{side}|{int(index)}".encode()


def seal(data_key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    # A random 96-bit nonce is safe here: one data key seals at most a few thousand segments.
    nonce = os.urandom(NONCE_BYTES)
    return MAGIC + nonce + AESGCM(data_key).encrypt(nonce, plaintext, aad)


def open_sealed(data_key: bytes, blob: bytes, aad: bytes) -> bytes:
    if len(blob) < len(MAGIC) + NONCE_BYTES + TAG_BYTES:
        raise SegmentIntegrityError(f"sealed segment is truncated ({len(blob)} bytes)")
    if not blob.startswith(MAGIC):
        raise SegmentIntegrityError("not a sealed segment (wrong magic)")
    nonce = blob[len(MAGIC) : len(MAGIC) + NONCE_BYTES]
    try:
        return AESGCM(data_key).decrypt(nonce, blob[len(MAGIC) + NONCE_BYTES :], aad)
    except InvalidTag:
        raise SegmentIntegrityError(
            "segment failed authentication: tampered, truncated, moved from another slot, "
            "or sealed under another key"
        ) from None


def manifest_key(data_key: bytes) -> bytes:
    """The HMAC key of a recording's sealed manifest, derived from its data key: whoever cannot
    unwrap the data key (the master key is not in the database) cannot make or mend a manifest."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=MANIFEST_KEY_INFO).derive(
        data_key
    )
