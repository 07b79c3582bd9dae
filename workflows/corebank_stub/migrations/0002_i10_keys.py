"""The core-bank stub's sealed values (its PIN private keys, its SMS outbox) move from a key
derived from SECRET_KEY to its own COREBANK_STUB_KEYS, each naming its key (run this before
rotating SECRET_KEY). A value that does not open under the old key is left as it is."""

import logging

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import migrations

log = logging.getLogger(__name__)


def _legacy_unseal(sealed: bytes, context: bytes) -> bytes:
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"videobank corebank_stub sealed v1"
    ).derive(settings.SECRET_KEY.encode())
    return AESGCM(key).decrypt(sealed[:12], sealed[12:], context)


def forwards(apps, schema_editor):
    from videobank.keyring import sealed_key_id
    from workflows.corebank_stub.crypto import seal

    def resealed(sealed, context: bytes):
        sealed = bytes(sealed or b"")
        if not sealed or sealed_key_id(sealed) is not None:
            return None
        try:
            return seal(_legacy_unseal(sealed, context), context=context)
        except InvalidTag:
            log.warning("core-bank stub: a sealed value does not open under the old key; kept")
            return None

    for key in apps.get_model("corebank_stub", "StubKey").objects.all():
        new = resealed(key.private_sealed, key.kid.encode())
        if new is not None:
            key.private_sealed = new
            key.save(update_fields=["private_sealed"])
    for sms in apps.get_model("corebank_stub", "SmsMessage").objects.iterator(chunk_size=500):
        new = resealed(sms.text_sealed, f"sms:{sms.pk}".encode())
        if new is not None:
            sms.text_sealed = new
            sms.save(update_fields=["text_sealed"])


class Migration(migrations.Migration):
    dependencies = [
        ("corebank_stub", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
