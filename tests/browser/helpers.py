"""Helpers shared by the browser tests."""

from __future__ import annotations

import time


def login(browser, hub, user: str):
    """A fresh browser context logged into the hub as ``user`` through the login form; returns its page."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(hub.url + "hub/login")
    page.fill("#username_input", user)
    page.fill("#password_input", hub.admin_password if user in hub.admins else hub.user_password)
    page.click("#login_submit")
    page.wait_for_load_state()
    return page


def wait_until(predicate, timeout: float = 60, interval: float = 0.5, what: str = "condition"):
    """Poll ``predicate`` until it returns something truthy; fail saying what was awaited."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
