"""The QA console: reviewers list recordings and replay them with the call's timeline.

Every look is audited (``RecordingAccess``): opening a replay page (``replay``), and each time a
side's video starts streaming from its beginning (``replay_media``). The page's media links carry
a signed grant bound to the reviewer, the recording and the audited page view; it expires after
``REPLAY_GRANT_S`` and is worthless to anyone else, even another reviewer.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from datetime import date

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from queueing.selectors import business_list
from recordings.crypto import SegmentIntegrityError
from recordings.evidence import evidence_for_call, evidence_get, evidence_open
from recordings.models import Side
from recordings.replay import CONTENT_TYPE, ReplayError, replay_side
from recordings.review import (
    CHECKLIST,
    ReviewInvalid,
    ReviewRefused,
    evidence_shown,
    note_add,
    note_json,
    process_checks,
    review_override,
    review_panel,
    review_submit,
    teller_review_feedback,
)
from recordings.selectors import (
    recording_get,
    recording_list,
    recording_media_ms,
    recording_timeline,
)
from recordings.services import recording_access_log
from videobank.access import access_qa, access_supervisor, access_teller
from videobank.background import off_the_shared_thread
from videobank.errors import Conflict

_GRANT_SALT = "videobank.replay-grant"
_CALL_PREFIX = re.compile(r"^[0-9a-fA-F-]{1,36}$")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
PAGE_SIZE = 50


class _StaffRequest(HttpRequest):
    """A request to a view behind ``login_required``: its user is signed in."""

    user: User


def _require_qa(request: HttpRequest) -> None:
    if not access_qa(request.user):
        raise PermissionDenied("The QA console is for quality reviewers.")


def _duration_s(media_ms: int | None) -> int | None:
    """What the recording holds (a call cut off mid-way holds less than it lasted)."""
    return None if media_ms is None else round(media_ms / 1000)


@login_required
@require_GET
def qa_index(request: HttpRequest) -> HttpResponse:
    _require_qa(request)
    filters = {
        "teller": request.GET.get("teller", "").strip()[:150],
        "business": request.GET.get("business", "").strip()[:64],
        "call": request.GET.get("call", "").strip(),
        "day": request.GET.get("day", "").strip(),
        "reviewed": request.GET.get("reviewed", "").strip(),
    }
    errors = []
    day = None
    if filters["day"]:
        try:
            day = date.fromisoformat(filters["day"])
        except ValueError:
            errors.append("day")
    if filters["call"] and not _CALL_PREFIX.match(filters["call"]):
        errors.append("call")
    recordings = recording_list(
        teller=filters["teller"],
        business=filters["business"],
        day=day,
        call="" if "call" in errors else filters["call"],
        reviewed=filters["reviewed"] if filters["reviewed"] in ("yes", "no") else "",
        viewer=request.user,
    )
    page = Paginator(recordings, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [
        {
            "recording": recording,
            "call": recording.call,
            "duration_s": _duration_s(recording.media_ms),
        }
        for recording in page.object_list
    ]
    return render(
        request,
        "qa/index.html",
        {
            "rows": rows,
            "page": page,
            "filters": filters,
            "errors": errors,
            "businesses": business_list(active_only=False),
            "query": request.GET.copy().urlencode() if request.GET else "",
        },
    )


def _grant_issue(*, recording_id: uuid.UUID, user_id: int, access_id: int) -> str:
    return signing.dumps(
        {"r": str(recording_id), "u": user_id, "a": access_id}, salt=_GRANT_SALT, compress=True
    )


def _grant_check(request: HttpRequest, recording_id: uuid.UUID) -> int:
    """The audited page view this media request belongs to; refuses anything else."""
    try:
        grant = signing.loads(
            request.GET.get("grant", ""), salt=_GRANT_SALT, max_age=settings.REPLAY_GRANT_S
        )
        if grant["r"] != str(recording_id) or grant["u"] != request.user.pk:
            raise PermissionDenied("This replay link belongs to another reviewer or recording.")
        return int(grant["a"])
    except signing.SignatureExpired:
        raise PermissionDenied("This replay link has expired: reload the page.") from None
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise PermissionDenied("This replay link is not valid.") from None


@login_required
@require_GET
def qa_replay(request: _StaffRequest, recording_id: uuid.UUID) -> HttpResponse:
    _require_qa(request)
    recording = recording_get(recording_id)
    if recording is None:
        raise Http404("No such recording.")
    access = recording_access_log(
        recording=recording,
        actor=request.user.get_username(),
        action="replay",
        user=request.user,
        detail={"ip": request.META.get("REMOTE_ADDR", "")},
    )
    grant = _grant_issue(recording_id=recording.id, user_id=request.user.pk, access_id=access.pk)
    sides = {
        side: f"{reverse('qa-media', args=[recording.id, side])}?grant={grant}"
        for side in Side.values
    }
    info = f"{reverse('qa-sides', args=[recording.id])}?grant={grant}"
    timeline = recording_timeline(recording)
    evidence = [
        {
            **evidence_shown(item),
            "url": f"{reverse('qa-evidence', args=[recording.id, item.id])}?grant={grant}",
        }
        for item in evidence_for_call(recording.call_id)
    ]
    return render(
        request,
        "qa/replay.html",
        {
            "recording": recording,
            "call": recording.call,
            "duration_s": _duration_s(recording_media_ms(recording)),
            "replay": {
                "sides": sides,
                "info": info,
                "timeline": timeline,
                "viewer": request.user.get_username(),
                "access": access.pk,
                "checks": process_checks(timeline),
                "evidence": evidence,
                "checklist": [
                    {"key": item.key, "zh": item.zh, "en": item.en} for item in CHECKLIST
                ],
                "notes_url": reverse("qa-notes", args=[recording.id]),
                "reviews_url": reverse("qa-reviews", args=[recording.id]),
                "override_url": reverse("qa-override", args=[recording.id]),
                **review_panel(
                    recording=recording,
                    viewer=request.user,
                    may_override=access_supervisor(request.user),
                ),
            },
        },
    )


@login_required
@require_GET
@off_the_shared_thread
def qa_sides(request: HttpRequest, recording_id: uuid.UUID) -> JsonResponse:
    """Verify and prepare both sides (the slow part: the page shows progress meanwhile); says
    where each starts in the recording, or why it cannot be played."""
    _require_qa(request)
    _grant_check(request, recording_id)
    recording = recording_get(recording_id)
    if recording is None:
        raise Http404("No such recording.")
    sides = {}
    for side in Side.values:
        try:
            media = replay_side(recording=recording, side=side)
        except ReplayError as exc:
            sides[side] = {"ok": False, "error": str(exc), "error_zh": exc.zh}
            continue
        sides[side] = {
            "ok": True,
            "start_ms": media.start_ms,
            "duration_ms": media.duration_ms,
            "bytes": len(media.data),
        }
    return JsonResponse({"recording_id": str(recording.id), "sides": sides})


@login_required
@require_GET
@off_the_shared_thread
def qa_media(request: _StaffRequest, recording_id: uuid.UUID, side: str) -> HttpResponse:
    _require_qa(request)
    access_id = _grant_check(request, recording_id)
    recording = recording_get(recording_id)
    if recording is None or side not in Side.values:
        raise Http404("No such recording or side.")
    media = replay_side(recording=recording, side=side)  # ReplayError: 409 in words
    data = media.data
    total = len(data)
    start, end = 0, total - 1
    header = request.headers.get("Range", "")
    ranged = bool(header)
    if header:
        match = _RANGE.match(header.strip())
        if not match or (not match.group(1) and not match.group(2)):
            return _unsatisfiable(total)
        first, last = match.group(1), match.group(2)
        if first:
            start = int(first)
            end = min(int(last), total - 1) if last else total - 1
        else:  # the last N bytes
            start = max(0, total - int(last))
        if start >= total or start > end:
            return _unsatisfiable(total)
    if start == 0:
        # A stream opened from its beginning (seeks ask for later ranges): one audit row each.
        recording_access_log(
            recording=recording,
            actor=request.user.get_username(),
            action="replay_media",
            user=request.user,
            detail={"side": side, "page_access": access_id},
        )
    response = HttpResponse(data[start : end + 1], status=206 if ranged else 200)
    response["Content-Type"] = CONTENT_TYPE
    response["Accept-Ranges"] = "bytes"
    response["Content-Length"] = str(end - start + 1)
    if ranged:
        response["Content-Range"] = f"bytes {start}-{end}/{total}"
    response["Cache-Control"] = "no-store, private"
    response["Content-Disposition"] = "inline"
    return response


def _unsatisfiable(total: int) -> HttpResponse:
    response = HttpResponse(status=416)
    response["Content-Range"] = f"bytes */{total}"
    return response


# Refusals (ReviewInvalid 400, ReviewRefused 403, ReplayError 409) are raised and answered in
# words, both languages, by videobank.http_errors.AppErrorMiddleware.


def _json_body(request: HttpRequest) -> dict:
    if len(request.body) > 16 * 1024:
        raise ReviewInvalid("The request is too large.", "请求过大。")
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise ReviewInvalid("The request is not valid JSON.", "请求不是有效的 JSON。") from None
    if not isinstance(body, dict):
        raise ReviewInvalid("The request must be a JSON object.", "请求须为 JSON 对象。")
    return body


@login_required
@require_POST
def qa_notes(request: HttpRequest, recording_id: uuid.UUID) -> JsonResponse:
    """Pin a note to a moment of the recording."""
    _require_qa(request)
    recording = recording_get(recording_id)
    if recording is None:
        raise Http404("No such recording.")
    body = _json_body(request)
    note = note_add(
        recording=recording,
        author=request.user,
        at_ms=body.get("at_ms"),
        text=body.get("text"),
        media_ms=recording_media_ms(recording),
    )
    return JsonResponse({"note": note_json(note)}, status=201)


@login_required
@require_POST
def qa_reviews(request: _StaffRequest, recording_id: uuid.UUID) -> JsonResponse:
    """Submit the reviewer's checklist, verdict and comment (a new row each time)."""
    _require_qa(request)
    recording = recording_get(recording_id)
    if recording is None:
        raise Http404("No such recording.")
    body = _json_body(request)
    review = review_submit(
        recording=recording,
        reviewer=request.user,
        checklist=body.get("checklist"),
        verdict=body.get("verdict"),
        comment=body.get("comment", ""),
    )
    return JsonResponse(
        {"review": {"id": review.pk, "score": review.score, "verdict": review.verdict}},
        status=201,
    )


