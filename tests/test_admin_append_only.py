"""Evidence is append-only for everyone, the admin included: through the admin's real URLs, a
superuser can neither delete nor change (nor add) timeline events, calls, business cases,
receipts, recordings, recording segments, identity checks and their pictures, reviews, notes or
the access audit — and the changelists offer no "delete selected" action. Retention (removing old
evidence on a schedule) is a job of its own, not an admin's click."""

from __future__ import annotations

import uuid

import pytest
from django.contrib import admin
from django.test import Client
from django.utils import timezone

from kyc.models import IdentityCheck, IdentityEvidence
from queueing.models import Business, Call, CallEvent, CallEventKind
from recordings.models import (
    QaNote,
    QaReview,
    Recording,
    RecordingAccess,
    RecordingSegment,
    Verdict,
)
from recordings.services import recording_start
from tests.factories import staff_user
from workflows.models import BusinessCase, Receipt

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser_client():
    user = staff_user("root-admin", "admin")
    user.is_staff = True
    user.is_superuser = True
    user.save()
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def evidence(settings, tmp_path):
    """One row of every kind of evidence, all of one call."""
    import base64
    import os

    settings.RECORDING_MASTER_KEYS = "k1:" + base64.b64encode(os.urandom(32)).decode()
    teller = staff_user("teller-evidence", "teller")
    business = Business.objects.create(key="adm-test", name_zh="测试", name_en="Test")
    call = Call.objects.create(business=business, teller=teller)
    event = CallEvent.objects.create(call=call, kind=CallEventKind.ANSWERED, actor="system")
    recording = recording_start(call_id=call.id)
    segment = RecordingSegment.objects.create(
        recording=recording,
        side="customer",
        index=0,
        path=f"{recording.id}/customer-00000.mkv.enc",
        start_ms=0,
        duration_ms=1000,
        size=10,
        sha256="0" * 64,
    )
    access = RecordingAccess.objects.create(recording=recording, actor="qa1", action="replay")
    review = QaReview.objects.create(
        recording=recording, reviewer=teller, checklist={}, verdict=Verdict.FAIL, comment="x"
    )
    note = QaNote.objects.create(recording=recording, author=teller, at_ms=0, text="here")
    case = BusinessCase.objects.create(call=call, business="card_loss", teller=teller)
    receipt = Receipt.objects.create(
        case=case, code=uuid.uuid4().hex[:16], content={"x": 1}, issued_at=timezone.now()
    )
    check = IdentityCheck.objects.create(call=call)
    picture = IdentityEvidence.objects.create(
        identity_check=check,
        kind="card_front",
        source="upload",
        captured_at=timezone.now(),
        sha256="1" * 64,
        sealed=b"sealed",
    )
    return {
        Call: call,
        CallEvent: event,
        Recording: recording,
        RecordingSegment: segment,
        RecordingAccess: access,
        QaReview: review,
        QaNote: note,
        BusinessCase: case,
        Receipt: receipt,
        IdentityCheck: check,
        IdentityEvidence: picture,
    }


EVIDENCE_MODELS = [
    Call,
    CallEvent,
    BusinessCase,
    Receipt,
    Recording,
    RecordingSegment,
    IdentityCheck,
    IdentityEvidence,
    QaReview,
    QaNote,
    RecordingAccess,
]
# Shown only inside their parent's page, or not in the admin at all (identity checks hold
# personal data the admin has no business browsing): no URL of their own to delete through. If
# one is registered one day, the same checks apply to it.
NOT_REGISTERED = {CallEvent, RecordingSegment, IdentityCheck, IdentityEvidence}


def _base(model) -> str:
    return f"/admin/{model._meta.app_label}/{model._meta.model_name}"


def _snapshot(obj) -> dict:
    fresh = type(obj).objects.get(pk=obj.pk)
    return {f.attname: getattr(fresh, f.attname) for f in fresh._meta.concrete_fields}


@pytest.mark.parametrize("model", EVIDENCE_MODELS, ids=lambda m: m.__name__)
def test_no_delete_and_no_change_through_the_admin(superuser_client, evidence, model):
    obj = evidence[model]
    base = _base(model)
    before = _snapshot(obj)
    if model not in admin.site._registry:
        assert model in NOT_REGISTERED  # every other evidence model is in the admin, read-only
        for url in (f"{base}/", f"{base}/{obj.pk}/delete/", f"{base}/{obj.pk}/change/"):
            assert superuser_client.get(url).status_code == 404, url
        assert superuser_client.post(f"{base}/{obj.pk}/delete/", {"post": "yes"}).status_code == 404
    else:
        listing = superuser_client.get(f"{base}/")
        assert listing.status_code == 200
        page = listing.content.decode()
        assert "delete_selected" not in page
        assert 'name="action"' not in page  # no bulk actions at all
        # The bulk action posted by hand does nothing either.
        bulk = superuser_client.post(
            f"{base}/", {"action": "delete_selected", "_selected_action": [str(obj.pk)]}
        )
        assert bulk.status_code in (200, 302)
        assert superuser_client.get(f"{base}/{obj.pk}/delete/").status_code == 403
        deleted = superuser_client.post(f"{base}/{obj.pk}/delete/", {"post": "yes"})
        assert deleted.status_code == 403
        changed = superuser_client.post(f"{base}/{obj.pk}/change/", {"comment": "rewritten"})
        assert changed.status_code == 403
        assert superuser_client.get(f"{base}/add/").status_code == 403
        shown = superuser_client.get(f"{base}/{obj.pk}/change/")
        assert shown.status_code == 200  # readable
        assert "deletelink" not in shown.content.decode()
    assert type(obj).objects.filter(pk=obj.pk).exists()
    assert _snapshot(obj) == before


def test_a_calls_timeline_inline_has_no_delete_or_edit(superuser_client, evidence):
    call, event = evidence[Call], evidence[CallEvent]
    page = superuser_client.get(f"/admin/queueing/call/{call.pk}/change/").content.decode()
    assert CallEventKind.ANSWERED.label in page or CallEventKind.ANSWERED.value in page
    assert "events-0-DELETE" not in page
    assert 'name="events-0-kind"' not in page  # shown, not an input
    posted = superuser_client.post(
        f"/admin/queueing/call/{call.pk}/change/",
        {
            "events-TOTAL_FORMS": "1",
            "events-INITIAL_FORMS": "1",
            "events-0-id": str(event.pk),
            "events-0-DELETE": "on",
        },
    )
    assert posted.status_code == 403
    assert CallEvent.objects.filter(pk=event.pk).exists()


def test_every_evidence_admin_refuses_delete_to_a_superuser(evidence, rf):
    """Belt and braces over the whole site: whatever evidence model is registered, and by
    whichever admin class, a superuser gets no delete, change or add permission."""
    from django.contrib.auth import get_user_model

    request = rf.get("/admin/")
    request.user = get_user_model()(is_superuser=True, is_staff=True, is_active=True)
    registered = [m for m in EVIDENCE_MODELS if m in admin.site._registry]
    assert set(registered) >= set(EVIDENCE_MODELS) - NOT_REGISTERED
    for model in registered:
        model_admin = admin.site._registry[model]
        assert not model_admin.has_delete_permission(request, evidence[model]), model
        assert not model_admin.has_change_permission(request, evidence[model]), model
        assert not model_admin.has_add_permission(request), model
        assert "delete_selected" not in model_admin.get_actions(request), model
        for inline in model_admin.get_inline_instances(request, evidence[model]):
            assert not inline.has_delete_permission(request, evidence[model]), inline
            assert not inline.has_add_permission(request, evidence[model]), inline
