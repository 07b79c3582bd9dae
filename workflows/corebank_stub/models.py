"""The stub's own data: the bank's customers, accounts, cards and ledger, what it answered to each
idempotency key, its PIN challenges and key pair, its simulated SMS outbox, and its fault controls.

In production the stub is a process of its own but keeps these tables in the project database
(it is a test stand-in for the bank's core system, not a core system).
"""

from __future__ import annotations

from decimal import Decimal
from typing import TypedDict

from django.db import models

from videobank.outside.stubs.records import IdempotencyRecord
from workflows.corebank.masking import account_mask, id_number_mask, name_mask


class _Money(TypedDict):
    max_digits: int
    decimal_places: int


MONEY = _Money(max_digits=16, decimal_places=2)


class CustomerStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    FROZEN = "frozen", "Frozen"


class Customer(models.Model):
    """A customer of the bank (CIF): identity, reserved mobile, PIN hash, transfer limits."""

    customer_ref = models.CharField(max_length=20, unique=True)
    name = models.CharField(max_length=100)
    id_number = models.CharField(max_length=18, unique=True)
    mobile = models.CharField(max_length=11)  # the reserved mobile: one-time codes go there
    address = models.CharField(max_length=200, blank=True)
    occupation = models.CharField(max_length=50, blank=True)
    email = models.CharField(max_length=254, blank=True)
    status = models.CharField(
        max_length=16, choices=CustomerStatus.choices, default=CustomerStatus.ACTIVE
    )
    # "pbkdf2_sha256$<iterations>$<salt b64>$<hash b64>"; empty: no PIN set (OTP only).
    pin_hash = models.CharField(max_length=200, blank=True)
    pin_failures = models.PositiveSmallIntegerField(default=0)
    pin_locked = models.BooleanField(default=False)
    risk_level = models.CharField(max_length=2, blank=True)  # C1..C5, from the questionnaire
    risk_assessed_at = models.DateTimeField(null=True, blank=True)
    per_transaction_limit = models.DecimalField(**MONEY, default=Decimal("50000.00"))
    daily_transfer_limit = models.DecimalField(**MONEY, default=Decimal("200000.00"))
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.customer_ref} {name_mask(self.name)} {id_number_mask(self.id_number)}"


class AccountKind(models.TextChoices):
    CURRENT = "current", "Current (活期)"
    SAVINGS = "savings", "Savings (储蓄)"
    TIME_DEPOSIT = "time_deposit", "Time deposit (定期)"
    CORPORATE = "corporate", "Corporate (对公)"


class AccountStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    DORMANT = "dormant", "Dormant"
    CLOSED = "closed", "Closed"


class Account(models.Model):
    number = models.CharField(max_length=19, unique=True)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="accounts")
    kind = models.CharField(max_length=16, choices=AccountKind.choices)
    currency = models.CharField(max_length=3, default="CNY")
    balance = models.DecimalField(**MONEY, default=Decimal("0.00"))
    status = models.CharField(
        max_length=16, choices=AccountStatus.choices, default=AccountStatus.ACTIVE
    )
    # The name on a corporate account (the company); empty: the customer's own name.
    holder_name = models.CharField(max_length=100, blank=True)
    uscc = models.CharField(max_length=18, blank=True, db_index=True)  # corporate accounts
    # Time deposits.
    term_months = models.PositiveSmallIntegerField(null=True, blank=True)
    rate_percent = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    maturity_date = models.DateField(null=True, blank=True)
    opened_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{account_mask(self.number)} {self.kind} ({self.status})"


class CardStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    LOST = "lost", "Reported lost"


class Card(models.Model):
    number = models.CharField(max_length=19, unique=True)
    # What leaves the core instead of the number: callers name a card by its token.
    token = models.CharField(max_length=40, unique=True)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="cards")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="cards")
    status = models.CharField(max_length=16, choices=CardStatus.choices, default=CardStatus.ACTIVE)
    lost_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"card {account_mask(self.number)} ({self.status})"


class OperationStatus(models.TextChoices):
    DONE = "done", "Done"
    REJECTED = "rejected", "Rejected (business error)"


