"""Personal data at rest: a customer's name, ID number, address and account numbers are in no
table of ours in clear, and on the call's timeline only masked — yet the teller sees them.

One call over the real sockets (the project's ASGI router, in process): a VTM customer with a
known name, ID number and address (a person registered for the test with the national-ID stub and
the core-banking stub, both on the test server over real HTTP) places the call; the teller
accepts; the customer consents (with a place); the kiosk's card reader sends the chip; the teller
corrects the address and confirms; the national check answers; the face match and liveness
report as their analyses do; the teller opens a transfer from the customer's account to a payee,
the customer reads, confirms and enters the PIN; the core carries it out and the receipt is
issued; the call ends.

Captured meanwhile: every INSERT and UPDATE written to our tables (identity checks and their
evidence, national checks, business cases, receipts, core-bank submissions, the call's timeline),
with its parameters — a value written in clear and overwritten later would escape a dump at the
end — and, at the end, every row of those tables read with plain SQL (what a database dump or a
stolen backup shows). The stubs' own tables are not ours: they stand for the outside systems that
do hold the customer's data.

Searched for each sentinel, in clear and JSON-escaped (``tests/pin_capture.py``): nothing. So that
the search cannot pass by finding nothing, the same captures are shown to hold the masked forms
(欧***, 上海市***, 310115********7316, the account as 6230 **** **** nnnn) on the timeline, the
sealed values (naming their key) in the rows, and the teller's panel to show every value in full.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.db import connection, connections
from django.utils import timezone

from kyc.models import IdentityCheck, IdentityEvidence, Step
from kyc.national import tasks as national_tasks
from kyc.national.models import NationalCheck
from kyc.national_stub.services import citizen_register, stub_channels, stub_control_set
from kyc.services import identity_step_result
from queueing.models import CallEvent, MediaWorker
from tests.pin_capture import Captures
from tests.sockets import Socket, kiosk_cookie, kiosk_registered, session_cookie
from workflows.corebank.models import Submission
from workflows.corebank.tasks import submission_threads_join
from workflows.corebank.testing import pin_encrypt
from workflows.corebank_stub.seed import BY_NAME, corebank_customer_register, corebank_seed
from workflows.models import BusinessCase, Receipt

pytestmark = [pytest.mark.django_db(transaction=True)]

NAME = "欧阳哨兵"
ID_NUMBER = "310115198506127316"
ADDRESS_READ = "上海市浦东新区哨兵路7319号"
ADDRESS = "上海市浦东新区哨兵路7319号甲座"  # the teller's correction
PIN = "246813"
PAYEE = BY_NAME["刘洋"]
PAYEE_ACCOUNT = PAYEE.accounts[0].number
CHIP = {
    "name": NAME,
    "sex": "男",
    "ethnicity": "汉",
    "birth": "19850612",
    "address": ADDRESS_READ,
    "id_number": ID_NUMBER,
    "authority": "上海市公安局浦东分局",
    "validity": "2015.06.12-2035.06.12",
}
OURS = [
    IdentityCheck,
    IdentityEvidence,
    NationalCheck,
    BusinessCase,
    Receipt,
    Submission,
    CallEvent,
]
SLOW = 30  # s


def raw_captured(captured: Captures, name: str, value) -> None:
    """Each value as the database holds it: text as it is (a JSON column's text with its own
    escapes, searched in clear and JSON-escaped), bytes as bytes, a driver's decoded JSON as
    JSON text."""
    if isinstance(value, bytes | bytearray | memoryview):
        captured.blob(name, bytes(value))
    elif isinstance(value, list | tuple):
        for item in value:
            raw_captured(captured, name, item)
    elif isinstance(value, dict):  # psycopg decodes jsonb
        captured.text(name, json.dumps(value, ensure_ascii=False))
    elif value is not None:
        wrapped = getattr(value, "obj", None)  # psycopg's Jsonb(...) parameter
        if wrapped is not None:
            raw_captured(captured, name, wrapped)
        else:
            captured.text(name, str(value))


@pytest.fixture
def captures(monkeypatch) -> Captures:
    """Every INSERT or UPDATE of one of our tables, with its parameters, from every thread."""
    from django.db.backends.utils import CursorWrapper

    captured = Captures()
    tables = {model._meta.db_table for model in OURS}
    write = re.compile(r'^\s*(?:INSERT\s+INTO|UPDATE)\s+"?(\w+)"?', re.IGNORECASE)
    execute, executemany = CursorWrapper.execute, CursorWrapper.executemany

    def record(sql, params) -> None:
        match = write.match(sql)
        if match and match.group(1) in tables:
            raw_captured(captured, "writes", [sql, params])

    def executing(self, sql, params=None):
        record(sql, params)
        return execute(self, sql, params)

    def executing_many(self, sql, param_list):
        param_list = list(param_list)
        record(sql, param_list)
        return executemany(self, sql, param_list)

    monkeypatch.setattr(CursorWrapper, "execute", executing)
    monkeypatch.setattr(CursorWrapper, "executemany", executing_many)
    return captured


@pytest.fixture
def outside(captures, settings, monkeypatch, live_server, catalogue):
    """The national-ID and core-banking stubs on the test server (real HTTP), quick; the person
    on both; checks and submissions on background threads as the embedded profile runs them."""
    settings.ROOT_URLCONF = "tests.stub_urls"  # the test server mounts the stubs on every profile
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 0)
    settings.MEDIA_WORKER_EMBEDDED = False
    settings.QUEUE_TICKER = "off"
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.KYC_NATIONAL_CHANNELS = [
        f"{live_server.url}/ext/national-id/v1/primary",
        f"{live_server.url}/ext/national-id/v1/secondary",
    ]
    settings.KYC_NATIONAL_RETRY_BACKOFF_S = 0.05
    settings.COREBANK_URL = f"{live_server.url}/ext/core-bank/v1"
    settings.COREBANK_STUB_LATENCY_MS = 0
    settings.COREBANK_STUB_JITTER_MS = 0
    settings.COREBANK_STUB_PIN_ITERATIONS = 1000
    settings.COREBANK_RETRY_BACKOFF_S = 0.05
    settings.WORKFLOW_AGREEMENT_MIN_READ_MS = 0
    settings.KIOSK_SIMULATOR = True
    monkeypatch.setitem(national_tasks.national_check_task.app.conf, "task_always_eager", True)
    for channel in stub_channels():
        stub_control_set(channel=channel, latency_ms=0, jitter_ms=0, error_rate=0.0)
    citizen_register(name=NAME, id_number=ID_NUMBER)
    corebank_seed()  # the payee
    customer = corebank_customer_register(id_number=ID_NUMBER, name=NAME, pin=PIN)
    MediaWorker.objects.create(
        channel_name=f"media.pd.{uuid.uuid4().hex}", host="test", pid=1, heartbeat_at=timezone.now()
    )
    return customer


def submissions_watched(monkeypatch) -> threading.Event:
    from workflows.corebank import tasks

    handed = threading.Event()
    enqueue = tasks.submission_enqueue

    def enqueue_and_tell(*, submission_id):
        enqueue(submission_id=submission_id)
        handed.set()

    monkeypatch.setattr(tasks, "submission_enqueue", enqueue_and_tell)
    return handed


def analyses_report(call_id: str) -> None:
    """The face match and liveness analyses report as the Celery tasks do (their own tests run
    them on real frames: kyc/tests/test_identity_check.py)."""
    check = IdentityCheck.objects.get(call_id=call_id)
    for step in (Step.FACE_MATCH, Step.LIVENESS):
        identity_step_result(
            check_id=check.id, step=step, passed=True, detail="Passed.", detail_zh="通过。"
        )


def rows_dumped(captures: Captures) -> dict[str, int]:
    """Every row of our tables through plain SQL: what a dump or a stolen backup holds."""
    counts = {}
    with connection.cursor() as cursor:
        for model in OURS:
            table = model._meta.db_table
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            names = [column[0] for column in cursor.description]
            rows = cursor.fetchall()
            counts[table] = len(rows)
            for row in rows:
                captures.text("rows", f"{table}: {', '.join(names)}")
                raw_captured(captures, "rows", list(row))
    return counts


def timeline(call_id: str) -> list[dict]:
    return [
        {"kind": e.kind, "actor": e.actor, "data": e.data}
        for e in CallEvent.objects.filter(call_id=call_id).order_by("at", "id")
    ]


async def test_personal_data_is_sealed_at_rest_and_masked_on_the_timeline(
    outside, captures, monkeypatch
):
    account = outside["account_number"]
    handed = submissions_watched(monkeypatch)
    _, credential = await database_sync_to_async(kiosk_registered)()
    customer = Socket("/ws/customer/", kiosk_cookie(credential))
    teller = Socket(
        "/ws/teller/", await database_sync_to_async(session_cookie)("pd-teller", "teller")
    )
    await customer.open()
    await teller.open()
    await customer.send("call.request", business="account_change")
    call_id = (await customer.expect("call.queued"))["call_id"]
    await teller.send("presence.set", status="available")
    await teller.expect("call.offer")
    await teller.send("call.accept", call_id=call_id)
    await teller.expect("call.connected")
    await customer.expect("call.answered")

    # The identity check: consent with a place, the chip, the teller's correction, the national
    # check, the face and liveness results.
    await teller.send("kyc.start", call_id=call_id)
    await customer.expect("kyc.consent_request")
    place = {"lat": 31.230416, "lon": 121.473701, "accuracy_m": 12}
    await customer.send("kyc.consent", call_id=call_id, accepted=True, geolocation=place)
    await teller.expect("kyc.state", where=lambda m: m["check"]["status"] == "in_progress")
    await customer.send(
        "peripheral.event",
        call_id=call_id,
        device="id_card_reader",
        event="card_read",
        data={"fields": CHIP},
    )
    read = await teller.expect("kyc.state", where=lambda m: m["check"]["source"] == "chip")
    assert read["check"]["fields_read"]["front"] == CHIP  # the teller sees the card in full
    assert read["check"]["geolocation"] == place
    await database_sync_to_async(analyses_report)(call_id)
    await teller.send("kyc.fields.confirm", call_id=call_id, fields={**CHIP, "address": ADDRESS})
    confirmed = await teller.expect(
        "kyc.state", where=lambda m: m["check"]["fields"].get("address") == ADDRESS
    )
    assert confirmed["check"]["fields"]["name"] == NAME
    assert confirmed["check"]["fields"]["id_number"] == ID_NUMBER
    (correction,) = confirmed["check"]["corrections"]
    assert (correction["field"], correction["from"], correction["to"]) == (
        "address",
        ADDRESS_READ,
        ADDRESS,
    )
    assert await sync_to_async(national_tasks.national_check_threads_join, thread_sensitive=False)(
        SLOW
    )
    check = await database_sync_to_async(IdentityCheck.objects.get)(call_id=call_id)
    assert (check.status, check.level) == ("passed", "two_factor"), check.steps

    # A transfer from the customer's account to the payee, agreed, confirmed, authorised.
    await teller.send("case.start", call_id=call_id, business="transfer")
    case_id = (await teller.expect("case.state", timeout=SLOW))["case"]["case_id"]
    mine: dict[str, Any] = {
        "where": lambda m: m.get("case_id", m.get("case", {}).get("case_id")) == case_id
    }
    params = {
        "from_account": account,
        "to_account": PAYEE_ACCOUNT,
        "payee_name": PAYEE.name,
        "amount": "1200.00",
        "memo": "哨兵房租",
    }
    await teller.send("case.fill", call_id=call_id, case_id=case_id, params=params)
    filled = await teller.expect(
        "case.state", timeout=SLOW, where=lambda m: m["case"]["status"] != "draft"
    )
    assert filled["case"]["status"] == "filled", filled["case"]["error"]
    form = {f["name"]: f["value"] for f in filled["case"]["form"]}
    assert (form["from_account"], form["to_account"]) == (account, PAYEE_ACCOUNT)  # in full
    await teller.send("case.agreement.send", call_id=call_id, case_id=case_id)
    await customer.expect("case.agreement", **mine)
    await customer.send("case.agreement.read", call_id=call_id, case_id=case_id, reached_end=True)
    await customer.expect("case.confirm_request", **mine)
    await customer.send("case.confirm", call_id=call_id, case_id=case_id, accepted=True)
    keypad = await customer.expect("case.pin_request", timeout=SLOW, **mine)
    await customer.send(
        "case.authorise",
        call_id=call_id,
        case_id=case_id,
        challenge_id=keypad["challenge_id"],
        ciphertext_b64=pin_encrypt(
            public_key_spki_b64=keypad["public_key_spki_b64"], nonce=keypad["nonce"], pin=PIN
        ),
    )
    assert await sync_to_async(handed.wait, thread_sensitive=False)(SLOW)
    assert await sync_to_async(submission_threads_join, thread_sensitive=False)(timeout=SLOW)
    await customer.expect("case.receipt", timeout=SLOW, **mine)
    await teller.send("call.hangup", call_id=call_id)
    await teller.expect("call.summary", timeout=SLOW)
    for sock in (customer, teller):
        await sock.close()

    rows = await database_sync_to_async(rows_dumped)(captures)
    events = await database_sync_to_async(timeline)(call_id)
    print("\ncaptured:", json.dumps(captures.sizes(), ensure_ascii=False, indent=1))
    print("rows:", rows)

    # What went through is there (the search has something to search) ...
    for model in (IdentityCheck, NationalCheck, BusinessCase, Receipt, Submission):
        assert rows[model._meta.db_table] >= 1, model
    dumped = captures.joined("rows")
    assert re.search(r'"\$sealed": ?1\b', dumped)  # sealed values ...
    assert re.search(r'"kid": ?"[^"]+"', dumped)  # ... naming their key
    kinds = [e["kind"] for e in events]
    for kind in ("kyc_consent", "peripheral", "kyc_fields", "kyc_national", "business"):
        assert kind in kinds, kind
    told = json.dumps(events, ensure_ascii=False)
    assert "欧***" in told  # the chip's holder, masked
    assert "310115********7316" in told
    assert "上海市***" in told  # the corrected address, masked
    assert f"{account[:4]} **** **** {account[-4:]}" in told  # the confirmed summary, masked
    assert f"{PAYEE_ACCOUNT[:4]} **** **** {PAYEE_ACCOUNT[-4:]}" in told
    consent = next(
        e["data"] for e in events if e["kind"] == "kyc_consent" and "accepted" in e["data"]
    )
    assert consent["geolocation"] == {"lat": 31.2, "lon": 121.5}
    # (the search finds the masked forms where they are, in the forms the rows store them)
    for masked in ("欧***", "310115********7316", "上海市***"):
        assert captures.hits(masked, names=["rows"]), masked
        assert captures.hits(masked, names=["writes"]), masked
    assert len(captures.by_name["writes"].texts) > 20

    # ... and no sentinel is in clear in any write to our tables, any row, any timeline event.
    for secret in (NAME, ID_NUMBER, ADDRESS_READ, ADDRESS, account, PAYEE_ACCOUNT, PAYEE.name):
        assert captures.hits(secret) == [], secret
        assert secret not in told, secret
    assert "31.230416" not in captures.joined("rows")  # the exact place neither
