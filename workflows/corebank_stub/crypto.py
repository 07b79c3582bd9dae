"""The stub's secrets: its RSA key pair (browsers encrypt PINs for it), PIN and code hashes, and
sealing of what it keeps at rest.

- PIN transport: RSA-OAEP with SHA-256 (and MGF1-SHA-256, as WebCrypto's ``RSA-OAEP`` with
  ``hash: "SHA-256"`` does) over the UTF-8 JSON ``{"pin": "...", "nonce": "..."}``.
- PINs and one-time codes at rest: salted PBKDF2-HMAC-SHA256 (``COREBANK_STUB_PIN_ITERATIONS``;
  the count is stored with each hash, so changing it leaves old hashes valid).
- The private key and the SMS outbox at rest: AES-256-GCM under ``COREBANK_STUB_KEYS``, the
  stub's own key setting (``videobank.keyring``: never SECRET_KEY — a real core shares no key
  with us); each sealed value names its key, so a rotation keeps older ones readable.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from videobank.keyring import COREBANK_STUB_KEYS, keyring

from .conf import stub_setting

RSA_BITS = 3072
_SEAL_PURPOSE = "sealed"
OAEP = padding.OAEP(
    mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None
)


def seal(data: bytes, *, context: bytes) -> bytes:
    """AES-256-GCM under the stub's current key; ``context`` (e.g. the row's id) is bound as
    associated data."""
    return keyring(COREBANK_STUB_KEYS).seal(data, purpose=_SEAL_PURPOSE, context=context)


def unseal(sealed: bytes, *, context: bytes) -> bytes:
    """The data; ``videobank.keyring.SealBroken`` for another context (or an altered value),
    ``KeyNotConfigured`` when its key is no longer listed in COREBANK_STUB_KEYS."""
    return keyring(COREBANK_STUB_KEYS).unseal(bytes(sealed), purpose=_SEAL_PURPOSE, context=context)


# --- the key pair ------------------------------------------------------------------------------
def keypair_generate() -> tuple[str, bytes, rsa.RSAPrivateKey]:
    """(public key as base64 SPKI DER — what WebCrypto ``importKey("spki", ...)`` takes —,
    private key as PKCS#8 DER, the key)."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    spki = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pkcs8 = private.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return base64.b64encode(spki).decode(), pkcs8, private


def private_key_load(pkcs8: bytes) -> rsa.RSAPrivateKey:
    key = serialization.load_der_private_key(pkcs8, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):  # pragma: no cover - we only ever store RSA
        raise TypeError("not an RSA key")
    return key


def oaep_decrypt(private: rsa.RSAPrivateKey, ciphertext: bytes) -> bytes:
    """The plaintext; ValueError if the ciphertext is not for this key (or was altered)."""
    return private.decrypt(ciphertext, OAEP)


# --- secrets at rest ---------------------------------------------------------------------------
def secret_hash(secret: str, *, iterations: int | None = None) -> str:
    iterations = int(iterations or stub_setting("COREBANK_STUB_PIN_ITERATIONS", 200_000, int))
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", secret.encode(), salt, iterations)
    salt_b64, digest_b64 = base64.b64encode(salt).decode(), base64.b64encode(digest).decode()
    return f"pbkdf2_sha256${iterations}${salt_b64}${digest_b64}"


def secret_check(secret: str, encoded: str) -> bool:
    """Constant-time comparison with a stored hash; False for an empty or foreign hash."""
    try:
        algorithm, iterations, salt, digest = encoded.split("$")
        if algorithm != "pbkdf2_sha256":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.pbkdf2_hmac(
            "sha256", secret.encode(), base64.b64decode(salt), int(iterations)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(expected, actual)


def token(nbytes: int = 16) -> str:
    """URL-safe random text: challenge ids, nonces, card tokens."""
    return secrets.token_urlsafe(nbytes)


def otp_make() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"
