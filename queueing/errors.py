class QueueingError(Exception):
    """A move the queue does not allow; ``code`` maps onto the protocol's error codes."""

    code = "conflict"

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


class NotFound(QueueingError):
    code = "not_found"


class Conflict(QueueingError):
    code = "conflict"


class Forbidden(QueueingError):
    code = "forbidden"


class MediaUnavailable(QueueingError):
    code = "media_unavailable"
