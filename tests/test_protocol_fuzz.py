"""Issue 10, acceptance 3: the signaling sockets refuse every bad frame cleanly.

Over the real ASGI router (in process), a customer, a teller and a supervisor each send at least
10,000 generated frames (``tests/protocol_fuzz.py``: Hypothesis strategies built from the
protocol's schemas; about half valid with random values, half mutated: fields dropped or added,
wrong types, huge and odd strings, bad ids, deep nesting, numbers JSON does not have, keys
twice, escapes of NUL and lone surrogates, broken JSON, non-objects, binary and oversize
frames). The frames name real things — the ids of this call and its business cases, of calls
the fuzzing itself places and answers, of another call — so that they reach the services: the
core-banking and national-ID stubs answer over real HTTP (the test server), a registered
media worker runs in this process (aiortc reads the SDP offers).

The send runs in rounds, one per stage of a call (a business in draft, filled, its agreement
sent or read, confirmed and waiting for the PIN; an identity check waiting for consent or in
progress). Before each round — and again whenever the frames ended the call — the fuzzed call
is brought to the round's stage over the same sockets, as a page and a console would; then
each role sends its frames (drawn once per role, in a new order each round) in batches, all
three roles at once.

Meanwhile a second call is connected, with a passed identity check and a business waiting for
the customer to read its agreement. Asserted at the end:

- no frame was answered ``internal`` (every refusal is a code and words);
- no socket was lost: none closed, and each still answers ``ping``;
- nothing was logged at ERROR, nor with a traceback, by any logger of any thread (nor did an
  exception escape a thread);
- the other call is untouched: its rows (call, timeline, offers, identity check and evidence,
  businesses, recording, its teller's presence) and its recording's timeline are byte-identical
  before and after, and its two sockets were sent nothing but the tellers' queue snapshots.

The frames come from a seed (``VIDEOBANK_FUZZ_SEED``, printed) and their number per role from
``VIDEOBANK_FUZZ_FRAMES``; the counts are printed (frames sent per role, distinct frames, calls
set up, mutations, answers by code).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import json
import os
import random
import time
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async

from kyc.models import IdentityCheck, IdentityEvidence
from kyc.national.tasks import national_check_threads_join
from queueing.models import Call, CallEvent, Offer, TellerPresence
from recordings.models import Recording
from recordings.selectors import recording_timeline
from signaling.media.worker import MediaWorker
from tests.protocol_fuzz import (
    encode,
    errors_tapped,
    form_fill,
    frames_generate,
    ids_in,
    is_uuid,
    random_uuid,
    resolve,
)
from tests.sockets import Socket, session_cookie
from workflows.corebank.tasks import submission_threads_join
from workflows.corebank.testing import pin_encrypt
from workflows.corebank_stub.seed import BY_NAME, corebank_seed
from workflows.models import BusinessCase
from workflows.tests.test_workflows import identity_passed, stub_key_row  # noqa: F401 - fixture

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(900),
    pytest.mark.long,
]

FRAMES = int(os.environ.get("VIDEOBANK_FUZZ_FRAMES", "10000"))
SEED = int(os.environ.get("VIDEOBANK_FUZZ_SEED", "20261205"))
BATCH = 50  # frames sent before waiting for the socket to catch up
ZHANG = BY_NAME["张伟"]
TELLER, OTHER_TELLER, SUPERVISOR = "fuzz-teller", "fuzz-other-teller", "fuzz-supervisor"


@pytest.fixture
def fuzz_settings(settings, live_server, stub_key_row):  # noqa: F811 - the fixture above
    """The core-banking and national-ID stubs on the test server, fast; background work on
    threads of this process; no queue ticker."""
    from workflows.corebank_stub import crypto
    from workflows.corebank_stub.models import StubKey

    settings.MEDIA_WORKER_EMBEDDED = False
    settings.MEDIA_WORKER_STALE_S = 3600
    settings.QUEUE_TICKER = "off"
    settings.CELERY_TASK_ALWAYS_EAGER = True
    # The test's own server mounts the stubs whatever the profile (production's never does).
    settings.ROOT_URLCONF = "tests.stub_urls"
    settings.COREBANK_URL = f"{live_server.url}/ext/core-bank/v1"
    settings.COREBANK_STUB_LATENCY_MS = 0
    settings.COREBANK_STUB_JITTER_MS = 0
    settings.COREBANK_STUB_PIN_ITERATIONS = 1000
    settings.COREBANK_RETRY_BACKOFF_S = 0.05
    settings.COREBANK_MAX_RETRIES = 2
    national = f"{live_server.url}/ext/national-id/v1"
    settings.KYC_NATIONAL_CHANNELS = [f"{national}/primary", f"{national}/secondary"]
    settings.KYC_NATIONAL_RETRY_BACKOFF_S = 0.05
    settings.NATIONAL_STUB_LATENCY_MS = 0
    settings.NATIONAL_STUB_JITTER_MS = 0
    settings.WORKFLOW_AGREEMENT_MIN_READ_MS = 0  # the director agrees at once
    # The director places about 40 calls in a run from one address: the limits are checked on
    # every call.request (their code runs) but set out of its way.
    settings.QUEUE_CALL_REQUESTS_PER_IP = settings.QUEUE_CALL_REQUESTS_PER_DEVICE = 10_000
    settings.QUEUE_OPEN_CALLS_PER_IP = settings.QUEUE_OPEN_CALLS_PER_DEVICE = 100
    StubKey.objects.create(
        kid=stub_key_row["kid"],
        public_spki_b64=stub_key_row["public"],
        private_sealed=crypto.seal(stub_key_row["pkcs8"], context=stub_key_row["kid"].encode()),
    )
    corebank_seed()
    return settings


# --- what the frames name ----------------------------------------------------------------------


async def offers_made() -> list[str]:
    """SDP offers as browsers make them: audio and video, audio only, video only."""
    from aiortc import RTCConfiguration, RTCPeerConnection

    out = []
    for kinds in (("audio", "video"), ("audio",), ("video",)):
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        for kind in kinds:
            pc.addTransceiver(kind)
        await pc.setLocalDescription(await pc.createOffer())
        out.append(pc.localDescription.sdp)
        await pc.close()
    return out


def _pictures() -> list[str]:
    """Chip photos as the reader might send them (base64): JPEGs, a PNG, broken ones."""
    import io

    from PIL import Image

    out = []
    for size, fmt in (((102, 126), "JPEG"), ((40, 40), "PNG"), ((600, 700), "JPEG")):
        image = Image.effect_noise(size, 60).convert("RGB")
        buffer = io.BytesIO()
        image.save(buffer, format=fmt, quality=70)
        out.append(buffer.getvalue())
    out += [
        out[0][: len(out[0]) // 2],
        b"\xff\xd8\xff\xe0" + b"\x00" * 60,
        b"GIF89a" + b"\x01" * 20,
    ]
    return [base64.b64encode(p).decode() for p in out if len(p) * 4 // 3 < 48_000]


ID_FIELDS = {
    "name": ZHANG.name,
    "sex": "男",
    "ethnicity": "汉",
    "birth": ZHANG.id_number[6:14],
    "address": "北京市东城区东华门街道1号",
    "id_number": ZHANG.id_number,
    "authority": "北京市公安局东城分局",
    "validity": "2020.03.07-2040.03.07",
}


WRONG_FIELDS = {
    "id_number": "110101199003071234",  # checksum
    "birth": "19990101",  # not the number's
    "validity": "2040.03.07-2020.03.07",  # ends before it starts
    "name": "Z",
}


class Pools:
    """Live values the generated frames name (see ``protocol_fuzz.Pool``), learned from what the
    sockets are sent, plus the other call's ids and random ones."""

    def __init__(self, *, other_call, other_case):
        self.calls: list[str] = []
        self.cases: list[str] = []
        self.other = {"call": other_call, "case": other_case}
        self.tokens: list[str] = []
        self.ended: set[str] = set()
        self.end_reasons: collections.Counter = collections.Counter()
        self.challenges: list[str] = []
        self.keypads: list[dict] = []
        self.forms: list[list[dict]] = []
        self.pictures = _pictures()
        self.offers: list[str] = []  # set by the test (made by aiortc, as a browser would)
        self.businesses = [
            "account_change",
            "card_loss",
            "password_reset",
            "consultation",
            "details_update",
            "transfer",
            "card_loss_report",
            "time_deposit_open",
            "risk_assessment",
            "mobile_change",
        ]
        self.tellers = [TELLER, OTHER_TELLER, SUPERVISOR, "nobody", "admin"]

    def learn(self, message: dict) -> None:
        for call_id in ids_in(message, "call_id"):
            if is_uuid(call_id) and call_id not in self.calls and call_id != self.other["call"]:
                self.calls.append(call_id)
        for case_id in ids_in(message, "case_id"):
            if is_uuid(case_id) and case_id not in self.cases and case_id != self.other["case"]:
                self.cases.append(case_id)
        if message.get("type") == "call.queued":
            self.tokens.append(message["token"])
        if message.get("type") == "call.ended":
            self.ended.add(message["call_id"])
            self.end_reasons[message.get("reason")] += 1
        if message.get("type") == "case.pin_request":
            self.challenges.append(message["challenge_id"])
            self.keypads.append(message)
        if message.get("type") == "case.state" and message["case"].get("form"):
            self.forms = [message["case"]["form"], *self.forms[:9]]

    def pick(self, kind: str, rng: random.Random):
        roll = rng.random()
        if kind in ("call", "case"):
            own = self.calls if kind == "call" else self.cases
            if roll < 0.15:
                return self.other[kind]
            if roll < 0.25 or not own:
                return random_uuid(rng)
            # The latest are the likeliest to be in a state where something can happen.
            return own[-1 - min(int(rng.expovariate(0.7)), len(own) - 1)]
        if kind == "token":
            if not self.tokens or roll < 0.2:
                return rng.choice(["", "x" * 999, "e30:1tok:sig", base64.b64encode(b"{}").decode()])
            token = rng.choice(self.tokens[-3:])
            return token if roll < 0.8 else token[:-2] + "xx"
        if kind == "challenge":
            if self.challenges and roll < 0.8:
                return rng.choice(self.challenges[-3:])
            return "".join(rng.choice("abcdef0123456789") for _ in range(rng.randint(8, 64)))
        if kind == "ciphertext":
            if self.keypads and roll < 0.7:
                keypad = rng.choice(self.keypads[-2:])
                pin = ZHANG.pin if roll < 0.3 else f"{rng.randrange(10**6):06d}"
                return pin_encrypt(
                    public_key_spki_b64=keypad["public_key_spki_b64"],
                    nonce=keypad["nonce"],
                    pin=pin,
                )
            return base64.b64encode(rng.randbytes(rng.choice([12, 48, 384]))).decode()
        if kind == "form":
            return form_fill(rng.choice(self.forms), rng) if self.forms else {}
        if kind == "teller":
            return rng.choice(self.tellers)
        if kind == "business":
            return rng.choice(self.businesses)
        if kind == "photo":
            return rng.choice(self.pictures)
        if kind == "sdp":
            offer = rng.choice(self.offers)
            if roll < 0.5:
                return offer
            line = rng.choice([line for line in offer.split("\r\n") if line])
            return offer.replace(line + "\r\n", "" if roll < 0.8 else line[: len(line) // 2])
        if kind == "id_fields":
            fields = dict(ID_FIELDS)
            if roll < 0.3:  # one field against the card's rules (within the schema)
                name, value = rng.choice(sorted(WRONG_FIELDS.items()))
                fields[name] = value
            elif roll < 0.5:
                for name in rng.sample(sorted(fields), rng.randint(1, len(fields))):
                    del fields[name]
            return fields
        raise AssertionError(kind)


class Tally:
    def __init__(self) -> None:
        self.rounds: list[str] = []
        self.setups: collections.Counter = collections.Counter()
        self.setting_up_s = 0.0
        self.distinct: dict[str, set] = collections.defaultdict(set)
        self.sent: collections.Counter = collections.Counter()
        self.answers: collections.Counter = collections.Counter()
        self.internal: list[tuple[str, dict, str]] = []  # role, answer, the frame sent

    def heard(self, role: str, message: dict, sent: dict | None = None) -> None:
        if message.get("type") == "error":
            self.answers[f"{role} error:{message['code']}"] += 1
            if message["code"] == "internal":
                frame = (sent or {}).get(message.get("ref"), "(a frame without an id)")
                self.internal.append((role, message, frame))
        else:
            self.answers[f"{role} {message.get('type')}"] += 1


# --- the calls ---------------------------------------------------------------------------------


async def teller_socket(username: str, *groups: str, path: str = "/ws/teller/") -> Socket:
    sock = Socket(path, await database_sync_to_async(session_cookie)(username, *groups))
    await sock.open()
    return sock


class Director:
    """Brings the fuzzed call to where a round starts, as a well-behaved customer page and
    teller console would, over the same sockets (whatever else arrives is counted and learned)."""

    def __init__(self, customer: Socket, teller: Socket, pools: Pools, tally: Tally):
        self.customer, self.teller, self.pools, self.tally = customer, teller, pools, tally
        self.current = ""

    async def wait(self, role: str, type_: str, where=lambda m: True, timeout: float = 30):
        sock = self.customer if role == "customer" else self.teller
        while True:
            message = await sock.recv(timeout=timeout)
            self.tally.heard(role, message)
            self.pools.learn(message)
            if message["type"] == type_ and where(message):
                return message

    async def answered_call(self, *, keep: str) -> str:
        """End whatever the last round left open (but the other call), then a fresh call from
        the customer, answered by the teller."""
        await database_sync_to_async(calls_reset)(keep=keep)
        await self.teller.send("presence.set", status="available")
        await self.customer.send("call.request", business="account_change")
        call_id = (await self.wait("customer", "call.queued"))["call_id"]
        await self.wait("teller", "call.offer", where=lambda m: m["call_id"] == call_id)
        await self.teller.send("call.accept", call_id=call_id)
        ours: dict[str, Any] = {"where": lambda m: m["call_id"] == call_id}
        await self.wait("teller", "call.connected", **ours)
        await self.wait("customer", "call.answered", **ours)
        return call_id

    async def business(self, call_id: str, stage: str) -> None:
        """Identity passed and a business started, then moved on to ``stage``."""
        await database_sync_to_async(lambda: identity_passed(Call.objects.get(pk=call_id)))()
        await self.teller.send("case.start", call_id=call_id, business="details_update")
        started = await self.wait("teller", "case.state", where=lambda m: m["call_id"] == call_id)
        case_id = started["case"]["case_id"]
        if stage == "draft":
            return
        mine: dict[str, Any] = {
            "where": lambda m: m.get("case_id", m.get("case", {}).get("case_id")) == case_id
        }
        await self.teller.send(
            "case.fill",
            call_id=call_id,
            case_id=case_id,
            params={"address": ID_FIELDS["address"], "occupation": "employee"},
        )
        await self.wait(
            "teller",
            "case.state",
            where=lambda m: m["case"]["case_id"] == case_id and m["case"]["status"] == "filled",
        )
        if stage == "filled":
            return
        await self.teller.send("case.agreement.send", call_id=call_id, case_id=case_id)
        await self.wait("customer", "case.agreement", **mine)
        if stage == "agreement":
            return
        await self.customer.send(
            "case.agreement.read",
            call_id=call_id,
            case_id=case_id,
            reached_end=True,
            reading_ms=1500,
        )
        await self.wait("customer", "case.confirm_request", **mine)
        if stage == "confirm":
            return
        await self.customer.send("case.confirm", call_id=call_id, case_id=case_id, accepted=True)
        await self.wait("customer", "case.pin_request", **mine)

    async def identity_check(self, call_id: str, *, consent: bool) -> None:
        await self.teller.send("kyc.start", call_id=call_id)
        await self.wait("customer", "kyc.consent_request", where=lambda m: m["call_id"] == call_id)
        if consent:
            await self.customer.send("kyc.consent", call_id=call_id, accepted=True)
            await self.wait(
                "teller",
                "kyc.state",
                where=lambda m: m["call_id"] == call_id and m["check"]["status"] == "in_progress",
            )

    async def round(self, stage: str, *, keep: str) -> None:
        began = time.monotonic()
        self.current = call_id = await self.answered_call(keep=keep)
        self.tally.setups[stage] += 1
        if stage in ("consent", "identity"):
            await self.identity_check(call_id, consent=stage == "identity")
        else:
            await self.business(call_id, stage)
        self.tally.setting_up_s += time.monotonic() - began


# Where the fuzzed call stands when each round begins (one round each, in this order).
STAGES = ["draft", "consent", "agreement", "identity", "confirm", "filled", "pin"]


def calls_reset(*, keep: str) -> None:
    """Every open call but ``keep`` ends; every teller but the other call's goes offline."""
    from queueing.models import OPEN_CALL_STATUSES, PresenceStatus
    from queueing.services import call_end, teller_presence_set

    for call in Call.objects.filter(status__in=OPEN_CALL_STATUSES).exclude(pk=keep):
        call_end(call_id=call.id, actor="test", reason="round_over")
    for presence in TellerPresence.objects.exclude(teller__username=OTHER_TELLER).select_related(
        "teller"
    ):
        if presence.status != PresenceStatus.OFFLINE:
            teller_presence_set(teller=presence.teller, status=PresenceStatus.OFFLINE)


async def other_call_made(customer: Socket, teller: Socket) -> tuple[str, str]:
    """The other call: answered, identity passed, a business waiting for the customer to read
    its agreement."""
    await customer.send("call.request", business="account_change")
    call_id = (await customer.expect("call.queued"))["call_id"]
    await teller.send("presence.set", status="available")
    await teller.expect("call.offer", where=lambda m: m["call_id"] == call_id)
    await teller.send("call.accept", call_id=call_id)
    await teller.expect("call.connected")
    await customer.expect("call.answered")
    await database_sync_to_async(lambda: identity_passed(Call.objects.get(pk=call_id)))()
    await teller.send("case.start", call_id=call_id, business="details_update")
    case_id = (await teller.expect("case.state", timeout=30))["case"]["case_id"]
    await teller.send(
        "case.fill",
        call_id=call_id,
        case_id=case_id,
        params={"address": ID_FIELDS["address"], "occupation": "employee"},
    )
    await teller.expect("case.state", timeout=30, where=lambda m: m["case"]["status"] == "filled")
    await teller.send("case.agreement.send", call_id=call_id, case_id=case_id)
    await customer.expect("case.agreement")
    return call_id, case_id


def _plain(value):
    if isinstance(value, (bytes, memoryview)):
        return bytes(value).hex()
    return str(value)


def call_state(call_id: str) -> str:
    """Everything the database holds of a call, as text."""
    rows = {
        "call": list(Call.objects.filter(pk=call_id).values()),
        "events": list(CallEvent.objects.filter(call_id=call_id).order_by("id").values()),
        "offers": list(Offer.objects.filter(call_id=call_id).order_by("id").values()),
        "checks": list(IdentityCheck.objects.filter(call_id=call_id).order_by("id").values()),
        "evidence": list(
            IdentityEvidence.objects.filter(identity_check__call_id=call_id).order_by("id").values()
        ),
        "cases": list(BusinessCase.objects.filter(call_id=call_id).order_by("id").values()),
        "recording": list(Recording.objects.filter(call_id=call_id).values()),
        "timeline": recording_timeline(Recording.objects.get(call_id=call_id)),
        "presence": list(TellerPresence.objects.filter(teller__username=OTHER_TELLER).values()),
    }
    return json.dumps(rows, sort_keys=True, default=_plain, ensure_ascii=False)


# --- around the fuzzing ------------------------------------------------------------------------


async def listening(sock: Socket, heard: list[dict]) -> None:
    while True:
        heard.append(await sock.recv(timeout=3600))


async def fuzzed(role: str, sock: Socket, batch, pools: Pools, tally: Tally, rng) -> None:
    """Send one batch of frames, then wait for the socket's answer to a marker frame (a socket
    handles its frames in order), counting and learning from what came back."""
    sent: dict[str, str] = {}
    for frame in batch:
        message = resolve(frame.message, lambda kind: pools.pick(kind, rng))
        if isinstance(message, dict) and "id" not in message and rng.random() < 0.9:
            # An id of its own, so that an answer names the frame it answers (``ref``).
            message = {**message, "id": f"{role[0]}{tally.sent[role]}"}
            sent[message["id"]] = ""
        text, data = encode(frame, message, rng)
        own_id = message.get("id") if isinstance(message, dict) else None
        if isinstance(own_id, str) and own_id in sent:
            sent[own_id] = (text or "")[:500]
        # Straight to the application: the communicator's send_to refuses an empty frame.
        wire: dict[str, Any] = {"text": text} if data is None else {"bytes": data}
        await sock.comm.send_input({"type": "websocket.receive", **wire})
        tally.sent[role] += 1
        tally.distinct[role].add(hash((text, data)))
    marker = f"sync-{role}-{tally.sent[role]}"
    await sock.send_raw(json.dumps({"type": "ping", "v": 1, "id": marker, "sync": True}))
    while True:
        reply = await sock.recv(timeout=120)
        if reply.get("ref") == marker:
            return
        tally.heard(role, reply, sent)
        pools.learn(reply)


async def still_answers(role: str, sock: Socket, tally: Tally) -> None:
    await sock.send("ping")
    while (reply := await sock.recv(timeout=60))["type"] != "pong":
        tally.heard(role, reply)


async def test_generated_frames_are_refused_cleanly(fuzz_settings, monkeypatch):
    errors = errors_tapped(monkeypatch)
    # The media worker itself, in this process: offers reach aiortc, grabs its sampling.
    worker = MediaWorker()
    await worker.register()
    working = asyncio.ensure_future(worker.run())
    started = time.monotonic()

    # The other call first (its teller is the only one available).
    other_customer = Socket("/ws/customer/")
    await other_customer.open()
    other_teller = await teller_socket(OTHER_TELLER, "teller")
    other_call, other_case = await other_call_made(other_customer, other_teller)
    # The fuzzed call's sockets, and a supervisor's.
    customer = Socket("/ws/customer/")
    await customer.open()
    teller = await teller_socket(TELLER, "teller")
    supervisor = await teller_socket(SUPERVISOR, "supervisor", path="/ws/supervisor/")
    roles = {"customer": customer, "teller": teller, "supervisor": supervisor}
    for sock in (other_customer, other_teller, *roles.values()):
        await sock.pending()

    before = await database_sync_to_async(call_state)(other_call)
    other_heard: dict[str, list[dict]] = {"customer": [], "teller": []}
    listeners = [
        asyncio.ensure_future(listening(other_customer, other_heard["customer"])),
        asyncio.ensure_future(listening(other_teller, other_heard["teller"])),
    ]

    # Each role's frames: drawn once, sent once in each round, in a new order each time.
    per_round = -(-FRAMES // len(STAGES))
    corpus = {
        role: await sync_to_async(frames_generate, thread_sensitive=False)(
            role, per_round, SEED + n
        )
        for n, role in enumerate(roles)
    }
    generated = time.monotonic()
    pools = Pools(other_call=other_call, other_case=other_case)
    pools.offers = await offers_made()
    tally = Tally()
    director = Director(customer, teller, pools, tally)
    rngs = {role: random.Random(f"{SEED}-{role}") for role in roles}
    for stage in STAGES:
        await director.round(stage, keep=other_call)
        order = {role: rngs[role].sample(corpus[role], per_round) for role in roles}
        for start in range(0, per_round, BATCH):
            # A batch from each role at once; then, if the round's call has ended, a new one is
            # brought to the round's stage.
            await asyncio.gather(
                *(
                    fuzzed(role, sock, order[role][start : start + BATCH], pools, tally, rngs[role])
                    for role, sock in roles.items()
                )
            )
            if director.current in pools.ended:
                await director.round(stage, keep=other_call)
        tally.rounds.append(stage)
    for role, sock in roles.items():
        await still_answers(role, sock, tally)
    sent = time.monotonic()
    for task in listeners:
        task.cancel()
    worker.stop()
    await working
    # What the frames set going on threads of their own (national checks, core-bank
    # submissions) ends before the verdict: its errors count too.
    assert await sync_to_async(national_check_threads_join, thread_sensitive=False)(60)
    assert await sync_to_async(submission_threads_join, thread_sensitive=False)(60)

    print(f"\nprotocol fuzz: seed {SEED} (VIDEOBANK_FUZZ_SEED), {FRAMES} frames per role")
    print(
        f"set up and generated in {generated - started:.1f} s, "
        f"sent and answered in {sent - generated:.1f} s; rounds: {', '.join(tally.rounds)}"
    )
    print("frames sent:", dict(tally.sent))
    print(f"calls set up per stage ({tally.setting_up_s:.1f} s):", dict(tally.setups))
    print("distinct frames sent:", {role: len(seen) for role, seen in tally.distinct.items()})
    print("mutations:", dict(collections.Counter(f.mutation for c in corpus.values() for f in c)))
    print("answers by code:", json.dumps(dict(sorted(tally.answers.items())), indent=1))
    print(f"calls named: {len(pools.calls)}, cases named: {len(pools.cases)}")
    print("calls ended:", dict(pools.end_reasons))

    assert min(tally.sent.values()) >= FRAMES
    assert tally.internal == [], tally.internal[:5]
    assert [(r.name, r.getMessage()) for r in errors] == []
    # The other call: untouched, and nothing about it (nor anything of the fuzzed call) reached
    # its sockets, which still answer.
    after = await database_sync_to_async(call_state)(other_call)
    assert after == before
    assert other_heard["customer"] == []
    assert {m["type"] for m in other_heard["teller"]} <= {"queue.snapshot"}
    for sock in (other_customer, other_teller):
        await sock.alive()
    for sock in (*roles.values(), other_customer, other_teller):
        await sock.close()
