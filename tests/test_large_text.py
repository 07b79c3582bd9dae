"""Large-text mode on the customer's page, in Chromium: the switch, the cookie that keeps it,
and the elderly/accessibility choice turning it on."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.browser import CHROMIUM, CHROMIUM_ARGS, csp_watched


def font_px(page) -> float:
    return page.evaluate("() => parseFloat(getComputedStyle(document.body).fontSize)")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_large_text_switch_and_the_elderly_choice(live_stack, catalogue):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        violations: list[str] = []
        try:
            context = browser.new_context(base_url=live_stack.url, locale="en-US")
            csp_watched(context, violations)
            page = context.new_page()
            page.goto("/")
            switch = page.get_by_test_id("text-size")
            expect(switch).to_have_attribute("aria-pressed", "false")
            normal = font_px(page)
            switch.click()
            expect(switch).to_have_attribute("aria-pressed", "true")
            assert font_px(page) >= normal * 1.25
            page.reload()  # kept by its cookie, drawn large from the start
            expect(page.locator("html")).to_have_class("large-text")
            assert font_px(page) >= normal * 1.25
            page.get_by_test_id("text-size").click()
            assert font_px(page) == normal
            page.get_by_test_id("priority-elderly").check()
            expect(page.get_by_test_id("text-size")).to_have_attribute("aria-pressed", "true")
            assert font_px(page) >= normal * 1.25
            assert violations == []  # large text is a class and a stylesheet: no inline style
        finally:
            browser.close()
