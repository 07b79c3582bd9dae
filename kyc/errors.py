"""Errors of the identity checks. Each carries a stable ``code`` (for the protocol and tests) and
words for the teller and the customer in both languages."""

from __future__ import annotations


class KycError(Exception):
    code = "kyc_error"

    def __init__(self, detail: str, *, detail_zh: str = "", code: str | None = None):
        super().__init__(detail)
        self.detail = detail
        self.detail_zh = detail_zh or detail
        if code:
            self.code = code


class BadImage(KycError):
    """The picture cannot be used: not an image, too large, unreadable."""

    code = "bad_image"


class FaceProblem(KycError):
    """No face, several faces, a face too small."""

    code = "face_problem"


class ServiceUnavailable(KycError):
    """An outside service (national ID check) did not answer in time."""

    code = "service_unavailable"


class Refused(KycError):
    """Understood, but not taken in the call's current state: the call is over, nothing waits for
    this evidence, or it came too often. ``reason`` names which (for the page and tests),
    ``status`` is the HTTP answer. Over a socket it is a ``conflict`` in words."""

    code = "conflict"

    def __init__(self, detail: str, *, detail_zh: str, reason: str, status: int = 409):
        super().__init__(detail, detail_zh=detail_zh)
        self.reason = reason
        self.status = status
