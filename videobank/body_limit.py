"""A cap on HTTP request bodies, enforced before Django reads a byte of them.

Django's ASGI handler spools the whole body (to memory, then disk) before any view or middleware
runs, so a view cannot refuse a 2 GB upload in time. This ASGI middleware sits in front of it:

- a declared ``Content-Length`` over the cap is answered ``413`` at once; the application never
  sees the request (no view runs, nothing is read);
- a body without a length (chunked) or longer than declared is counted as it streams; the moment
  it passes the cap the client gets ``413`` and the application is told the client left
  (``http.disconnect``), so Django stops reading and runs no view.

The answer is in words (en + zh) like every refusal of the product (``videobank.errors``).
Under daphne, Twisted has already buffered the body to a temporary file by the time an ASGI
application runs, so the edge proxy's own limit (e.g. nginx ``client_max_body_size``) is what
keeps those bytes off the disk; this guard is what keeps them out of the process and away from
the views.
"""

from __future__ import annotations

import json

from django.conf import settings

from videobank.errors import TooLarge, http_body


def _refusal(limit: int) -> bytes:
    mb = f"{limit / (1024 * 1024):.0f}"
    refused = TooLarge(
        f"The request is too large: the limit is {mb} MB.", f"请求过大：上限为 {mb} MB。"
    )
    return json.dumps(http_body(refused), ensure_ascii=False).encode()


def _declared_length(scope) -> int | None:
    for name, value in scope.get("headers") or ():
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodySizeLimit:
    """ASGI middleware: HTTP requests whose body exceeds ``max_bytes`` get ``413`` in words."""

    def __init__(self, app, *, max_bytes: int | None = None) -> None:
        self.app = app
        self._max_bytes = max_bytes

    @property
    def max_bytes(self) -> int:
        if self._max_bytes is not None:
            return self._max_bytes
        return settings.HTTP_BODY_MAX_BYTES

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.max_bytes
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await self._send_413(send, limit)
            return None

        received = 0
        refused = False
        response_started = False

        async def limited_receive():
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    if not response_started:
                        await self._send_413(send, limit)
                    # Django's handler gives up on a client that left: it reads no more and
                    # runs no view.
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message):
            nonlocal response_started
            if refused:
                return  # the 413 is the answer; nothing the app says after it is sent
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        return await self.app(scope, limited_receive, guarded_send)

    @staticmethod
    async def _send_413(send, limit: int) -> None:
        body = _refusal(limit)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
