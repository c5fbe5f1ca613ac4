"""The Content-Security-Policy in a real browser: every page works under it and breaks none of its rules.

A violation is caught twice: the ``securitypolicyviolation`` event (a listener every document gets
before its own scripts run) and Chromium's console message ("Refused to ..."). Any one fails the test.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.urls import Resolver404, resolve
from django.utils import timezone

from flows.aggregate import aggregate_cluster
from flows.models import Cluster
from tests import factories as f

pytestmark = pytest.mark.browser

User = get_user_model()
PAGE = "/network/test/shop/Deployment/api/"
DB_ROW = 'tr[data-key="egress:StatefulSet/data/db:5432/TCP"]'

LISTENER = """
document.addEventListener('securitypolicyviolation', (e) => {
    const on = e.target && e.target.tagName ? `<${e.target.tagName.toLowerCase()} id="${e.target.id}">` : 'document';
    window.cspViolation(`${e.effectiveDirective} blocked ${e.blockedURI || 'inline'} on ${on} by ${e.sourceFile}:`
                        + `${e.lineNumber} in ${e.documentURI}: ${e.sample}`);
}, true);
"""


class Violations:
    """What the browser refused on any page of the tab's context, from both sources."""

    def __init__(self, page: Any) -> None:
        self.events: list[str] = []
        self.console: list[str] = []
        page.context.expose_function("cspViolation", self._event)
        page.context.add_init_script(LISTENER)
        page.on("console", self._console)

    def _event(self, text: str) -> None:
        self.events.append(text)

    def _console(self, message: Any) -> None:
        text = message.text
        if "Content Security Policy" in text or text.startswith("Refused to"):
            self.console.append(text)

    def settle(self, page: Any) -> None:
        page.wait_for_timeout(200)  # the event is delivered after the refusal, and the binding is async

    def assert_none(self, page: Any) -> None:
        self.settle(page)
        assert self.events == [] and self.console == [], {"events": self.events, "console": self.console}


@pytest.fixture
def world(roles: dict[str, Any]) -> dict[str, Any]:
    """shop/frontend → shop/api → data/db, an hour ago; an Editor, a Viewer and a superuser."""
    cluster = Cluster.objects.create(name="test", pod_cidrs="10.244.0.0/16", service_cidrs="10.96.0.0/12")
    frontend = f.workload(cluster, "shop", "Deployment", "frontend")
    api = f.workload(cluster, "shop", "Deployment", "api")
    db = f.workload(cluster, "data", "StatefulSet", "db")
    for workload, ip, ports in ((frontend, "10.244.1.1", ()), (api, "10.244.1.2", (("http", 8080, "TCP"),)),
                                (db, "10.244.1.4", (("pg", 5432, "TCP"),))):
        f.pod(cluster, workload, f"{workload.name}-1", ip, ports=ports)
    recent = timezone.now() - timedelta(hours=1)
    f.flow(cluster, "10.244.1.1", 40000, "10.244.1.2", 8080, flags="SYN", time=recent)
    f.flow(cluster, "10.244.1.2", 40001, "10.244.1.4", 5432, flags="SYN", time=recent)
    aggregate_cluster(cluster)
    editor = User.objects.create_user("editor", password="x")
    editor.groups.add(roles["Editors"])
    viewer = User.objects.create_user("viewer", password="x")
    viewer.groups.add(roles["Viewers"])
    admin = User.objects.create_superuser("admin", password="x")
    return {"editor": editor, "viewer": viewer, "admin": admin}


def served(path: str) -> bool:
    try:
        resolve(path)
    except Resolver404:
        return False
    return True


def open_checked(browser: Any, path: str) -> Any:
    """Open a page and check that it came with the enforcing policy, not merely a report-only one."""
    response = browser.page.goto(browser.base_url + path)
    browser.page.wait_for_load_state("networkidle")
    assert response.status == 200, (path, response.status)
    policy = response.headers.get("content-security-policy", "")
    assert "script-src 'self';" in policy and "unsafe-eval" not in policy, (path, policy)
    return browser.page


def test_the_listener_sees_a_violation(world: dict[str, Any], signed_in: Any) -> None:
    # Without this, a listener that never fires would pass every test below.
    browser = signed_in(world["viewer"])
    violations = Violations(browser.page)
    page = open_checked(browser, "/")
    page.evaluate("""() => { const s = document.createElement('script'); s.textContent = 'window.ran = 1';
                             document.head.append(s); }""")
    violations.settle(page)
    assert page.evaluate("window.ran") is None
    assert any(e.startswith("script-src") for e in violations.events), violations.events
    assert any("inline script" in m for m in violations.console), violations.console


