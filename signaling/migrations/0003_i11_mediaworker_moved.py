# The media-worker registry moved to queueing (queueing 0010); its table stays and is queueing's
# now: only Django's model state leaves this app.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("signaling", "0002_i10_kiosks"),
        ("queueing", "0010_i11_mediaworker"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="MediaWorker")],
            database_operations=[],
        ),
    ]
