"""The stub of the bank's core system: customers, PIN challenges, operations with idempotency
keys, fault controls.

It behaves like the outside service our client talks to:

- an operation sent with an idempotency key is carried out once; the same key again gets the
  recorded answer (``replayed: true``) and no second effect, even when the two arrive at the
  same moment from two processes; the same key with another request is refused;
- business errors are final answers, recorded like successes, in English and Chinese;
- outages and injected errors are not answers and are not recorded; a "lost answer" (the
  operation committed, the reply dropped) is what makes the idempotency key necessary;
- PINs arrive encrypted for the stub's RSA key (OAEP-SHA-256) inside one-use challenges; three
  wrong PINs lock the PIN; one-time codes go to the reserved mobile through a simulated SMS
  outbox that only ``stub_last_otp`` reads.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import random
import re
import threading
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from kyc.idcard.numbers import id_number_checksum_ok, id_number_clean
from videobank.outside.stubs.answers import BadRequest, NotFound, Unprocessable
from videobank.outside.stubs.faults import FaultControls, FaultState
from videobank.outside.stubs.keys import StubKeys
from videobank.outside.stubs.records import AnswerRecords
from workflows.corebank.masking import account_mask, id_number_mask, mobile_mask, name_mask

from . import crypto
from .conf import stub_setting
from .models import (
    Account,
    AccountStatus,
    Card,
    CardStatus,
    ChallengeMethod,
    Customer,
    CustomerStatus,
    LedgerEntry,
    LedgerKind,
    OperationRequest,
    OperationStatus,
    PinChallenge,
    SmsMessage,
    StubControl,
    StubKey,
)
from .numbers import account_number_new, card_number_new
from .operations import (
    AUTHORISATION,
    AUTHORISATION_WORDS,
    OPERATIONS,
    BusinessError,
    transferred_today,
    weak_pin,
)

log = logging.getLogger(__name__)

KEY_RE = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")
CUSTOMER_REF_RE = re.compile(r"^[A-Z0-9]{4,20}$")
CHALLENGE_ID_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
PURPOSE_RE = re.compile(r"^[a-z0-9_]{1,40}$")
PIN_RE = re.compile(r"^\d{6}$")
MAX_PARAMS_BYTES = 16 * 1024
MAX_CIPHERTEXT_BYTES = 1024  # RSA-3072 gives 384
# Purposes for which the customer proves themselves with a code sent to the reserved mobile
# (they have forgotten the PIN), unless the caller names the method.
OTP_PURPOSES = {"password_reset"}
OTP_MAX_ATTEMPTS = 3
# Entries of any kind (wrong, unreadable...) one challenge takes before it stops listening.
MAX_ENTRIES_PER_CHALLENGE = 10
OTP_MAX_PER_10_MIN = 5

_rng = random.SystemRandom()


class Refused(Unprocessable):
    """A "no" in words that is not about an operation (e.g. a PIN challenge for a locked PIN)."""

    def __init__(self, error: BusinessError):
        super().__init__(error.en, code=error.code)
        self.en, self.zh = error.en, error.zh
        self.words = {"en": error.en, "zh": error.zh}


# The key its callers present (X-Api-Key) and its developer endpoints' admin key.
KEYS = StubKeys(
    api_setting="COREBANK_STUB_API_KEY",
    admin_setting="COREBANK_STUB_ADMIN_KEY",
    en="the core-banking stub",
    zh="核心系统模拟服务",
)


# --- fault controls ----------------------------------------------------------------------------
# One control row (``default``); ``lose_answers``: the next N operations are carried out and
# their answers lost (HTTP 504), what a caller sees when the core commits and the network drops
# the reply.
FAULTS = FaultControls(
    model=StubControl,
    key_field="name",
    keys=lambda: ("default",),
    setting_prefix="COREBANK_STUB_",
    defaults=(100, 30, 0.0),
    label="core-bank stub",
    stub_keys=KEYS,
    counters={"lose_answers": 1000},
)


def stub_state() -> FaultState:
    """The faults in force: the control row where set, else the settings."""
    return FAULTS.state("default")


def stub_control_set(**changes: Any) -> FaultState:
    """Change the faults (``outage``, ``latency_ms``, ``jitter_ms``, ``error_rate``,
    ``lose_answers``); a field left out keeps its value, None returns it to the settings
    default."""
    return FAULTS.set("default", **changes)


def stub_control_reset() -> None:
    """Back to the settings defaults, no outage, no lost answers."""
    FAULTS.reset()


def stub_answer_lose() -> bool:
    """Take one from the lost-answers count, if any is left: True means drop this answer."""
    return FAULTS.take("default", "lose_answers")


# --- customers ---------------------------------------------------------------------------------
def _customer(customer_ref: object, *, lock: bool = False) -> Customer:
    if not isinstance(customer_ref, str) or not CUSTOMER_REF_RE.match(customer_ref):
        raise BadRequest(
            "customer_ref must be 4-20 capital letters or digits", field="customer_ref"
        )
    query = Customer.objects.select_for_update() if lock else Customer.objects
    customer = query.filter(customer_ref=customer_ref).first()
    if customer is None:
        raise NotFound(f"no customer {customer_ref}", code="customer_not_found")
    return customer


def customer_view(customer: Customer) -> dict[str, Any]:
    """What the core tells the bank's client about a customer — what a business form and its
    rules need, nothing more: accounts in full (the teller picks one), cards by token with a
    masked number, the reserved mobile masked, limits, the risk level. Not the ID number (the
    caller has it), not the address, occupation or e-mail, not the PIN's state (a PIN request
    says whether it is locked)."""
    accounts = [
        {
            "number": a.number,
            "number_masked": account_mask(a.number),
            "kind": a.kind,
            "currency": a.currency,
            "balance": str(a.balance),
            "status": a.status,
            "holder_name": a.holder_name or customer.name,
            **(
                {
                    "term_months": a.term_months,
                    "rate_percent": str(a.rate_percent),
                    "maturity_date": a.maturity_date.isoformat() if a.maturity_date else None,
                }
                if a.term_months
                else {}
            ),
        }
        for a in customer.accounts.order_by("opened_at", "id")
    ]
    cards = [
        {
            "token": c.token,
            "number_masked": account_mask(c.number),
            "account_number_masked": account_mask(c.account.number),
            "status": c.status,
        }
        for c in customer.cards.select_related("account").order_by("id")
    ]
    return {
        "customer_ref": customer.customer_ref,
        "name": customer.name,
        "mobile_masked": mobile_mask(customer.mobile),
        "status": customer.status,
        "risk_level": customer.risk_level,
        "accounts": accounts,
        "cards": cards,
        "limits": {
            "per_transaction": str(customer.per_transaction_limit),
            "daily": str(customer.daily_transfer_limit),
            "used_today": str(transferred_today(customer)),
        },
    }


def customer_lookup(*, id_number: object) -> dict[str, Any]:
    """The customer holding an ID number; NotFound if the bank has none."""
    number = id_number_clean(id_number) if isinstance(id_number, str) else ""
    if not id_number_checksum_ok(number):
        raise BadRequest("id_number is not a valid 18-character ID number", field="id_number")
    customer = Customer.objects.filter(id_number=number).first()
    log.info(
        "core-bank stub: lookup %s -> %s",
        id_number_mask(number),
        customer.customer_ref if customer else "not a customer",
    )
    if customer is None:
        raise NotFound("not a customer of the bank", code="customer_not_found")
    return customer_view(customer)


# --- PIN challenges ----------------------------------------------------------------------------
_private_keys: dict[str, object] = {}
_private_keys_lock = threading.Lock()


def key_current() -> StubKey:
    """The newest key pair, made on first use (two processes making one each is harmless: every
    challenge names its own key)."""
    key = StubKey.objects.order_by("-created_at", "-id").first()
    if key is not None:
        return key
    public_b64, pkcs8, private = crypto.keypair_generate()
    kid = crypto.token(12)
    key = StubKey.objects.create(
        kid=kid,
        public_spki_b64=public_b64,
        private_sealed=crypto.seal(pkcs8, context=kid.encode()),
    )
    with _private_keys_lock:
        _private_keys[kid] = private
    log.info("core-bank stub: new RSA-%d key %s for PIN encryption", crypto.RSA_BITS, kid)
    return key


def _private_key(key: StubKey) -> Any:  # a cryptography RSA private key
    with _private_keys_lock:
        private = _private_keys.get(key.kid)
    if private is None:
        private = crypto.private_key_load(
            crypto.unseal(key.private_sealed, context=key.kid.encode())
        )
        with _private_keys_lock:
            _private_keys[key.kid] = private
    return private


def _challenge_ttl() -> timedelta:
    return timedelta(seconds=stub_setting("COREBANK_STUB_CHALLENGE_TTL_S", 300.0, float))


def _max_pin_failures() -> int:
    return int(stub_setting("COREBANK_STUB_MAX_PIN_FAILURES", 3, int))


PIN_LOCKED = BusinessError(
    "pin_locked",
    "The PIN is locked after too many wrong entries; reset it (password reset).",
    "密码错误次数过多，已被锁定，请办理密码重置。",
)
NO_PIN = BusinessError(
    "no_pin",
    "The customer has no PIN yet; use a one-time code or set a PIN.",
    "客户尚未设置密码，请使用短信验证码或设置密码。",
)


def pin_challenge_create(
    *, customer_ref: object, purpose: object, method: object = None
) -> dict[str, Any]:
    """A one-use request for the PIN (``pin``), a code sent to the reserved mobile (``otp``), or
    a new PIN (``new_pin``, spent by password_reset). ``method`` defaults by purpose:
    ``new_pin`` for purpose new_pin, ``otp`` for password_reset, else ``pin``."""
    if not isinstance(purpose, str) or not PURPOSE_RE.match(purpose):
        raise BadRequest("purpose must be 1-40 of a-z 0-9 _", field="purpose")
    if method is None:
        if purpose == "new_pin":
            method = ChallengeMethod.NEW_PIN
        elif purpose in OTP_PURPOSES:
            method = ChallengeMethod.OTP
        else:
            method = ChallengeMethod.PIN
    if not isinstance(method, str) or method not in ChallengeMethod.values:
        raise BadRequest(
            f"method must be one of {', '.join(ChallengeMethod.values)}", field="method"
        )
    key = key_current()
    now = timezone.now()
    code = None
    with transaction.atomic():
        customer = _customer(customer_ref, lock=True)
        if customer.status != CustomerStatus.ACTIVE:
            raise Refused(_frozen())
        if method == ChallengeMethod.PIN:
            if customer.pin_locked:
                raise Refused(PIN_LOCKED)
            if not customer.pin_hash:
                raise Refused(NO_PIN)
        challenge = PinChallenge(
            challenge_id=crypto.token(16),
            customer=customer,
            purpose=purpose,
            method=method,
            nonce=crypto.token(16),
            key=key,
            expires_at=now + _challenge_ttl(),
        )
        if method == ChallengeMethod.OTP:
            recent = SmsMessage.objects.filter(
                customer=customer, created_at__gte=now - timedelta(minutes=10)
            ).count()
            if recent >= OTP_MAX_PER_10_MIN:
                raise Refused(
                    BusinessError(
                        "otp_too_many",
                        "Too many codes sent to this mobile; wait ten minutes.",
                        "验证码发送过于频繁，请十分钟后再试。",
                    )
                )
            code = crypto.otp_make()
            challenge.otp_hash = crypto.secret_hash(code)
        challenge.save()
        if code is not None:
            minutes = int(_challenge_ttl().total_seconds() // 60)
            text = (
                f"【视频银行】验证码 {code}，{minutes} 分钟内有效，请勿告诉他人。"
                f" VideoBank code {code}, valid {minutes} min."
            )
            sms = SmsMessage.objects.create(
                mobile_masked=mobile_mask(customer.mobile),
                customer=customer,
                challenge=challenge,
                text_sealed=b"",
            )
            sms.text_sealed = crypto.seal(text.encode(), context=f"sms:{sms.pk}".encode())
            sms.save(update_fields=["text_sealed"])
    log.info(
        "core-bank stub: %s challenge %s for %s (%s)%s",
        method,
        challenge.challenge_id,
        customer.customer_ref,
        purpose,
        f", code sent to {mobile_mask(customer.mobile)}" if code else "",
    )
    answer = {
        "challenge_id": challenge.challenge_id,
        "public_key_spki_b64": key.public_spki_b64,
        "nonce": challenge.nonce,
        "method": method,
        "purpose": purpose,
        "expires_at": challenge.expires_at.isoformat(),
    }
    if code is not None:
        answer["mobile_masked"] = mobile_mask(customer.mobile)
    return answer


def _frozen() -> BusinessError:
    return BusinessError(
        "customer_frozen",
        "The customer's relationship with the bank is frozen.",
        "客户状态为冻结，暂停办理业务。",
    )


def _verdict(
    challenge: PinChallenge | None, *, ok: bool, code: str, en: str, zh: str, attempts_left: int
) -> dict[str, Any]:
    customer = challenge.customer if challenge is not None else None
    return {
        "ok": ok,
        "code": code,
        "en": en,
        "zh": zh,
        "attempts_left": attempts_left,
        # The PIN is locked: only a PIN request is stopped by that (a one-time code for a
        # password reset is how a locked customer gets a new PIN).
        "locked": bool(
            challenge is not None
            and challenge.customer.pin_locked
            and challenge.method == ChallengeMethod.PIN
        ),
        "method": challenge.method if challenge else "",
        "purpose": challenge.purpose if challenge else "",
        "customer_ref": customer.customer_ref if customer else "",
    }


def pin_verify(*, challenge_id: object, ciphertext_b64: object) -> dict[str, Any]:
    """Check what the customer entered, encrypted for this challenge. Always an answer
    (``ok``, ``code``, words, ``attempts_left``, ``locked``): a replayed ciphertext, a nonce of
    another challenge, an expired or spent challenge are refused without counting as a wrong
    PIN; a wrong PIN counts, and the last allowed one locks the PIN."""
    if not isinstance(challenge_id, str) or not CHALLENGE_ID_RE.match(challenge_id):
        raise BadRequest("challenge_id is malformed", field="challenge_id")
    if not isinstance(ciphertext_b64, str):
        raise BadRequest("ciphertext_b64 must be base64 text", field="ciphertext_b64")
    try:
        ciphertext = base64.b64decode(ciphertext_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadRequest("ciphertext_b64 is not base64", field="ciphertext_b64") from exc
    if not ciphertext or len(ciphertext) > MAX_CIPHERTEXT_BYTES:
        raise BadRequest("ciphertext_b64 has the wrong size", field="ciphertext_b64")
    seen = hashlib.sha256(ciphertext).hexdigest()
    with transaction.atomic():
        challenge = (
            PinChallenge.objects.select_for_update()
            .select_related("customer", "key")
            .filter(challenge_id=challenge_id)
            .first()
        )
        if challenge is None:
            return _verdict(
                None,
                ok=False,
                code="unknown_challenge",
                en="This PIN request is unknown; ask for a new one.",
                zh="密码输入请求无效，请重新发起。",
                attempts_left=0,
            )
        customer = Customer.objects.select_for_update().get(pk=challenge.customer_id)
        challenge.customer = customer
        verdict = _pin_verify_locked(challenge, customer, ciphertext, seen)
    log.info(
        "core-bank stub: %s challenge %s for %s -> %s (attempts left %d%s)",
        challenge.method,
        challenge.challenge_id,
        customer.customer_ref,
        verdict["code"],
        verdict["attempts_left"],
        ", locked" if verdict["locked"] else "",
    )
    return verdict


def _pin_verify_locked(
    challenge: PinChallenge, customer: Customer, ciphertext: bytes, seen: str
) -> dict[str, Any]:
    max_failures = _max_pin_failures()

    def pin_left() -> int:
        return 0 if customer.pin_locked else max(0, max_failures - customer.pin_failures)

    def left() -> int:
        if challenge.method == ChallengeMethod.OTP:
            return max(0, OTP_MAX_ATTEMPTS - challenge.attempts)
        return pin_left() if challenge.method == ChallengeMethod.PIN else 1

    def refuse(code: str, en: str, zh: str) -> dict[str, Any]:
        return _verdict(challenge, ok=False, code=code, en=en, zh=zh, attempts_left=left())

    if len(challenge.seen_ciphertexts) >= MAX_ENTRIES_PER_CHALLENGE:
        return refuse(
            "too_many_entries",
            "Too many entries on this request; ask for a new one.",
            "本次请求输入次数过多，请重新发起。",
        )
    if seen in challenge.seen_ciphertexts or challenge.verified_at is not None:
        return refuse(
            "replayed",
            "This entry was already used; enter it again on a new request.",
            "该输入已使用过，请重新输入。",
        )
    challenge.seen_ciphertexts = [*challenge.seen_ciphertexts, seen]
    challenge.save(update_fields=["seen_ciphertexts"])
    if challenge.expires_at < timezone.now():
        return refuse(
            "expired", "The PIN request has expired; ask again.", "密码输入已超时，请重新发起。"
        )
    if customer.status != CustomerStatus.ACTIVE:
        error = _frozen()
        return refuse(error.code, error.en, error.zh)
    try:
        plain = json.loads(crypto.oaep_decrypt(_private_key(challenge.key), ciphertext))
        secret, nonce = plain["pin"], plain["nonce"]
    except (ValueError, KeyError, TypeError):
        return refuse(
            "undecryptable",
            "The entry could not be read; enter it again.",
            "无法识别输入内容，请重新输入。",
        )
    if nonce != challenge.nonce:
        return refuse(
            "replayed",
            "This entry was made for another request; enter it again.",
            "该输入不属于本次请求，请重新输入。",
        )
    if not isinstance(secret, str) or not PIN_RE.match(secret):
        return refuse("bad_format", "Enter six digits.", "请输入 6 位数字。")

    if challenge.method == ChallengeMethod.NEW_PIN:
        if weak_pin(secret, customer=customer):
            return refuse(
                "weak_pin",
                "This PIN is too easy to guess (repeated or consecutive digits, or a birth "
                "date); choose another.",
                "密码过于简单（重复或连续数字、生日），请重新设置。",
            )
        challenge.new_pin_hash = crypto.secret_hash(secret)
        challenge.verified_at = timezone.now()
        challenge.save(update_fields=["new_pin_hash", "verified_at"])
        return _verdict(
            challenge,
            ok=True,
            code="ok",
            en="New PIN received.",
            zh="新密码已接收。",
            attempts_left=1,
        )

    if challenge.method == ChallengeMethod.OTP:
        if challenge.attempts >= OTP_MAX_ATTEMPTS:
            return refuse(
                "otp_exhausted",
                "Too many wrong codes; ask for a new code.",
                "验证码错误次数过多，请重新获取验证码。",
            )
        challenge.attempts += 1
        if crypto.secret_check(secret, challenge.otp_hash):
            challenge.verified_at = timezone.now()
            challenge.otp_hash = ""
            challenge.save(update_fields=["attempts", "verified_at", "otp_hash"])
            return _verdict(
                challenge,
                ok=True,
                code="ok",
                en="Code accepted.",
                zh="验证码正确。",
                attempts_left=left(),
            )
        challenge.save(update_fields=["attempts"])
        if left() == 0:
            return refuse(
                "otp_exhausted",
                "Wrong code, and no tries are left; ask for a new code.",
                "验证码错误，已无剩余次数，请重新获取验证码。",
            )
        return refuse(
            "wrong_otp",
            f"Wrong code; {_tries(left())} left.",
            f"验证码错误，还可尝试 {left()} 次。",
        )

    # method pin
    if customer.pin_locked:
        return refuse(PIN_LOCKED.code, PIN_LOCKED.en, PIN_LOCKED.zh)
    if not customer.pin_hash:
        return refuse(NO_PIN.code, NO_PIN.en, NO_PIN.zh)
    challenge.attempts += 1
    if crypto.secret_check(secret, customer.pin_hash):
        customer.pin_failures = 0
        customer.save(update_fields=["pin_failures"])
        challenge.verified_at = timezone.now()
        challenge.save(update_fields=["attempts", "verified_at"])
        return _verdict(
            challenge,
            ok=True,
            code="ok",
            en="PIN correct.",
            zh="密码正确。",
            attempts_left=pin_left(),
        )
    challenge.save(update_fields=["attempts"])
    customer.pin_failures += 1
    customer.pin_locked = customer.pin_failures >= max_failures
    customer.save(update_fields=["pin_failures", "pin_locked"])
    if customer.pin_locked:
        return refuse(
            "pin_locked",
            "Wrong PIN. The PIN is now locked; reset it (password reset).",
            "密码错误，密码已被锁定，请办理密码重置。",
        )
    return refuse(
        "wrong_pin",
        f"Wrong PIN; {_tries(pin_left())} left before it locks.",
        f"密码错误，还可尝试 {pin_left()} 次，之后将被锁定。",
    )


def _tries(count: int) -> str:
    return f"{count} {'try' if count == 1 else 'tries'}"


def stub_last_otp(customer_ref: str) -> str | None:
    """The last one-time code "sent" to the customer's mobile — the simulated phone, for tests
    and the demo page only."""
    sms = SmsMessage.objects.filter(customer__customer_ref=customer_ref).order_by("-id").first()
    if sms is None:
        return None
    text = crypto.unseal(sms.text_sealed, context=f"sms:{sms.pk}".encode()).decode()
    match = re.search(r"\d{6}", text)
    return match.group(0) if match else None


# --- operations --------------------------------------------------------------------------------
@dataclass(frozen=True)
class OperationCall:
    operation: str
    idempotency_key: str
    customer_ref: str
    params: dict[str, Any]
    authorised_by: str = ""

    def fingerprint(self) -> str:
        canonical = json.dumps(
            [self.operation, self.customer_ref, self.params, self.authorised_by],
            sort_keys=True,
            ensure_ascii=False,
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


def operation_parse(operation: str, data: object) -> OperationCall:
    """An operation request from a decoded JSON body; BadRequest (with the field) if off."""
    if operation not in OPERATIONS:
        raise NotFound(f"no operation {operation!r}", code="unknown_operation")
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    unknown = sorted(set(data) - {"idempotency_key", "customer_ref", "params", "authorised_by"})
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(unknown)}")
    key = data.get("idempotency_key")
    if not isinstance(key, str) or not KEY_RE.match(key):
        raise BadRequest(
            "idempotency_key must be 8-64 letters, digits or . _ : -", field="idempotency_key"
        )
    customer_ref = data.get("customer_ref")
    if not isinstance(customer_ref, str) or not CUSTOMER_REF_RE.match(customer_ref):
        raise BadRequest(
            "customer_ref must be 4-20 capital letters or digits", field="customer_ref"
        )
    params = data.get("params", {})
    if not isinstance(params, dict):
        raise BadRequest("params must be a JSON object", field="params")
    if len(json.dumps(params, ensure_ascii=False).encode()) > MAX_PARAMS_BYTES:
        raise BadRequest("params are too large", field="params")
    authorised_by = data.get("authorised_by") or ""
    if authorised_by and (
        not isinstance(authorised_by, str) or not CHALLENGE_ID_RE.match(authorised_by)
    ):
        raise BadRequest("authorised_by must be a challenge id", field="authorised_by")
    return OperationCall(operation, key, customer_ref, params, authorised_by)


RECORDS = AnswerRecords(OperationRequest, label="core-bank stub", noun="key")


def operation_execute(*, call: OperationCall) -> dict[str, Any]:
    """The answer to an operation: the recorded one for a known idempotency key, else the
    operation carried out (or refused in words) and the answer recorded in the same
    transaction as its effect. A Conflict (409) if the key was used for another request."""
    fingerprint = call.fingerprint()

    def answer() -> dict[str, Any]:
        with transaction.atomic():
            # The key's row first: a second request with this key waits here (Postgres: on
            # the unique index; SQLite: on the write lock) until this one commits, then fails
            # and replays what this one recorded.
            request = OperationRequest.objects.create(
                idempotency_key=call.idempotency_key,
                operation=call.operation,
                customer_ref=call.customer_ref,
                fingerprint=fingerprint,
                status=OperationStatus.DONE,
                answer={},
            )
            fresh = _carry_out(call, request)
            request.status = fresh["status"]
            request.answer = fresh
            request.save(update_fields=["status", "answer"])
        log.info(
            "core-bank stub: %s %s for %s -> %s",
            call.operation,
            call.idempotency_key,
            call.customer_ref,
            fresh["status"] if fresh["status"] == "done" else f"rejected ({fresh['error']})",
        )
        return fresh

    return RECORDS.answer_once(call.idempotency_key, fingerprint, answer)


def _carry_out(call: OperationCall, request: OperationRequest) -> dict[str, Any]:
    answer = {
        "operation": call.operation,
        "idempotency_key": call.idempotency_key,
        "customer_ref": call.customer_ref,
        "answered_at": timezone.now().isoformat(),
    }
    try:
        with transaction.atomic():  # a business error undoes what the operation had changed
            customer = (
                Customer.objects.select_for_update().filter(customer_ref=call.customer_ref).first()
            )
            if customer is None:
                raise BusinessError(
                    "customer_not_found",
                    "The bank has no such customer.",
                    "本行没有该客户。",
                )
            if customer.status != CustomerStatus.ACTIVE:
                raise _frozen()
            _authorisation_spend(call, customer)
            result = OPERATIONS[call.operation](
                customer=customer, params=call.params, request=request
            )
    except BusinessError as exc:
        return {**answer, "status": "rejected", "error": exc.code, "en": exc.en, "zh": exc.zh}
    return {**answer, "status": "done", "result": result}


def _authorisation_spend(call: OperationCall, customer: Customer) -> None:
    """``authorised_by`` names the PIN/OTP challenge the customer passed for this operation: it
    must be theirs, passed, recent, made for this operation by the method the core asks for it
    (``operations.AUTHORISATION``), and not spent on another operation. An operation that needs
    one and has none is refused, as the core refuses it: ``not_authorised``, in words."""
    required = AUTHORISATION.get(call.operation, "pin")
    if not call.authorised_by:
        if required:
            en, zh = AUTHORISATION_WORDS[required]
            raise BusinessError(
                "not_authorised",
                f"The customer has not authorised this operation: it needs {en}.",
                f"客户尚未授权本业务：需要{zh}。",
            )
        return
    challenge = (
        PinChallenge.objects.select_for_update()
        .filter(
            challenge_id=call.authorised_by,
            customer=customer,
            method__in=(ChallengeMethod.PIN, ChallengeMethod.OTP),
        )
        .first()
    )
    fresh_since = timezone.now() - _challenge_ttl()
    if (
        challenge is None
        or challenge.verified_at is None
        or challenge.verified_at < fresh_since
        or challenge.spent_by
    ):
        raise BusinessError(
            "not_authorised",
            "The customer's authorisation (PIN or code) is missing, expired or already used.",
            "客户授权（密码或验证码）缺失、已过期或已被使用。",
        )
    if required and (challenge.method != required or challenge.purpose != call.operation):
        en, zh = AUTHORISATION_WORDS[required]
        raise BusinessError(
            "not_authorised",
            f"The customer's authorisation was given for another operation or by another "
            f"means: this operation needs {en}, entered for it.",
            f"客户的授权不是为本业务作出的（或方式不符）：本业务需要为其输入{zh}。",
        )
    challenge.spent_by = call.idempotency_key
    challenge.save(update_fields=["spent_by"])


# --- customers for seeds and tests -------------------------------------------------------------
def customer_register(
    *,
    name: str,
    id_number: str,
    mobile: str,
    customer_ref: str | None = None,
    pin: str | None = None,
    address: str = "",
    occupation: str = "",
    email: str = "",
    per_transaction_limit: Decimal = Decimal("50000.00"),
    daily_transfer_limit: Decimal = Decimal("200000.00"),
) -> Customer:
    """Create (or refresh) a customer by ID number; ``pin`` sets the PIN (hashed) and unlocks it."""
    number = id_number_clean(id_number)
    if not id_number_checksum_ok(number):
        raise ValueError(f"{id_number_mask(number)} is not a valid 18-character ID number")
    if not name or len(name) > 100:
        raise ValueError("a name of 1-100 characters is needed")
    if not re.match(r"^1[3-9]\d{9}$", mobile):
        raise ValueError("a mobile number of 11 digits is needed")
    if pin is not None and not PIN_RE.match(pin):
        raise ValueError("a PIN is six digits")
    existing = Customer.objects.filter(id_number=number).first()
    ref = customer_ref or (existing.customer_ref if existing else _customer_ref_new())
    defaults: dict[str, Any] = {
        "customer_ref": ref,
        "name": name,
        "mobile": mobile,
        "address": address,
        "occupation": occupation,
        "email": email,
        "status": CustomerStatus.ACTIVE,
        "per_transaction_limit": per_transaction_limit,
        "daily_transfer_limit": daily_transfer_limit,
    }
    if pin is not None:
        defaults.update(pin_hash=crypto.secret_hash(pin), pin_failures=0, pin_locked=False)
    customer, _ = Customer.objects.update_or_create(id_number=number, defaults=defaults)
    log.info(
        "core-bank stub: customer %s %s %s registered",
        customer.customer_ref,
        name_mask(name),
        id_number_mask(number),
    )
    return customer


def _customer_ref_new() -> str:
    while True:
        ref = f"CIF{_rng.randrange(10**9):09d}"
        if not Customer.objects.filter(customer_ref=ref).exists():
            return ref


def account_open(
    *,
    customer: Customer,
    kind: str,
    balance: Decimal,
    number: str | None = None,
    status: str = AccountStatus.ACTIVE,
) -> Account:
    """An account with an opening balance (one ``seed`` ledger entry for it, so the ledger
    always adds up to the balance); an existing number is brought back to that state."""
    number = number or account_number_new()
    account, _ = Account.objects.get_or_create(
        number=number, defaults={"customer": customer, "kind": kind}
    )
    account.customer, account.kind, account.status = customer, kind, status
    difference = balance - account.balance
    account.balance = balance
    account.save()
    if difference:
        LedgerEntry.objects.create(
            account=account, kind=LedgerKind.SEED, amount=difference, balance_after=balance
        )
    return account


def card_issue(
    *, account: Account, number: str | None = None, status: str = CardStatus.ACTIVE
) -> Card:
    number = number or card_number_new()
    card, _ = Card.objects.get_or_create(
        number=number,
        defaults={
            "customer": account.customer,
            "account": account,
            "token": "card_" + crypto.token(12),
        },
    )
    card.customer, card.account, card.status = account.customer, account, status
    card.lost_at = timezone.now() if status == CardStatus.LOST else None
    card.save()
    return card
