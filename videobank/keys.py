"""Master keys: they wrap each recording's data key and derive the key of personal data at rest.

``get_key_backend()`` returns the backend named by ``settings.RECORDING_KEY_BACKEND``. A backend for
an HSM or a cloud KMS implements the same two methods. Platform, not recordings: sealed fields
(``videobank.fields``) and every key setting (``videobank.keyring``) rest on it too.
"""

import base64
import binascii
import logging
import os
import threading
from abc import ABC, abstractmethod
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap,
    aes_key_unwrap,
    aes_key_wrap,
)
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

LOCAL_KEY_ID = "local"
LOCAL_KEY_FILENAME = "recording-master.key"
MASTER_KEY_BYTES = 32


class KeyUnwrapError(Exception):
    """A wrapped data key cannot be unwrapped: unknown master key id, or the wrap is corrupt."""


class KeyBackend(ABC):
    @abstractmethod
    def wrap(self, data_key: bytes) -> tuple[str, bytes]:
        """Wrap ``data_key`` under the current master key; return ``(key_id, wrapped)``."""

    @abstractmethod
    def unwrap(self, key_id: str, wrapped: bytes) -> bytes:
        """Recover a data key wrapped under master key ``key_id``."""

    def derive(self, purpose: str, key_id: str | None = None) -> tuple[str, bytes]:
        """A 32-byte key for ``purpose`` (e.g. personal data at rest) under master key
        ``key_id`` (the current one if None); return ``(key_id, key)``. Each purpose gets its
        own key, and none of them is a master key. A backend that cannot derive (an HSM that
        only wraps) leaves this out and personal data at rest cannot be sealed with it."""
        raise NotImplementedError(f"{type(self).__name__} cannot derive keys for {purpose!r}")


def parse_master_keys(
    spec: str, *, setting: str = "RECORDING_MASTER_KEYS", exact: bool = True
) -> dict[str, bytes]:
    """Parse ``"id:base64key,id2:base64key2"``; order is kept, the first entry is current.
    ``setting`` names where the text came from, for the error messages (every key setting of
    videobank has this form: see ``videobank.keyring``). Keys are 32 bytes; with ``exact``
    False (MAC keys such as APP_CLAIM_KEYS) at least 32."""
    keys: dict[str, bytes] = {}
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            continue
        key_id, sep, encoded = item.partition(":")
        key_id = key_id.strip()
        if not sep or not key_id:
            raise ImproperlyConfigured(
                f"{setting} entries must look like 'id:base64key' (got an entry without an id)"
            )
        try:
            key = base64.b64decode(encoded.strip(), validate=True)
        except binascii.Error:
            raise ImproperlyConfigured(f"{setting}: key {key_id!r} is not valid base64") from None
        if len(key) < MASTER_KEY_BYTES or (exact and len(key) != MASTER_KEY_BYTES):
            raise ImproperlyConfigured(
                f"{setting}: key {key_id!r} must be {MASTER_KEY_BYTES} bytes"
                f"{'' if exact else ' or more'}, got {len(key)}"
            )
        if key_id in keys:
            raise ImproperlyConfigured(f"{setting}: key id {key_id!r} appears twice")
        keys[key_id] = key
    return keys


def _local_master_key(var_dir: Path) -> bytes:
    """Create once, then reuse, the embedded profile's master key file (mode 0600)."""
    return local_key_file(Path(var_dir) / LOCAL_KEY_FILENAME)


def local_key_file(path: Path) -> bytes:
    """Create once, then reuse, a key file of the embedded profile (mode 0600): a random key
    per installation, never a published one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two processes starting at once cannot both create (and disagree on) the key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "wb") as fh:
            fh.write(base64.b64encode(os.urandom(MASTER_KEY_BYTES)) + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        logger.warning("created a local key at %s (embedded profile)", path)
    key = base64.b64decode(path.read_bytes().strip())
    if len(key) != MASTER_KEY_BYTES:
        raise ImproperlyConfigured(f"{path} does not hold a {MASTER_KEY_BYTES}-byte key")
    return key


class SettingsMasterKeys(KeyBackend):
    """Master keys from ``settings.RECORDING_MASTER_KEYS``; the first wraps, all unwrap.

    With nothing configured, the embedded profile keeps a key in ``VAR_DIR``; production refuses.
    """

    def __init__(
        self,
        master_keys: str | None = None,
        *,
        profile: str | None = None,
        var_dir: Path | None = None,
    ) -> None:
        spec = settings.RECORDING_MASTER_KEYS if master_keys is None else master_keys
        profile = getattr(settings, "PROFILE", "") if profile is None else profile
        self._keys = parse_master_keys(spec or "")
        if not self._keys:
            if profile != "embedded":
                raise ImproperlyConfigured(
                    "RECORDING_MASTER_KEYS is empty: recordings cannot be encrypted. Set it to "
                    "'id:base64key' with a 32-byte key, e.g. "
                    'RECORDING_MASTER_KEYS="k1:$(head -c32 /dev/urandom | base64)".'
                )
            self._keys = {LOCAL_KEY_ID: _local_master_key(var_dir or settings.VAR_DIR)}
        self.current_key_id = next(iter(self._keys))
        self._derived: dict[tuple[str, str], bytes] = {}

    def wrap(self, data_key: bytes) -> tuple[str, bytes]:
        return self.current_key_id, aes_key_wrap(self._keys[self.current_key_id], data_key)

    def unwrap(self, key_id: str, wrapped: bytes) -> bytes:
        try:
            master = self._keys[key_id]
        except KeyError:
            raise KeyUnwrapError(
                f"master key {key_id!r} is not configured (RECORDING_MASTER_KEYS): keep retired "
                "keys listed after the current one"
            ) from None
        try:
            return aes_key_unwrap(master, bytes(wrapped))
        except InvalidUnwrap:
            raise KeyUnwrapError(f"wrapped data key does not unwrap under {key_id!r}") from None

    def derive(self, purpose: str, key_id: str | None = None) -> tuple[str, bytes]:
        key_id = self.current_key_id if key_id is None else key_id
        derived = self._derived.get((key_id, purpose))
        if derived is None:
            try:
                master = self._keys[key_id]
            except KeyError:
                raise KeyUnwrapError(
                    f"master key {key_id!r} is not configured (RECORDING_MASTER_KEYS): keep "
                    "retired keys listed after the current one"
                ) from None
            derived = hkdf(master, f"videobank {purpose} v1")
            self._derived[(key_id, purpose)] = derived
        return key_id, derived


def hkdf(key: bytes, info: str, length: int = 32) -> bytes:
    """A subkey of ``key`` for one use, named by ``info`` (HKDF-SHA256)."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info.encode()).derive(key)


_cache: dict[tuple[str, str, str, str], KeyBackend] = {}
_cache_lock = threading.Lock()


def get_key_backend() -> KeyBackend:
    # Keyed on the settings it reads, so overriding them (tests) never serves a stale backend.
    cache_key = (
        settings.RECORDING_KEY_BACKEND,
        settings.RECORDING_MASTER_KEYS,
        getattr(settings, "PROFILE", ""),
        str(settings.VAR_DIR),
    )
    with _cache_lock:
        backend = _cache.get(cache_key)
        if backend is None:
            backend = import_string(settings.RECORDING_KEY_BACKEND)()
            _cache[cache_key] = backend
        return backend
