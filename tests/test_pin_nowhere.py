"""Issue 5, acceptance 3: the PIN a customer enters is nowhere in clear.

One call over the real sockets (the project's ASGI router, in process): the customer's page places
the call, the teller accepts it, the call's identity check has passed; the teller opens a
personal details update, fills it and pushes the agreement; the customer's page reads and agrees,
confirms the summary and, asked for the PIN, encrypts it as the browser does (RSA-OAEP for the core
bank's key) — a wrong PIN first, then the right one. The core-banking stub answers over real HTTP
(the test server); the submission goes out on its background thread; the receipt reaches the
customer; the teller hangs up.

Captured meanwhile and searched for both PINs, in clear and in common encodings (see
``tests/pin_capture.py``): every frame both sockets sent and received, every channel-layer
message, every request to the core bank and its answer, every log record of every logger at DEBUG
from every thread, every SQL statement with its parameters; at the end every row of every table
(the core stub's included), the call's timeline, the recording's exported timeline and manifest,
and the receipt as the customer downloads it (HTML and PDF).

So that the search cannot pass by finding nothing, the captures are shown to hold what the PIN
went through (the encrypted entries on the socket, at the core and in its answers; the
submission in the logs; the case, its receipt and the core's PIN hash in the tables), and a
sentinel address typed into the form is found in each of them (on the timelines as its city only:
they keep personal data masked).
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.request
import uuid
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import connections
from django.utils import timezone

from kyc.models import STEP_ORDER, CheckStatus, IdentityCheck, Level
from queueing.models import CallEvent, MediaWorker
from recordings.export import recording_export
from recordings.selectors import recording_for_call, recording_timeline
from tests import pin_capture
from tests.pin_capture import Captures
from tests.sockets import Socket, session_cookie
from workflows.corebank.tasks import submission_threads_join
from workflows.corebank.testing import pin_encrypt
from workflows.corebank_stub.models import Customer, PinChallenge
from workflows.corebank_stub.seed import BY_NAME, corebank_seed
from workflows.models import BusinessCase, Receipt

pytestmark = [pytest.mark.django_db(transaction=True)]

ZHANG = BY_NAME["张伟"]
RIGHT_PIN = ZHANG.pin  # 135790 (the seeded demo customer's)
WRONG_PIN = "802417"  # in none of the seeded data (nor is the right one, outside its hash)
SENTINEL_ADDRESS = "上海市浦东新区哨兵路7319号"  # a harmless field: it must be found
SENTINEL_MASKED = "上海市***"  # ... and as the timelines keep it
SLOW = 20  # s: the first PIN request makes the core stub's RSA-3072 key


@pytest.fixture
def captures(monkeypatch) -> Captures:
    """Taps on logs, SQL and the core bank's HTTP, from before anything is seeded."""
    captured = Captures()
    pin_capture.logs_tapped(monkeypatch, captured)
    pin_capture.sql_tapped(monkeypatch, captured)
    pin_capture.corebank_http_tapped(monkeypatch, captured)
    return captured


@pytest.fixture
def bank(captures, settings, monkeypatch, live_server, catalogue):
    """The core stub on the test server (real HTTP), quick; submissions on background threads
    as the embedded profile sends them, whatever the profile; no media worker or queue ticker:
    a registered channel stands for the media worker."""
    # The consumers' worker threads close their connections after each call (the production
    # profile keeps them 60 s: open sessions keep the test database from being dropped).
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 0)
    settings.MEDIA_WORKER_EMBEDDED = False
    settings.QUEUE_TICKER = "off"
    settings.CELERY_TASK_ALWAYS_EAGER = True
    # The test's own server mounts the stub whatever the profile (production's never does).
    settings.ROOT_URLCONF = "tests.stub_urls"
    settings.COREBANK_URL = f"{live_server.url}/ext/core-bank/v1"
    settings.COREBANK_STUB_LATENCY_MS = 5
    settings.COREBANK_STUB_JITTER_MS = 0
    settings.COREBANK_STUB_PIN_ITERATIONS = 1000  # the stub's PIN hashes: cheap in tests
    settings.COREBANK_RETRY_BACKOFF_S = 0.05
    settings.WORKFLOW_AGREEMENT_MIN_READ_MS = 0
    corebank_seed()
    MediaWorker.objects.create(
        channel_name=f"media.pin.{uuid.uuid4().hex}",
        host="test",
        pid=1,
        heartbeat_at=timezone.now(),
    )
    return live_server


