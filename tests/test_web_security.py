"""The web side as an outsider meets it: headers on every page, no inline script, staff sign-in
lockout, idle staff sessions, password rules, and no debug page.

Through Django's test client (the real URLs, middleware and templates), the real login form, the
real teller socket (in process) and a real server process (``live_stack``) for what ``make run``
serves.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone
from django.utils.translation import gettext, override

from tests.factories import done_transfer, staff_user
from tests.livestack import ROOT
from tests.sockets import HOST, ORIGIN
from videobank.asgi import application
from videobank.i18n import TEXT
from workflows import receipts

pytestmark = [pytest.mark.django_db]

PASSWORD = "Sign-in-pw-for-tests-7"


# --- a clock the sessions and django-axes read ------------------------------------------------


class Clock:
    def __init__(self, monkeypatch) -> None:
        import axes.attempts
        import axes.handlers.proxy

        self.offset = timedelta()
        real = timezone.now

        def now():
            return real() + self.offset

        for module, name in (
            (timezone, "now"),
            (axes.attempts, "now"),
            (axes.handlers.proxy, "now"),
        ):
            monkeypatch.setattr(module, name, now)

    def advance(self, **delta) -> None:
        self.offset += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch) -> Clock:
    return Clock(monkeypatch)


# --- every page: headers, and nothing inline --------------------------------------------------


class InlineFinder(HTMLParser):
    """What a Content-Security-Policy without 'unsafe-inline' would block."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "script" and not attributes.get("src"):
            if attributes.get("type") != "application/json":  # data, never run
                self.found.append(f"inline <script> {attributes}")
        if tag == "style":
            self.found.append("<style> block")
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}=…> handler")
            if name == "style":
                self.found.append(f"<{tag} style=…> attribute")
            if name in ("href", "src", "action") and (value or "").strip().startswith(
                "javascript:"
            ):
                self.found.append(f"<{tag} {name}={value!r}>")


def inline_code(html: str) -> list[str]:
    finder = InlineFinder()
    finder.feed(html)
    return finder.found


def signed_in(username: str, *groups: str, superuser: bool = False) -> Client:
    user = staff_user(username, *groups)
    if superuser:
        user.is_staff = user.is_superuser = True
        user.save()
    client = Client()
    client.force_login(user)
    return client


def a_receipt_code(teller) -> tuple[str, str]:
    """A done transfer's receipt code and its receipt-only link token (see
    workflows/tests/test_receipts.py for receipts themselves)."""
    case = done_transfer(
        teller, idempotency_key="case-headers-test", result={"transaction_ref": "T0000000042"}
    )
    receipt = receipts.receipt_issue(case=case)
    return receipt.code, receipts.receipt_token(receipt)


CSP_DIRECTIVES = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}


def test_every_page_has_the_security_headers_and_no_inline_code(catalogue):
    anonymous = Client()
    teller = signed_in("teller-h", "teller")
    supervisor = signed_in("super-h", "supervisor")
    reviewer = signed_in("qa-h", "qa")
    admin = signed_in("admin-h", "admin", superuser=True)
    code, token = a_receipt_code(get_user_model().objects.get(username="teller-h"))
    pages = [
        (anonymous, "/", 200),
        (anonymous, "/kiosk/", 200),
        (anonymous, "/kiosk/enrol/", 200),
        (anonymous, "/console/login/", 200),
        (anonymous, "/receipts/verify/", 200),
        (anonymous, "/receipts/verify/?code=ABCD-EFGH-JKMN", 404),
        (anonymous, f"/receipts/{code}/?token={token}", 200),
        (anonymous, "/no-such-page/", 404),
        (anonymous, "/admin/login/", 200),
        (teller, "/console/", 200),
        (teller, "/qa/mine/", 200),
        (supervisor, "/console/wallboard/", 200),
        (reviewer, "/qa/", 200),
        (admin, "/admin/", 200),
        (admin, "/admin/auth/user/", 200),
        (admin, "/admin/auth/user/add/", 200),
        (admin, "/admin/signaling/kiosk/add/", 200),
    ]
    for client, url, status in pages:
        response = client.get(url)
        assert response.status_code == status, url
        policy = dict(
            (part.split(" ", 1) + [""])[:2]
            for part in (p.strip() for p in response["Content-Security-Policy"].split(";"))
            if part
        )
        for directive, value in CSP_DIRECTIVES.items():
            assert policy[directive] == value, (url, directive, policy)
        assert policy["connect-src"] == "'self' ws://testserver", url  # its own socket only
        assert "unsafe" not in response["Content-Security-Policy"], url
        assert response["X-Frame-Options"] == "DENY", url
        expected_referrer = "no-referrer" if url.startswith(f"/receipts/{code}") else "same-origin"
        assert response["Referrer-Policy"] == expected_referrer, url
        assert response["X-Content-Type-Options"] == "nosniff", url
        assert inline_code(response.content.decode()) == [], url


