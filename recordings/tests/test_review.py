"""QA review: the checklist and verdict, timed notes, and the process checks from the timeline."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from recordings.models import QaNote, QaReview
from recordings.review import CHECKLIST_KEYS, process_checks
from tests.factories import staff_user

pytestmark = pytest.mark.django_db(transaction=True)

ALL_YES = dict.fromkeys(CHECKLIST_KEYS, "yes")


def reviewer(name: str = "qa-reviewer") -> Client:
    client = Client()
    client.force_login(staff_user(name, "qa"))
    return client


def post(client: Client, url: str, body) -> tuple[int, dict]:
    response = client.post(url, json.dumps(body), content_type="application/json")
    return response.status_code, response.json()


def urls(recording) -> tuple[str, str]:
    base = f"/qa/recordings/{recording.id}"
    return f"{base}/reviews", f"{base}/notes"


def test_a_review_is_scored_over_the_applicable_items_and_kept_as_history(recorded_call):
    client = reviewer()
    reviews, _ = urls(recorded_call)
    checklist = {**ALL_YES, "privacy": "no", "closing": "na"}
    status, body = post(
        client, reviews, {"checklist": checklist, "verdict": "coaching", "comment": "PIN aloud"}
    )
    assert status == 201
    assert body["review"]["score"] == 80  # 4 of the 5 that apply
    status, body = post(client, reviews, {"checklist": ALL_YES, "verdict": "pass"})
    assert status == 201
    assert body["review"]["score"] == 100
    rows = QaReview.objects.filter(recording=recorded_call)
    assert [(r.verdict, r.score) for r in rows] == [("pass", 100), ("coaching", 80)]
    page = client.get(f"/qa/recordings/{recorded_call.id}/").context["replay"]
    assert [r["verdict"] for r in page["reviews"]] == ["pass", "coaching"]
    listed = client.get("/qa/", {"reviewed": "yes"}).context["rows"]
    assert [(r["recording"].review_verdict, r["recording"].review_score) for r in listed] == [
        ("pass", 100)
    ]
    assert client.get("/qa/", {"reviewed": "no"}).context["rows"] == []
    assert page["reviews"][1]["comment"] == "PIN aloud"


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"checklist": {"greeting": "yes"}, "verdict": "pass"}, "every checklist item"),
        ({"checklist": {**ALL_YES, "greeting": "maybe"}, "verdict": "pass"}, "yes, no or not"),
        ({"checklist": ALL_YES, "verdict": "excellent"}, "Choose a verdict"),
        ({"checklist": ALL_YES, "verdict": "fail"}, "Say in the comment why"),
        ({"checklist": ALL_YES, "verdict": "pass", "comment": "x" * 2001}, "at most 2000"),
        ({"checklist": ALL_YES, "verdict": "pass", "comment": 7}, "must be text"),
        ({"checklist": "all yes", "verdict": "pass"}, "every checklist item"),
        ([1, 2], "JSON object"),
    ],
)
def test_a_bad_review_is_refused_in_words_and_nothing_is_saved(recorded_call, body, says):
    status, answer = post(reviewer(), urls(recorded_call)[0], body)
    assert status == 400
    assert (answer["code"], says in answer["detail"]["en"]) == ("invalid", True), answer
    assert answer["detail"]["zh"] != answer["detail"]["en"]  # and in Chinese
    assert not QaReview.objects.exists()


def test_notes_sit_at_a_moment_of_the_recording(recorded_call):
    client = reviewer()
    _, notes = urls(recorded_call)
    status, body = post(client, notes, {"at_ms": 1500, "text": "  no greeting  "})
    assert status == 201
    assert body["note"]["text"] == "no greeting"
    assert body["note"]["author"] == "qa-reviewer"
    post(client, notes, {"at_ms": 200, "text": "earlier"})
    page = client.get(f"/qa/recordings/{recorded_call.id}/").context["replay"]
    assert [(n["at_ms"], n["text"]) for n in page["notes"]] == [
        (200, "earlier"),
        (1500, "no greeting"),
    ]
    for bad, says in [
        ({"at_ms": "1500", "text": "x"}, "whole number"),
        ({"at_ms": True, "text": "x"}, "whole number"),
        ({"at_ms": 10_000_000, "text": "x"}, "outside the recording"),
        ({"at_ms": 100, "text": ""}, "Write the note"),
        ({"at_ms": 100, "text": "y" * 501}, "Write the note"),
    ]:
        status, answer = post(client, notes, bad)
        assert status == 400
        assert says in answer["detail"]["en"]
    assert QaNote.objects.count() == 2


def test_only_reviewers_write_and_the_csrf_token_is_required(recorded_call):
    reviews, notes = urls(recorded_call)
    teller = Client()
    teller.force_login(staff_user("teller-y", "teller"))
    assert teller.post(notes, "{}", content_type="application/json").status_code == 403
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(staff_user("qa-strict", "qa"))
    forged = strict.post(
        notes, json.dumps({"at_ms": 1, "text": "x"}), content_type="application/json"
    )
    assert forged.status_code == 403
    assert reviewer().get(notes).status_code == 405
    assert not QaNote.objects.exists()


# --- process checks -----------------------------------------------------------------------------


def event(offset_ms, kind, **data):
    return {"kind": kind, "offset_ms": offset_ms, "actor": "system", "data": data}


def step(offset_ms, name, case="c1", business="transfer", **data):
    return event(offset_ms, "business", case=case, business=business, step=name, **data)


IN_ORDER = [
    event(1000, "kyc_result", passed=True),
    step(2000, "start", identity_level="basic"),
    step(3000, "agreement_sent"),
    step(4000, "agreement_read"),
    step(5000, "confirm", accepted=True),
    step(5100, "pin_requested", masked="start"),
    step(6000, "authorise", ok=True, masked="end"),
    step(6100, "submitted"),
]


def findings_of(timeline) -> dict[str, bool]:
    return {f["key"]: f["ok"] for f in process_checks(timeline)}


def test_a_business_done_in_order_passes_every_check():
    assert findings_of(IN_ORDER) == {
        "identity_before_business": True,
        "agreement_read_before_confirm": True,
        "confirm_before_pin": True,
        "pin_before_submission": True,
        "pin_span_closed": True,
    }


def test_each_slip_is_found_and_points_at_its_event():
    unverified = [
        event(9000, "kyc_result", passed=True),
        step(2000, "start", identity_level="none"),
    ]
    assert findings_of(unverified) == {"identity_before_business": False}
    unread = [e for e in IN_ORDER if e["data"].get("step") != "agreement_read"]
    assert findings_of(unread)["agreement_read_before_confirm"] is False
    early = [*IN_ORDER[:-1], step(5050, "submitted")]
    assert findings_of(early)["pin_before_submission"] is False
    open_pin = [*IN_ORDER[:6]]
    found = process_checks(open_pin)
    assert {f["key"]: f["ok"] for f in found}["pin_span_closed"] is False
    assert [f["offset_ms"] for f in found if f["key"] == "pin_span_closed"] == [5100]


def test_a_business_without_pin_needs_the_confirmation_before_submission():
    timeline = [
        step(2000, "start", identity_level="basic", business="risk_assessment"),
        step(3000, "confirm", accepted=True, business="risk_assessment"),
        step(3500, "submitted", business="risk_assessment"),
    ]
    assert findings_of(timeline) == {
        "identity_before_business": True,
        "confirm_before_submission": True,
    }
    assert findings_of([timeline[0], timeline[2]]) == {
        "identity_before_business": True,
        "confirm_before_submission": False,
    }


def test_replay_page_shows_the_checks_of_its_call(recorded_call):
    client = reviewer()
    unreviewed = client.get("/qa/", {"reviewed": "no"})
    assert [r["recording"].pk for r in unreviewed.context["rows"]] == [recorded_call.pk]
    # Chinese unless the browser asks for English.
    assert 'data-testid="qa-review-cell">未质检<' in unreviewed.content.decode()
    page = client.get(f"/qa/recordings/{recorded_call.id}/").context["replay"]
    assert page["checks"] == []  # no business in this call
    assert [item["key"] for item in page["checklist"]] == list(CHECKLIST_KEYS)


def test_the_admin_shows_the_audit_trail_read_only(recorded_call):
    admin_user = staff_user("admin-x", "admin")
    admin_user.is_staff = True
    admin_user.is_superuser = True  # the admin group holds no model permissions of its own
    admin_user.save()
    client = Client()
    client.force_login(admin_user)
    reviewer().get(f"/qa/recordings/{recorded_call.id}/")  # one audited replay
    page = client.get("/admin/recordings/recordingaccess/")
    assert page.status_code == 200
    assert "qa-reviewer" in page.content.decode()
    access = recorded_call.accesses.get()
    change = client.get(f"/admin/recordings/recordingaccess/{access.pk}/change/")
    assert change.status_code == 200
    assert 'type="submit"' not in change.content.decode().split("<form")[-1].split("</form>")[0]
    deleted = client.post(f"/admin/recordings/recordingaccess/{access.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 403
    assert recorded_call.accesses.count() == 1


def test_a_teller_sees_the_reviews_of_their_own_calls_only(recorded_call):
    from queueing.models import Call

    mine = staff_user("teller-mine", "teller")
    other = staff_user("teller-other", "teller")
    Call.objects.filter(pk=recorded_call.call_id).update(teller=mine)
    client = reviewer()
    reviews, notes = urls(recorded_call)
    checklist = {**ALL_YES, "privacy": "no"}
    post(client, reviews, {"checklist": checklist, "verdict": "fail", "comment": "Card read aloud"})
    post(client, notes, {"at_ms": 1500, "text": "here"})

    teller = Client()
    teller.force_login(mine)
    page = teller.get("/qa/mine/")
    assert page.status_code == 200
    [row] = page.context["rows"]
    assert row["review"].verdict == "fail"
    assert [item.key for item in row["missed"]] == ["privacy"]
    assert row["notes"] == [{"at": "0:01", "text": "here"}]
    assert "Card read aloud" in page.content.decode()
    assert "/qa/recordings/" not in page.content.decode()  # feedback, not the recording

    someone_else = Client()
    someone_else.force_login(other)
    assert someone_else.get("/qa/mine/").context["rows"] == []
    qa_only = reviewer("qa-only")
    assert qa_only.get("/qa/mine/").status_code == 403
    console = teller.get("/console/").content.decode()
    assert 'data-testid="my-reviews-link"' in console


# --- who may judge: not one's own call; a fail stands until a supervisor overrides it ------------


def judge(client: Client, recording, verdict: str = "pass", comment: str = "") -> tuple[int, dict]:
    return post(
        client, urls(recording)[0], {"checklist": ALL_YES, "verdict": verdict, "comment": comment}
    )


def served_by(recording, user, *, dropped: bool = False) -> None:
    """``user`` was the call's teller (now, or before a drop moved the call on)."""
    from queueing.models import Call, Offer, OfferStatus

    if dropped:
        Offer.objects.create(call_id=recording.call_id, teller=user, status=OfferStatus.DROPPED)
    else:
        Call.objects.filter(pk=recording.call_id).update(teller=user)


