"""Keys of their own: SECRET_KEY is no encryption or MAC key, and each key rotates alone.

Receipts (``WORKFLOW_RECEIPT_KEYS``), the core-bank stub's sealed PIN key and SMS outbox
(``COREBANK_STUB_KEYS``) and personal data at rest (the data-protection key derived from
``RECORDING_MASTER_KEYS``) are each rotated here the way an operator would — a new key first, the
old one still listed — and what was made before still verifies or opens through the real pages
and APIs; then SECRET_KEY is changed, and nothing of it breaks. The national check's sealed
queries have the same test next to the national stub (kyc/tests/test_national.py).
"""

from __future__ import annotations

import base64
import json
import os
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test import Client

from kyc.models import IdentityCheck
from queueing.models import Business, Call
from tests.factories import done_transfer, staff_user
from videobank import keyring
from workflows import receipts, selectors
from workflows.corebank import services as corebank
from workflows.corebank.testing import pin_encrypt
from workflows.corebank_stub import crypto
from workflows.corebank_stub import services as stub_services
from workflows.corebank_stub.models import SmsMessage, StubKey
from workflows.corebank_stub.seed import BY_NAME, corebank_seed
from workflows.models import BusinessCase

ZHANG = BY_NAME["张伟"]


def new_key(key_id: str) -> str:
    return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"


# --- where the keys come from --------------------------------------------------------------------