def test_the_network_page_htmx_and_the_topology_work_under_the_policy(world: dict[str, Any], signed_in: Any) -> None:
    browser = signed_in(world["editor"])
    violations = Violations(browser.page)
    page = open_checked(browser, PAGE + "?tab=egress")
    assert page.locator(DB_ROW).locator(".st").inner_text() == "allowed"
    assert "app: db" in page.locator("#policy-yaml").inner_text()
    # An htmx POST (with the token htmx sends from hx-headers) and its out-of-band swaps.
    browser.change(lambda: page.locator(DB_ROW).locator('input[type="checkbox"]').click())
    assert page.locator(DB_ROW).locator(".st").inner_text() == "blocked by the draft"
    assert "app: db" not in page.locator("#policy-yaml").inner_text()
    # The topology: Cytoscape draws the graph from topology.json.
    page.click("#tab-topology")
    page.wait_for_function("() => document.getElementById('cy')._cyreg")
    assert page.evaluate("() => document.getElementById('cy')._cyreg.cy.nodes().length") >= 3
    assert page.evaluate("() => document.getElementById('cy')._cyreg.cy.edges().length") >= 2
    assert page.locator("#cy canvas").count() > 0
    browser.shot("topology-under-csp")
    # A change while the graph is drawn: the out-of-band swaps replace its box, and it is drawn again.
    page.click("#tab-egress")
    browser.change(lambda: page.locator(DB_ROW).locator('input[type="checkbox"]').click())
    assert page.locator(DB_ROW).locator(".st").inner_text() == "allowed"
    page.click("#tab-topology")
    page.wait_for_function("() => document.getElementById('cy')._cyreg")
    # The other tabs, and the scope bar's in-place swap (hx-get, hx-push-url).
    for tab in ("ingress", "applied", "policy"):
        page.click(f"#tab-{tab}")
    with page.expect_response(lambda r: "/network/test/shop/Deployment/frontend/" in r.url):
        page.select_option('#scopebar select[name="name"]', "frontend")
    page.wait_for_load_state("networkidle")
    page.wait_for_selector(".workload-head h1:text('frontend')")
    violations.assert_none(page)


def test_the_landing_and_the_login_pages(world: dict[str, Any], signed_in: Any) -> None:
    browser = signed_in(world["viewer"])
    violations = Violations(browser.page)
    page = open_checked(browser, "/")
    assert "test" in page.locator("main").inner_text()
    if served("/tokens/"):
        open_checked(browser, "/tokens/")
    browser.page.context.clear_cookies()
    page = open_checked(browser, "/login/")
    browser.shot("login-under-csp")
    # Signing in posts the form (form-action 'self') and follows the redirect to the landing page.
    page.fill('input[name="username"]', "viewer")
    page.fill('input[name="password"]', "x")
    with page.expect_navigation():
        page.locator('form button[type="submit"], form input[type="submit"]').first.click()
    page.wait_for_load_state("networkidle")
    assert page.url == browser.base_url + "/"
    violations.assert_none(page)


def test_the_admin_as_a_superuser(world: dict[str, Any], signed_in: Any) -> None:
    browser = signed_in(world["admin"])
    violations = Violations(browser.page)
    page = open_checked(browser, "/admin/")
    assert page.locator("#site-name").count() == 1
    browser.shot("admin-under-csp")
    for path in ("/admin/auth/user/", f"/admin/auth/user/{world['admin'].pk}/change/", "/admin/flows/cluster/"):
        open_checked(browser, path)
    # The admin's theme toggle (its own static JavaScript) still runs.
    page.locator("button.theme-toggle").first.click()
    violations.assert_none(page)


def test_the_api_docs(world: dict[str, Any], signed_in: Any) -> None:
    if not served("/api/docs/"):
        pytest.skip("/api/docs/ is not served yet")
    browser = signed_in(world["editor"])
    violations = Violations(browser.page)
    page = open_checked(browser, "/api/docs/")
    page.wait_for_selector(".swagger-ui .info .title")
    # Open an operation and a schema: Swagger UI renders them (and highlights JSON) on demand.
    page.locator(".swagger-ui .opblock-summary").first.click()
    page.wait_for_selector(".swagger-ui .opblock-body")
    page.locator(".swagger-ui .opblock-body .tab-header button, .swagger-ui .opblock-body .tablinks").last.click()
    page.locator(".swagger-ui section.models .model-box").first.click()
    browser.shot("api-docs-under-csp")
    violations.assert_none(page)
