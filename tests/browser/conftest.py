"""Fixtures for the tests that drive Debian's chromium through Playwright, with every request that
leaves 127.0.0.1 refused (the city's intranet has no internet; nothing may come from a CDN)."""
import shutil
import threading
import time

import pytest
from werkzeug.serving import make_server

from geoapp.demo import DEMO_PASSWORD

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def live_server(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-quic"])
        yield b
        b.close()


def pytest_collection_modifyitems(config, items):
    # scripts/test installs chromium, so in CI this never skips; the skip only spares a bare pytest run
    if not shutil.which(CHROMIUM):
        skip = pytest.mark.skip(reason="Debian chromium is not installed")
        for item in items:
            if "tests/browser/" in str(item.fspath):
                item.add_marker(skip)


PHONE = {"width": 375, "height": 812}


def offline_page(browser, live_server, *, viewport=PHONE, locale="zh-CN", geolocation=None, **context_args):
    """A fresh browser context (own cookies, storage, service workers) whose page may reach only
    the live server; page.blocked lists what it tried to fetch elsewhere, page.errors its console
    errors and uncaught exceptions (a CSP violation is one). geolocation={"latitude":…, "longitude":…,
    "accuracy":…} grants the permission and sets the position."""
    args = dict(viewport=viewport, locale=locale, **context_args)
    if geolocation is not None:
        args |= {"geolocation": geolocation, "permissions": ["geolocation"]}
    context = browser.new_context(**args)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.blocked, page.errors, page.dialogs = [], [], []

    def only_loopback(route):
        if route.request.url.startswith(live_server):
            route.continue_()
        else:
            page.blocked.append(route.request.url)
            route.abort()

    context.route("**/*", only_loopback)
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    return page


def sign_in(page, live_server, username: str, password: str = DEMO_PASSWORD, next_path: str = "/"):
    page.goto(f"{live_server}/login?next={next_path}")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state("load")


def until(page, expression: str, timeout_s: float = 15.0):
    """Poll `expression` in the page (page.wait_for_function evaluates strings in a way the page's
    CSP, which has no 'unsafe-eval', refuses)."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        time.sleep(0.2)
