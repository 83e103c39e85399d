"""Helpers shared by the browser tests."""

from __future__ import annotations


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