def test_the_inline_finder_finds_what_it_looks_for():
    page = """<script>alert(1)</script><script type="application/json">{}</script>
    <style>p{}</style><p style="color:red" onclick="x()"><a href="javascript:print()">p</a>
    <script type="module" src="/static/js/i18n.js"></script>"""
    assert len(inline_code(page)) == 5


# --- staff sign-in lockout ------------------------------------------------------------------


def login(client: Client, username: str, password: str, *, ip: str = "10.0.0.7"):
    return client.post(
        "/console/login/", {"username": username, "password": password}, REMOTE_ADDR=ip
    )


def test_repeated_wrong_passwords_lock_that_user_from_that_address(catalogue, settings, clock):
    staff_user("teller-lock", "teller", password=PASSWORD)
    staff_user("teller-other", "teller", password=PASSWORD)
    limit, minutes = settings.AXES_FAILURE_LIMIT, 15
    assert limit == 5
    browser = Client()
    wrong = TEXT["login.error"]["zh"]
    locked = TEXT["login.locked"]["zh"].format(minutes=minutes)
    for _ in range(limit - 1):
        page = login(browser, "teller-lock", "guess-again")
        assert page.status_code == 200
        assert wrong in page.content.decode()
    # The limit reached: locked, in words, with how long it lasts ...
    page = login(browser, "teller-lock", "guess-again")
    assert page.status_code == 429
    assert locked in page.content.decode()
    assert wrong not in page.content.decode()
    # ... and while it lasts even the right password is refused.
    page = login(browser, "teller-lock", PASSWORD)
    assert page.status_code == 429
    assert locked in page.content.decode()
    assert "sessionid" not in browser.cookies  # not signed in
    english = Client(headers={"Cookie": "lang=en"})
    page = login(english, "teller-lock", PASSWORD)
    assert (
        "Too many failed sign-ins: this account is locked. Try again in 15 minutes"
        in page.content.decode()
    )
    # The lock is that user name from that address: the teller at their own desk, and another
    # user at this address, sign in as usual.
    assert login(Client(), "teller-lock", PASSWORD, ip="10.0.0.8").status_code == 302
    assert login(Client(), "teller-other", PASSWORD).status_code == 302
    # After the cool-off the right password works again, and the count starts afresh.
    clock.advance(minutes=minutes + 1)
    signed = Client()
    page = login(signed, "teller-lock", PASSWORD)
    assert (page.status_code, page["Location"]) == (302, "/console/")
    assert signed.get("/console/").status_code == 200
    assert login(Client(), "teller-lock", "guess-again").status_code == 200


@pytest.mark.django_db(transaction=True)
async def test_the_lockout_holds_on_the_servers_asynchronous_path(settings):
    """daphne serves through Django's ASGI handler, where django-axes takes another path."""
    from django.test import AsyncClient

    await database_sync_to_async(staff_user)("teller-async", "teller", password=PASSWORD)
    browser = AsyncClient()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        page = await browser.post(
            "/console/login/", {"username": "teller-async", "password": "guess-again"}
        )
        assert page.status_code == 200
    for password in ("guess-again", PASSWORD):
        page = await browser.post(
            "/console/login/", {"username": "teller-async", "password": password}
        )
        assert page.status_code == 429
        assert TEXT["login.locked"]["zh"].format(minutes=15) in page.content.decode()
    assert "sessionid" not in browser.cookies


# --- idle staff sessions ----------------------------------------------------------------------


def test_a_staff_session_ends_after_idle_time_not_while_in_use(catalogue, settings, clock):
    assert settings.STAFF_SESSION_IDLE_S == 30 * 60
    staff_user("teller-idle", "teller", password=PASSWORD)
    browser = Client()
    assert login(browser, "teller-idle", PASSWORD).status_code == 302
    for _ in range(3):  # in use: every request moves the end on
        clock.advance(minutes=25)
        assert browser.get("/console/").status_code == 200
    clock.advance(minutes=31)  # left alone
    page = browser.get("/console/")
    assert page.status_code == 302
    assert page["Location"].startswith("/console/login/")


async def _teller_socket(cookie: str) -> tuple[bool, int | None, dict | None]:
    comm = WebsocketCommunicator(
        application, "/ws/teller/", headers=[ORIGIN, HOST, (b"cookie", cookie.encode())]
    )
    connected, code = await comm.connect()
    hello = await comm.receive_json_from() if connected else None
    if connected:
        await comm.send_json_to({"type": "presence.set", "v": 1, "status": "offline"})
        while (await comm.receive_json_from())["type"] != "presence":
            pass  # the queue snapshot that follows hello
    await comm.disconnect()
    return connected, code, hello


