from django.db import models


class MediaWorker(models.Model):
    """A live media worker process and the channel-layer name it listens on."""

    channel_name = models.CharField(max_length=200, unique=True)
    host = models.CharField(max_length=200)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField(auto_now_add=True)
    heartbeat_at = models.DateTimeField(db_index=True)
    active_sessions = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.host}:{self.pid} ({self.active_sessions} sessions)"
