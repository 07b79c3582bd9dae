"""Errors of the identity checks. Each carries a stable ``code`` (for the protocol and tests),
words for the teller and the customer in both languages (``detail``, ``detail_zh``) and the HTTP
status it is answered with: they are ``videobank.errors.AppError``s, answered in one place."""

from __future__ import annotations

from videobank.errors import AppError

# A picture the server will not decode: too many bytes, too many pixels.
TOO_LARGE_CODES = frozenset({"too_large", "too_many_pixels"})


class KycError(AppError):
    code = "kyc_error"
    http_status = 400

    def __init__(
        self,
        detail: str,
        *,
        detail_zh: str,
        code: str | None = None,
        http_status: int | None = None,
    ):
        super().__init__(detail, detail_zh, code=code, http_status=http_status)


class BadImage(KycError):
    """The picture cannot be used: not an image, too large, unreadable (413 when too large)."""

    code = "bad_image"

    def __init__(self, detail: str, *, detail_zh: str, code: str | None = None):
        super().__init__(
            detail,
            detail_zh=detail_zh,
            code=code,
            http_status=413 if code in TOO_LARGE_CODES else None,
        )


class FaceProblem(KycError):
    """No face, several faces, a face too small."""

    code = "face_problem"


class ServiceUnavailable(KycError):
    """An outside service (national ID check) did not answer in time."""

    code = "service_unavailable"
    http_status = 503


class Refused(KycError):
    """Understood, but not taken in the call's current state: the call is over, nothing waits for
    this evidence, or it came too often. ``reason`` names which and is the error's ``code`` over
    HTTP and sockets alike; ``status`` is the HTTP answer (409 unless said)."""

    code = "conflict"

    def __init__(self, detail: str, *, detail_zh: str, reason: str, status: int = 409):
        super().__init__(detail, detail_zh=detail_zh, code=reason, http_status=status)
        self.reason = reason

    @property
    def status(self) -> int:
        return self.http_status