def identity_passed(call_id: str) -> IdentityCheck:
    """The call's identity check as it stands once passed (how a check passes has its own
    tests: kyc/tests/test_identity_check.py, tests/test_kyc_sockets.py)."""
    now = timezone.now()
    return IdentityCheck.objects.create(
        call_id=call_id,
        status=CheckStatus.PASSED,
        level=Level.THREE_FACTOR_FACE,
        steps={s: {"status": "passed", "detail": "", "detail_zh": ""} for s in STEP_ORDER},
        consent_at=now - timedelta(minutes=3),
        fields={
            "name": ZHANG.name,
            "id_number": ZHANG.id_number,
            "sex": "男",
            "birth": ZHANG.id_number[6:14],
        },
        passed_at=now - timedelta(seconds=20),
        face_matched_at=now - timedelta(seconds=20),
        expires_at=now + timedelta(minutes=30),
    )


def submissions_watched(monkeypatch) -> threading.Event:
    """An event set once a submission was handed to its sending thread."""
    from workflows.corebank import tasks

    handed = threading.Event()
    enqueue = tasks.submission_enqueue

    def enqueue_and_tell(*, submission_id):
        enqueue(submission_id=submission_id)
        handed.set()

    monkeypatch.setattr(tasks, "submission_enqueue", enqueue_and_tell)
    return handed


async def settled(handed: threading.Event) -> None:
    """Wait until the submission was handed to its thread, then for the thread to end (both on
    worker threads: this loop stays free for the sockets). The thread's end is also what lets
    this loop see what the thread sent: on the embedded profile those messages reach the
    in-memory channel layer from the thread's own event loop, which does not wake this one (a
    bug reported on queueing.notify)."""
    assert await sync_to_async(handed.wait, thread_sensitive=False)(SLOW)
    assert await sync_to_async(submission_threads_join, thread_sensitive=False)(timeout=SLOW)


def the_rest_captured(captures: Captures, *, server: str, call_id: str, receipt: dict, out_dir):
    """After the call: the tables, the timelines, the recording's export, the receipt."""
    captures.sql_on = False  # the dump's own reads are not traffic
    rows = pin_capture.database_dumped(captures)
    blobs: list[bytes] = []
    for event in CallEvent.objects.filter(call_id=call_id).order_by("at", "id"):
        captures.text(
            "call timeline", pin_capture.as_json([event.kind, event.actor, event.data], blobs)
        )
    recording = recording_for_call(call_id)
    assert recording is not None  # started when the teller answered
    for entry in recording_timeline(recording):
        captures.text("recording timeline", json.dumps(entry, ensure_ascii=False))
    recording_export(recording=recording, out_dir=out_dir, actor="test:pin-search")
    exported = sorted(p for p in out_dir.rglob("*") if p.is_file())
    for path in exported:
        captures.text("recording export", path.read_bytes().decode())
    # The receipt as the customer's page downloads it (its links carry the receipt's token).
    pages = {}
    for url in (receipt["url"], receipt["pdf_url"]):
        with urllib.request.urlopen(f"{server}{url}") as page:  # noqa: S310
            pages[url] = page.read()
    captures.text("receipt HTML", pages[receipt["url"]].decode())
    captures.document("receipt PDF", pages[receipt["pdf_url"]])
    captures.text("receipt PDF", pin_capture.pdf_text(pages[receipt["pdf_url"]]))
    return rows, [p.name for p in exported]


