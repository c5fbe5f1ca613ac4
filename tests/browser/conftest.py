"""Browser tests: Python playwright driving Debian's chromium against pytest-django's live server.

Each test saves screenshots under ``test-output/browser/``. A page error (an exception in the page's
JavaScript) or an alert fails the test. In CI a missing chromium is a failure, here a skip.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.test import Client

from tests.conftest import require_service

# Playwright's sync API runs an event loop in this thread; Django refuses ORM calls there unless told.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
OUTPUT = Path(__file__).resolve().parents[2] / "test-output" / "browser"
ROLE_GROUPS = ("Viewers", "Editors", "Admins")
SETTLED = "() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling, .htmx-added')"


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        require_service("chromium", f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Browser:
    """One signed-in tab on the live server, with what the page reported."""

    def __init__(self, page: Any, base_url: str, name: str) -> None:
        self.page = page
        self.base_url = base_url
        self.name = name
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.shots = 0
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("dialog", self._dialog)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def open(self, path: str) -> Any:
        self.page.goto(self.base_url + path)
        self.page.wait_for_load_state("networkidle")
        return self.page

    def shot(self, label: str) -> Path:
        OUTPUT.mkdir(parents=True, exist_ok=True)
        self.shots += 1
        path = OUTPUT / f"{self.name}-{self.shots:02d}-{label}.png"
        self.page.screenshot(path=str(path), full_page=False)
        return path

    def settled(self) -> None:
        """Wait until htmx has no request in flight and has swapped and settled every answer.

        htmx marks the element of a request in flight (htmx-request, removed only after its answer is
        swapped), the target being swapped, and the new content until it settles; none left means done.
        """
        self.page.wait_for_function(SETTLED)

    def swap(self, action: Any, answer: Any = lambda response: True) -> Any:
        """Run an action that makes htmx request something; wait for the answer and its swap; return the answer."""
        with self.page.expect_response(answer) as response:
            action()
        self.settled()
        return response.value

    def change(self, action: Any) -> None:
        """Run an action that posts a change, and wait until its answer (out-of-band parts too) is swapped in."""
        response = self.swap(action, lambda r: r.request.method == "POST")
        assert response.status == 200, response.text()


@pytest.fixture
def signed_in(chromium: Any, live_server: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """``signed_in(user)`` → a Browser with that user's session."""
    contexts = []
    browsers: list[Browser] = []

    def open_as(user: Any) -> Browser:
        client = Client()
        client.force_login(user)
        context = chromium.new_context(viewport={"width": 1280, "height": 900})
        context.add_cookies([{"name": settings.SESSION_COOKIE_NAME,
                              "value": client.cookies[settings.SESSION_COOKIE_NAME].value, "url": live_server.url}])
        contexts.append(context)
        browser = Browser(context.new_page(), live_server.url, f"{request.node.name}-{user.get_username()}")
        browsers.append(browser)
        return browser

    yield open_as
    for context in contexts:
        context.close()
    for browser in browsers:
        assert browser.errors == [], browser.errors
        assert browser.dialogs == [], browser.dialogs


@pytest.fixture
def roles(transactional_db: None) -> dict[str, Group]:
    """The role groups (a migration makes them; a transactional test's flush removes them again)."""
    return {name: Group.objects.get_or_create(name=name)[0] for name in ROLE_GROUPS}
