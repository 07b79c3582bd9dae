"""Keys with ids, one setting per use: receipts, national-ID queries, the core-bank stub.

Each setting reads like ``RECORDING_MASTER_KEYS``: ``"id:base64(32 bytes),id2:base64(...)"``,
newest first. The first key makes what is new (seals, codes, tokens); every listed key still
opens or verifies what it made, so a key is rotated by putting a new one first and keeping the
old one listed until nothing made with it is left. Everything stored carries the id of the key it
was made with. ``SECRET_KEY`` is never one of them: rotating it (sessions, CSRF, the call tokens)
breaks no receipt and no sealed query, and rotating one of these breaks nothing else.

With a setting left empty, the embedded profile keeps a random key per installation in
``VAR_DIR`` (``<setting>.key``, mode 0600, id ``local``), as it does for the recording master key;
any other profile refuses to start a use whose key is missing.

A key is never used as it is: each purpose gets its own subkey (HKDF), so one setting can serve
e.g. a receipt's verification code and its link token without the two ever sharing a key.
"""

from __future__ import annotations

import hmac
import os
import re
import threading
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from videobank.keys import LOCAL_KEY_ID, hkdf, local_key_file, parse_master_keys

# Every key setting videobank reads besides RECORDING_MASTER_KEYS (the production profile's
# checks refuse these unset or set to a published value).
RECEIPT_KEYS = "WORKFLOW_RECEIPT_KEYS"
NATIONAL_KEYS = "KYC_NATIONAL_KEYS"
COREBANK_STUB_KEYS = "COREBANK_STUB_KEYS"
KEY_SETTINGS = (RECEIPT_KEYS, NATIONAL_KEYS, COREBANK_STUB_KEYS)

# A sealed value: magic, key id (length-prefixed), nonce, AES-256-GCM ciphertext and tag.
SEALED_MAGIC = b"VBK1"
NONCE_BYTES = 12


class KeyNotConfigured(ImproperlyConfigured):
    """Something was made with a key that is no longer listed in its setting."""


class SealBroken(ValueError):
    """A sealed value does not open: altered, cut, or sealed for another row or purpose."""


@dataclass
class Keyring:
    setting: str
    keys: dict[str, bytes]  # newest first
    _derived: dict[tuple[str, str], bytes] = field(default_factory=dict, repr=False)

    @property
    def current_id(self) -> str:
        return next(iter(self.keys))

    def subkey(self, purpose: str, key_id: str | None = None) -> bytes:
        """The 32-byte key of ``purpose`` under key ``key_id`` (the current one if None)."""
        key_id = self.current_id if key_id is None else key_id
        derived = self._derived.get((key_id, purpose))
        if derived is None:
            try:
                key = self.keys[key_id]
            except KeyError:
                raise KeyNotConfigured(
                    f"key {key_id!r} is not in {self.setting}: keep a retired key listed after "
                    "the current one while anything made with it is kept"
                ) from None
            derived = hkdf(key, f"videobank {self.setting} {purpose} v1")
            self._derived[(key_id, purpose)] = derived
        return derived

    def subkeys(self, purpose: str) -> list[tuple[str, bytes]]:
        """Every key's subkey of ``purpose``, the current one first (to verify or match)."""
        return [(key_id, self.subkey(purpose, key_id)) for key_id in self.keys]

    # --- sealing --------------------------------------------------------------------------------
    def seal(self, data: bytes, *, purpose: str, context: bytes) -> bytes:
        """AES-256-GCM under the current key's subkey of ``purpose``; ``context`` (e.g. the
        row's id) and the key id are bound as associated data."""
        key_id = self.current_id
        header = _header(key_id)
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(self.subkey(purpose, key_id)).encrypt(nonce, data, header + context)
        return header + nonce + sealed

    def unseal(self, sealed: bytes, *, purpose: str, context: bytes) -> bytes:
        """The data; KeyNotConfigured if its key was dropped from the setting, SealBroken if it
        was altered or sealed for another context."""
        key_id, body = sealed_split(sealed)
        if key_id is None:
            raise SealBroken(f"not a value sealed with {self.setting}")
        header = _header(key_id)
        try:
            return AESGCM(self.subkey(purpose, key_id)).decrypt(
                body[:NONCE_BYTES], body[NONCE_BYTES:], header + context
            )
        except InvalidTag:
            raise SealBroken(
                f"a value sealed with {self.setting} key {key_id!r} does not open"
            ) from None

    # --- codes ----------------------------------------------------------------------------------
    def mac(self, data: bytes, *, purpose: str, key_id: str | None = None) -> bytes:
        return hmac.new(self.subkey(purpose, key_id), data, sha256).digest()


def _header(key_id: str) -> bytes:
    encoded = key_id.encode()
    return SEALED_MAGIC + bytes([len(encoded)]) + encoded


def sealed_split(sealed: bytes) -> tuple[str | None, bytes]:
    """(the key id, the rest) of a sealed value; (None, the value) if it is not one."""
    sealed = bytes(sealed)
    if not sealed.startswith(SEALED_MAGIC) or len(sealed) < len(SEALED_MAGIC) + 1:
        return None, sealed
    length = sealed[len(SEALED_MAGIC)]
    start = len(SEALED_MAGIC) + 1
    try:
        key_id = sealed[start : start + length].decode()
    except UnicodeDecodeError:
        return None, sealed
    return key_id, sealed[start + length :]


def sealed_key_id(sealed: bytes) -> str | None:
    """The id of the key a value was sealed with (None if it is not a sealed value)."""
    return sealed_split(sealed)[0]


# --- the keyrings of the settings ---------------------------------------------------------------
_cache: dict[tuple[str, str, str, str], Keyring] = {}
_cache_lock = threading.Lock()


def keyring(setting: str) -> Keyring:
    """The keys of ``setting`` (read from Django settings, then the environment: the stubs'
    own processes get their knobs that way)."""
    spec = getattr(settings, setting, None)
    if spec is None:
        spec = os.environ.get(setting, "")
    profile = getattr(settings, "PROFILE", "")
    var_dir = str(settings.VAR_DIR)
    # Keyed on what it reads, so overriding a setting (tests) never serves a stale keyring.
    cache_key = (setting, spec, profile, var_dir)
    with _cache_lock:
        ring = _cache.get(cache_key)
        if ring is None:
            ring = Keyring(setting=setting, keys=_keys(setting, spec, profile, Path(var_dir)))
            _cache[cache_key] = ring
        return ring


_KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,32}$")


def _keys(setting: str, spec: str, profile: str, var_dir: Path) -> dict[str, bytes]:
    keys = parse_master_keys(spec or "", setting=setting)
    for key_id in keys:
        if not _KEY_ID.match(key_id):  # it is written into every value sealed with it
            raise ImproperlyConfigured(
                f"{setting}: key id {key_id!r} must be 1-32 letters, digits or . _ -"
            )
    if keys:
        return keys
    if profile != "embedded":
        raise ImproperlyConfigured(
            f"{setting} is empty: set it to 'id:base64key' with a 32-byte key of its own, e.g. "
            f'{setting}="k1:$(head -c32 /dev/urandom | base64)".'
        )
    return {LOCAL_KEY_ID: local_key_file(var_dir / f"{setting.lower().replace('_', '-')}.key")}