@pytest.mark.parametrize("dropped", [False, True])
def test_a_reviewer_cannot_review_or_annotate_their_own_call(recorded_call, dropped):
    both = staff_user("qa-teller", "qa", "teller")
    served_by(recorded_call, both, dropped=dropped)
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(both)
    status, answer = judge(client, recorded_call)
    assert status == 403
    words = answer["detail"]
    assert words["en"] == "You served this call as its teller: someone else must review it."
    assert "不能评定自己的通话" in answer["detail"]["zh"]
    status, answer = post(client, urls(recorded_call)[1], {"at_ms": 100, "text": "fine by me"})
    assert status == 403
    assert "You served this call" in answer["detail"]["en"]
    assert not QaReview.objects.exists()
    assert not QaNote.objects.exists()
    # The list flags it; the replay page offers no review form.
    listed = client.get("/qa/")
    [row] = listed.context["rows"]
    assert row["recording"].own_call is True
    assert 'data-testid="qa-own-call"' in listed.content.decode()
    replay = client.get(f"/qa/recordings/{recorded_call.id}/").context["replay"]
    assert replay["own_call"] is True
    assert replay["may_review"] is False
    # Someone else reviews it; the list does not flag it for them.
    other = reviewer("qa-other")
    assert judge(other, recorded_call)[0] == 201
    assert other.get("/qa/").context["rows"][0]["recording"].own_call is False


