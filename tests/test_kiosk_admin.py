"""Kiosk credentials over HTTP: the admin shows one once and keeps only its hash, rotation and
revocation stop the old one at once, the enrolment page sets the kiosk's cookie, the kiosk page
says when it needs enrolment, and the simulated card reader serves only an enrolled kiosk's
call."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re

import pytest
from django.conf import settings as django_settings
from django.contrib.admin.models import LogEntry
from django.test import Client
from PIL import Image

from kyc.national_stub.models import Citizen
from queueing.access import customer_token_issue
from queueing.services import call_enqueue
from signaling import access
from signaling.models import Kiosk, KioskEvent
from signaling.services import kiosk_revoke
from tests.factories import staff_user
from tests.sockets import kiosk_registered

pytestmark = pytest.mark.django_db

CREDENTIAL = re.compile(r"vtm_[0-9a-f]{16}_[A-Za-z0-9_-]{43}")
ADD_URL = "/admin/signaling/kiosk/add/"
LIST_URL = "/admin/signaling/kiosk/"
NO_INLINE_ROWS = {
    "events-TOTAL_FORMS": "0",
    "events-INITIAL_FORMS": "0",
    "events-MIN_NUM_FORMS": "0",
    "events-MAX_NUM_FORMS": "1000",
}


def signed_in(username: str, *groups: str) -> Client:
    user = staff_user(username, *groups)
    user.is_staff = True
    user.save()
    client = Client()
    client.force_login(user)
    return client


def register(admin: Client, name: str = "Branch 7 kiosk A") -> tuple[Kiosk, str]:
    response = admin.post(ADD_URL, {"name": name, "branch": "Branch 7", **NO_INLINE_ROWS})
    assert response.status_code == 200, response.content.decode()[:2000]
    shown = set(CREDENTIAL.findall(response.content.decode()))
    assert len(shown) == 1
    assert "no-store" in response["Cache-Control"]
    return Kiosk.objects.get(name=name), shown.pop()


def test_the_admin_shows_a_new_credential_once_and_keeps_only_its_hash(caplog):
    caplog.set_level(logging.INFO)
    admin = signed_in("admin1", "admin")
    kiosk, credential = register(admin)
    secret = credential.split("_", 2)[2]
    assert kiosk.credential_hash == hashlib.sha256(credential.encode()).hexdigest()
    assert kiosk.created_by == "admin1"

    # The credential is in no row and no log line; its public id is (the search sees them).
    stored = json.dumps(
        [
            list(Kiosk.objects.values()),
            list(KioskEvent.objects.values()),
            list(LogEntry.objects.values()),
        ],
        default=str,
    )
    assert secret not in stored
    assert kiosk.credential_id in stored
    assert secret not in caplog.text
    assert kiosk.credential_id in caplog.text

    # Never shown again: not in the list, the kiosk's page, or a cookie.
    for url in (LIST_URL, f"{LIST_URL}{kiosk.pk}/change/"):
        page = admin.get(url)
        assert page.status_code == 200
        assert not CREDENTIAL.search(page.content.decode())
    # The kiosk's page has its audit trail instead.
    assert "Registered" in page.content.decode()
    assert secret not in str(admin.cookies)

    # And it is the kiosk's: it enrols.
    assert access.access_kiosk(credential).channel == "vtm"


def test_rotation_shows_a_new_credential_and_the_old_one_stops_at_once():
    admin = signed_in("admin1", "admin")
    kiosk, old = register(admin)
    response = admin.post(LIST_URL, {"action": "rotate_credential", "_selected_action": [kiosk.pk]})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert "previous credential has stopped working" in response.content.decode()
    (new,) = set(CREDENTIAL.findall(response.content.decode()))
    assert new != old

    assert access.access_kiosk(old).channel == "web"
    assert access.access_kiosk(new).channel == "vtm"
    refused = Client().post("/kiosk/enrol/", {"credential": old})
    assert refused.status_code == 403
    assert access.KIOSK_COOKIE not in refused.cookies
    kiosk.refresh_from_db()
    assert kiosk.rotated_by == "admin1"
    assert kiosk.credential_hash == hashlib.sha256(new.encode()).hexdigest()
    assert list(kiosk.events.values_list("kind", "actor")) == [
        ("rotated", "admin1"),
        ("created", "admin1"),
    ]


def test_revocation_ends_the_kiosk_and_is_audited():
    admin = signed_in("admin1", "admin")
    kiosk, credential = register(admin)
    response = admin.post(LIST_URL, {"action": "revoke", "_selected_action": [kiosk.pk]})
    assert response.status_code == 302
    kiosk.refresh_from_db()
    assert kiosk.revoked_at is not None
    assert kiosk.revoked_by == "admin1"
    assert access.access_kiosk(credential).channel == "web"
    assert kiosk.events.first().kind == "revoked"

    # A revoked kiosk is not brought back by a rotation: no credential is shown.
    again = admin.post(
        LIST_URL, {"action": "rotate_credential", "_selected_action": [kiosk.pk]}, follow=True
    )
    assert "is revoked" in again.content.decode()
    assert not CREDENTIAL.search(again.content.decode())
    assert access.access_kiosk(credential).channel == "web"


def test_only_the_admin_group_manages_kiosks_and_nobody_deletes_one():
    _, credential = kiosk_registered()
    kiosk = Kiosk.objects.get()
    teller = signed_in("teller9", "teller")  # staff, but not in the admin group
    assert teller.get(LIST_URL).status_code == 302  # to the admin's sign-in
    assert (
        teller.post(ADD_URL, {"name": "rogue", "branch": "x", **NO_INLINE_ROWS}).status_code == 302
    )
    assert not Kiosk.objects.filter(name="rogue").exists()

    admin = signed_in("admin1", "admin")
    assert admin.post(f"{LIST_URL}{kiosk.pk}/delete/", {"post": "yes"}).status_code == 403
    assert "delete_selected" not in admin.get(LIST_URL).content.decode()
    assert Kiosk.objects.filter(pk=kiosk.pk).exists()
    assert access.access_kiosk(credential).channel == "vtm"


def test_enrolment_sets_a_strict_httponly_cookie_and_the_kiosk_page_follows_it(settings):
    settings.KIOSK_SIMULATOR = True  # the demo's peripherals show only on an enrolled kiosk
    _, credential = kiosk_registered(name="Branch 7 kiosk B")
    browser = Client()
    browser.cookies["lang"] = "en"

    page = browser.get("/kiosk/").content.decode()
    assert 'data-enrolled="false"' in page
    assert "This kiosk is not enrolled" in page
    assert 'data-testid="sim-peripherals"' not in page
    assert 'data-channel="vtm"' not in page

    wrong = browser.post("/kiosk/enrol/", {"credential": "vtm_0123456789abcdef_" + "A" * 43})
    assert wrong.status_code == 403
    assert "not the current credential of an active kiosk" in wrong.content.decode()
    assert (
        "这不是在用的自助柜员机凭证"
        in Client().post("/kiosk/enrol/", {"credential": "x"}).content.decode()
    )
    assert access.KIOSK_COOKIE not in wrong.cookies
    assert not KioskEvent.objects.filter(kind="enrolled").exists()

    done = browser.post("/kiosk/enrol/", {"credential": credential})
    assert (done.status_code, done["Location"]) == (302, "/kiosk/")
    cookie = done.cookies[access.KIOSK_COOKIE]
    assert cookie.value == credential
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"
    assert not cookie["secure"]  # plain http here; on https it is Secure:
    https = Client().post("/kiosk/enrol/", {"credential": credential}, secure=True)
    assert https.cookies[access.KIOSK_COOKIE]["secure"] is True
    kiosk = Kiosk.objects.get(name="Branch 7 kiosk B")
    assert kiosk.enrolled_at is not None
    assert kiosk.events.filter(kind="enrolled", ip="127.0.0.1").count() == 2

    page = browser.get("/kiosk/").content.decode()
    assert 'data-enrolled="true"' in page
    assert "Branch 7 kiosk B" in page
    assert 'data-testid="sim-peripherals"' in page
    assert 'data-channel="vtm"' in page

    kiosk_revoke(kiosk_id=kiosk.pk, actor="admin1")
    page = browser.get("/kiosk/").content.decode()
    assert 'data-enrolled="false"' in page
    assert "needs enrolment again" in page
    assert 'data-testid="sim-peripherals"' not in page


def _snapshot_b64() -> str:
    import base64

    out = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 130, 140)).save(out, format="JPEG")
    return base64.b64encode(out.getvalue()).decode()


@pytest.mark.parametrize(
    ("kiosk", "channel", "words"),
    [
        (False, "web", "not an enrolled kiosk"),
        (False, "vtm", "not an enrolled kiosk"),
        (True, "web", "not placed from a kiosk"),
    ],
)
def test_the_simulated_card_reader_serves_only_an_enrolled_kiosks_call(
    catalogue, settings, kiosk, channel, words
):
    settings.KIOSK_SIMULATOR = True
    _, credential = kiosk_registered()
    call = call_enqueue(business_key="card_loss", channel=channel)
    token = customer_token_issue(call_id=call.id)
    body = json.dumps({"token": token, "photo_jpeg_b64": _snapshot_b64()})
    browser = Client()
    if kiosk:
        browser.cookies[access.KIOSK_COOKIE] = credential
    citizens = Citizen.objects.count()

    refused = browser.post("/kyc/simulated-card/", body, content_type="application/json")
    assert refused.status_code == 403
    answer = refused.json()
    assert answer["code"] == "forbidden"
    assert words in answer["detail"]["en"]
    assert answer["detail"]["zh"]
    assert Citizen.objects.count() == citizens  # nobody was put on the national registry

    # The enrolled kiosk's own call is served.
    kiosk_call = call_enqueue(business_key="card_loss", channel="vtm")
    body = json.dumps(
        {
            "token": customer_token_issue(call_id=kiosk_call.id),
            "photo_jpeg_b64": _snapshot_b64(),
        }
    )
    kiosk_browser = Client()
    kiosk_browser.cookies[access.KIOSK_COOKIE] = credential
    served = kiosk_browser.post("/kyc/simulated-card/", body, content_type="application/json")
    assert served.status_code == 200, served.content
    assert served.json()["fields"]["id_number"]
    assert Citizen.objects.count() == citizens + 1


@pytest.mark.skipif(
    django_settings.PROFILE != "embedded", reason="the demo seed runs on the embedded profile only"
)
def test_the_demo_seed_registers_a_kiosk_with_a_fresh_credential_each_time(catalogue):
    from django.core.management import call_command

    outputs = []
    for _ in range(2):
        out = io.StringIO()
        call_command("seed_demo", stdout=out)
        outputs.append(out.getvalue())
    first, second = (CREDENTIAL.search(o).group(0) for o in outputs)
    assert "/kiosk/enrol/" in outputs[0]
    assert first != second  # random per seed, never a published constant
    assert access.access_kiosk(first).channel == "web"  # the previous one stops working
    assert access.access_kiosk(second).kiosk_name == "Demo kiosk"


@pytest.mark.parametrize(
    ("keys", "words"),
    [
        ("2026-12:REPLACE_WITH_BASE64_32_BYTES", "is not valid base64"),  # .env.example's
        ("k1:" + "c2hvcnQ=", "must be 32 bytes or more, got 5"),
        ("no-id-here", "must look like 'id:base64key'"),
    ],
)
def test_a_malformed_app_claim_key_stops_the_server_at_start(settings, keys, words):
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    settings.APP_CLAIM_KEYS = keys
    with pytest.raises(SystemCheckError, match="signaling.E001") as refused:
        call_command("check")
    assert words in str(refused.value)
