"""A QA reviewer replays a recorded call in Chromium: both sides play on one clock, an event of
the timeline seeks both, the PIN span is marked, and every look is in the access audit."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect, sync_playwright

from queueing.models import Business, Call, CallEvent, CallEventKind, CallStatus
from recordings.models import QaNote, QaReview, RecordingAccess, RecordingSegment
from recordings.services import (
    recording_data_key,
    recording_finalise,
    recording_recorder,
    recording_start,
)
from recordings.tests.synthetic import feed
from tests.browser import CHROMIUM, CHROMIUM_ARGS, csp_watched
from tests.factories import staff_user

PASSWORD = "pw-for-tests"
SECONDS = 6.0


def recorded_call_with_timeline(incomplete=None):
    business = Business.objects.get(key="card_loss")
    call = Call.objects.create(business=business, status=CallStatus.ENDED)
    recording = recording_start(call_id=call.id)
    data_key = recording_data_key(recording=recording)
    recorders = [
        recording_recorder(
            recording_id=recording.id,
            side=side,
            data_key=data_key,
            t0=100.0,
            segment_seconds=2.0,
            queue_size=4096,
        )
        for side in ("customer", "teller")
    ]
    for recorder in recorders:
        feed(recorder, SECONDS, t0=100.0, video_from_s=0.0, small_until_s=0.0)
        recorder.close()
    assert RecordingSegment.objects.filter(recording=recording).count() == 6
    recording_finalise(recording_id=recording.id, incomplete=incomplete)
    from PIL import Image

    from kyc.models import IdentityCheck
    from kyc.services import _seal_evidence

    picture = io.BytesIO()
    Image.new("RGB", (320, 240), (30, 120, 200)).save(picture, format="JPEG")
    check = IdentityCheck.objects.create(call=call)
    _seal_evidence(
        check, kind="card_front", jpeg=picture.getvalue(), source="media_worker", offset_ms=1500
    )
    start = recording.started_at
    for offset_s, kind, data in [
        (0.2, CallEventKind.ANSWERED, {}),
        (2.0, CallEventKind.KYC_RESULT, {"passed": True}),
        (
            4.0,
            CallEventKind.BUSINESS,
            {"business": "card_loss", "step": "pin_requested", "masked": "start"},
        ),
        (5.0, CallEventKind.BUSINESS, {"business": "card_loss", "step": "done", "masked": "end"}),
    ]:
        event = CallEvent.objects.create(call=call, kind=kind, actor="system", data=data)
        CallEvent.objects.filter(pk=event.pk).update(at=start + timedelta(seconds=offset_s))
    return recording


def positions(page) -> dict:
    return page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('video[data-side]')].map(v =>
             [v.dataset.side, {t: v.currentTime, w: v.videoWidth, paused: v.paused,
                               ready: v.readyState}]))"""
    )


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_reviewer_replays_both_sides_and_seeks_by_event(live_stack):
    staff_user("qa-browser", "qa", password=PASSWORD)
    recording = recorded_call_with_timeline()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        console: list[str] = []
        violations: list[str] = []
        try:
            context = browser.new_context(base_url=live_stack.url, locale="en-US")
            context.set_default_timeout(20_000)
            csp_watched(context, violations)
            page = context.new_page()
            page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
            page.on("pageerror", lambda exc: console.append(f"pageerror: {exc}"))
            page.goto("/qa/")
            expect(page).to_have_url(re.compile(r"/console/login/"))
            page.get_by_test_id("login-username").fill("qa-browser")
            page.get_by_test_id("login-password").fill(PASSWORD)
            page.get_by_test_id("login-submit").click()
            expect(page).to_have_url(re.compile(r"/qa/$"))
            row = page.locator(f'tr[data-recording="{recording.id}"]')
            expect(row).to_contain_text("Debit card loss report")
            expect(row).to_contain_text("6 s")  # what the recording holds
            row.get_by_test_id("qa-replay-link").click()

            status = page.get_by_test_id("replay-status")
            expect(status).to_have_attribute("data-state", "ready", timeout=30_000)
            evidence = page.get_by_test_id("evidence-image")
            expect(evidence).to_have_attribute("alt", "Card front, 0:02")
            page.wait_for_function(
                "() => document.querySelector('[data-testid=evidence-image]').naturalWidth === 320"
            )
            # No business in this call: nothing for the process checks, said in words.
            expect(page.get_by_test_id("replay-checks")).to_have_text(
                "No business was handled in this call"
            )
            events = page.get_by_test_id("replay-event")
            expect(events).to_have_count(6)  # with recording started and sealed
            masked = page.locator('li[data-masked="start"]')
            expect(masked).to_contain_text("PIN entry")

            page.get_by_test_id("replay-play").click()
            page.wait_for_function(
                """() => [...document.querySelectorAll('video[data-side]')].every(v =>
                     !v.paused && v.currentTime > 1.0 && v.videoWidth > 0)""",
                timeout=20_000,
            )
            both = positions(page)
            assert both["customer"]["w"] == 640
            assert both["teller"]["w"] == 640
            # One clock: the teller's video follows the customer's.
            assert abs(both["customer"]["t"] - both["teller"]["t"]) < 0.5, both

            page.get_by_test_id("replay-play").click()  # pause
            page.wait_for_function(
                "() => [...document.querySelectorAll('video[data-side]')].every(v => v.paused)"
            )
            masked.get_by_test_id("replay-event").click()
            page.wait_for_function(
                """() => [...document.querySelectorAll('video[data-side]')].every(v =>
                     Math.abs(v.currentTime - 4.0) < 0.4 && v.readyState >= 2)"""
            )
            expect(masked).to_have_attribute("aria-current", "step")
            expect(page.get_by_test_id("replay-clock")).to_have_text(
                re.compile(r"^0:0[34] / 0:06$")
            )

            # A note at the current moment, then a review.
            page.get_by_test_id("note-text").fill("Teller read the card number aloud")
            page.get_by_test_id("note-submit").click()
            expect(page.get_by_test_id("note-result")).to_have_text("Note added")
            expect(page.get_by_test_id("note-list")).to_contain_text(
                re.compile(r"0:0[34]\s*Teller read the card number aloud\s*qa-browser")
            )
            for key in ("greeting", "identity", "explained", "confirmed", "closing"):
                page.get_by_test_id(f"review-{key}-yes").check()
            page.get_by_test_id("review-privacy-no").check()
            page.get_by_test_id("review-verdict").select_option("coaching")
            page.get_by_test_id("review-submit").click()
            result = page.get_by_test_id("review-result")
            expect(result).to_have_attribute("data-state", "error")
            expect(result).to_contain_text("Say in the comment why")
            page.get_by_test_id("review-comment").fill("Card number said aloud at 0:04")
            page.get_by_test_id("review-submit").click()
            expect(result).to_have_text("Saved — score 83%")
            expect(page.get_by_test_id("review-list")).to_contain_text("Pass with coaching · 83%")
        finally:
            browser.close()
    errors = [line for line in console if line.startswith(("error", "pageerror"))]
    # The one refused review (no comment for "coaching") is the only failed request.
    assert errors == [
        "error: Failed to load resource: the server responded with a status of 400 (Bad Request)"
    ], console
    assert violations == []  # the replay's media, pictures and requests are all the page's own

    audit = RecordingAccess.objects.filter(recording=recording, user__username="qa-browser")
    actions = list(audit.values_list("action", flat=True))
    assert actions.count("replay") == 1
    sides = {a.detail["side"] for a in audit.filter(action="replay_media")}
    assert sides == {"customer", "teller"}
    assert audit.filter(action="replay_evidence").count() == 1
    note = QaNote.objects.get(recording=recording)
    assert 3000 <= note.at_ms <= 4500
    review = QaReview.objects.get(recording=recording)
    assert (review.verdict, review.score, review.checklist["privacy"]) == ("coaching", 83, "no")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_supervisor_overrides_a_failed_review_of_an_incomplete_recording(live_stack):
    """The list and the page say the recording is incomplete and why; the failed review blocks
    the review form; the supervisor overrides it with a reason, and both stay in the history."""
    from recordings.manifest import Finding
    from recordings.review import review_submit

    staff_user("supervisor-browser", "supervisor", "qa", password=PASSWORD)
    why = Finding("media worker media-7:4242 stopped at 2026-12-05 10:00:00 CST", "媒体服务停止")
    recording = recorded_call_with_timeline(incomplete=why)
    failed = review_submit(
        recording=recording,
        reviewer=staff_user("qa-failer", "qa"),
        checklist=dict.fromkeys(("greeting", "identity", "explained", "confirmed"), "yes")
        | {"privacy": "no", "closing": "yes"},
        verdict="fail",
        comment="PIN said aloud",
    )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        console: list[str] = []
        try:
            context = browser.new_context(base_url=live_stack.url, locale="en-US")
            context.set_default_timeout(20_000)
            page = context.new_page()
            page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
            page.on("pageerror", lambda exc: console.append(f"pageerror: {exc}"))
            page.goto("/qa/")
            page.get_by_test_id("login-username").fill("supervisor-browser")
            page.get_by_test_id("login-password").fill(PASSWORD)
            page.get_by_test_id("login-submit").click()
            page.goto("/qa/")
            row = page.locator(f'tr[data-recording="{recording.id}"]')
            expect(row.get_by_test_id("qa-incomplete")).to_have_text(f"Incomplete: {why.en}")
            expect(row.get_by_test_id("qa-review-cell")).to_contain_text("Fail")
            row.get_by_test_id("qa-replay-link").click()

            expect(page.get_by_test_id("replay-incomplete")).to_have_text(f"Incomplete: {why.en}")
            expect(page.get_by_test_id("replay-status")).to_have_attribute(
                "data-state", "ready", timeout=30_000
            )
            expect(page.get_by_test_id("review-form")).to_be_hidden()
            expect(page.get_by_test_id("review-blocked")).to_have_text(
                "The latest review is a fail: only a supervisor's override, with a reason, "
                "changes it"
            )
            page.get_by_test_id("override-verdict").select_option("coaching")
            page.get_by_test_id("override-submit").click()
            result = page.get_by_test_id("override-result")
            expect(result).to_have_attribute("data-state", "error")
            expect(result).to_contain_text("Give the reason for the override")
            page.get_by_test_id("override-reason").fill("The PIN was the customer's own, by phone")
            page.get_by_test_id("override-submit").click()
            expect(result).to_have_text("Overridden")
            rows = page.get_by_test_id("review-row")
            expect(rows).to_have_count(2)
            expect(rows.first).to_contain_text(
                f"Supervisor's override (overrides review #{failed.pk}) · supervisor-browser · "
                f"Pass with coaching"
            )
            expect(rows.nth(1)).to_contain_text("qa-failer · Fail")
            expect(page.get_by_test_id("override-form")).to_be_hidden()
            expect(page.get_by_test_id("review-form")).to_be_visible()
            expect(page.get_by_test_id("review-blocked")).to_be_hidden()
        finally:
            browser.close()
    errors = [line for line in console if line.startswith(("error", "pageerror"))]
    assert errors == [
        "error: Failed to load resource: the server responded with a status of 400 (Bad Request)"
    ], console
    history = list(QaReview.objects.filter(recording=recording))
    assert [(r.kind, r.verdict, r.overrides_id) for r in history] == [
        ("override", "coaching", failed.pk),
        ("review", "fail", None),
    ]