class OperationRequest(IdempotencyRecord):
    """The final answer given to an idempotency key: a repeat of the key gets the same answer,
    and the effect (ledger entries, changed rows) happened once, in the same transaction
    (``fingerprint``, ``answer``, ``replays``: the outside kit's idempotency record).

    Outages and injected errors are not answers and are not recorded here."""

    idempotency_key = models.CharField(max_length=64, unique=True)
    operation = models.CharField(max_length=32)
    customer_ref = models.CharField(max_length=20)
    status = models.CharField(max_length=16, choices=OperationStatus.choices)

    def __str__(self) -> str:
        return f"{self.operation} {self.idempotency_key}: {self.status}"


class LedgerKind(models.TextChoices):
    TRANSFER_OUT = "transfer_out", "Transfer out"
    TRANSFER_IN = "transfer_in", "Transfer in"
    DEPOSIT_OUT = "deposit_out", "To a time deposit"
    DEPOSIT_IN = "deposit_in", "Time deposit opened"
    SEED = "seed", "Opening balance"


class LedgerEntry(models.Model):
    """One movement of money on one account (a transfer is two entries)."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="entries")
    request = models.ForeignKey(
        OperationRequest, on_delete=models.CASCADE, null=True, blank=True, related_name="entries"
    )
    kind = models.CharField(max_length=16, choices=LedgerKind.choices)
    amount = models.DecimalField(**MONEY)  # signed: debits are negative
    balance_after = models.DecimalField(**MONEY)
    counterparty = models.CharField(max_length=40, blank=True)  # masked account number
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "ledger entries"

    def __str__(self) -> str:
        return f"{account_mask(self.account.number)} {self.amount:+} {self.kind}"


class StubKey(models.Model):
    """The RSA key pair browsers encrypt PINs for. The private key is sealed under
    COREBANK_STUB_KEYS (AES-256-GCM, the sealed value names its key); the newest row is the one
    in use."""

    kid = models.CharField(max_length=32, unique=True)
    public_spki_b64 = models.TextField()
    private_sealed = models.BinaryField(editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"key {self.kid}"


class ChallengeMethod(models.TextChoices):
    PIN = "pin", "PIN"
    OTP = "otp", "One-time code by SMS"
    NEW_PIN = "new_pin", "A new PIN (set by password_reset)"


class PinChallenge(models.Model):
    """One request for a PIN (or a one-time code, or a new PIN): a nonce the browser encrypts
    with the secret, so a ciphertext is good for this challenge only, once."""

    challenge_id = models.CharField(max_length=32, unique=True)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="challenges")
    purpose = models.CharField(max_length=40)
    method = models.CharField(max_length=8, choices=ChallengeMethod.choices)
    nonce = models.CharField(max_length=32)
    key = models.ForeignKey(StubKey, on_delete=models.PROTECT)
    otp_hash = models.CharField(max_length=200, blank=True)  # method otp: the code sent, hashed
    new_pin_hash = models.CharField(max_length=200, blank=True)  # method new_pin, once given
    attempts = models.PositiveSmallIntegerField(default=0)
    # SHA-256 of every ciphertext tried: the same ciphertext twice is a replay.
    seen_ciphertexts = models.JSONField(default=list)
    verified_at = models.DateTimeField(null=True, blank=True)
    # The operation this authorisation (or new PIN) was spent on: one challenge, one operation.
    spent_by = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"challenge {self.challenge_id} ({self.method}, {self.purpose})"


class SmsMessage(models.Model):
    """The simulated SMS gateway's outbox: a one-time code "sent" to a reserved mobile. The text
    is sealed (under COREBANK_STUB_KEYS): only ``stub_last_otp`` reads it, for tests and
    the demo page."""

    mobile_masked = models.CharField(max_length=11)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="sms")
    challenge = models.ForeignKey(PinChallenge, on_delete=models.CASCADE, related_name="sms")
    text_sealed = models.BinaryField(editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"sms to {self.mobile_masked}"


class StubControl(models.Model):
    """Faults set at run time, shared by every process serving the stub (one row, ``default``).
    A null field means the settings default (COREBANK_STUB_LATENCY_MS, ..._JITTER_MS,
    ..._ERROR_RATE)."""

    name = models.CharField(max_length=16, unique=True, default="default")
    outage = models.BooleanField(default=False)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    jitter_ms = models.PositiveIntegerField(null=True, blank=True)
    error_rate = models.FloatField(null=True, blank=True)
    # The next N operations are carried out but their answers are lost (HTTP 504): what a
    # caller sees when the core commits and the network drops the reply.
    lose_answers = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"core-bank stub: {'outage' if self.outage else 'up'}"
