"""Demo customers of the core-banking stub. Their ID numbers are the national-ID stub's test
citizens (``kyc/national_stub/seed.py``), so a customer who passes the identity check in a call
is found in the core. Demo PINs are public: this is a stub.

张伟 110101199003071233 — CIF000000001, mobile 13800138001, **PIN 135790**
    current 6230021000000001018 ¥52,000.00, debit card 6222021000000001015 (active);
    savings 6230021000000001026 ¥3,000.00 **dormant**. Limits ¥50,000 per transfer, ¥200,000 a day.
李娜 310104198512152025 — CIF000000002, mobile 13900139002, **PIN 246813**
    current 6230021000000002016 ¥128,500.50, card 6222021000000002013 **reported lost**, card
    6222021000000002021 (active). Limits ¥20,000 per transfer, ¥50,000 a day.
陈静 510107199206114216 — CIF000000003, mobile 13700137003, **PIN 975312**
    current 6230021000000003014 ¥800.00 (too little for most transfers: insufficient funds),
    card 6222021000000003011. Limits ¥5,000 per transfer, ¥10,000 a day.
刘洋 330106199507180014 — CIF000000004, mobile 13600136004, **PIN 864209**
    current 6230021000000004012 ¥10,000.00 (a payee for transfers: name 刘洋), card
    6222021000000004019. Not in the national registry (a payee only).

王芳 (revoked in the national registry) is no customer. A company for corporate account opening:
unified social credit code ``DEMO_USCC`` = 91350100M000100Y43 (valid check character). One-time
codes (password reset) are read with ``services.stub_last_otp(customer_ref)`` or the developer
endpoint ``GET /v1/_dev/otp?customer_ref=...`` (with COREBANK_STUB_ADMIN_KEY in X-Admin-Key; the
embedded mount or ``corebank_stub --dev-endpoints`` only). Every operation but the risk
assessment needs the customer's PIN or a one-time code (``operations.AUTHORISATION``).
``corebank_customer_register`` gives any other person
(e.g. a generated one) a current account, a card and a PIN (default 147258).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from decimal import Decimal

from .models import AccountKind, AccountStatus, CardStatus
from .services import account_open, card_issue, customer_register

DEMO_USCC = "91350100M000100Y43"


@dataclass(frozen=True)
class SeedAccount:
    number: str
    kind: str
    balance: Decimal
    status: str = AccountStatus.ACTIVE
    cards: tuple[tuple[str, str], ...] = ()  # (card number, status)


@dataclass(frozen=True)
class SeedCustomer:
    name: str
    id_number: str
    customer_ref: str
    mobile: str
    pin: str
    per_transaction_limit: Decimal
    daily_transfer_limit: Decimal
    accounts: tuple[SeedAccount, ...] = field(default_factory=tuple)
    address: str = ""
    occupation: str = ""


CUSTOMERS = (
    SeedCustomer(
        "张伟",
        "110101199003071233",
        "CIF000000001",
        "13800138001",
        "135790",
        Decimal("50000.00"),
        Decimal("200000.00"),
        (
            SeedAccount(
                "6230021000000001018",
                AccountKind.CURRENT,
                Decimal("52000.00"),
                cards=(("6222021000000001015", CardStatus.ACTIVE),),
            ),
            SeedAccount(
                "6230021000000001026",
                AccountKind.SAVINGS,
                Decimal("3000.00"),
                status=AccountStatus.DORMANT,
            ),
        ),
        address="北京市东城区东华门街道1号",
        occupation="工程师",
    ),
    SeedCustomer(
        "李娜",
        "310104198512152025",
        "CIF000000002",
        "13900139002",
        "246813",
        Decimal("20000.00"),
        Decimal("50000.00"),
        (
            SeedAccount(
                "6230021000000002016",
                AccountKind.CURRENT,
                Decimal("128500.50"),
                cards=(
                    ("6222021000000002013", CardStatus.LOST),
                    ("6222021000000002021", CardStatus.ACTIVE),
                ),
            ),
        ),
        address="上海市徐汇区漕溪北路88号",
        occupation="教师",
    ),
    SeedCustomer(
        "陈静",
        "510107199206114216",
        "CIF000000003",
        "13700137003",
        "975312",
        Decimal("5000.00"),
        Decimal("10000.00"),
        (
            SeedAccount(
                "6230021000000003014",
                AccountKind.CURRENT,
                Decimal("800.00"),
                cards=(("6222021000000003011", CardStatus.ACTIVE),),
            ),
        ),
        address="成都市武侯区人民南路四段9号",
        occupation="设计师",
    ),
    SeedCustomer(
        "刘洋",
        "330106199507180014",
        "CIF000000004",
        "13600136004",
        "864209",
        Decimal("50000.00"),
        Decimal("200000.00"),
        (
            SeedAccount(
                "6230021000000004012",
                AccountKind.CURRENT,
                Decimal("10000.00"),
                cards=(("6222021000000004019", CardStatus.ACTIVE),),
            ),
        ),
        address="杭州市西湖区文三路100号",
        occupation="销售",
    ),
)
BY_NAME = {c.name: c for c in CUSTOMERS}


def corebank_seed() -> list[str]:
    """Create (or bring back to the seeded state) the demo customers; their customer_refs."""
    refs = []
    for spec in CUSTOMERS:
        customer = customer_register(
            name=spec.name,
            id_number=spec.id_number,
            customer_ref=spec.customer_ref,
            mobile=spec.mobile,
            pin=spec.pin,
            address=spec.address,
            occupation=spec.occupation,
            per_transaction_limit=spec.per_transaction_limit,
            daily_transfer_limit=spec.daily_transfer_limit,
        )
        customer.risk_level = ""
        customer.email = ""
        customer.save(update_fields=["risk_level", "email"])
        for account_spec in spec.accounts:
            account = account_open(
                customer=customer,
                kind=account_spec.kind,
                balance=account_spec.balance,
                number=account_spec.number,
                status=account_spec.status,
            )
            for card_number, status in account_spec.cards:
                card_issue(account=account, number=card_number, status=status)
        refs.append(customer.customer_ref)
    return refs


def corebank_customer_register(
    *,
    id_number: str,
    name: str,
    pin: str = "147258",
    mobile: str | None = None,
    balance: Decimal | str = Decimal("20000.00"),
    per_transaction_limit: Decimal | str = Decimal("50000.00"),
    daily_transfer_limit: Decimal | str = Decimal("200000.00"),
) -> dict:
    """Make a person (e.g. a generated test person) a customer: a current account with
    ``balance``, a debit card, a reserved mobile and the PIN. Registering the same ID number
    again refreshes the customer and opens another account."""
    customer = customer_register(
        name=name,
        id_number=id_number,
        mobile=mobile or "137" + f"{secrets.randbelow(10**8):08d}",
        pin=pin,
        per_transaction_limit=Decimal(str(per_transaction_limit)),
        daily_transfer_limit=Decimal(str(daily_transfer_limit)),
    )
    account = account_open(
        customer=customer, kind=AccountKind.CURRENT, balance=Decimal(str(balance))
    )
    card = card_issue(account=account)
    return {
        "customer_ref": customer.customer_ref,
        "name": customer.name,
        "pin": pin,
        "mobile": customer.mobile,
        "account_number": account.number,
        "card_token": card.token,
        "card_number": card.number,
    }