def test_each_use_has_a_key_of_its_own_kept_per_installation_on_embedded(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    settings.PROFILE = "embedded"
    for name in keyring.KEY_SETTINGS:
        setattr(settings, name, "")
    rings = {name: keyring.keyring(name) for name in keyring.KEY_SETTINGS}
    keys = {name: ring.keys["local"] for name, ring in rings.items()}
    assert len(set(keys.values())) == len(keys)  # three different random keys ...
    for name in keyring.KEY_SETTINGS:
        path = tmp_path / f"{name.lower().replace('_', '-')}.key"
        assert path.stat().st_mode & 0o777 == 0o600  # ... each in its own file
        assert base64.b64decode(path.read_bytes().strip()) == keys[name]
        assert settings.SECRET_KEY.encode() not in keys[name]
    # Read again (another process of the same installation): the same keys.
    keyring._cache.clear()
    assert keyring.keyring(keyring.RECEIPT_KEYS).keys["local"] == keys[keyring.RECEIPT_KEYS]

    # Any other profile refuses a use whose key is missing, naming the setting.
    settings.PROFILE = "production"
    for name in keyring.KEY_SETTINGS:
        with pytest.raises(ImproperlyConfigured, match=name):
            keyring.keyring(name)
    settings.KYC_NATIONAL_KEYS = "k1:c2hvcnQ="
    with pytest.raises(ImproperlyConfigured, match="KYC_NATIONAL_KEYS: key 'k1' must be 32 bytes"):
        keyring.keyring(keyring.NATIONAL_KEYS)
    settings.KYC_NATIONAL_KEYS = new_key("a key id with spaces")
    with pytest.raises(ImproperlyConfigured, match="KYC_NATIONAL_KEYS: key id 'a key id"):
        keyring.keyring(keyring.NATIONAL_KEYS)


def test_a_sealed_value_names_its_key_and_opens_only_where_it_was_sealed(settings):
    settings.KYC_NATIONAL_KEYS = new_key("k1")
    ring = keyring.keyring(keyring.NATIONAL_KEYS)
    sealed = ring.seal(b"110101199003071233", purpose="query", context=b"check-1")
    assert keyring.sealed_key_id(sealed) == "k1"
    assert b"110101199003071233" not in sealed
    assert ring.unseal(sealed, purpose="query", context=b"check-1") == b"110101199003071233"
    with pytest.raises(keyring.SealBroken):
        ring.unseal(sealed, purpose="query", context=b"check-2")  # moved to another row
    with pytest.raises(keyring.SealBroken):
        ring.unseal(sealed, purpose="other", context=b"check-1")  # another use of the key
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(keyring.SealBroken):
        ring.unseal(tampered, purpose="query", context=b"check-1")
    # Dropped from the setting too soon: refused in words that say what to do.
    settings.KYC_NATIONAL_KEYS = new_key("k2")
    with pytest.raises(keyring.KeyNotConfigured, match="key 'k1' is not in KYC_NATIONAL_KEYS"):
        keyring.keyring(keyring.NATIONAL_KEYS).unseal(sealed, purpose="query", context=b"check-1")


# --- receipts ------------------------------------------------------------------------------------


@pytest.fixture
def done_case(catalogue) -> BusinessCase:
    teller = staff_user("keys-teller", "teller")
    return done_transfer(
        teller,
        idempotency_key="case-keys-test",
        from_account=ZHANG.accounts[0].number,
        customer_ref=ZHANG.customer_ref,
    )


def verified(client: Client, code: str) -> bool:
    page = client.get("/receipts/verify/", {"code": code})
    html = page.content.decode()
    assert ('data-genuine="true"' in html) == (page.status_code == 200)
    return page.status_code == 200


def test_receipts_verify_after_the_receipt_key_and_then_the_secret_key_rotate(done_case, settings):
    k1 = new_key("k1")
    settings.WORKFLOW_RECEIPT_KEYS = k1
    receipt = receipts.receipt_issue(case=done_case)
    assert receipt.key_id == "k1"
    link = selectors.receipt_message(done_case)["url"]
    anyone = Client()
    assert verified(anyone, receipt.code)
    assert anyone.get(link).status_code == 200

    # A new receipt key first, the old one still listed: old receipts verify, their links open,
    # and what is issued now is made with the new key.
    settings.WORKFLOW_RECEIPT_KEYS = f"{new_key('k2')},{k1}"
    assert verified(anyone, receipt.code)
    assert anyone.get(link).status_code == 200
    done_case.receipt.delete()
    case = BusinessCase.objects.get(pk=done_case.pk)
    second = receipts.receipt_issue(case=case)
    assert second.key_id == "k2"
    assert verified(anyone, second.code)
    rotated_link = selectors.receipt_message(case)["url"]

    # SECRET_KEY rotated (sessions, CSRF, call tokens): receipts and their links are untouched.
    settings.SECRET_KEY = "a-completely-new-secret-key-" + os.urandom(8).hex()
    assert verified(anyone, second.code)
    assert anyone.get(rotated_link).status_code == 200

    # The key retired for good: what it made no longer verifies (the key is what vouches).
    settings.WORKFLOW_RECEIPT_KEYS = new_key("k3")
    assert not verified(anyone, second.code)
    assert anyone.get(rotated_link).status_code == 403
    token = parse_qs(urlsplit(rotated_link).query)["token"][0]
    with pytest.raises(receipts.ReceiptTokenError):
        receipts.receipt_token_read(token)


# --- the core-bank stub's sealed key pair and outbox ---------------------------------------------


@pytest.fixture
def stub_on_test_server(transactional_db, settings, live_server, monkeypatch):
    settings.ROOT_URLCONF = "tests.stub_urls"  # the test server mounts the stubs on every profile
    settings.COREBANK_URL = f"{live_server.url}/ext/core-bank/v1"
    settings.COREBANK_STUB_LATENCY_MS = 0
    settings.COREBANK_STUB_JITTER_MS = 0
    settings.COREBANK_STUB_PIN_ITERATIONS = 1000
    monkeypatch.setattr(crypto, "RSA_BITS", 2048)  # the key pair the stub makes: quicker
    monkeypatch.setattr(stub_services, "_private_keys", {})  # as a fresh process reads them
    corebank_seed()
    return live_server


def pin_entered(pin: str, *, purpose: str = "transfer") -> dict:
    """A PIN challenge from the core and the customer's encrypted entry, as the page sends it."""
    challenge = corebank.corebank_pin_challenge(
        customer_ref=ZHANG.customer_ref, purpose=purpose, method="pin"
    )
    ciphertext = pin_encrypt(
        public_key_spki_b64=challenge["public_key_spki_b64"], nonce=challenge["nonce"], pin=pin
    )
    return corebank.corebank_pin_verify(
        challenge_id=challenge["challenge_id"], ciphertext_b64=ciphertext
    )


def test_the_core_stub_opens_what_it_sealed_after_its_key_and_the_secret_key_rotate(
    stub_on_test_server, settings
):
    k1 = new_key("k1")
    settings.COREBANK_STUB_KEYS = k1
    assert pin_entered(ZHANG.pin)["ok"] is True  # the stub made its key pair, sealed under k1
    (stub_key,) = StubKey.objects.all()
    assert keyring.sealed_key_id(stub_key.private_sealed) == "k1"
    corebank.corebank_pin_challenge(customer_ref=ZHANG.customer_ref, purpose="reset", method="otp")
    assert keyring.sealed_key_id(SmsMessage.objects.get().text_sealed) == "k1"

    # Rotated: the private key sealed under k1 still decrypts PINs; what it seals now is k2's.
    settings.COREBANK_STUB_KEYS = f"{new_key('k2')},{k1}"
    stub_services._private_keys.clear()  # a process started after the rotation
    assert pin_entered(ZHANG.pin)["ok"] is True
    assert pin_entered("000000")["code"] == "wrong_pin"
    assert stub_services.stub_last_otp(ZHANG.customer_ref) is not None  # the k1 SMS opens
    corebank.corebank_pin_challenge(customer_ref=ZHANG.customer_ref, purpose="reset", method="otp")
    assert keyring.sealed_key_id(SmsMessage.objects.order_by("-id").first().text_sealed) == "k2"

    # SECRET_KEY rotated: the stub's secrets are not under it.
    settings.SECRET_KEY = "a-completely-new-secret-key-" + os.urandom(8).hex()
    stub_services._private_keys.clear()
    assert pin_entered(ZHANG.pin)["ok"] is True
    assert stub_services.stub_last_otp(ZHANG.customer_ref) is not None


# --- personal data at rest ----------------------------------------------------------------------


def raw_column(model, pk, column: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {column} FROM {model._meta.db_table} WHERE id = %s",  # noqa: S608
            [pk.hex if connection.vendor == "sqlite" else pk],
        )
        value = cursor.fetchone()[0]
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def test_personal_data_reads_after_the_master_keys_rotate_and_new_writes_use_the_new_key(
    catalogue, settings
):
    m1 = new_key("m1")
    settings.RECORDING_MASTER_KEYS = m1
    call = Call.objects.create(business=Business.objects.get(key="account_change"))
    fields = {"name": "张伟", "id_number": ZHANG.id_number, "address": "北京市东城区东华门1号"}
    check = IdentityCheck.objects.create(call=call, fields=fields)
    stored = raw_column(IdentityCheck, check.pk, "fields")
    assert json.loads(stored)["kid"] == "m1"
    assert ZHANG.id_number not in stored
    assert "东华门" not in stored

    settings.RECORDING_MASTER_KEYS = f"{new_key('m2')},{m1}"
    assert IdentityCheck.objects.get(pk=check.pk).fields == fields
    IdentityCheck.objects.filter(pk=check.pk).update(corrections=[{"field": "name"}])
    assert json.loads(raw_column(IdentityCheck, check.pk, "corrections"))["kid"] == "m2"

    settings.SECRET_KEY = "a-completely-new-secret-key-" + os.urandom(8).hex()
    assert IdentityCheck.objects.get(pk=check.pk).fields == fields