def test_a_fail_stands_until_a_supervisors_override_with_a_reason(recorded_call):
    first = reviewer("qa-first")
    status, failed = judge(first, recorded_call, "fail", "PIN read aloud")
    assert status == 201
    failed_id = failed["review"]["id"]
    for client in (first, reviewer("qa-second")):
        status, answer = judge(client, recorded_call, "pass")
        assert status == 403
        words = answer["detail"]
        assert "only a supervisor's override, with a reason, can change it" in words["en"]
        assert answer["code"] == "forbidden"  # both languages: the page shows its own
        assert "只有主管填写理由后改判" in answer["detail"]["zh"]
    assert QaReview.objects.count() == 1

    override = f"/qa/recordings/{recorded_call.id}/override"
    status, answer = post(first, override, {"review": failed_id, "verdict": "pass", "reason": "ok"})
    assert status == 403
    assert answer["detail"]["en"] == "Only a supervisor overrides a failed review."
    boss = Client()
    boss.force_login(staff_user("supervisor-qa", "supervisor", "qa"))
    page = boss.get(f"/qa/recordings/{recorded_call.id}/").context["replay"]
    assert page["may_override"] is True
    assert page["failed_review"] == failed_id
    for body, says in [
        ({"review": failed_id, "verdict": "pass", "reason": "  "}, "Give the reason"),
        ({"review": failed_id, "verdict": "fail", "reason": "x"}, "choose pass or pass with"),
        ({"review": failed_id + 999, "verdict": "pass", "reason": "x"}, "no such review"),
        ({"review": str(failed_id), "verdict": "pass", "reason": "x"}, "which review"),
    ]:
        status, answer = post(boss, override, body)
        assert status == 400
        assert says in answer["detail"]["en"]
    assert QaReview.objects.count() == 1

    status, answer = post(
        boss,
        override,
        {"review": failed_id, "verdict": "coaching", "reason": "The PIN was the customer's own"},
    )
    assert status == 201
    assert answer["review"]["kind"] == "override"
    assert answer["review"]["overrides"] == failed_id
    history = list(QaReview.objects.filter(recording=recorded_call))
    assert [(r.kind, r.verdict, r.overrides_id) for r in history] == [
        ("override", "coaching", failed_id),
        ("review", "fail", None),
    ]
    assert history[0].reviewer.username == "supervisor-qa"
    assert history[0].comment == "The PIN was the customer's own"
    assert history[1].comment == "PIN read aloud"  # the failed review is kept as it was

    # The list and the replay show the override; a second override of the same fail is refused.
    row = first.get("/qa/").context["rows"][0]["recording"]
    assert (row.review_verdict, row.review_kind) == ("coaching", "override")
    shown = first.get(f"/qa/recordings/{recorded_call.id}/").context["replay"]["reviews"]
    assert [(r["kind"], r["verdict"], r["overrides"]) for r in shown] == [
        ("override", "coaching", failed_id),
        ("review", "fail", None),
    ]
    status, answer = post(boss, override, {"review": failed_id, "verdict": "pass", "reason": "x"})
    assert status == 400
    assert "no longer the call's latest" in answer["detail"]["en"]
    # Reviewing goes on from the override.
    assert judge(reviewer("qa-third"), recorded_call)[0] == 201


def test_a_supervisor_cannot_override_a_fail_on_their_own_call(recorded_call):
    status, failed = judge(reviewer(), recorded_call, "fail", "no greeting")
    assert status == 201
    boss_user = staff_user("supervisor-own", "supervisor", "qa")
    served_by(recorded_call, boss_user)
    boss = Client()
    boss.force_login(boss_user)
    status, answer = post(
        boss,
        f"/qa/recordings/{recorded_call.id}/override",
        {"review": failed["review"]["id"], "verdict": "pass", "reason": "I did greet"},
    )
    assert status == 403
    assert "You served this call" in answer["detail"]["en"]
    assert QaReview.objects.count() == 1