async def test_the_pin_entered_is_nowhere_in_clear(bank, captures, monkeypatch, tmp_path):
    # A probe of the log tap (and of the search in it): DEBUG, on a logger the settings keep at
    # WARNING.
    logging.getLogger("aiortc").debug("log tap probe: %s", SENTINEL_ADDRESS)
    handed = submissions_watched(monkeypatch)
    pin_capture.channel_layer_tapped(monkeypatch, captures, get_channel_layer())
    customer = pin_capture.frames_recorded(Socket("/ws/customer/"), "customer", captures)
    cookie = await database_sync_to_async(session_cookie)("pin-teller", "teller")
    teller = pin_capture.frames_recorded(Socket("/ws/teller/", cookie), "teller", captures)
    await customer.open()
    await teller.open()

    # The call, answered; its identity check passed.
    await customer.send("call.request", business="account_change", channel="web")
    queued = await customer.expect("call.queued")
    call_id = queued["call_id"]
    await teller.send("presence.set", status="available")
    await teller.expect("call.offer")
    await teller.send("call.accept", call_id=call_id)
    await teller.expect("call.connected")
    await customer.expect("call.answered")
    await database_sync_to_async(identity_passed)(call_id)

    # The teller: a personal details update, filled and its agreement pushed.
    await teller.send("case.start", call_id=call_id, business="details_update")
    case_id = (await teller.expect("case.state", timeout=SLOW))["case"]["case_id"]
    mine = {"where": lambda m: m.get("case_id", m.get("case", {}).get("case_id")) == case_id}
    await teller.send(
        "case.fill",
        call_id=call_id,
        case_id=case_id,
        params={"address": SENTINEL_ADDRESS, "occupation": "employee"},
    )
    filled = await teller.expect(
        "case.state", timeout=SLOW, where=lambda m: m["case"]["status"] != "draft"
    )
    assert filled["case"]["status"] == "filled", filled["case"]["error"]
    await teller.send("case.agreement.send", call_id=call_id, case_id=case_id)

    # The customer: reads to the end and agrees, confirms, and is asked for the PIN.
    await customer.expect("case.agreement", **mine)
    await customer.send(
        "case.agreement.read", call_id=call_id, case_id=case_id, reached_end=True, reading_ms=3100
    )
    confirm = await customer.expect("case.confirm_request", **mine)
    assert SENTINEL_ADDRESS in json.dumps(confirm["summary"], ensure_ascii=False)
    await customer.send("case.confirm", call_id=call_id, case_id=case_id, accepted=True)
    keypad = await customer.expect("case.pin_request", timeout=SLOW, **mine)
    assert keypad["method"] == "pin"

    # A wrong PIN first: the keypad again, with the tries left in words ...
    entries = {}
    for pin in (WRONG_PIN, RIGHT_PIN):
        ciphertext = pin_encrypt(
            public_key_spki_b64=keypad["public_key_spki_b64"], nonce=keypad["nonce"], pin=pin
        )
        entries[pin] = ciphertext
        await customer.send(
            "case.authorise",
            call_id=call_id,
            case_id=case_id,
            challenge_id=keypad["challenge_id"],
            ciphertext_b64=ciphertext,
        )
        if pin == WRONG_PIN:
            keypad = await customer.expect("case.pin_request", timeout=SLOW, **mine)
            assert keypad["retry"] is True
            assert keypad["error"]["en"]
            assert keypad["attempts_left"] == 2
    # ... then the right one: the business goes through (its submission sent on a thread of its
    # own, waited for first: see ``settled``) and the receipt reaches the customer.
    await settled(handed)
    receipt = await customer.expect("case.receipt", timeout=SLOW, **mine)
    done = await teller.expect(
        "case.state", timeout=SLOW, where=lambda m: m["case"]["status"] == "done"
    )
    assert done["case"]["receipt"]["code"]
    await teller.send("call.hangup", call_id=call_id)
    summary = await teller.expect("call.summary", timeout=SLOW)
    assert [c["status"] for c in summary["cases"]] == ["done"]
    await customer.expect("call.ended")
    for sock in (customer, teller):
        await sock.pending()  # whatever else was delivered is captured too
        await sock.close()

    rows, exported = await database_sync_to_async(the_rest_captured)(
        captures,
        server=bank.url,
        call_id=call_id,
        receipt=receipt,
        out_dir=tmp_path / "export",
    )
    print("\ncaptured:", json.dumps(captures.sizes(), ensure_ascii=False, indent=1))
    print(f"tables: {len(rows)}, rows: {sum(rows.values())}; exported: {exported}")

    # The captures hold what the PIN went through (the search has something to search) ...
    sent = [json.loads(t) for t in captures.by_name["frames: customer sent"].texts]
    authorised = [m["ciphertext_b64"] for m in sent if m["type"] == "case.authorise"]
    assert authorised == [entries[WRONG_PIN], entries[RIGHT_PIN]]
    core = captures.joined("core-bank HTTP")
    for ciphertext in authorised:  # the entries reached the core as the page encrypted them
        body = {"challenge_id": keypad["challenge_id"], "ciphertext_b64": ciphertext}
        assert f"POST /pin/verify {json.dumps(body, sort_keys=True)}" in core
    assert '"code": "wrong_pin"' in core
    assert '"code": "ok"' in core
    assert "POST /operations/details_update" in core
    messages = [(r.getMessage(), r.threadName) for r in captures.log_records]
    assert any(
        "details_update -> done" in m and thread.startswith("workflows.corebank.send-")
        for m, thread in messages
    )  # the submission, logged on its own thread (named after its task)
    verdicts = [
        (m.split(" -> ")[1].split(" ")[0], thread)
        for m, thread in messages
        if m.startswith("core-bank stub: pin challenge") and " -> " in m
    ]
    assert [v for v, _ in verdicts] == ["wrong_pin", "ok"]
    # The core stub's log lines come from the test server's request threads: those are heard.
    assert all("process_request_thread" in thread for _, thread in verdicts)
    assert rows[BusinessCase._meta.db_table] == 1
    (case_row,) = pin_capture.table_rows(captures, BusinessCase._meta.db_table)
    assert case_row["status"] == "done"
    assert case_row["params"]["address"] == SENTINEL_ADDRESS
    (receipt_row,) = pin_capture.table_rows(captures, Receipt._meta.db_table)
    assert receipt_row["code"].replace("-", "") == receipt["code"].replace("-", "")
    (stub_customer,) = [
        row
        for row in pin_capture.table_rows(captures, Customer._meta.db_table)
        if row["customer_ref"] == ZHANG.customer_ref
    ]
    assert stub_customer["address"] == SENTINEL_ADDRESS  # the business reached the core
    assert stub_customer["pin_hash"].startswith("pbkdf2_sha256$")  # the core keeps a hash
    timeline = [json.loads(t) for t in captures.by_name["recording timeline"].texts]
    steps = [e["data"].get("step") for e in timeline if e["kind"] == "business"]
    for step in ("pin_requested", "authorise", "submitted", "done"):
        assert step in steps
    assert [e["data"]["ok"] for e in timeline if e["data"].get("step") == "authorise"] == [
        False,
        True,
    ]
    assert "timeline.json" in exported
    assert any(  # the level override works: a DEBUG record of a logger set to WARNING
        r.levelno == logging.DEBUG and r.name == "aiortc" for r in captures.log_records
    )
    sql = captures.by_name["SQL"].texts
    challenge_table = PinChallenge._meta.db_table
    assert any(t.startswith("UPDATE") and challenge_table in t for t in sql)  # the PIN checks
    # ... and the search finds what is there: the sentinel typed into the form.
    for name in (
        "logs",
        "frames: teller sent",
        "frames: teller received",
        "frames: customer received",
        "channel layer",
        "core-bank HTTP",
        "SQL",
        "database",
        "receipt HTML",
        "receipt PDF",
    ):
        assert captures.hits(SENTINEL_ADDRESS, names=[name]), name
    # The timelines keep personal data masked: the address is there as its city only.
    for name in ("call timeline", "recording timeline", "recording export"):
        assert captures.hits(SENTINEL_MASKED, names=[name]), name
        assert captures.hits(SENTINEL_ADDRESS, names=[name]) == [], name

    # The PINs, wrong and right, are nowhere: in clear or encoded.
    for pin in (WRONG_PIN, RIGHT_PIN):
        assert captures.hits(pin) == [], pin
