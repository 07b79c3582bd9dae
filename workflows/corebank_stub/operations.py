"""The core's business operations: one function per operation, each validating its parameters
against the customer's data and either carrying out the effect or raising ``BusinessError`` with
words in English and Chinese. They run inside the transaction that records the idempotency key
(``services.operation_execute``), with the customer's row locked; a BusinessError rolls back
whatever the function had changed.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
import unicodedata
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.db.models import Sum
from django.utils import timezone

from kyc.idcard.numbers import id_number_checksum_ok, id_number_clean
from workflows.corebank.masking import account_mask, mobile_mask

from .models import (
    Account,
    AccountKind,
    AccountStatus,
    Card,
    CardStatus,
    ChallengeMethod,
    Customer,
    LedgerEntry,
    LedgerKind,
    OperationRequest,
    PinChallenge,
)
from .numbers import account_number_new, uscc_valid

CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("1000000000.00")
TIME_DEPOSIT_MIN = Decimal("50.00")
# Annual rates (percent) of the stub's time deposits, by term in months.
TIME_DEPOSIT_RATES = {
    3: Decimal("1.05"),
    6: Decimal("1.25"),
    12: Decimal("1.45"),
    24: Decimal("1.65"),
    36: Decimal("1.95"),
    60: Decimal("2.00"),
}
RISK_LEVELS = {
    "C1": ("conservative", "保守型"),
    "C2": ("cautious", "稳健型"),
    "C3": ("balanced", "平衡型"),
    "C4": ("growth", "成长型"),
    "C5": ("aggressive", "进取型"),
}
MOBILE_RE = re.compile(r"^1[3-9]\d{9}$")
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
DETAIL_FIELDS = {"address": 200, "occupation": 50, "email": 254}


class BusinessError(Exception):
    """A final "no" from the core, in words: recorded against the idempotency key."""

    def __init__(self, code: str, en: str, zh: str):
        super().__init__(f"{code}: {en}")
        self.code = code
        self.en = en
        self.zh = zh


def yuan(amount: Decimal) -> str:
    return f"{amount:,.2f}"


# --- parameters --------------------------------------------------------------------------------
def _invalid(field: str, en: str, zh: str) -> BusinessError:
    return BusinessError("invalid_params", f"{field}: {en}", f"{field}：{zh}")


def _only(params: dict, allowed: set[str]) -> None:
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise _invalid(", ".join(unknown), "not a parameter of this operation", "不是本业务的参数")


def _text(params: dict, field: str, *, max_len: int, required: bool = True) -> str:
    value = params.get(field)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise _invalid(field, "text is required", "需要填写文字")
    value = re.sub(r"\s+", " ", unicodedata.normalize("NFKC", value)).strip()
    if required and not value:
        raise _invalid(field, "must not be empty", "不能为空")
    if len(value) > max_len or any(unicodedata.category(c) == "Cc" for c in value):
        raise _invalid(
            field, f"at most {max_len} printable characters", f"最多 {max_len} 个可打印字符"
        )
    return value


def _amount(params: dict, field: str = "amount") -> Decimal:
    value = params.get(field)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _invalid(field, "an amount in yuan is required", "需要填写金额（元）")
    try:
        amount = Decimal(str(value).replace(",", "").strip())
    except InvalidOperation as exc:
        raise _invalid(field, "not an amount", "不是有效金额") from exc
    if not amount.is_finite() or amount <= 0:
        raise _invalid(field, "must be more than zero", "必须大于零")
    if amount != amount.quantize(CENT):
        raise _invalid(field, "at most two decimals (fen)", "最多两位小数（分）")
    if amount > MAX_AMOUNT:
        raise _invalid(field, "too large", "金额过大")
    return amount.quantize(CENT)


def _own_account(customer: Customer, params: dict, field: str) -> Account:
    number = params.get(field)
    if not isinstance(number, str) or not number.strip():
        raise _invalid(field, "an account number is required", "需要填写账号")
    number = "".join(number.split())
    account = Account.objects.select_for_update().filter(number=number).first()
    if account is None:
        raise BusinessError(
            "account_not_found",
            f"There is no account {account_mask(number)}.",
            f"账户 {account_mask(number)} 不存在。",
        )
    if account.customer_id != customer.pk:
        raise BusinessError(
            "account_not_yours",
            f"Account {account_mask(number)} does not belong to this customer.",
            f"账户 {account_mask(number)} 不属于该客户。",
        )
    return account


def _usable_for_payment(account: Account) -> None:
    masked = account_mask(account.number)
    if account.status == AccountStatus.DORMANT:
        raise BusinessError(
            "account_dormant",
            f"Account {masked} is dormant; activate it first.",
            f"账户 {masked} 为久悬户，请先激活。",
        )
    if account.status != AccountStatus.ACTIVE:
        raise BusinessError(
            "account_closed", f"Account {masked} is closed.", f"账户 {masked} 已销户。"
        )
    if account.kind not in (AccountKind.CURRENT, AccountKind.SAVINGS):
        raise BusinessError(
            "account_not_payable",
            f"Money cannot be paid out of account {masked} (a {account.kind} account).",
            f"账户 {masked} 不能对外支付。",
        )


def _debit_check(account: Account, amount: Decimal) -> None:
    if account.balance < amount:
        raise BusinessError(
            "insufficient_funds",
            f"Insufficient funds: the balance of {account_mask(account.number)} is "
            f"{yuan(account.balance)} yuan, less than {yuan(amount)} yuan.",
            f"余额不足：账户 {account_mask(account.number)} 余额 {yuan(account.balance)} 元，"
            f"不足 {yuan(amount)} 元。",
        )


def _post(
    account: Account,
    amount: Decimal,
    *,
    kind: str,
    request: OperationRequest,
    counterparty: Account | None = None,
) -> LedgerEntry:
    account.balance += amount
    account.save(update_fields=["balance"])
    return LedgerEntry.objects.create(
        account=account,
        request=request,
        kind=kind,
        amount=amount,
        balance_after=account.balance,
        counterparty=account_mask(counterparty.number) if counterparty else "",
    )


def transferred_today(customer: Customer) -> Decimal:
    """What the customer has transferred out today (the bank's calendar day), for the daily
    limit."""
    today = timezone.localdate()
    start = timezone.make_aware(dt.datetime.combine(today, dt.time.min))
    total = LedgerEntry.objects.filter(
        account__customer=customer,
        kind=LedgerKind.TRANSFER_OUT,
        created_at__gte=start,
        created_at__lt=start + dt.timedelta(days=1),
    ).aggregate(total=Sum("amount"))["total"]
    return (-(total or Decimal("0.00"))).quantize(CENT)  # SQLite sums come back unscaled


def _card(customer: Customer, params: dict) -> Card:
    card_token = params.get("card_token")
    if not isinstance(card_token, str) or not card_token:
        raise _invalid("card_token", "a card is required", "需要选择银行卡")
    card = Card.objects.select_for_update().filter(token=card_token).first()
    if card is None or card.customer_id != customer.pk:
        raise BusinessError(
            "card_not_found",
            "This customer has no such card.",
            "该客户名下没有这张卡。",
        )
    return card


def _add_months(day: dt.date, months: int) -> dt.date:
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


# --- operations --------------------------------------------------------------------------------
def card_loss_report(*, customer: Customer, params: dict, request: OperationRequest) -> dict:
    _only(params, {"card_token"})
    card = _card(customer, params)
    masked = account_mask(card.number)
    if card.status == CardStatus.LOST:
        raise BusinessError(
            "card_already_lost",
            f"Card {masked} is already reported lost.",
            f"银行卡 {masked} 已挂失，无需重复挂失。",
        )
    card.status, card.lost_at = CardStatus.LOST, timezone.now()
    card.save(update_fields=["status", "lost_at"])
    return {"card": masked, "card_status": card.status, "lost_at": card.lost_at.isoformat()}


def card_loss_cancel(*, customer: Customer, params: dict, request: OperationRequest) -> dict:
    _only(params, {"card_token"})
    card = _card(customer, params)
    masked = account_mask(card.number)
    if card.status != CardStatus.LOST:
        raise BusinessError(
            "card_not_lost",
            f"Card {masked} is not reported lost.",
            f"银行卡 {masked} 未挂失，无需解挂。",
        )
    card.status, card.lost_at = CardStatus.ACTIVE, None
    card.save(update_fields=["status", "lost_at"])
    return {"card": masked, "card_status": card.status}


def dormant_activate(*, customer: Customer, params: dict, request: OperationRequest) -> dict:
    _only(params, {"account_number"})
    account = _own_account(customer, params, "account_number")
    masked = account_mask(account.number)
    if account.status != AccountStatus.DORMANT:
        raise BusinessError(
            "account_not_dormant",
            f"Account {masked} is not dormant.",
            f"账户 {masked} 不是久悬户，无需激活。",
        )
    account.status = AccountStatus.ACTIVE
    account.save(update_fields=["status"])
    return {"account": masked, "account_status": account.status, "balance": str(account.balance)}


def mobile_change(*, customer: Customer, params: dict, request: OperationRequest) -> dict:
    _only(params, {"new_mobile"})
    mobile = params.get("new_mobile")
    mobile = "".join(mobile.split()) if isinstance(mobile, str) else ""
    if not MOBILE_RE.match(mobile):
        raise BusinessError(
            "invalid_mobile",
            "The new mobile number must be 11 digits starting with 13-19.",
            "新手机号码应为以 13-19 开头的 11 位数字。",
        )
    if mobile == customer.mobile:
        raise BusinessError(
            "same_mobile",
            f"{mobile_mask(mobile)} is already the reserved mobile number.",
            f"{mobile_mask(mobile)} 已是预留手机号码。",
        )
    old = customer.mobile
    customer.mobile = mobile
    customer.save(update_fields=["mobile"])
    return {"old_mobile": mobile_mask(old), "new_mobile": mobile_mask(mobile)}


def details_update(*, customer: Customer, params: dict, request: OperationRequest) -> dict:
    _only(params, set(DETAIL_FIELDS))
    changes = {}
    for field, max_len in DETAIL_FIELDS.items():
        if field not in params:
            continue
        value = _text(params, field, max_len=max_len)
        if field == "email" and not EMAIL_RE.match(value):
            raise _invalid("email", "not an e-mail address", "电子邮箱格式不正确")
        if value != getattr(customer, field):
            changes[field] = value
    if not changes:
        raise BusinessError(
            "nothing_to_change",
            "The new details are the same as those on file.",
            "新信息与现有信息相同，无需变更。",
        )
    for field, value in changes.items():
        setattr(customer, field, value)
    customer.save(update_fields=list(changes))
    return {"changed": sorted(changes)}


def time_deposit_open(*, customer: Customer, params: dict, request: OperationRequest) -> dict:
    _only(params, {"from_account", "amount", "term_months"})
    term = params.get("term_months")
    if isinstance(term, str) and term.isdigit():
        term = int(term)
    if isinstance(term, bool) or term not in TIME_DEPOSIT_RATES:
        terms = ", ".join(str(t) for t in TIME_DEPOSIT_RATES)
        raise BusinessError(
            "invalid_term",
            f"A time deposit runs {terms} months.",
            f"定期存款期限为 {terms} 个月。",
        )
    amount = _amount(params)
    if amount < TIME_DEPOSIT_MIN:
        raise BusinessError(
            "amount_too_small",
            f"A time deposit starts at {yuan(TIME_DEPOSIT_MIN)} yuan.",
            f"定期存款起存金额为 {yuan(TIME_DEPOSIT_MIN)} 元。",
        )
    source = _own_account(customer, params, "from_account")
    _usable_for_payment(source)
    _debit_check(source, amount)
    rate = TIME_DEPOSIT_RATES[term]
    opened = timezone.localdate()
    maturity = _add_months(opened, term)
    deposit = Account.objects.create(
        number=account_number_new(),
        customer=customer,
        kind=AccountKind.TIME_DEPOSIT,
        term_months=term,
        rate_percent=rate,
        maturity_date=maturity,
    )
    _post(source, -amount, kind=LedgerKind.DEPOSIT_OUT, request=request, counterparty=deposit)
    _post(deposit, amount, kind=LedgerKind.DEPOSIT_IN, request=request, counterparty=source)
    interest = (amount * rate / 100 * term / 12).quantize(CENT, rounding=ROUND_HALF_UP)
    return {
        "deposit_account": deposit.number,
        "deposit_account_masked": account_mask(deposit.number),
        "from_account": account_mask(source.number),
        "amount": str(amount),
        "term_months": term,
        "rate_percent": str(rate),
        "opened_on": opened.isoformat(),
        "maturity_date": maturity.isoformat(),
        "interest_at_maturity": str(interest),
        "balance_after": str(source.balance),
    }


def transfer(*, customer: Customer, params: dict, request: OperationRequest) -> dict:
    _only(params, {"from_account", "to_account", "payee_name", "amount", "memo"})
    amount = _amount(params)
    payee_name = _text(params, "payee_name", max_len=100)
    memo = _text(params, "memo", max_len=60, required=False)
    to_number = params.get("to_account")
    to_number = "".join(to_number.split()) if isinstance(to_number, str) else ""
    if not to_number.isdigit():
        raise _invalid("to_account", "an account number (digits) is required", "需要填写收款账号")
    source = _own_account(customer, params, "from_account")
    if to_number == source.number:
        raise BusinessError(
            "same_account",
            "The payee account is the paying account.",
            "收款账户与付款账户相同。",
        )
    _usable_for_payment(source)
    # Lock both accounts in one order (by number) whatever the direction: two opposite
    # transfers at the same moment must not deadlock.
    locked = {
        a.number: a
        for a in Account.objects.select_for_update()
        .filter(number__in=sorted({source.number, to_number}))
        .select_related("customer")
        .order_by("number")
    }
    source, target = locked[source.number], locked.get(to_number)
    masked_to = account_mask(to_number)
    if target is None:
        raise BusinessError(
            "payee_not_found",
            f"There is no account {masked_to} at this bank.",
            f"本行没有账户 {masked_to}。",
        )
    holder = target.holder_name or target.customer.name
    if unicodedata.normalize("NFKC", payee_name) != holder:
        raise BusinessError(
            "payee_mismatch",
            f"The payee name does not match the holder of account {masked_to}.",
            f"收款人户名与账户 {masked_to} 不符。",
        )
    if target.status != AccountStatus.ACTIVE or target.kind == AccountKind.TIME_DEPOSIT:
        raise BusinessError(
            "payee_account_unavailable",
            f"Account {masked_to} cannot receive money (it is {target.status}).",
            f"账户 {masked_to} 当前不能收款。",
        )
    if amount > customer.per_transaction_limit:
        raise BusinessError(
            "over_limit",
            f"{yuan(amount)} yuan is over the per-transfer limit of "
            f"{yuan(customer.per_transaction_limit)} yuan.",
            f"{yuan(amount)} 元超过单笔转账限额 {yuan(customer.per_transaction_limit)} 元。",
        )
    used = transferred_today(customer)
    if used + amount > customer.daily_transfer_limit:
        left = max(Decimal("0.00"), customer.daily_transfer_limit - used)
        raise BusinessError(
            "over_daily_limit",
            f"{yuan(amount)} yuan is over what is left of today's transfer limit "
            f"({yuan(left)} of {yuan(customer.daily_transfer_limit)} yuan).",
            f"{yuan(amount)} 元超过今日剩余转账额度（剩余 {yuan(left)} 元，"
            f"日限额 {yuan(customer.daily_transfer_limit)} 元）。",
        )
    _debit_check(source, amount)
    _post(source, -amount, kind=LedgerKind.TRANSFER_OUT, request=request, counterparty=target)
    _post(target, amount, kind=LedgerKind.TRANSFER_IN, request=request, counterparty=source)
    return {
        "transaction_ref": f"T{request.pk:010d}",
        "from_account": account_mask(source.number),
        "to_account": masked_to,
        "payee_name": holder,
        "amount": str(amount),
        "memo": memo,
        "balance_after": str(source.balance),
        "transferred_today": str(used + amount),
        "daily_limit": str(customer.daily_transfer_limit),
    }


def risk_assessment_save(*, customer: Customer, params: dict, request: OperationRequest) -> dict:
    _only(params, {"risk_level", "score"})
    level = params.get("risk_level")
    if level not in RISK_LEVELS:
        raise _invalid("risk_level", "one of C1-C5", "应为 C1-C5 之一")
    score = params.get("score")
    if score is not None and (isinstance(score, bool) or not isinstance(score, int)):
        raise _invalid("score", "a whole number", "应为整数")
    now = timezone.now()
    customer.risk_level, customer.risk_assessed_at = level, now
    customer.save(update_fields=["risk_level", "risk_assessed_at"])
    en, zh = RISK_LEVELS[level]
    return {
        "risk_level": level,
        "risk_label": {"en": en, "zh": zh},
        "score": score,
        "assessed_on": timezone.localdate(now).isoformat(),
        "valid_until": _add_months(timezone.localdate(now), 12).isoformat(),
    }


def corporate_account_open(*, customer: Customer, params: dict, request: OperationRequest) -> dict:
    _only(
        params,
        {"company_name", "uscc", "legal_person_name", "legal_person_id_number", "intent_verified"},
    )
    company = _text(params, "company_name", max_len=100)
    if len(company) < 2:
        raise _invalid("company_name", "at least 2 characters", "至少 2 个字")
    uscc = params.get("uscc")
    uscc = "".join(uscc.split()).upper() if isinstance(uscc, str) else ""
    if not uscc_valid(uscc):
        raise BusinessError(
            "invalid_uscc",
            "The unified social credit code is not valid (18 characters with a check character, "
            "GB 32100).",
            "统一社会信用代码无效（应为 18 位，末位校验码须正确）。",
        )
    legal_name = _text(params, "legal_person_name", max_len=100)
    legal_number = params.get("legal_person_id_number")
    legal_number = id_number_clean(legal_number) if isinstance(legal_number, str) else ""
    if not id_number_checksum_ok(legal_number):
        raise _invalid("legal_person_id_number", "not a valid ID number", "身份证号码无效")
    if legal_number != customer.id_number or legal_name != customer.name:
        raise BusinessError(
            "legal_person_mismatch",
            "The legal person must be the customer on the call (name and ID number).",
            "法定代表人须为本次视频的客户本人（姓名与身份证号码一致）。",
        )
    if params.get("intent_verified") is not True:
        raise BusinessError(
            "intent_not_verified",
            "The legal person's intent to open the account has not been verified.",
            "尚未完成法定代表人开户意愿核实。",
        )
    if Account.objects.filter(uscc=uscc, kind=AccountKind.CORPORATE).exists():
        raise BusinessError(
            "uscc_has_account",
            "This company already has a basic account at this bank.",
            "该单位已在本行开立基本存款账户。",
        )
    account = Account.objects.create(
        number=account_number_new(),
        customer=customer,
        kind=AccountKind.CORPORATE,
        holder_name=company,
        uscc=uscc,
    )
    return {
        "account_number": account.number,
        "account_number_masked": account_mask(account.number),
        "company_name": company,
        "uscc": uscc,
        "account_status": account.status,
    }


def password_reset(*, customer: Customer, params: dict, request: OperationRequest) -> dict:
    """The new PIN reached the core encrypted, through a ``new_pin`` challenge the customer
    answered (``services.pin_verify`` kept its hash there): here it becomes the PIN."""
    _only(params, {"new_pin_challenge_id"})
    challenge_id = params.get("new_pin_challenge_id")
    challenge = (
        PinChallenge.objects.select_for_update()
        .filter(
            challenge_id=challenge_id if isinstance(challenge_id, str) else "",
            customer=customer,
            method=ChallengeMethod.NEW_PIN,
        )
        .first()
    )
    if (
        challenge is None
        or not challenge.new_pin_hash
        or challenge.spent_by
        or challenge.expires_at < timezone.now()
    ):
        raise BusinessError(
            "new_pin_missing",
            "The new PIN has not been entered (or has expired); ask the customer to enter it.",
            "尚未输入新密码（或已过期），请客户重新输入。",
        )
    customer.pin_hash = challenge.new_pin_hash
    customer.pin_failures, customer.pin_locked = 0, False
    customer.save(update_fields=["pin_hash", "pin_failures", "pin_locked"])
    challenge.new_pin_hash, challenge.spent_by = "", request.idempotency_key
    challenge.save(update_fields=["new_pin_hash", "spent_by"])
    return {"pin_status": "set", "unlocked": True}


Operation = Callable[..., dict]

# What the core asks of the customer before it carries out each operation: their PIN, or a
# one-time code sent to the reserved mobile (they have forgotten the PIN; a company's legal
# person proves the mobile on file); "" where the on-screen confirmation is the consent. Without
# it the operation is refused (``not_authorised``) and nothing changes. workflows/catalogue.py
# declares the same for each business (a test keeps the two in step).
AUTHORISATION: dict[str, str] = {
    "password_reset": "otp",
    "card_loss_report": "pin",
    "card_loss_cancel": "pin",
    "dormant_activate": "pin",
    "mobile_change": "pin",
    "details_update": "pin",
    "time_deposit_open": "pin",
    "transfer": "pin",
    "risk_assessment_save": "",
    "corporate_account_open": "otp",
}
AUTHORISATION_WORDS = {
    "pin": ("the customer's PIN", "客户的交易密码"),
    "otp": ("a one-time code sent to the reserved mobile", "预留手机号收到的短信验证码"),
}

OPERATIONS: dict[str, Operation] = {
    "password_reset": password_reset,
    "card_loss_report": card_loss_report,
    "card_loss_cancel": card_loss_cancel,
    "dormant_activate": dormant_activate,
    "mobile_change": mobile_change,
    "details_update": details_update,
    "time_deposit_open": time_deposit_open,
    "transfer": transfer,
    "risk_assessment_save": risk_assessment_save,
    "corporate_account_open": corporate_account_open,
}


def weak_pin(pin: str, *, customer: Customer) -> bool:
    """Six of one digit, a run up or down, or the customer's birth date (yyMMdd / MMdd..)."""
    if len(set(pin)) == 1 or pin in "0123456789" or pin in "9876543210":
        return True
    birth = customer.id_number[6:14]
    return pin in (birth[2:], birth[:6], birth[4:] + birth[2:4])
