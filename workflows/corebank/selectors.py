"""Reads of submissions."""

from __future__ import annotations

import uuid
from typing import Any

from .models import Submission


def submission_get(*, submission_id: uuid.UUID) -> Submission:
    """The submission (Submission.DoesNotExist if there is none)."""
    return Submission.objects.get(pk=submission_id)


def submissions_of_case(*, business_case_id: uuid.UUID) -> list[Submission]:
    """A business case's submissions, oldest first."""
    return list(Submission.objects.filter(business_case_id=business_case_id).order_by("created_at"))


def submission_panel(submission: Submission) -> dict[str, Any]:
    """What a screen shows of a submission: status, the core's result or its words."""
    return {
        "id": str(submission.id),
        "operation": submission.operation,
        "status": submission.status,
        "attempts": submission.attempts,
        "result": submission.result,
        "error": (
            {
                "code": submission.error_code,
                "en": submission.error_en,
                "zh": submission.error_zh,
            }
            if submission.error_code
            else None
        ),
        "next_attempt_at": (
            submission.next_attempt_at.isoformat() if submission.next_attempt_at else None
        ),
    }
