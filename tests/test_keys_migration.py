"""The migrations of issue 10's keys: rows written before are sealed, and what the old
SECRET_KEY-derived keys made is carried over to the keys of its own.

The database is taken back to the migrations before (``migrate`` through Django's executor, as
``manage.py migrate <app> <name>`` does), rows are written there as the old code wrote them
(clear personal data, a receipt coded and a national query and a core-stub private key sealed
under keys derived from SECRET_KEY), then migrated forward: every personal value is sealed in the
rows, the receipt still verifies with its printed code, the pending query still opens (now with
its name inside, the name itself gone from the row), the stub's key still decrypts.
"""

from __future__ import annotations

import base64
import json
import os
import uuid

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.state import StateApps
from django.test import Client
from django.utils import timezone
from django.utils.crypto import salted_hmac

from kyc.models import IdentityCheck
from kyc.national.models import NationalCheck
from kyc.national.sealing import person_hashes, query_unseal
from videobank.keyring import sealed_key_id
from workflows import receipts
from workflows.corebank.models import Submission
from workflows.corebank_stub import crypto
from workflows.corebank_stub.models import StubKey
from workflows.models import BusinessCase, Receipt

pytestmark = [pytest.mark.django_db(transaction=True)]

BEFORE = [
    # The queue as it is now (the historical models are those of these targets).
    ("queueing", "0009_i10_limits"),
    ("kyc", "0002_i10_evidence"),
    ("kyc_national", "0001_initial"),
    ("workflows", "0002_case_revision"),
    ("workflows_corebank", "0001_initial"),
    ("corebank_stub", "0001_initial"),
]
ID_NUMBER = "310115198506127316"
NAME = "欧阳哨兵"
ADDRESS = "上海市浦东新区哨兵路7319号"
ACCOUNT = "6230021000000001018"


