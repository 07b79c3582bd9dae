"""Personal data at rest: the identity check's fields, corrections and place are encrypted
(videobank.fields.SealedJSONField); every existing row is sealed here."""

from django.db import migrations

import videobank.fields

SEALED = ["fields_read", "fields", "corrections", "geolocation"]


def seal_rows(apps, schema_editor):
    videobank.fields.rows_sealed(apps.get_model("kyc", "IdentityCheck"), SEALED)


def unseal_rows(apps, schema_editor):
    videobank.fields.rows_unsealed(apps.get_model("kyc", "IdentityCheck"), SEALED)


class Migration(migrations.Migration):
    dependencies = [
        ("kyc", "0002_i10_evidence"),
    ]

    operations = [
        migrations.AlterField(
            model_name="identitycheck",
            name="corrections",
            field=videobank.fields.SealedJSONField(default=list),
        ),
        migrations.AlterField(
            model_name="identitycheck",
            name="fields",
            field=videobank.fields.SealedJSONField(default=dict),
        ),
        migrations.AlterField(
            model_name="identitycheck",
            name="fields_read",
            field=videobank.fields.SealedJSONField(default=dict),
        ),
        migrations.AlterField(
            model_name="identitycheck",
            name="geolocation",
            field=videobank.fields.SealedJSONField(blank=True, null=True),
        ),
        migrations.RunPython(seal_rows, unseal_rows),
    ]
