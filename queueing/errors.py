class QueueingError(Exception):
    """A move the queue does not allow; ``code`` maps onto the protocol's error codes."""

    code = "conflict"

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail

    @property
    def fields(self) -> dict:
        """Extra fields of the error frame the client gets (none by default)."""
        return {}


class NotFound(QueueingError):
    code = "not_found"


class Conflict(QueueingError):
    code = "conflict"


class Forbidden(QueueingError):
    code = "forbidden"


class MediaUnavailable(QueueingError):
    code = "media_unavailable"


class RateLimited(QueueingError):
    """Too many call requests (or open calls) from one network or device. ``limit`` names which
    (ip_rate, device_rate, ip_open, device_open); ``retry_after_s`` says when a rate limit lets
    the next one through."""

    code = "rate_limited"

    def __init__(self, detail: str, *, limit: str, retry_after_s: int | None = None):
        super().__init__(detail)
        self.limit = limit
        self.retry_after_s = retry_after_s

    @property
    def fields(self) -> dict:
        fields: dict = {"limit": self.limit}
        if self.retry_after_s is not None:
            fields["retry_after_s"] = self.retry_after_s
        return fields


class QueueFull(QueueingError):
    """The queue holds as many waiting calls as it may: the customer is offered a callback."""

    code = "queue_full"

    def __init__(self, *, en: str, zh: str):
        super().__init__(f"{en} / {zh}")
        self.text = {"en": en, "zh": zh}
