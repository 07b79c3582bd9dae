"""Personal data at rest: what a submission asks of the core (account numbers, names) and what it
answered are encrypted (videobank.fields.SealedJSONField); every row is sealed here."""

from django.db import migrations

import videobank.fields

SEALED = ["params", "result"]


def seal_rows(apps, schema_editor):
    videobank.fields.rows_sealed(apps.get_model("workflows_corebank", "Submission"), SEALED)


def unseal_rows(apps, schema_editor):
    videobank.fields.rows_unsealed(apps.get_model("workflows_corebank", "Submission"), SEALED)


class Migration(migrations.Migration):
    dependencies = [
        ("workflows_corebank", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="submission",
            name="params",
            field=videobank.fields.SealedJSONField(default=dict),
        ),
        migrations.AlterField(
            model_name="submission",
            name="result",
            field=videobank.fields.SealedJSONField(blank=True, null=True),
        ),
        migrations.RunPython(seal_rows, unseal_rows),
    ]