@pytest.mark.django_db(transaction=True)
async def test_the_teller_socket_checks_the_session_at_connect_and_use_keeps_it(settings, clock):
    settings.MEDIA_WORKER_EMBEDDED = False
    settings.QUEUE_TICKER = "off"

    def signed_cookie() -> str:
        staff_user("teller-sock", "teller", password=PASSWORD)
        browser = Client()
        assert login(browser, "teller-sock", PASSWORD).status_code == 302
        return f"sessionid={browser.cookies['sessionid'].value}"

    cookie = await database_sync_to_async(signed_cookie)()
    clock.advance(minutes=20)
    connected, _, hello = await _teller_socket(cookie)  # the teller works on the socket ...
    assert connected
    assert hello["type"] == "hello"
    clock.advance(minutes=20)  # ... so 40 minutes after signing in, the session still holds
    assert (await _teller_socket(cookie))[0]
    clock.advance(minutes=31)  # then nothing for longer than the idle time: refused
    connected, code, hello = await _teller_socket(cookie)
    assert (connected, code, hello) == (False, 4403, None)


# --- password rules ---------------------------------------------------------------------------


def test_the_admin_refuses_weak_staff_passwords_in_words(catalogue):
    admin = signed_in("admin-pw", "admin", superuser=True)

    def add(username: str, password: str):
        return admin.post(
            "/admin/auth/user/add/",
            {
                "username": username,
                "usable_password": "true",
                "password1": password,
                "password2": password,
            },
        )

    with override("zh-hans"):  # the admin's language (LANGUAGE_CODE)
        refusals = {
            "12345678": [
                gettext("This password is too common."),
                gettext("This password is entirely numeric."),
            ],
            "82736450918273": [gettext("This password is entirely numeric.")],
            "Xk3#pQ": [
                gettext("This password is too short. It must contain at least %d characters.") % 12
            ],
            "newteller-2026": [
                gettext("The password is too similar to the %(verbose_name)s.")
                % {"verbose_name": gettext("username")}
            ],
        }
    for password, words in refusals.items():
        page = add("newteller-2026", password)
        assert page.status_code == 200, password  # the form again, not a redirect
        html = page.content.decode()
        for sentence in words:
            assert sentence in html, (password, sentence)
        assert not get_user_model().objects.filter(username="newteller-2026").exists()
    assert add("newteller-2026", "Qm7#vT9!pL2x-kiosk").status_code == 302
    assert get_user_model().objects.filter(username="newteller-2026").exists()


# --- no debug page ----------------------------------------------------------------------------


def _debug_setting(**env) -> str:
    environment = {k: v for k, v in os.environ.items() if k != "DJANGO_DEBUG"}
    environment.update(env, VIDEOBANK_PROFILE="embedded")
    result = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; print(settings.DEBUG)"],
        cwd=ROOT,
        env={**environment, "DJANGO_SETTINGS_MODULE": "videobank.settings"},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return result.stdout.strip().splitlines()[-1]


@pytest.mark.process
def test_make_run_shows_the_debug_page_only_when_asked():
    assert _debug_setting() == "False"
    assert _debug_setting(DJANGO_DEBUG="true") == "True"


def test_a_missing_page_and_a_failure_show_words_not_a_traceback(catalogue, monkeypatch):
    page = Client().get("/no-such-page/")
    assert page.status_code == 404
    html = page.content.decode()
    assert "页面不存在" in html
    assert "Page not found" in html
    assert "URLconf" not in html  # Django's debug 404 lists the URL patterns

    def broken(**kwargs):
        raise RuntimeError("database on fire at db.internal:5432")

    monkeypatch.setattr("signaling.views.business_list", broken)
    page = Client(raise_request_exception=False).get("/")
    assert page.status_code == 500
    html = page.content.decode()
    assert "服务暂时出错" in html
    assert "Something went wrong" in html
    for leak in ("Traceback", "db.internal", "on fire", "RuntimeError", "SECRET_KEY"):
        assert leak not in html


@pytest.mark.django_db(transaction=True)  # the server process writes to the database too
def test_the_running_server_serves_static_files_and_no_debug_page(live_stack):
    with urllib.request.urlopen(f"{live_stack.url}/static/js/call.js") as script:  # noqa: S310
        assert script.status == 200
        assert b"export class MediaLeg" in script.read()
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"{live_stack.url}/no-such-page/")  # noqa: S310
    assert missing.value.code == 404
    html = missing.value.read().decode()
    assert "Page not found" in html
    assert "URLconf" not in html
    assert "Traceback" not in html
