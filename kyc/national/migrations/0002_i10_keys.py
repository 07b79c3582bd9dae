"""The national checks stop keeping the clear name, and stop using SECRET_KEY.

- ``name`` becomes ``name_masked`` (张*) plus ``name_hash`` (HMAC under KYC_NATIONAL_KEYS): the
  cache still matches a person, nobody reads the name back; a pending check's name moves into
  its sealed query.
- Pending queries sealed under the old key derived from SECRET_KEY are opened once here and
  sealed again under KYC_NATIONAL_KEYS (run this before rotating SECRET_KEY); the ID number's
  keyed hash is made again under the new key. A query that does not open is dropped: its check
  then ends ``unavailable`` in words and the teller can start a new one.
"""

import json
import logging
import uuid

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import migrations, models

log = logging.getLogger(__name__)


def _legacy_unseal(check_id: uuid.UUID, sealed: bytes) -> dict:
    key = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=None,
        info=b"videobank kyc.national sealed query v1",
    ).derive(settings.SECRET_KEY.encode())
    return json.loads(AESGCM(key).decrypt(sealed[:12], sealed[12:], check_id.bytes))


def forwards(apps, schema_editor):
    from kyc.national.masking import name_mask
    from kyc.national.sealing import person_hashes, query_seal
    from videobank.keyring import sealed_key_id

    NationalCheck = apps.get_model("kyc_national", "NationalCheck")
    for check in NationalCheck.objects.iterator(chunk_size=500):
        name = check.name_masked  # still the clear name, renamed
        check.name_hash = person_hashes("name", name)[0]
        check.name_masked = name_mask(name)
        sealed = bytes(check.sealed_query or b"")
        if sealed and sealed_key_id(sealed) is None:
            try:
                query = _legacy_unseal(check.id, sealed)
            except (InvalidTag, ValueError):
                log.warning("national check %s: its sealed query does not open; dropped", check.id)
                check.sealed_query = b""
            else:
                query["name"] = name
                check.sealed_query = query_seal(check_id=check.id, query=query)
                check.id_number_hash = person_hashes("id_number", query["id_number"])[0]
        check.save(update_fields=["name_hash", "name_masked", "sealed_query", "id_number_hash"])


class Migration(migrations.Migration):
    dependencies = [
        ("kyc_national", "0001_initial"),
    ]

    operations = [
        migrations.RenameField(
            model_name="nationalcheck",
            old_name="name",
            new_name="name_masked",
        ),
        migrations.AddField(
            model_name="nationalcheck",
            name="name_hash",
            field=models.CharField(default="", max_length=64),
            preserve_default=False,
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
