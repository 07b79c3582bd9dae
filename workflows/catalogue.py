"""The businesses a teller can do in a call, each one declaration: its form, the identity it needs,
its agreement, what the customer confirms, how they authorise, what the core bank is asked, when
a fresh face match is needed. The state machine, the teller's card and the customer's screens
are built from these declarations: adding a business is adding one here (and its operation at the
core bank), never touching consumers or pages.

A declaration is data plus four small functions of the checked form values and the customer as
the core bank knows them (``rules``, ``summary``, ``core_params``, ``high_risk``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.conf import settings

from workflows.corebank.masking import account_mask, address_mask, mobile_mask, name_mask

from .models import CaseStatus

# --- vocabulary -------------------------------------------------------------------------------

LEVELS = ("none", "two_factor", "three_factor_face")
LEVEL_WORDS = {
    "none": ("No identity check", "无需身份核验"),
    "two_factor": ("Name + ID number verified", "姓名与身份证号核验"),
    "three_factor_face": ("Name + ID number + portrait, live face", "三要素核验及人脸比对"),
}

STEP_WORDS = {
    "form": ("Business form", "填写业务信息"),
    "identity": ("Identity", "身份核验"),
    "intent": ("Intent verification", "意愿核实"),
    "agreement": ("Agreement", "协议阅读"),
    "confirm": ("Customer confirmation", "客户确认"),
    "pin": ("PIN", "交易密码"),
    "otp": ("One-time code", "短信验证码"),
    "new_pin": ("New PIN", "设置新密码"),
    "submit": ("Core banking", "核心系统处理"),
    "receipt": ("E-receipt", "电子回单"),
}

FIELD_TYPES = ("text", "number", "money", "select", "date", "mobile", "account", "card")


def words(en: str, zh: str) -> dict[str, str]:
    return {"en": en, "zh": zh}


# --- money and masking for screens -----------------------------------------------------------

CENT = Decimal("0.01")


def money(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


def money_words(value: Any, currency: str = "CNY") -> dict[str, str]:
    amount = money(value)
    text = f"{amount:,.2f}"
    if currency == "CNY":
        return words(f"CNY {text}", f"人民币 {text} 元")
    return words(f"{currency} {text}", f"{currency} {text}")


def masked(value: str) -> dict[str, str]:
    text = account_mask(value)
    return words(text, text)


def same(text: str) -> dict[str, str]:
    return words(text, text)


# --- the form ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    value: str
    en: str
    zh: str
    score: int = 0  # questionnaires: what this answer counts

    def as_dict(self) -> dict:
        return {"value": self.value, "label": words(self.en, self.zh)}


@dataclass(frozen=True)
class Field:
    """One input of the teller's form.

    ``source`` makes an ``account`` or ``card`` field a choice among the customer's own (as the
    core bank lists them), narrowed by ``where``; without it an account is typed (a payee's)."""

    name: str
    type: str
    en: str
    zh: str
    required: bool = True
    choices: tuple[Choice, ...] = ()
    source: str = ""  # "accounts" | "cards"
    where: Callable[[dict], bool] | None = None
    min: Any = None
    max: Any = None
    max_length: int = 100
    min_length: int = 0
    pattern: str = ""
    pattern_words: tuple[str, str] = ("", "")
    group: str = ""  # a section of the form (e.g. "intent")
    help_en: str = ""
    help_zh: str = ""

    def label(self) -> dict[str, str]:
        return words(self.en, self.zh)


def _err(en: str, zh: str) -> dict[str, str]:
    return words(en, zh)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MOBILE_RE = re.compile(r"^1[3-9]\d{9}$")
ACCOUNT_RE = re.compile(r"^\d{12,19}$")


def field_choices(f: Field, customer: dict) -> list[dict]:
    """What a select, account or card field offers (the customer's own accounts and cards)."""
    if f.choices:
        return [c.as_dict() for c in f.choices]
    if f.source == "accounts":
        return [
            {"value": a["number"], "label": account_label(a)}
            for a in customer_accounts(customer)
            if f.where is None or f.where(a)
        ]
    if f.source == "cards":
        return [
            {"value": c["token"], "label": card_label(c)}
            for c in customer_cards(customer)
            if f.where is None or f.where(c)
        ]
    return []


def field_clean(f: Field, raw: Any, customer: dict) -> tuple[Any, dict | None]:
    """(the checked value, None) or (None, the error in words)."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if f.required:
            return None, _err(f"{f.en} is required.", f"请填写{f.zh}。")
        return None, None
    if isinstance(raw, bool):
        raw = "yes" if raw else "no"
    text = str(raw).strip()
    if _CONTROL.search(text):
        return None, _err(f"{f.en} contains control characters.", f"{f.zh}含有非法字符。")
    if f.type == "text":
        if len(text) > f.max_length:
            return None, _err(
                f"{f.en}: at most {f.max_length} characters.", f"{f.zh}最多 {f.max_length} 个字符。"
            )
        if len(text) < f.min_length:
            return None, _err(
                f"{f.en}: at least {f.min_length} characters.",
                f"{f.zh}至少 {f.min_length} 个字符。",
            )
        if f.pattern and not re.fullmatch(f.pattern, text):
            en, zh = f.pattern_words
            return None, _err(en or f"{f.en} is not valid.", zh or f"{f.zh}格式不正确。")
        return text, None
    if f.type == "number":
        try:
            number = int(text)
        except ValueError:
            return None, _err(f"{f.en} must be a whole number.", f"{f.zh}必须是整数。")
        if f.min is not None and number < f.min or f.max is not None and number > f.max:
            return None, _err(
                f"{f.en} must be between {f.min} and {f.max}.",
                f"{f.zh}须在 {f.min} 到 {f.max} 之间。",
            )
        return number, None
    if f.type == "money":
        try:
            amount = Decimal(text.replace(",", ""))
        except InvalidOperation:
            return None, _err(f"{f.en} must be an amount.", f"{f.zh}必须是金额。")
        exponent = amount.as_tuple().exponent  # a letter for NaN and infinity
        if not isinstance(exponent, int) or exponent < -2:
            return None, _err(
                f"{f.en}: at most two decimals (fen).", f"{f.zh}最多保留两位小数（分）。"
            )
        low = Decimal(str(f.min)) if f.min is not None else CENT
        if amount < low:
            return None, _err(
                f"{f.en} must be at least {money_words(low)['en']}.",
                f"{f.zh}不得低于{money_words(low)['zh']}。",
            )
        if f.max is not None and amount > Decimal(str(f.max)):
            return None, _err(
                f"{f.en} must be at most {money_words(f.max)['en']}.",
                f"{f.zh}不得超过{money_words(f.max)['zh']}。",
            )
        return f"{money(amount)}", None
    if f.type == "date":
        try:
            day = dt.date.fromisoformat(text)
        except ValueError:
            return None, _err(
                f"{f.en} must be a date (YYYY-MM-DD).", f"{f.zh}须为日期（年-月-日）。"
            )
        return day.isoformat(), None
    if f.type == "mobile":
        if not MOBILE_RE.fullmatch(text):
            return None, _err(
                f"{f.en} must be an 11-digit mainland mobile number starting with 1.",
                f"{f.zh}须为以 1 开头的 11 位手机号码。",
            )
        return text, None
    if f.type in ("select", "account", "card"):
        text = "".join(text.split()) if f.type != "select" else text
        options = field_choices(f, customer)
        if options or f.type == "select" or f.source:
            if text not in {o["value"] for o in options}:
                return None, _err(f"Choose one of the {f.en} options.", f"请选择有效的{f.zh}。")
            return text, None
        if f.type == "account" and not ACCOUNT_RE.fullmatch(text):
            return None, _err(f"{f.en} must be 12 to 19 digits.", f"{f.zh}须为 12 到 19 位数字。")
        return text, None
    raise AssertionError(f"unknown field type {f.type}")  # pragma: no cover - declarations


def form_clean(fields: tuple[Field, ...], values: dict, customer: dict) -> tuple[dict, dict]:
    """(checked values, errors by field). Unknown keys are ignored."""
    clean: dict[str, Any] = {}
    errors: dict[str, dict] = {}
    for f in fields:
        value, error = field_clean(f, values.get(f.name), customer)
        if error is not None:
            errors[f.name] = error
        elif value is not None:
            clean[f.name] = value
    return clean, errors


# --- the customer as the core bank describes them ----------------------------------------------


def customer_accounts(customer: dict) -> list[dict]:
    return list(customer.get("accounts") or [])


def customer_cards(customer: dict) -> list[dict]:
    return list(customer.get("cards") or [])


def account_of(customer: dict, number: str) -> dict | None:
    return next((a for a in customer_accounts(customer) if a["number"] == number), None)


def card_of(customer: dict, token: str) -> dict | None:
    return next((c for c in customer_cards(customer) if c["token"] == token), None)


ACCOUNT_KIND_WORDS = {
    "current": ("Current", "活期"),
    "savings": ("Savings", "储蓄"),
    "time_deposit": ("Time deposit", "定期"),
    "corporate": ("Corporate", "对公"),
}
ACCOUNT_STATUS_WORDS = {
    "active": ("", ""),
    "dormant": ("dormant", "久悬"),
    "closed": ("closed", "已销户"),
}
CARD_STATUS_WORDS = {"active": ("", ""), "lost": ("reported lost", "已挂失")}


def account_label(account: dict) -> dict[str, str]:
    en_kind, zh_kind = ACCOUNT_KIND_WORDS.get(account.get("kind", ""), (account.get("kind"), ""))
    en_status, zh_status = ACCOUNT_STATUS_WORDS.get(account.get("status", ""), ("", ""))
    balance = money_words(account.get("balance", "0"), account.get("currency", "CNY"))
    number = account_mask(account["number"])
    return words(
        f"{number} {en_kind}, {balance['en']}" + (f" ({en_status})" if en_status else ""),
        f"{number} {zh_kind}，{balance['zh']}" + (f"（{zh_status}）" if zh_status else ""),
    )


def card_label(card: dict) -> dict[str, str]:
    en_status, zh_status = CARD_STATUS_WORDS.get(card.get("status", ""), ("", ""))
    number = card.get("number_masked") or account_mask(card.get("number", ""))
    return words(
        f"Debit card {number}" + (f" ({en_status})" if en_status else ""),
        f"借记卡 {number}" + (f"（{zh_status}）" if zh_status else ""),
    )


def _usable_account(a: dict) -> bool:
    return (
        a.get("status") == "active"
        and a.get("kind") in ("current", "savings")
        and a.get("currency", "CNY") == "CNY"
    )


def _limits(customer: dict) -> dict:
    return customer.get("limits") or {}


# --- rules: what refuses a business before the customer is asked --------------------------------


@dataclass(frozen=True)
class RuleError:
    code: str
    en: str
    zh: str
    field: str = ""


# --- agreements -------------------------------------------------------------------------------

AGREEMENT_VERSION = "2026-11"

GENERAL_TERMS: tuple[tuple[str, str], ...] = (
    (
        "This business is done with you over a recorded video call. The recording, the pictures "
        "taken for the identity check and this agreement are kept by the bank as the record of "
        "the business for the period the law requires, encrypted, and shown only to staff "
        "who need them.",
        "本业务通过全程录音录像的视频通话办理。通话录像、身份核验所采集的图像以及本协议，"
        "将由本行按法律规定的期限加密保存，作为业务办理的凭证，仅向确有需要的工作人员提供。",
    ),
    (
        "You confirm that the information you give is true, complete and yours, and that you "
        "act of your own will, for yourself, and not at the request or under the pressure of "
        "anyone else. If anyone asked you to do this business for them, tell the teller now.",
        "您确认所提供的信息真实、完整且属于您本人，并确认系本人自愿办理，而非受他人指使或胁迫。"
        "如有他人要求您代其办理本业务，请立即告知柜员。",
    ),
    (
        "Your PIN and one-time codes are entered only on your own screen, on a keypad whose keys "
        "move every time. The bank's staff never see them and will never ask you for them. Do "
        "not tell anyone your PIN or a code, not even a person who says they work for the bank.",
        "交易密码和短信验证码只在您本人的屏幕上、通过每次位置都会变化的键盘输入。"
        "本行工作人员看不到也绝不会索要您的密码或验证码。请勿向任何人透露，"
        "包括自称本行工作人员的人。",
    ),
    (
        "The bank's staff will never ask you to move money to a so-called safe account, to pay a "
        "fee to receive a loan or a prize, or to keep a call with them secret. Such requests are "
        "fraud: stop and tell the teller.",
        "本行工作人员绝不会要求您将资金转入所谓的安全账户，不会以收取费用为条件发放贷款或奖品，"
        "也不会要求您对通话内容保密。遇到此类要求均属诈骗，请立即停止并告知柜员。",
    ),
    (
        "Once you confirm and authorise, the business is sent to the bank's core system once. If "
        "that system is briefly unavailable the request waits and is retried automatically; it "
        "is never carried out twice. You receive an electronic receipt with a verification code "
        "you can check on the bank's website.",
        "您确认并授权后，本业务将发送至本行核心系统处理一次。若核心系统暂时无法响应，"
        "请求将排队并自动重试，绝不会重复处理。办理完成后您将收到带有验证码的电子回单，"
        "可在本行网站核验其真伪。",
    ),
    (
        "Fees, if any, are those of the bank's published price list on the day of the business. "
        "Interest rates are those the core system applies on that day and are shown on the "
        "receipt.",
        "如涉及费用，按办理当日本行公布的收费标准执行。利率以办理当日核心系统执行的利率为准，"
        "并在回单上列明。",
    ),
    (
        "Personal information is processed under the Personal Information Protection Law of the "
        "People's Republic of China, only for this business, for the bank's legal duties (such "
        "as anti-money-laundering checks) and for the quality review of the call.",
        "本行依据《中华人民共和国个人信息保护法》处理您的个人信息，仅用于办理本业务、"
        "履行反洗钱等法定义务以及对本次通话进行质量检查。",
    ),
    (
        "If you disagree with how this business was done you may complain to the bank by phone, "
        "at any branch or online; the recording of this call will be reviewed. Disputes are "
        "governed by the laws of the People's Republic of China.",
        "如您对本业务的办理有异议，可通过电话、任一网点或线上渠道向本行投诉，"
        "本行将调阅本次通话录像进行核查。争议适用中华人民共和国法律。",
    ),
)


@dataclass(frozen=True)
class Agreement:
    en: str
    zh: str
    terms: tuple[tuple[str, str], ...]  # the business's own terms, (en, zh), before the general

    def title(self) -> dict[str, str]:
        return words(self.en, self.zh)

    def paragraphs(self) -> list[dict[str, str]]:
        return [words(en, zh) for en, zh in (*self.terms, *GENERAL_TERMS)]

    def sha256(self) -> str:
        body = json.dumps(
            {"v": AGREEMENT_VERSION, "title": self.title(), "paragraphs": self.paragraphs()},
            ensure_ascii=False,
            sort_keys=True,
        )
        return hashlib.sha256(body.encode()).hexdigest()


# --- a business -------------------------------------------------------------------------------

Line = dict[str, dict[str, str]]  # {"label": {en, zh}, "value": {en, zh}}


def line(en: str, zh: str, value: dict[str, str], *, kind: str = "", personal: str = "") -> Line:
    """A label/value pair of a summary or receipt. ``kind`` "amount" marks the money a business
    moves (the public verify page shows it masked); "private" lines (balances) stay off it.
    ``personal`` ("name", "address", "email", "text") marks a value that says who or where the
    customer is: the call's timeline keeps it masked (``lines_masked``)."""
    entry: dict = {"label": words(en, zh), "value": value}
    if kind:
        entry["kind"] = kind
    if personal:
        entry["personal"] = personal
    return entry


def _email_mask(text: str) -> str:
    local, at, domain = text.partition("@")
    return (local[:1] + "***" + at + domain) if at else text[:1] + "***"


_PERSONAL_MASKS: dict[str, Callable[[str], str]] = {
    "name": name_mask,
    "address": address_mask,
    "email": _email_mask,
    "text": lambda text: "***" if text else "",
}


def lines_masked(lines: list[Line]) -> list[Line]:
    """Summary or receipt lines as the call's timeline keeps them: personal values masked (张*,
    上海市***), account numbers already masked as every line shows them."""
    out = []
    for entry in lines:
        personal = entry.get("personal")
        mask = _PERSONAL_MASKS.get(personal) if isinstance(personal, str) else None
        if mask is not None:
            entry = {**entry, "value": {k: mask(v) for k, v in entry["value"].items()}}
        out.append(entry)
    return out


@dataclass(frozen=True)
class Business:
    key: str
    en: str
    zh: str
    identity_level: str
    form: tuple[Field, ...]
    agreement: Agreement
    operation: str
    summary: Callable[[dict, dict], list[Line]]
    # (checked form values, the customer at the core, the identity check's confirmed fields)
    core_params: Callable[[dict, dict, dict], dict]
    rules: Callable[[dict, dict], list[RuleError]] = lambda params, customer: []
    # A fresh face match is needed (see KYC_FACE_FRESH_S) when this says so for the form.
    high_risk: Callable[[dict], bool] = lambda params: False
    authorisation: str = "pin"  # pin | otp | "" (the on-screen confirmation is the consent)
    new_pin: bool = False  # after authorising, the customer sets a new PIN (password reset)
    result_lines: Callable[[dict, dict], list[Line]] = lambda params, result: []
    extra_steps: tuple[str, ...] = field(default=())  # e.g. ("intent",) after the form

    def name(self) -> dict[str, str]:
        return words(self.en, self.zh)

    @property
    def steps(self) -> list[str]:
        steps = ["form", "identity", *self.extra_steps, "agreement", "confirm"]
        if self.authorisation:
            steps.append(self.authorisation)
        if self.new_pin:
            steps.append("new_pin")
        return [*steps, "submit", "receipt"]

    @property
    def transitions(self) -> dict[str, frozenset[str]]:
        """Which status a case of this business may move to from each status. Final statuses
        have none; every service checks its move against this table."""
        s = CaseStatus
        editable = {s.DRAFT, s.NEEDS_FACE, s.FILLED}
        after_confirm = {s.AUTHORISED} if self.authorisation else {s.SUBMITTED}
        table = {
            s.DRAFT: editable | {s.CANCELLED},
            s.NEEDS_FACE: editable | {s.CANCELLED},
            s.FILLED: editable | {s.AGREEMENT_SENT, s.CANCELLED},
            s.AGREEMENT_SENT: {s.AGREEMENT_READ, s.CANCELLED},
            s.AGREEMENT_READ: {s.CONFIRMED, s.REFUSED, s.CANCELLED},
            # Locked out of PIN attempts: rejected.
            s.CONFIRMED: after_confirm | {s.REJECTED, s.CANCELLED},
            s.AUTHORISED: {s.SUBMITTED} | ({s.CANCELLED} if self.new_pin else set()),
            s.SUBMITTED: {s.WAITING_RETRY, s.DONE, s.REJECTED},
            s.WAITING_RETRY: {s.SUBMITTED, s.DONE, s.REJECTED},
        }
        return {k.value: frozenset(x.value for x in v) for k, v in table.items()} | {
            k.value: frozenset() for k in (s.DONE, s.REFUSED, s.REJECTED, s.CANCELLED)
        }

    def as_dict(self) -> dict:
        return {
            "key": self.key,
            "name": self.name(),
            "identity_level": self.identity_level,
            "steps": self.steps,
            "authorisation": self.authorisation or None,
            "operation": self.operation,
        }


# --- the declarations -------------------------------------------------------------------------


def _card_lines(params: dict, customer: dict) -> list[Line]:
    card = card_of(customer, params["card"]) or {}
    return [line("Card", "银行卡", same(card_label(card)["en"].removeprefix("Debit card ")))]


# Password reset ------------------------------------------------------------------------------

RESET_REASONS = (
    Choice("forgotten", "PIN forgotten", "忘记密码"),
    Choice("locked", "PIN locked after wrong attempts", "密码输错被锁定"),
    Choice("security", "PIN may be known to others", "密码可能泄露"),
)

PASSWORD_RESET = Business(
    key="password_reset",
    en="Password reset",
    zh="密码重置",
    identity_level="three_factor_face",
    form=(Field("reason", "select", "Reason", "重置原因", choices=RESET_REASONS),),
    agreement=Agreement(
        "Password reset agreement",
        "密码重置协议",
        (
            (
                "You ask the bank to replace the PIN of the card named below. The old PIN stops "
                "working at once; card payments and withdrawals need the new one.",
                "您申请重置下述银行卡的交易密码。原密码即时失效，之后的刷卡消费与取款须使用新密码。",
            ),
            (
                "A one-time code is sent to your reserved mobile number to prove the request is "
                "yours. You then choose a new 6-digit PIN on your own screen: do not choose your "
                "birthday, your ID number's digits or repeated digits.",
                "本行将向您的预留手机号发送短信验证码以确认系本人申请。随后您将在本人屏幕上设置新的"
                " 6 位交易密码：请勿使用生日、身份证号中的数字或重复数字。",
            ),
        ),
    ),
    operation="password_reset",
    authorisation="otp",
    new_pin=True,
    summary=lambda p, c: [
        line("Business", "业务", words("Password reset", "密码重置")),
        line("Reason", "原因", _choice_words(RESET_REASONS, p["reason"])),
    ],
    # The new PIN's challenge is added by the workflow once the customer has entered it.
    core_params=lambda p, c, i: {},
)


# Card loss report and its cancellation -----------------------------------------------------------


def _card_loss_rules(p: dict, c: dict) -> list[RuleError]:
    card = card_of(c, p.get("card", ""))
    if card and card.get("status") == "lost":
        return [
            RuleError(
                "card_already_lost",
                "This card is already reported lost.",
                "该卡已挂失，无需重复挂失。",
                "card",
            )
        ]
    return []


def _card_found_rules(p: dict, c: dict) -> list[RuleError]:
    card = card_of(c, p.get("card", ""))
    if card and card.get("status") != "lost":
        return [
            RuleError(
                "card_not_lost",
                "This card is not reported lost: there is nothing to cancel.",
                "该卡未挂失，无需解挂。",
                "card",
            )
        ]
    return []


LOSS_KINDS = (
    Choice("temporary", "Temporary (5 days, by phone rules)", "临时挂失（5 日内有效）"),
    Choice("formal", "Formal (a new card is needed)", "正式挂失（需补办新卡）"),
)
LOSS_REASONS = (
    Choice("lost", "Lost", "遗失"),
    Choice("stolen", "Stolen", "被盗"),
    Choice("swallowed", "Kept by a machine", "被机具吞卡"),
)


def _choice_words(choices: tuple[Choice, ...], value: str) -> dict[str, str]:
    return next(c.as_dict()["label"] for c in choices if c.value == value)


CARD_LOSS_REPORT = Business(
    key="card_loss_report",
    en="Debit card loss report",
    zh="借记卡挂失",
    identity_level="two_factor",
    form=(
        Field("card", "card", "Card", "银行卡", source="cards"),
        Field("kind", "select", "Kind of report", "挂失类型", choices=LOSS_KINDS),
        Field("reason", "select", "What happened", "挂失原因", choices=LOSS_REASONS),
    ),
    agreement=Agreement(
        "Card loss report agreement",
        "借记卡挂失协议",
        (
            (
                "From the moment the core system accepts this report, the card cannot be used "
                "for payments or withdrawals. Transactions made before that moment remain yours.",
                "自核心系统受理挂失之时起，该卡将不能用于消费或取款。挂失生效前发生的交易由您本人承担。",
            ),
            (
                "A temporary report lapses after five days unless made formal; a formal report "
                "means a new card must be issued at a branch or by post.",
                "临时挂失五日后自动失效，除非转为正式挂失；正式挂失后须到网点或邮寄补办新卡。",
            ),
            (
                "If you find the card you can cancel the report in a call like this one.",
                "如您找回银行卡，可通过视频通话办理解挂。",
            ),
        ),
    ),
    operation="card_loss_report",
    rules=_card_loss_rules,
    summary=lambda p, c: [
        line("Business", "业务", words("Debit card loss report", "借记卡挂失")),
        *_card_lines(p, c),
        line("Kind of report", "挂失类型", _choice_words(LOSS_KINDS, p["kind"])),
        line("What happened", "挂失原因", _choice_words(LOSS_REASONS, p["reason"])),
    ],
    core_params=lambda p, c, i: {"card_token": p["card"]},
)

CARD_LOSS_CANCEL = Business(
    key="card_loss_cancel",
    en="Card loss report cancellation",
    zh="借记卡解挂",
    identity_level="two_factor",
    form=(Field("card", "card", "Card", "银行卡", source="cards"),),
    agreement=Agreement(
        "Loss report cancellation agreement",
        "借记卡解挂协议",
        (
            (
                "You tell the bank that you have the card named below back in your hands and ask "
                "for its loss report to be cancelled. The card can be used again at once.",
                "您声明已找回下述银行卡并申请解除挂失。解挂后该卡即可恢复使用。",
            ),
            (
                "If the card was out of your hands for a while, consider changing its PIN.",
                "如银行卡曾脱离您的掌控一段时间，建议同时修改交易密码。",
            ),
        ),
    ),
    operation="card_loss_cancel",
    rules=_card_found_rules,
    summary=lambda p, c: [
        line("Business", "业务", words("Card loss report cancellation", "借记卡解挂")),
        *_card_lines(p, c),
    ],
    core_params=lambda p, c, i: {"card_token": p["card"]},
)


# Dormant account activation --------------------------------------------------------------------


def _dormant_rules(p: dict, c: dict) -> list[RuleError]:
    account = account_of(c, p.get("account", ""))
    if account and account.get("status") != "dormant":
        return [
            RuleError(
                "account_not_dormant",
                "This account is not dormant: it is already in use.",
                "该账户并非久悬账户，无需激活。",
                "account",
            )
        ]
    return []


PURPOSES = (
    Choice("salary", "Salary", "代发工资"),
    Choice("savings", "Savings", "储蓄"),
    Choice("daily", "Daily payments", "日常消费"),
    Choice("business", "Own business", "个人经营"),
)

DORMANT_ACTIVATE = Business(
    key="dormant_activate",
    en="Dormant account activation",
    zh="久悬账户激活",
    identity_level="three_factor_face",
    form=(
        Field(
            "account",
            "account",
            "Account",
            "账户",
            source="accounts",
            where=lambda a: a.get("status") != "closed",
        ),
        Field(
            "purpose", "select", "What the account will be used for", "账户用途", choices=PURPOSES
        ),
    ),
    agreement=Agreement(
        "Dormant account activation agreement",
        "久悬账户激活协议",
        (
            (
                "An account without a customer-initiated movement for a long time is dormant; "
                "activating it lets money in and out again.",
                "长期未发生客户主动交易的账户为久悬账户；激活后可恢复资金收付。",
            ),
            (
                "Accounts are for your own use. Lending, renting or selling an account is "
                "illegal and will be reported.",
                "账户仅限本人使用。出租、出借、出售账户属违法行为，本行将依法报告。",
            ),
        ),
    ),
    operation="dormant_activate",
    rules=_dormant_rules,
    summary=lambda p, c: [
        line("Business", "业务", words("Dormant account activation", "久悬账户激活")),
        line("Account", "账户", masked(p["account"])),
        line("Used for", "账户用途", _choice_words(PURPOSES, p["purpose"])),
    ],
    core_params=lambda p, c, i: {"account_number": p["account"]},
)


# Reserved mobile change --------------------------------------------------------------------------

MOBILE_CHANGE = Business(
    key="mobile_change",
    en="Reserved mobile number change",
    zh="预留手机号变更",
    identity_level="three_factor_face",
    form=(Field("new_mobile", "mobile", "New mobile number", "新手机号码"),),
    agreement=Agreement(
        "Reserved mobile number change agreement",
        "预留手机号变更协议",
        (
            (
                "One-time codes and notices of account movements go to the reserved mobile "
                "number. After the change they go only to the new number.",
                "短信验证码及账户变动通知将发送至预留手机号。变更后仅发送至新号码。",
            ),
            (
                "The number must be registered in your own name. Never change it at the "
                "request of someone on the phone: this is how accounts are taken over.",
                "新号码须以您本人身份登记。切勿应电话中他人的要求变更预留手机号——这是盗取账户的常见手段。",
            ),
        ),
    ),
    operation="mobile_change",
    high_risk=lambda p: True,
    summary=lambda p, c: [
        line("Business", "业务", words("Reserved mobile number change", "预留手机号变更")),
        line(
            "Current number",
            "原手机号",
            same(c.get("mobile_masked") or mobile_mask(c.get("mobile", ""))),
        ),
        line("New number", "新手机号", same(mobile_mask(p["new_mobile"]))),
    ],
    core_params=lambda p, c, i: {"new_mobile": p["new_mobile"]},
)


# Personal details update -------------------------------------------------------------------------

OCCUPATIONS = (
    Choice("employee", "Employee", "企业职员"),
    Choice("civil_servant", "Civil servant", "公务员"),
    Choice("self_employed", "Self-employed", "个体经营"),
    Choice("student", "Student", "学生"),
    Choice("retired", "Retired", "退休"),
    Choice("other", "Other", "其他"),
)
EMAIL_RE = r"[^@\s]{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,24}"


def _details_rules(p: dict, c: dict) -> list[RuleError]:
    if not any(p.get(k) for k in ("address", "occupation", "email")):
        return [
            RuleError(
                "nothing_to_change",
                "Change at least one detail (address, occupation or e-mail).",
                "请至少变更一项信息（地址、职业或电子邮箱）。",
            )
        ]
    return []


def _details_lines(p: dict, c: dict) -> list[Line]:
    lines = [line("Business", "业务", words("Personal details update", "个人信息变更"))]
    if p.get("address"):
        lines.append(line("New address", "新地址", same(p["address"]), personal="address"))
    if p.get("occupation"):
        lines.append(line("Occupation", "职业", _choice_words(OCCUPATIONS, p["occupation"])))
    if p.get("email"):
        lines.append(line("E-mail", "电子邮箱", same(p["email"]), personal="email"))
    return lines


DETAILS_UPDATE = Business(
    key="details_update",
    en="Personal details update",
    zh="个人信息变更",
    identity_level="two_factor",
    form=(
        Field(
            "address", "text", "Address", "联系地址", required=False, max_length=200, min_length=5
        ),
        Field("occupation", "select", "Occupation", "职业", required=False, choices=OCCUPATIONS),
        Field(
            "email",
            "text",
            "E-mail",
            "电子邮箱",
            required=False,
            max_length=254,
            pattern=EMAIL_RE,
            pattern_words=("E-mail is not a valid address.", "电子邮箱格式不正确。"),
        ),
    ),
    agreement=Agreement(
        "Personal details update agreement",
        "个人信息变更协议",
        (
            (
                "The bank keeps your details up to date as the anti-money-laundering rules "
                "require; statements and notices go to the details you give here.",
                "本行依反洗钱规定保持客户信息准确有效；对账单及通知将按您此次提供的信息寄送。",
            ),
            (
                "Your name and ID number are those of your identity card and cannot be changed "
                "here.",
                "姓名与身份证号码以身份证为准，不在此变更。",
            ),
        ),
    ),
    operation="details_update",
    rules=_details_rules,
    summary=_details_lines,
    core_params=lambda p, c, i: {k: p[k] for k in ("address", "occupation", "email") if p.get(k)},
)


# Time deposit opening ----------------------------------------------------------------------------

TERMS = tuple(Choice(str(m), f"{m} months", f"{m} 个月") for m in (3, 6, 12, 24, 36, 60))
TIME_DEPOSIT_MIN = Decimal("50.00")


def _balance_rules(p: dict, c: dict, *, account_field: str) -> list[RuleError]:
    account = account_of(c, p.get(account_field, ""))
    if account is None or "amount" not in p:
        return []
    balance = money(account.get("balance", "0"))
    if money(p["amount"]) > balance:
        return [
            RuleError(
                "insufficient_funds",
                f"Insufficient funds: the account holds {money_words(balance)['en']}.",
                f"余额不足：账户余额为{money_words(balance)['zh']}。",
                "amount",
            )
        ]
    return []


TIME_DEPOSIT_OPEN = Business(
    key="time_deposit_open",
    en="Time deposit opening",
    zh="定期存款开立",
    identity_level="two_factor",
    form=(
        Field(
            "from_account",
            "account",
            "From account",
            "转出账户",
            source="accounts",
            where=_usable_account,
        ),
        Field(
            "amount", "money", "Amount", "存入金额", min=TIME_DEPOSIT_MIN, max=Decimal("50000000")
        ),
        Field("term_months", "select", "Term", "存期", choices=TERMS),
    ),
    agreement=Agreement(
        "Time deposit agreement",
        "定期存款协议",
        (
            (
                "The amount leaves the chosen account today and is deposited for the chosen "
                "term at the rate the core system applies today, shown on the receipt.",
                "存入金额于今日从所选账户转出，按今日核心系统执行的利率存入所选存期，利率列明于回单。",
            ),
            (
                "Withdrawing before maturity earns only the demand-deposit rate on the whole "
                "amount. Deposits are protected by the Deposit Insurance Regulations up to "
                "CNY 500,000 per depositor per bank.",
                "提前支取的，全部金额按活期利率计息。存款受《存款保险条例》保护，"
                "同一存款人在同一银行的最高偿付限额为人民币 50 万元。",
            ),
        ),
    ),
    operation="time_deposit_open",
    rules=lambda p, c: _balance_rules(p, c, account_field="from_account"),
    summary=lambda p, c: [
        line("Business", "业务", words("Time deposit opening", "定期存款开立")),
        line("From account", "转出账户", masked(p["from_account"])),
        line("Amount", "金额", money_words(p["amount"]), kind="amount"),
        line("Term", "存期", _choice_words(TERMS, p["term_months"])),
    ],
    core_params=lambda p, c, i: {
        "from_account": p["from_account"],
        "amount": p["amount"],
        "term_months": int(p["term_months"]),
    },
    result_lines=lambda p, r: [
        *([line("Rate", "年利率", same(f"{r['rate_percent']}%"))] if r.get("rate_percent") else []),
        *(
            [line("Interest at maturity", "到期利息", money_words(r["interest_at_maturity"]))]
            if r.get("interest_at_maturity")
            else []
        ),
        *(
            [line("Matures on", "到期日", same(r["maturity_date"]))]
            if r.get("maturity_date")
            else []
        ),
        *(
            [line("Deposit account", "定期账户", masked(r["deposit_account"]))]
            if r.get("deposit_account")
            else []
        ),
    ],
)


# Transfer ----------------------------------------------------------------------------------------


def transfer_face_limit() -> Decimal:
    return money(getattr(settings, "WORKFLOW_TRANSFER_FACE_LIMIT", "50000.00"))


def _transfer_rules(p: dict, c: dict) -> list[RuleError]:
    errors = []
    if p.get("to_account") and p.get("to_account") == p.get("from_account"):
        errors.append(
            RuleError(
                "same_account",
                "The payee account is the account the money leaves.",
                "收款账户与转出账户相同。",
                "to_account",
            )
        )
    errors += _balance_rules(p, c, account_field="from_account")
    if "amount" in p:
        amount = money(p["amount"])
        limits = _limits(c)
        per_tx = limits.get("per_transaction")
        daily = limits.get("daily")
        used = money(limits.get("used_today") or "0")
        if per_tx is not None and amount > money(per_tx):
            errors.append(
                RuleError(
                    "over_limit",
                    f"Over the per-transaction limit of {money_words(per_tx)['en']}.",
                    f"超过单笔转账限额{money_words(per_tx)['zh']}。",
                    "amount",
                )
            )
        elif daily is not None and amount + used > money(daily):
            left = max(money(daily) - used, Decimal("0"))
            errors.append(
                RuleError(
                    "over_limit",
                    f"Over the daily transfer limit: {money_words(left)['en']} left today.",
                    f"超过当日累计转账限额：今日剩余额度{money_words(left)['zh']}。",
                    "amount",
                )
            )
    return errors


TRANSFER = Business(
    key="transfer",
    en="Transfer",
    zh="转账汇款",
    identity_level="two_factor",
    form=(
        Field(
            "from_account",
            "account",
            "From account",
            "转出账户",
            source="accounts",
            where=_usable_account,
        ),
        Field("to_account", "account", "Payee account", "收款账号"),
        Field("payee_name", "text", "Payee name", "收款人户名", min_length=2, max_length=50),
        Field("amount", "money", "Amount", "转账金额", max=Decimal("5000000")),
        Field("memo", "text", "Memo", "附言", required=False, max_length=60),
    ),
    agreement=Agreement(
        "Transfer agreement",
        "转账汇款协议",
        (
            (
                "The money leaves your account once the core system accepts the transfer. A "
                "transfer to the wrong person cannot be taken back by the bank: check the payee's "
                "name and account on your screen before you confirm.",
                "核心系统受理后资金即从您的账户转出。转错收款人的，本行无法直接追回："
                "确认前请在您的屏幕上仔细核对收款人户名及账号。",
            ),
            (
                "The core system checks that the payee's name matches the account; a mismatch "
                "stops the transfer. Transfers over the per-transaction or daily limit are "
                "refused; large transfers need a fresh face match.",
                "核心系统将核对收款人户名与账号是否一致，不一致则转账终止。超过单笔或当日限额的转账将被拒绝；"
                "大额转账须重新进行人脸比对。",
            ),
            (
                "If someone you do not know in person asked you to make this transfer, stop: "
                "this is very likely fraud.",
                "如本次转账是您不认识的人要求您办理的，请立即停止：这极有可能是诈骗。",
            ),
        ),
    ),
    operation="transfer",
    rules=_transfer_rules,
    high_risk=lambda p: money(p.get("amount", "0")) > transfer_face_limit(),
    summary=lambda p, c: [
        line("Business", "业务", words("Transfer", "转账汇款")),
        line("From account", "转出账户", masked(p["from_account"])),
        line("Payee", "收款人", same(p["payee_name"]), personal="name"),
        line("Payee account", "收款账号", masked(p["to_account"])),
        line("Amount", "金额", money_words(p["amount"]), kind="amount"),
        *([line("Memo", "附言", same(p["memo"]), personal="text")] if p.get("memo") else []),
    ],
    core_params=lambda p, c, i: {
        "from_account": p["from_account"],
        "to_account": p["to_account"],
        "payee_name": p["payee_name"],
        "amount": p["amount"],
        **({"memo": p["memo"]} if p.get("memo") else {}),
    },
    result_lines=lambda p, r: [
        *(
            [line("Reference", "交易流水号", same(r["transaction_ref"]))]
            if r.get("transaction_ref")
            else []
        ),
        *(
            [line("Balance after", "转账后余额", money_words(r["balance_after"]), kind="private")]
            if r.get("balance_after") is not None
            else []
        ),
    ],
)


# Wealth-product risk assessment ------------------------------------------------------------------

RISK_QUESTIONS: tuple[Field, ...] = (
    Field(
        "q_age",
        "select",
        "Q1. Your age",
        "问题1：您的年龄",
        choices=(
            Choice("over65", "Over 65", "65 岁以上", 1),
            Choice("56_65", "56 to 65", "56–65 岁", 2),
            Choice("18_25", "18 to 25", "18–25 岁", 3),
            Choice("46_55", "46 to 55", "46–55 岁", 4),
            Choice("26_45", "26 to 45", "26–45 岁", 5),
        ),
        group="questionnaire",
    ),
    Field(
        "q_income",
        "select",
        "Q2. Your yearly household income",
        "问题2：家庭年收入",
        choices=(
            Choice("lt50k", "Under CNY 50,000", "5 万元以下", 1),
            Choice("50k_100k", "CNY 50,000 to 100,000", "5–10 万元", 2),
            Choice("100k_300k", "CNY 100,000 to 300,000", "10–30 万元", 3),
            Choice("300k_1m", "CNY 300,000 to 1 million", "30–100 万元", 4),
            Choice("gt1m", "Over CNY 1 million", "100 万元以上", 5),
        ),
        group="questionnaire",
    ),
    Field(
        "q_experience",
        "select",
        "Q3. Your investment experience",
        "问题3：您的投资经验",
        choices=(
            Choice("none", "None", "无", 1),
            Choice("deposits", "Deposits and government bonds only", "仅存款与国债", 2),
            Choice(
                "funds_short", "Funds or wealth products, under 3 years", "基金或理财，3 年以内", 3
            ),
            Choice("stocks", "Stocks or funds, 3 to 5 years", "股票或基金，3–5 年", 4),
            Choice("derivatives", "Over 5 years, including derivatives", "5 年以上，含衍生品", 5),
        ),
        group="questionnaire",
    ),
    Field(
        "q_horizon",
        "select",
        "Q4. How long you can leave the money invested",
        "问题4：资金可投资期限",
        choices=(
            Choice("lt1y", "Under 1 year", "1 年以内", 1),
            Choice("1_2y", "1 to 2 years", "1–2 年", 2),
            Choice("2_3y", "2 to 3 years", "2–3 年", 3),
            Choice("3_5y", "3 to 5 years", "3–5 年", 4),
            Choice("gt5y", "Over 5 years", "5 年以上", 5),
        ),
        group="questionnaire",
    ),
    Field(
        "q_loss",
        "select",
        "Q5. The largest loss you could bear",
        "问题5：您能承受的最大亏损",
        choices=(
            Choice("none", "No loss of principal", "不能承受本金损失", 1),
            Choice("lt5", "Under 5%", "5% 以内", 2),
            Choice("5_10", "5% to 10%", "5%–10%", 3),
            Choice("10_30", "10% to 30%", "10%–30%", 4),
            Choice("gt30", "Over 30%", "30% 以上", 5),
        ),
        group="questionnaire",
    ),
    Field(
        "q_goal",
        "select",
        "Q6. What you invest for",
        "问题6：您的投资目标",
        choices=(
            Choice("preserve", "Keep the capital safe", "保本", 1),
            Choice("income", "A steady income", "稳定收益", 2),
            Choice("balanced", "Balance of income and growth", "收益与增长兼顾", 3),
            Choice("growth", "Growth", "资产增长", 4),
            Choice("max", "The highest return, whatever the risk", "追求最高收益", 5),
        ),
        group="questionnaire",
    ),
)

RISK_LEVELS = (  # (lowest score, level, en, zh)
    (6, "C1", "Conservative", "保守型"),
    (11, "C2", "Cautious", "稳健型"),
    (16, "C3", "Balanced", "平衡型"),
    (21, "C4", "Growth", "成长型"),
    (26, "C5", "Aggressive", "进取型"),
)


def risk_score(params: dict) -> int:
    return sum(
        next(c.score for c in q.choices if c.value == params[q.name]) for q in RISK_QUESTIONS
    )


def risk_level(score: int) -> tuple[str, str, str]:
    """(level, en, zh) for a questionnaire score (6..30)."""
    level = RISK_LEVELS[0]
    for entry in RISK_LEVELS:
        if score >= entry[0]:
            level = entry
    return level[1], level[2], level[3]


def _risk_rules(p: dict, c: dict) -> list[RuleError]:
    # Contradictory answers are asked again, not scored (the regulator's practice).
    if p.get("q_loss") == "none" and p.get("q_goal") in ("growth", "max"):
        return [
            RuleError(
                "contradictory_answers",
                "Answers 5 and 6 contradict each other (no loss of principal, but growth or the "
                "highest return): ask the customer again.",
                "第 5 题与第 6 题的回答相互矛盾（不能承受本金损失，却追求增长或最高收益），"
                "请重新询问客户。",
                "q_goal",
            )
        ]
    return []


def _risk_lines(p: dict, c: dict) -> list[Line]:
    level, en, zh = risk_level(risk_score(p))
    return [
        line("Business", "业务", words("Risk assessment", "风险承受能力评估")),
        *(line(q.en, q.zh, _choice_words(q.choices, p[q.name])) for q in RISK_QUESTIONS),
        line("Score", "得分", same(str(risk_score(p)))),
        line("Risk level", "风险等级", words(f"{level} {en}", f"{level} {zh}")),
    ]


RISK_ASSESSMENT = Business(
    key="risk_assessment",
    en="Wealth-product risk assessment",
    zh="理财风险承受能力评估",
    identity_level="two_factor",
    form=RISK_QUESTIONS,
    agreement=Agreement(
        "Risk assessment statement",
        "风险承受能力评估声明",
        (
            (
                "Your answers give a risk level from C1 (conservative) to C5 (aggressive). The "
                "bank sells you only wealth products at or below that level.",
                "您的回答将得出 C1（保守型）至 C5（进取型）的风险等级。"
                "本行仅向您销售不高于该等级的理财产品。",
            ),
            (
                "The assessment is valid for one year, or until your situation changes: then "
                "take it again. Wealth products are not deposits and may lose money.",
                "评估结果有效期一年，或至您的情况发生变化时止，届时请重新评估。理财非存款，产品有风险。",
            ),
        ),
    ),
    operation="risk_assessment_save",
    authorisation="",
    rules=_risk_rules,
    summary=_risk_lines,
    core_params=lambda p, c, i: {
        "risk_level": risk_level(risk_score(p))[0],
        "score": risk_score(p),
    },
    result_lines=lambda p, r: [
        *(
            [line("Valid until", "有效期至", same(r["valid_until"]))]
            if r.get("valid_until")
            else []
        ),
    ],
)


# Corporate account opening with the legal person's intent verification ---------------------------

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def uscc_check_char(first17: str) -> str:
    """GB 32100-2015: the 18th character of a unified social credit code."""
    total = sum(USCC_ALPHABET.index(ch) * w for ch, w in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def uscc_valid(code: str) -> bool:
    return (
        len(code) == 18
        and all(ch in USCC_ALPHABET for ch in code)
        and uscc_check_char(code[:17]) == code[17]
    )


YES_NO = (Choice("yes", "Yes", "是"), Choice("no", "No", "否"))
# (field, question en, question zh, the answer that lets the business go on)
INTENT_QUESTIONS = (
    (
        "intent_legal_person",
        "Are you the legal representative of this company?",
        "您是否为该公司的法定代表人？",
        "yes",
    ),
    (
        "intent_own_will",
        "Do you open this account of your own will, not at anyone else's request?",
        "您是否出于本人意愿开立该账户，而非受他人委托或要求？",
        "yes",
    ),
    (
        "intent_no_rent",
        "Will you, or anyone you know, rent, lend or sell this account or its tools?",
        "您或您认识的人是否会出租、出借、出售该账户或其支付工具？",
        "no",
    ),
    (
        "intent_knows_business",
        "Do you know the company's business and its registered address?",
        "您是否了解公司的经营业务及注册地址？",
        "yes",
    ),
)


def _uscc_rules(p: dict, c: dict) -> list[RuleError]:
    code = p.get("uscc", "")
    if code and not uscc_valid(code):
        return [
            RuleError(
                "uscc_invalid",
                "The unified social credit code's check character is wrong: check each "
                "character against the business licence.",
                "统一社会信用代码校验位不正确，请对照营业执照逐位核对。",
                "uscc",
            )
        ]
    return []


def _corporate_rules(p: dict, c: dict) -> list[RuleError]:
    errors = _uscc_rules(p, c)
    wrong = [q for q in INTENT_QUESTIONS if p.get(q[0]) and p[q[0]] != q[3]]
    if wrong:
        errors.append(
            RuleError(
                "intent_failed",
                "The legal person's intent is not confirmed: "
                + " ".join(q[1] for q in wrong)
                + " The account cannot be opened.",
                "法定代表人开户意愿未能核实：" + "".join(q[2] for q in wrong) + "不能开户。",
                wrong[0][0],
            )
        )
    return errors


CORPORATE_ACCOUNT_OPEN = Business(
    key="corporate_account_open",
    en="Corporate account opening",
    zh="对公账户开立",
    identity_level="three_factor_face",
    extra_steps=("intent",),
    form=(
        Field("company_name", "text", "Company name", "单位名称", min_length=4, max_length=100),
        Field(
            "uscc",
            "text",
            "Unified social credit code",
            "统一社会信用代码",
            min_length=18,
            max_length=18,
            pattern=r"[0-9A-HJ-NPQRTUWXY]{18}",
            pattern_words=(
                "The unified social credit code is 18 digits and capital letters (no I, O, S, "
                "V, Z).",
                "统一社会信用代码为 18 位数字或大写字母（不含 I、O、S、V、Z）。",
            ),
        ),
        *(
            Field(name, "select", en, zh, choices=YES_NO, group="intent")
            for name, en, zh, _ in INTENT_QUESTIONS
        ),
        Field(
            "intent_scope",
            "text",
            "The company's business, in the legal person's words",
            "法定代表人口述的经营范围",
            min_length=4,
            max_length=200,
            group="intent",
        ),
    ),
    agreement=Agreement(
        "Corporate account opening agreement",
        "单位银行结算账户开户协议",
        (
            (
                "The company asks to open a bank settlement account. The legal representative "
                "confirms on video, in person, the intent to open it and the truth of the "
                "company's documents.",
                "单位申请开立银行结算账户。法定代表人通过视频本人确认开户意愿及单位证明文件的真实性。",
            ),
            (
                "The account is for the company's own lawful business. Renting, lending or "
                "selling it, or using it for others' funds, is illegal: the bank will close the "
                "account and report it.",
                "该账户仅用于单位自身合法经营。出租、出借、出售账户或用于他人资金往来均属违法，"
                "本行将依法关闭账户并报告。",
            ),
            (
                "The bank may visit the registered address and ask for further documents before "
                "the account can receive payments.",
                "本行可能在账户收款前实地核实注册地址并要求补充资料。",
            ),
        ),
    ),
    operation="corporate_account_open",
    authorisation="otp",
    rules=_corporate_rules,
    high_risk=lambda p: True,
    summary=lambda p, c: [
        line("Business", "业务", words("Corporate account opening", "对公账户开立")),
        line("Company", "单位名称", same(p["company_name"])),
        line("Unified social credit code", "统一社会信用代码", same(p["uscc"])),
        line("Legal representative", "法定代表人", same(c.get("name", "")), personal="name"),
        line("Account", "账户类型", words("Basic deposit account", "基本存款账户")),
        *(line(en, zh, _choice_words(YES_NO, p[name])) for name, en, zh, _ in INTENT_QUESTIONS),
    ],
    # The legal person is the customer on the call, as the identity check confirmed them; the
    # rules have refused any intent answer that is not the expected one.
    core_params=lambda p, c, i: {
        "company_name": p["company_name"],
        "uscc": p["uscc"],
        "legal_person_name": i.get("name", ""),
        "legal_person_id_number": i.get("id_number", ""),
        "intent_verified": all(p.get(name) == ok for name, _, _, ok in INTENT_QUESTIONS),
    },
    result_lines=lambda p, r: [
        *(
            [line("New account", "新开账户", masked(r["account_number"]))]
            if r.get("account_number")
            else []
        ),
    ],
)


# --- the catalogue ----------------------------------------------------------------------------

CATALOGUE: dict[str, Business] = {
    b.key: b
    for b in (
        PASSWORD_RESET,
        CARD_LOSS_REPORT,
        CARD_LOSS_CANCEL,
        DORMANT_ACTIVATE,
        MOBILE_CHANGE,
        DETAILS_UPDATE,
        TIME_DEPOSIT_OPEN,
        TRANSFER,
        RISK_ASSESSMENT,
        CORPORATE_ACCOUNT_OPEN,
    )
}


def business_get(key: str) -> Business | None:
    return CATALOGUE.get(key)


def catalogue_list() -> list[dict]:
    """What ``manage.py workflow_catalogue --json`` prints and the teller's launcher offers."""
    return [b.as_dict() for b in CATALOGUE.values()]


def _declarations_check() -> None:
    """Mistakes in a declaration fail at import, not in front of a customer."""
    for b in CATALOGUE.values():
        assert re.fullmatch(r"[a-z0-9_]{1,64}", b.key), b.key
        assert b.identity_level in LEVELS, b.key
        assert b.authorisation in ("", "pin", "otp"), b.key
        assert not b.new_pin or b.authorisation, b.key
        names = [f.name for f in b.form]
        assert len(names) == len(set(names)), b.key
        for f in b.form:
            assert f.type in FIELD_TYPES, (b.key, f.name)
            assert f.type != "select" or f.choices, (b.key, f.name)
        assert len(b.agreement.paragraphs()) >= 8, b.key  # long enough to scroll
        assert all(step in STEP_WORDS for step in b.steps), b.key


_declarations_check()