@login_required
@require_POST
def qa_override(request: _StaffRequest, recording_id: uuid.UUID) -> JsonResponse:
    """A supervisor overrides the call's failed judgement, with a reason (a new row; the failed
    review stays in the history)."""
    if not access_supervisor(request.user):
        raise ReviewRefused(
            "Only a supervisor overrides a failed review.", "只有主管可以改判不合格的评定。"
        )
    recording = recording_get(recording_id)
    if recording is None:
        raise Http404("No such recording.")
    body = _json_body(request)
    review = review_override(
        recording=recording,
        supervisor=request.user,
        review_id=body.get("review"),
        verdict=body.get("verdict"),
        reason=body.get("reason"),
    )
    return JsonResponse(
        {
            "review": {
                "id": review.pk,
                "kind": review.kind,
                "overrides": review.overrides_id,
                "score": review.score,
                "verdict": review.verdict,
            }
        },
        status=201,
    )


@login_required
@require_GET
def qa_evidence(
    request: _StaffRequest, recording_id: uuid.UUID, evidence_id: uuid.UUID
) -> HttpResponse:
    """One identity-check picture (card, portrait, sampled face or liveness frame); audited."""
    _require_qa(request)
    access_id = _grant_check(request, recording_id)
    recording = recording_get(recording_id)
    item = evidence_get(recording.call_id, evidence_id) if recording else None
    if recording is None or item is None:
        raise Http404("No such evidence in this call.")
    try:
        jpeg = evidence_open(item)
    except SegmentIntegrityError:
        jpeg = None
    ok = jpeg is not None and hashlib.sha256(jpeg).hexdigest() == item.sha256
    recording_access_log(
        recording=recording,
        actor=request.user.get_username(),
        action="replay_evidence",
        user=request.user,
        detail={"evidence": str(item.id), "kind": item.kind, "page_access": access_id, "ok": ok},
    )
    if not ok:
        raise Conflict("This picture failed its integrity check.", "该图片未通过完整性校验。")
    response = HttpResponse(jpeg, content_type="image/jpeg")
    response["Cache-Control"] = "no-store, private"
    return response


@login_required
@require_GET
def teller_reviews(request: HttpRequest) -> HttpResponse:
    """A teller's own calls as QA judged them: verdict, score, the items missed, the comment and
    the reviewers' notes — the feedback, without the recordings themselves."""
    if not access_teller(request.user):
        raise PermissionDenied("This page shows tellers the reviews of their own calls.")
    rows = teller_review_feedback(teller=request.user)
    return render(request, "qa/mine.html", {"rows": rows})
