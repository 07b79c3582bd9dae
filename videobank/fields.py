"""Personal data at rest: a JSON field the database only ever holds encrypted.

``SealedJSONField`` reads and writes like ``models.JSONField``; in the database each value is
``{"$sealed": 1, "kid": <master key id>, "ct": <base64 nonce + AES-256-GCM ciphertext>}``. The
key is the data-protection key the recording key backend derives from its current master key
(``RECORDING_MASTER_KEYS``; ``derive("personal-data")``), so personal data and recordings share
one key policy: rotating the master keys (a new one first, the old ones still listed) leaves every
stored value readable, and each value names the key it was sealed with. The field's own name
(``app.Model.field``) is the associated data: a value cannot be moved to another column.

What it costs: the database cannot look inside the value (no key lookups, no filters on it, only
``isnull``), and a value written before the field was sealed is read as it is until its row is
next saved (the migrations that introduce the field re-save every row).
"""

from __future__ import annotations

import base64
import json
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.db import models
from django.db.models import expressions

from videobank.keys import get_key_backend

PURPOSE = "personal-data"
MARK = "$sealed"


class SealedValueError(ValueError):
    """A stored value does not open (altered, or moved from another column)."""


def _backend():
    return get_key_backend()


def is_sealed(value) -> bool:
    return isinstance(value, dict) and value.get(MARK) == 1 and "ct" in value and "kid" in value


def seal_value(value, *, label: str) -> dict:
    key_id, key = _backend().derive(PURPOSE)
    nonce = os.urandom(12)
    plain = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    ciphertext = AESGCM(key).encrypt(nonce, plain, _aad(label, key_id))
    return {MARK: 1, "kid": key_id, "ct": base64.b64encode(nonce + ciphertext).decode()}


def open_value(stored: dict, *, label: str):
    key_id, key = _backend().derive(PURPOSE, stored["kid"])
    raw = base64.b64decode(stored["ct"])
    try:
        plain = AESGCM(key).decrypt(raw[:12], raw[12:], _aad(label, key_id))
    except InvalidTag:
        raise SealedValueError(f"{label}: a stored value does not open under {key_id!r}") from None
    return json.loads(plain)


def _aad(label: str, key_id: str) -> bytes:
    return f"videobank personal data {label} {key_id}".encode()


class SealedJSONField(models.JSONField):
    """A JSONField encrypted at rest (see the module's doc)."""

    description = "A JSON object, encrypted at rest"

    @property
    def label_for_seal(self) -> str:
        return f"{self.model._meta.label}.{self.name}"

    def from_db_value(self, value, expression, connection):
        value = super().from_db_value(value, expression, connection)
        if is_sealed(value):
            return open_value(value, label=self.label_for_seal)
        return value  # written before the field was sealed: re-sealed on the next save

    def get_db_prep_value(self, value, connection, prepared=False):
        if isinstance(value, expressions.Expression):
            return super().get_db_prep_value(value, connection, prepared)
        if not prepared:
            value = self.get_prep_value(value)
        if value is None:
            return None
        return connection.ops.adapt_json_value(
            seal_value(value, label=self.label_for_seal), self.encoder
        )

    def get_transform(self, name):
        return None  # nothing inside a sealed value can be looked at by the database

    def get_lookup(self, lookup_name):
        return super().get_lookup(lookup_name) if lookup_name == "isnull" else None


# --- for the migrations that seal a column --------------------------------------------------------


def rows_sealed(model, names: list[str]) -> int:
    """Write ``names`` of every row of ``model`` (a migration's historical model whose fields
    are already ``SealedJSONField``) again: values still in clear are sealed. Returns the count."""
    count = 0
    for row in model.objects.only("pk", *names).iterator(chunk_size=500):
        model.objects.filter(pk=row.pk).update(**{name: getattr(row, name) for name in names})
        count += 1
    return count


def rows_unsealed(model, names: list[str]) -> int:
    """The reverse: every value of ``names`` written back in clear (before the field goes back
    to a plain JSONField)."""
    count = 0
    for row in model.objects.only("pk", *names).iterator(chunk_size=500):
        values = {}
        for name in names:
            value = getattr(row, name)
            values[name] = (
                None if value is None else expressions.Value(value, output_field=models.JSONField())
            )
        model.objects.filter(pk=row.pk).update(**values)
        count += 1
    return count
