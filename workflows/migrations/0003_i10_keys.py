"""Personal data at rest and receipt keys of their own.

- A business case's customer snapshot, form, parameters, summary and result, and a receipt's
  content, are encrypted at rest (videobank.fields.SealedJSONField); every row is sealed here.
- Receipts get ``key_id`` and ``seal`` (HMAC under WORKFLOW_RECEIPT_KEYS). A receipt issued
  before, whose code was made with the old key (WORKFLOW_RECEIPT_KEY, else SECRET_KEY: run this
  before rotating SECRET_KEY), is checked once here against that key and, if genuine, sealed
  under the new one: it keeps verifying with its printed code. One that does not check out
  gets no seal and never verifies.
"""

import json
import logging
import os

from django.conf import settings
from django.db import migrations, models
from django.utils.crypto import constant_time_compare, salted_hmac

import videobank.fields

log = logging.getLogger(__name__)

CASE_SEALED = ["customer", "form_values", "params", "summary", "result"]
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _canonical(content: dict) -> bytes:
    return json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def _legacy_code(content: dict) -> str:
    secret = (
        os.environ.get("WORKFLOW_RECEIPT_KEY")
        or getattr(settings, "WORKFLOW_RECEIPT_KEY", "")
        or settings.SECRET_KEY
    )
    digest = salted_hmac(
        "videobank.workflows.receipt", _canonical(content), secret=secret, algorithm="sha256"
    ).digest()
    number = int.from_bytes(digest[:8], "big") >> 4
    chars = []
    for _ in range(12):
        chars.append(ALPHABET[number & 31])
        number >>= 5
    return "".join(reversed(chars))


def forwards(apps, schema_editor):
    from videobank.keyring import RECEIPT_KEYS, keyring

    videobank.fields.rows_sealed(apps.get_model("workflows", "BusinessCase"), CASE_SEALED)
    ring = keyring(RECEIPT_KEYS)
    Receipt = apps.get_model("workflows", "Receipt")
    for receipt in Receipt.objects.iterator(chunk_size=500):
        seal = ""
        if constant_time_compare(_legacy_code(receipt.content), receipt.code):
            data = receipt.code.encode() + b"\n" + _canonical(receipt.content)
            seal = ring.mac(data, purpose="seal", key_id=ring.current_id).hex()
        else:
            log.warning("receipt %s does not match its code: left unsealed", receipt.code)
        Receipt.objects.filter(pk=receipt.pk).update(
            content=receipt.content, key_id=ring.current_id, seal=seal
        )


def backwards(apps, schema_editor):
    videobank.fields.rows_unsealed(apps.get_model("workflows", "BusinessCase"), CASE_SEALED)
    videobank.fields.rows_unsealed(apps.get_model("workflows", "Receipt"), ["content"])


class Migration(migrations.Migration):
    dependencies = [
        ("workflows", "0002_case_revision"),
    ]

    operations = [
        migrations.AddField(
            model_name="receipt",
            name="key_id",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AddField(
            model_name="receipt",
            name="seal",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AlterField(
            model_name="businesscase",
            name="customer",
            field=videobank.fields.SealedJSONField(default=dict),
        ),
        migrations.AlterField(
            model_name="businesscase",
            name="form_values",
            field=videobank.fields.SealedJSONField(default=dict),
        ),
        migrations.AlterField(
            model_name="businesscase",
            name="params",
            field=videobank.fields.SealedJSONField(default=dict),
        ),
        migrations.AlterField(
            model_name="businesscase",
            name="result",
            field=videobank.fields.SealedJSONField(default=dict),
        ),
        migrations.AlterField(
            model_name="businesscase",
            name="summary",
            field=videobank.fields.SealedJSONField(default=list),
        ),
        migrations.AlterField(
            model_name="receipt",
            name="content",
            field=videobank.fields.SealedJSONField(),
        ),
        migrations.RunPython(forwards, backwards),
    ]
