"""Every page under its Content-Security-Policy, in Chromium: nothing a page does is blocked.

Each page is loaded from the live server as its user sees it (signed in through the sign-in
page), and what its scripts do on load runs (the console and wallboard open their sockets, the
language and large-text switches restyle the page). The browser reports every violation of the
policy (``securitypolicyviolation``); there must be none. So that the watch cannot pass by seeing
nothing, a page is then made to break the policy twice (an inline style, an inline script) and
both are reported and blocked. Calls, identity checks, businesses and the QA replay are browsed
under the same watch in their own tests (test_e2e_browser.py, test_e2e_business.py,
test_qa_replay.py, test_wallboard.py, test_large_text.py).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.browser import CHROMIUM, CHROMIUM_ARGS, csp_watched, off_loop
from tests.factories import staff_user
from tests.test_web_security import a_receipt_code

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "Csp-browser-pw-2026"


def accounts():
    teller = staff_user("csp-teller", "teller", password=PASSWORD)
    staff_user("csp-super", "supervisor", "teller", password=PASSWORD)
    staff_user("csp-qa", "qa", password=PASSWORD)
    admin = staff_user("csp-admin", "admin", password=PASSWORD)
    admin.is_staff = admin.is_superuser = True
    admin.save()
    return a_receipt_code(teller)


def sign_in(page, username: str, then: str) -> None:
    page.context.clear_cookies()
    page.goto(then)
    page.get_by_test_id("login-username").fill(username)
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(page).to_have_url(re.compile(re.escape(then) + "$"))


def test_no_page_breaks_its_content_security_policy(live_stack, catalogue):
    code, token = off_loop(accounts)
    violations: list[str] = []
    visited: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = browser.new_context(base_url=live_stack.url, locale="zh-CN")
            context.set_default_timeout(20_000)
            csp_watched(context, violations)
            page = context.new_page()
            page.on("framenavigated", lambda frame: visited.append(frame.url))

            # The customer's pages: both switches restyle the page.
            for url in ("/", "/kiosk/"):
                page.goto(url)
                page.get_by_test_id("text-size").click()
                expect(page.locator("html")).to_have_class("large-text")
                before = page.locator("html").get_attribute("lang")
                page.get_by_test_id("lang-switch").click()  # a reload in the other language
                expect(page.locator("html")).not_to_have_attribute("lang", before)
                page.get_by_test_id("text-size").click()
            # Receipts, and the public verification.
            page.goto(f"/receipts/{code}/?token={token}")
            expect(page.get_by_test_id("receipt-print")).to_be_visible()
            page.goto("/receipts/verify/")
            page.get_by_test_id("verify-code").fill("ABCD-EFGH-JKMN")
            page.get_by_test_id("verify-submit").click()
            expect(page.get_by_test_id("verify-result")).to_have_attribute("data-genuine", "false")
            page.goto("/no-such-page/")
            expect(page.get_by_test_id("error-page")).to_be_visible()
            # Staff: the sign-in page, then each console with its socket up.
            sign_in(page, "csp-teller", "/console/")
            expect(page.get_by_test_id("go-available")).to_be_enabled()
            page.goto("/qa/mine/")
            sign_in(page, "csp-super", "/console/wallboard/")
            expect(page.locator("[data-wallboard]")).to_be_visible()
            sign_in(page, "csp-qa", "/qa/")
            page.context.clear_cookies()
            page.goto("/admin/login/")
            page.fill("#id_username", "csp-admin")
            page.fill("#id_password", PASSWORD)
            page.click("input[type=submit]")
            expect(page).to_have_url(re.compile(r"/admin/$"))
            for url in ("/admin/auth/user/add/", "/admin/auth/user/"):
                page.goto(url)
            page.get_by_role("link", name=re.compile("csp-teller")).click()
            expect(page).to_have_url(re.compile(r"/admin/auth/user/\d+/change/$"))

            assert violations == [], "\n".join(violations)

            # The watch sees what the policy blocks: an inline style and an inline script.
            page.goto("/")
            page.evaluate(
                """() => {
                  document.body.setAttribute("style", "background: red");
                  const script = document.createElement("script");
                  script.textContent = "window.vbInlineRan = true";
                  document.body.append(script);
                }"""
            )
            page.wait_for_function("() => window.vbCspSeen === 2")
            assert page.evaluate("() => window.vbInlineRan === undefined")  # blocked
            assert page.evaluate("() => getComputedStyle(document.body).backgroundColor") != (
                "rgb(255, 0, 0)"
            )
        finally:
            browser.close()
    print("\n".join(visited))
    directives = sorted(v.split(": ", 1)[1].split(" ")[0] for v in violations)
    assert directives == ["script-src-elem", "style-src-attr"], violations
