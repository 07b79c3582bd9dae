# The media-worker registry moves from signaling to queueing (the router places calls on
# workers). The table stays as it is: only Django's model state moves.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("queueing", "0009_i10_limits"),
        ("signaling", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="MediaWorker",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("channel_name", models.CharField(max_length=200, unique=True)),
                        ("host", models.CharField(max_length=200)),
                        ("pid", models.PositiveIntegerField()),
                        ("started_at", models.DateTimeField(auto_now_add=True)),
                        ("heartbeat_at", models.DateTimeField(db_index=True)),
                        ("active_sessions", models.PositiveIntegerField(default=0)),
                    ],
                    options={"db_table": "signaling_mediaworker"},
                ),
            ],
            database_operations=[],
        ),
    ]
