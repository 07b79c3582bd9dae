"""Who may open which page."""

import pytest
from django.test import Client

from signaling.protocol import render_markdown
from tests.factories import staff_user

pytestmark = pytest.mark.django_db


def _client_for(username, *groups, staff=False):
    user = staff_user(username, *groups)
    user.is_staff = staff
    user.save()
    client = Client()
    client.force_login(user)
    return client


def test_customer_page_lists_businesses_in_both_languages(catalogue):
    page = Client().get("/")
    assert page.status_code == 200
    assert "借记卡挂失" in page.content.decode()
    english = Client(headers={"Cookie": "lang=en"}).get("/")
    assert "Debit card loss report" in english.content.decode()


def test_console_requires_sign_in():
    response = Client().get("/console/")
    assert response.status_code == 302
    assert response["Location"].startswith("/console/login/")


def test_console_refuses_non_tellers():
    assert _client_for("nobody1").get("/console/").status_code == 403
    # A reviewer is sent on to their own console instead.
    response = _client_for("qa1", "qa").get("/console/")
    assert response.status_code == 302
    assert response["Location"] == "/qa/"


def test_console_opens_for_tellers():
    assert _client_for("teller1", "teller").get("/console/").status_code == 200


def test_admin_requires_the_admin_group():
    staff_teller = _client_for("teller9", "teller", staff=True)
    assert staff_teller.get("/admin/").status_code == 302  # back to the admin login
    admin = _client_for("admin1", "admin", staff=True)
    assert admin.get("/admin/").status_code == 200


def test_protocol_doc_is_in_step_with_the_schemas(settings):
    doc = (settings.BASE_DIR / "docs" / "protocol.md").read_text(encoding="utf-8")
    assert doc == render_markdown(), "run: python manage.py protocol_doc"


def test_large_text_comes_from_its_cookie_on_the_first_paint(catalogue):
    plain = Client().get("/").content.decode()
    assert '<html lang="zh-CN">' in plain
    assert 'data-testid="text-size"' in plain
    assert 'aria-pressed="false"' in plain
    client = Client()
    client.cookies["text"] = "large"
    large = client.get("/").content.decode()
    assert '<html lang="zh-CN" class="large-text">' in large
    assert 'aria-pressed="true"' in large