def legacy_key(info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(
        settings.SECRET_KEY.encode()
    )


def legacy_seal(info: bytes, data: bytes, context: bytes) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(legacy_key(info)).encrypt(nonce, data, context)


def legacy_code(content: dict) -> str:
    canonical = json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    digest = salted_hmac(
        "videobank.workflows.receipt",
        canonical.encode(),
        secret=settings.SECRET_KEY,
        algorithm="sha256",
    ).digest()
    number = int.from_bytes(digest[:8], "big") >> 4
    return "".join(receipts.CODE_ALPHABET[(number >> (5 * (11 - i))) & 31] for i in range(12))


def migrate(targets) -> StateApps:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor.loader.project_state(targets).apps


def raw(model, pk, column: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {column} FROM {model._meta.db_table} WHERE id = %s",  # noqa: S608
            [pk.hex if connection.vendor == "sqlite" and isinstance(pk, uuid.UUID) else pk],
        )
        value = cursor.fetchone()[0]
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def test_rows_from_before_are_sealed_and_carried_over_to_the_new_keys(catalogue, settings):
    settings.WORKFLOW_RECEIPT_KEYS = "r1:" + base64.b64encode(os.urandom(32)).decode()
    settings.KYC_NATIONAL_KEYS = "n1:" + base64.b64encode(os.urandom(32)).decode()
    settings.COREBANK_STUB_KEYS = "s1:" + base64.b64encode(os.urandom(32)).decode()
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    old = migrate(BEFORE)
    try:
        business = old.get_model("queueing", "Business").objects.get(key="account_change")
        call = old.get_model("queueing", "Call").objects.create(business=business)
        teller = old.get_model("auth", "User").objects.create(username="mig-teller")
        check = old.get_model("kyc", "IdentityCheck").objects.create(
            call=call,
            fields={"name": NAME, "id_number": ID_NUMBER, "address": ADDRESS},
            fields_read={"front": {"name": NAME, "address": ADDRESS}},
            corrections=[{"field": "address", "from": ADDRESS, "to": ADDRESS + "甲"}],
            geolocation={"lat": 31.230416, "lon": 121.473701},
        )
        national_id = uuid.uuid4()
        query = {"id_number": ID_NUMBER, "portrait_jpeg_b64": None}
        old.get_model("kyc_national", "NationalCheck").objects.create(
            id=national_id,
            request_id=national_id.hex,
            name=NAME,
            id_number_masked="310115********7316",
            id_number_hash="made-with-the-secret-key",
            factors=2,
            business_risk="low",
            sealed_query=legacy_seal(
                b"videobank kyc.national sealed query v1",
                json.dumps(query).encode(),
                national_id.bytes,
            ),
        )
        case = old.get_model("workflows", "BusinessCase").objects.create(
            call=call,
            business="transfer",
            status="done",
            teller=teller,
            customer={"name": NAME, "accounts": [{"number": ACCOUNT}]},
            form_values={"from_account": ACCOUNT},
            params={"from_account": ACCOUNT, "payee_name": "刘洋"},
            summary=[{"label": {"en": "Payee"}, "value": {"en": "刘洋", "zh": "刘洋"}}],
            result={"account_number": ACCOUNT},
            idempotency_key="case-migration",
        )
        content = {
            "v": 1,
            "case_id": str(case.id),
            "name": {"en": "Transfer", "zh": "转账汇款"},
            "lines": case.summary,
            "result_lines": [],
            "done_at": timezone.now().isoformat(),
        }
        receipt = old.get_model("workflows", "Receipt").objects.create(
            case=case, code=legacy_code(content), content=content, issued_at=timezone.now()
        )
        case2 = old.get_model("workflows", "BusinessCase").objects.create(
            call=call, business="transfer", teller=teller, idempotency_key="case-migration-2"
        )
        forged = old.get_model("workflows", "Receipt").objects.create(
            case=case2,
            code="0000000000AB",
            content={**content, "case_id": str(case2.id)},
            issued_at=timezone.now(),
        )
        submission = old.get_model("workflows_corebank", "Submission").objects.create(
            business_case_id=case.id,
            operation="transfer",
            customer_ref="CIF1",
            params={"from_account": ACCOUNT, "payee_name": "刘洋"},
            idempotency_key="case-migration",
            fingerprint="x",
        )
        public_b64, pkcs8, _ = crypto.keypair_generate()
        stub_key = old.get_model("corebank_stub", "StubKey").objects.create(
            kid="legacykey",
            public_spki_b64=public_b64,
            private_sealed=legacy_seal(b"videobank corebank_stub sealed v1", pkcs8, b"legacykey"),
        )
    finally:
        migrate(latest)

    # Every personal value is sealed in the rows, and reads back in full.
    for model, pk, columns in (
        (IdentityCheck, check.pk, ["fields", "fields_read", "corrections", "geolocation"]),
        (BusinessCase, case.pk, ["customer", "form_values", "params", "summary", "result"]),
        (Receipt, receipt.pk, ["content"]),
        (Submission, submission.pk, ["params"]),
    ):
        for column in columns:
            stored = raw(model, pk, column)
            assert json.loads(stored)["$sealed"] == 1, (model, column)
            for secret in (NAME, ID_NUMBER, ADDRESS, ACCOUNT, "刘洋", "31.230416"):
                for form in (secret, json.dumps(secret)[1:-1]):
                    assert form not in stored, (model, column, secret)
    assert IdentityCheck.objects.get(pk=check.pk).fields["address"] == ADDRESS
    assert BusinessCase.objects.get(pk=case.pk).params["from_account"] == ACCOUNT
    assert Submission.objects.get(pk=submission.pk).params["from_account"] == ACCOUNT

    # The receipt keeps verifying with its printed code; one that never matched does not.
    anyone = Client()
    page = anyone.get("/receipts/verify/", {"code": receipt.code})
    assert 'data-genuine="true"' in page.content.decode()
    assert Receipt.objects.get(pk=receipt.pk).key_id == "r1"
    assert (
        'data-genuine="false"'
        in anyone.get("/receipts/verify/", {"code": forged.code}).content.decode()
    )
    settings.SECRET_KEY = "rotated-after-the-migration-" + os.urandom(8).hex()
    assert (
        'data-genuine="true"'
        in anyone.get("/receipts/verify/", {"code": receipt.code}).content.decode()
    )

    # The pending national query opens under the new key, the name now inside it only.
    national = NationalCheck.objects.get(pk=national_id)
    assert sealed_key_id(national.sealed_query) == "n1"
    assert query_unseal(check_id=national_id, sealed=national.sealed_query) == {
        **query,
        "name": NAME,
    }
    assert national.name_masked == "欧***"
    assert national.name_hash == person_hashes("name", NAME)[0]
    assert national.id_number_hash == person_hashes("id_number", ID_NUMBER)[0]
    assert NAME not in raw(NationalCheck, national_id, "name_masked")

    # The core stub's private key was sealed again under its own key, and still decrypts.
    resealed = StubKey.objects.get(pk=stub_key.pk).private_sealed
    assert sealed_key_id(resealed) == "s1"
    assert crypto.unseal(resealed, context=b"legacykey") == pkcs8
