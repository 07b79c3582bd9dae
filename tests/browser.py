"""Headless Chromium with a fake camera, driven by Playwright's sync API.

One browser process per participant, because the fake camera file is a process-wide flag.
Debian's ``/usr/bin/chromium`` is used as is (never ``playwright install``).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Browser, BrowserContext, Page, Playwright

from tests.calls import own_connection

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--no-sandbox",
    "--disable-dev-shm-usage",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--mute-audio",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]

# A read of the page's stats hook (static/js/call.js: window.vbStats).
STATS = "() => window.vbStats()"
# True once the remote video decodes frames past `arg` and audio packets arrive.
MEDIA_FLOWING = """async (minFrames) => {
  const s = await window.vbStats();
  return s.videoWidth > 0 && s.audioPacketsReceived > 0 && s.framesDecoded > minFrames;
}"""


# Every Content-Security-Policy violation of the page (the browser's own report of what the
# policy blocked), handed to the test through an exposed binding.
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.vbCspSeen = (window.vbCspSeen || 0) + 1;
  window.vbCspViolation(
    `${e.effectiveDirective} blocked ${e.blockedURI || "(inline)"} at ${e.sourceFile || "?"}:` +
      `${e.lineNumber}: ${(e.sample || "").slice(0, 80)}`,
  );
});
"""


def csp_watched(context: BrowserContext, violations: list[str]) -> list[str]:
    """Collect every CSP violation of every page of ``context`` into ``violations``."""
    context.expose_binding(
        "vbCspViolation", lambda source, text: violations.append(f"{source['frame'].url}: {text}")
    )
    context.add_init_script(CSP_LISTENER)
    return violations


@dataclass
class Participant:
    """A browser process with one page, and what the page said in its console (and what its
    Content-Security-Policy blocked)."""

    name: str
    browser: Browser
    page: Page
    console: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)

    def testid(self, testid: str):
        return self.page.get_by_test_id(testid)

    def media_flowing(self, *, more_than_frames: int = 0, timeout_ms: float = 20_000) -> dict:
        """Wait until remote video and audio flow; return the stats read right after."""
        self.page.wait_for_function(
            MEDIA_FLOWING, arg=more_than_frames, polling=200, timeout=timeout_ms
        )
        return self.page.evaluate(STATS)

    def wait_page_clock(self, until_ms: float, *, timeout_ms: float = 60_000) -> None:
        """Wait for the page's own clock (performance.now) to pass ``until_ms``."""
        self.page.wait_for_function(
            "(t) => performance.now() > t", arg=until_ms, polling=250, timeout=timeout_ms
        )

    def close(self) -> None:
        self.browser.close()


@contextmanager
def diagnostics(live_stack, *sides: Participant):
    """On failure, print what the browsers and the servers said (pytest shows it)."""
    try:
        yield
    except BaseException:
        for side in sides:
            print(f"--- {side.name} console\n" + "\n".join(side.console[-60:]))
        print(live_stack.logs())
        raise


def launch(playwright: Playwright, name: str, camera_y4m: Path, *, base_url: str) -> Participant:
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=[*CHROMIUM_ARGS, f"--use-file-for-fake-video-capture={camera_y4m}"],
    )
    context = browser.new_context(
        base_url=base_url, viewport={"width": 1280, "height": 800}, locale="zh-CN"
    )
    context.set_default_timeout(20_000)
    violations = csp_watched(context, [])
    page = context.new_page()
    participant = Participant(name=name, browser=browser, page=page, csp_violations=violations)
    page.on("console", lambda msg: participant.console.append(f"{msg.type}: {msg.text}"))
    page.on("pageerror", lambda exc: participant.console.append(f"pageerror: {exc}"))
    return participant


def off_loop(fn, /, *args, **kwargs):
    """Run ORM code while Playwright's sync API is open.

    Playwright keeps an event loop running in the test's thread, so Django refuses ORM calls
    there (SynchronousOnlyOperation); a short-lived thread with its own connection is fine.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(own_connection, fn, *args, **kwargs).result()
