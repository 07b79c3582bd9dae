"""What a stub answers: JSON, errors in one shape, and the request body it accepts."""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse


def json_answer(body: dict[str, Any], status: int = 200) -> JsonResponse:
    return JsonResponse(body, status=status, json_dumps_params={"ensure_ascii": False})


def error_answer(
    status: int, code: str, detail: str, field: str | None = None, **extra: Any
) -> JsonResponse:
    """``{error: code, detail, field?, ...extra}`` (``en`` / ``zh`` where a person reads it)."""
    body = {"error": code, "detail": detail, **extra}
    if field:
        body["field"] = field
    return json_answer(body, status)


class StubRefusal(Exception):
    """A request the stub refuses; ``status`` is the HTTP status, ``code`` a stable word,
    ``field`` the request field at fault; ``en`` / ``zh`` words when a person reads them."""

    status = 400
    code = "bad_request"

    def __init__(self, detail: str, *, field: str | None = None, code: str | None = None):
        super().__init__(detail)
        self.detail = detail
        self.field = field
        if code:
            self.code = code
        self.words: dict[str, str] = {}

    def answer(self) -> JsonResponse:
        return error_answer(self.status, self.code, self.detail, self.field, **self.words)


class BadRequest(StubRefusal):
    """400: a request that is not what the service accepts (with the field at fault)."""


class NotFound(StubRefusal):
    """404: no such thing (a customer, an operation, a channel)."""

    status = 404
    code = "not_found"


class Conflict(StubRefusal):
    """409: a request id (an idempotency key) already used for another question."""

    status = 409
    code = "conflict"


class BodyTooLarge(StubRefusal):
    """413: a body larger than the service accepts."""

    status = 413
    code = "too_large"


class Unprocessable(StubRefusal):
    """422: a well-formed request the service cannot act on (in words where a person reads)."""

    status = 422
    code = "unprocessable"


def json_body(request: HttpRequest, *, max_bytes: int | None = None) -> Any:
    """The decoded JSON body; StubRefusal (400) when it is not JSON, BodyTooLarge (413)."""
    try:
        raw = request.body
    except RequestDataTooBig as exc:
        raise BodyTooLarge("the body is larger than the service accepts") from exc
    if max_bytes is not None and len(raw) > max_bytes:
        raise BodyTooLarge("the body is larger than the service accepts")
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StubRefusal("the body is not JSON") from exc


def json_object(request: HttpRequest, *, max_bytes: int | None = None) -> dict[str, Any]:
    data = json_body(request, max_bytes=max_bytes)
    if not isinstance(data, dict):
        raise StubRefusal("the body must be a JSON object")
    return data
