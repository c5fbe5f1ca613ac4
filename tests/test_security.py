"""Production settings, the Content-Security-Policy and CSRF.

``manage.py check --deploy`` runs in a child process with DEBUG off and the environment the settings'
docstring documents, for TLS on the process and for TLS ending at an ingress. In this process (pytest,
so plain HTTP and no redirect) the CSP header is on every kind of response, and no page takes an unsafe
method without the CSRF token, htmx or not.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.http import HttpResponse
from django.template.loader import get_template
from django.test import Client, RequestFactory
from django.urls import URLPattern, reverse
from django.utils import timezone

from flows.aggregate import aggregate_cluster
from flows.models import Cluster
from netsec import security
from netsec.security import ContentSecurityPolicyMiddleware
from policies import urls as page_urls
from tests import factories as f

REPO = Path(__file__).resolve().parents[1]
User = get_user_model()
HTMX = {"HX-Request": "true"}
PAGE = "/network/test/shop/Deployment/api/"
ROW = "ingress:Deployment/shop/frontend:8080/TCP"
UNSAFE = ("post", "put", "patch", "delete")
# The policy, spelled out: a change to it is a change to this test too. Styles: our own files, plus two
# inline stylesheets by their hashes (Cytoscape's, and the <style> of drf-spectacular's Swagger UI page).
CYTOSCAPE_HASH = "'sha256-pgvDUBa4IjFA2yuSJ2cqcyxmNYJMborsd0ORcRv9vw8='"
SWAGGER_UI_HASH = "'sha256-MMpT0iDxyjALd9PdfepImGX3DBfJPXZ4IlDWdPAgtn0='"
POLICY = (f"default-src 'self'; script-src 'self'; style-src 'self' {CYTOSCAPE_HASH} {SWAGGER_UI_HASH}; "
          "img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
          "form-action 'self'; frame-ancestors 'none'")


# ------------------------------------------------------------------------------- check --deploy, settings


def _production_env(**extra: str) -> dict[str, str]:
    """The environment of a production process: DEBUG off, a real key and host, nothing of pytest's."""
    keep = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "DATABASE_URL"}}
    return {**keep, "DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "netsec.example.com",
            **extra}


def _check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=120)


DEPLOYMENTS = {
    "TLS on the process": {},
    "TLS at an ingress": {"NETSEC_BEHIND_PROXY": "1", "CSRF_TRUSTED_ORIGINS": "https://netsec.example.com"},
    "TLS at an ingress that redirects itself": {"NETSEC_BEHIND_PROXY": "1", "SECURE_SSL_REDIRECT": "0"},
}


@pytest.mark.parametrize("extra", DEPLOYMENTS.values(), ids=DEPLOYMENTS.keys())
def test_check_deploy_has_nothing_to_say(extra: dict[str, str]) -> None:
    done = _check_deploy(_production_env(**extra))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout, done.stdout + done.stderr


def test_without_redirect_and_without_an_ingress_the_check_still_warns() -> None:
    # Only behind an ingress is the missing redirect the operator's informed choice.
    done = _check_deploy(_production_env(SECURE_SSL_REDIRECT="0"))
    assert done.returncode == 1 and "security.W008" in done.stdout + done.stderr
    assert "1 issue (0 silenced)" in done.stdout + done.stderr


def _settings(env: dict[str, str], *names: str) -> list[str]:
    code = ("import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'netsec.settings'; django.setup(); "
            "from django.conf import settings as s; "
            f"[print(repr(getattr(s, name, None))) for name in {list(names)!r}]")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=60, check=True)
    return done.stdout.splitlines()


def test_production_defaults_and_their_switches() -> None:
    names = ("SECURE_SSL_REDIRECT", "SECURE_PROXY_SSL_HEADER", "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS",
             "SECURE_HSTS_PRELOAD", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "X_FRAME_OPTIONS",
             "SECURE_REFERRER_POLICY", "CSRF_TRUSTED_ORIGINS", "SILENCED_SYSTEM_CHECKS")
    assert _settings(_production_env(), *names) == [
        "True", "None", "31536000", "True", "True", "True", "True", "'DENY'", "'same-origin'", "[]", "[]"]
    assert _settings(_production_env(
        NETSEC_BEHIND_PROXY="1", SECURE_SSL_REDIRECT="0", SECURE_HSTS_SECONDS="600",
        SECURE_HSTS_INCLUDE_SUBDOMAINS="0", SECURE_HSTS_PRELOAD="0",
        CSRF_TRUSTED_ORIGINS="https://netsec.example.com, https://ops.example.com"), *names) == [
        "False", "('HTTP_X_FORWARDED_PROTO', 'https')", "600", "False", "False", "True", "True", "'DENY'",
        "'same-origin'", "['https://netsec.example.com', 'https://ops.example.com']", "['security.W008']"]


# ---------------------------------------------------------------------------------------- a small world


@pytest.fixture
def editor(db: None) -> Any:
    cluster = Cluster.objects.create(name="test", pod_cidrs="10.244.0.0/16", service_cidrs="10.96.0.0/12")
    frontend = f.workload(cluster, "shop", "Deployment", "frontend")
    api = f.workload(cluster, "shop", "Deployment", "api")
    f.pod(cluster, frontend, "frontend-1", "10.244.1.1")
    f.pod(cluster, api, "api-1", "10.244.1.2", ports=(("http", 8080, "TCP"),))
    f.flow(cluster, "10.244.1.1", 40000, "10.244.1.2", 8080, flags="SYN", time=timezone.now())
    aggregate_cluster(cluster)
    user = User.objects.create_user("editor", password="x")
    user.groups.add(Group.objects.get(name="Editors"))
    return user


def signed_in(user: Any, **options: Any) -> Client:
    client = Client(**options)
    client.force_login(user)
    return client


# ----------------------------------------------------------------------------- Content-Security-Policy


@pytest.mark.parametrize("path, status, who", [
    ("/", 200, "editor"),
    (PAGE, 200, "editor"),
    (PAGE + "policy.yaml", 200, "editor"),
    ("/no-such-page/", 404, "editor"),
    ("/network/test/shop/Deployment/nobody/", 404, "editor"),
    ("/login/", 200, "anonymous"),
    ("/", 302, "anonymous"),
    ("/admin/login/", 200, "anonymous"),
])
def test_every_response_carries_the_policy(editor: Any, path: str, status: int, who: str) -> None:
    client = signed_in(editor) if who == "editor" else Client()
    response = client.get(path)
    assert response.status_code == status
    assert response["Content-Security-Policy"] == POLICY


def test_htmx_answers_and_refusals_carry_it_too(editor: Any) -> None:
    client = signed_in(editor, enforce_csrf_checks=True)
    refused = client.post(PAGE + "rows", {"key": ROW}, headers=HTMX)
    assert refused.status_code == 403 and refused["Content-Security-Policy"] == POLICY
    token = client.get(PAGE).cookies["csrftoken"].value
    changed = client.post(PAGE + "rows", {"key": ROW}, headers={**HTMX, "X-CSRFToken": token})
    assert changed.status_code == 200 and changed["Content-Security-Policy"] == POLICY


def test_scripts_are_never_inline_nor_evaluated() -> None:
    directives = dict(part.strip().split(" ", 1) for part in POLICY.split(";"))
    for directive in ("default-src", "script-src"):
        assert "unsafe" not in directives[directive]
    assert "script-src-attr" not in directives and "script-src-elem" not in directives


def test_the_hashed_stylesheets_are_the_libraries_own() -> None:
    # Cytoscape builds its stylesheet from these two strings; Swagger UI's page is rendered from the template.
    cytoscape = (REPO / "static/vendor/cytoscape-3.35.0/cytoscape.min.js").read_text()
    assert '"__________cytoscape_container"' in cytoscape and '" { position: relative; }"' in cytoscape
    assert security.source_hash(security.CYTOSCAPE_STYLESHEET) == CYTOSCAPE_HASH
    swagger = get_template(security.SWAGGER_UI_TEMPLATE).template.source
    style = swagger.split("<style>")[1].split("</style>")[0]
    assert security.source_hash(style) == SWAGGER_UI_HASH
    assert security.inline_stylesheets() == [security.CYTOSCAPE_STYLESHEET, style]


def _middleware(response: HttpResponse) -> ContentSecurityPolicyMiddleware:
    return ContentSecurityPolicyMiddleware(lambda request: response)


def test_report_only_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETSEC_CSP_REPORT_ONLY", "1")
    response = _middleware(HttpResponse("ok"))(RequestFactory().get("/"))
    assert response["Content-Security-Policy-Report-Only"] == POLICY
    assert "Content-Security-Policy" not in response


def test_a_policy_of_the_view_s_own_is_kept() -> None:
    own = HttpResponse("ok", headers={"Content-Security-Policy": "default-src 'none'"})
    assert _middleware(own)(RequestFactory().get("/"))["Content-Security-Policy"] == "default-src 'none'"


def test_in_debug_only_django_s_own_error_pages_go_without(settings: Any) -> None:
    # Django's yellow pages are inline styles and scripts; ours are not, and stay under the policy.
    settings.DEBUG = True
    request = RequestFactory().get("/")
    yellow = HttpResponse('<html><head><meta name="robots" content="NONE,NOARCHIVE">', status=404)
    assert "Content-Security-Policy" not in _middleware(yellow)(request)
    assert _middleware(HttpResponse("<html>not found", status=404))(request)["Content-Security-Policy"] == POLICY
    settings.DEBUG = False
    assert _middleware(HttpResponse(yellow.content, status=404))(request)["Content-Security-Policy"] == POLICY


# ------------------------------------------------------------------------------------------------ CSRF


def _every_page_url() -> list[str]:
    """Every URL of the pages (policies/urls.py), for shop/api, plus sign-in, sign-out and the admin's."""
    values = {"cluster": "test", "namespace": "shop", "kind": "Deployment", "name": "api"}
    found = []
    for pattern in page_urls.urlpatterns:
        assert isinstance(pattern, URLPattern)
        found.append(reverse(pattern.name, kwargs={k: values[k] for k in pattern.pattern.converters}))
    return [*found, reverse("login"), reverse("logout"), reverse("admin:login"), reverse("admin:index")]


@pytest.mark.parametrize("method", UNSAFE)
@pytest.mark.parametrize("htmx", [False, True], ids=["form", "htmx"])
def test_no_unsafe_method_goes_through_without_the_token(editor: Any, method: str, htmx: bool) -> None:
    client = signed_in(editor, enforce_csrf_checks=True)
    urls = _every_page_url()
    assert PAGE + "rows" in urls and len(urls) >= 12
    for url in urls:
        response = getattr(client, method)(url, {"key": ROW}, headers=HTMX if htmx else {})
        assert response.status_code == 403, (method, url, response.status_code)
        assert b"CSRF verification failed" in response.content, (method, url)


def test_a_token_from_another_session_is_refused(editor: Any) -> None:
    other = Client()
    other.get("/login/")
    stolen = other.cookies["csrftoken"].value
    client = signed_in(editor, enforce_csrf_checks=True)
    client.get(PAGE)
    response = client.post(PAGE + "rows", {"key": ROW}, headers={**HTMX, "X-CSRFToken": stolen})
    assert response.status_code == 403


def test_behind_the_ingress_redirect_hsts_and_the_origin_check(editor: Any, settings: Any) -> None:
    # What NETSEC_BEHIND_PROXY=1 sets up, on the real middleware: the ingress says https, or it is http.
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = settings.SECURE_HSTS_PRELOAD = True
    client = signed_in(editor, enforce_csrf_checks=True)
    plain = client.get(PAGE, headers={"X-Forwarded-Proto": "http"})
    assert plain.status_code == 301 and plain["Location"] == "https://testserver" + PAGE
    page = client.get(PAGE, headers={"X-Forwarded-Proto": "https"})
    assert page.status_code == 200
    assert page["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    token = page.cookies["csrftoken"].value
    # The ingress forwards the Host the browser asked for (the test client has none of its own).
    secure = {**HTMX, "Host": "testserver", "X-Forwarded-Proto": "https", "X-CSRFToken": token}
    # An htmx POST from the page itself (its Origin) passes; the same from another origin does not.
    ok = client.post(PAGE + "rows", {"key": ROW}, headers={**secure, "Origin": "https://testserver"})
    assert ok.status_code == 200
    foreign = client.post(PAGE + "rows", {"key": ROW}, headers={**secure, "Origin": "https://evil.example"})
    assert foreign.status_code == 403


# ------------------------------------------------------------------------------------------ NUL characters


@pytest.mark.parametrize(("method", "path", "data", "where"), [
    ("get", "/network/test/shop%00/Deployment/api/", {}, "path"),
    ("get", "/network/test/shop/Deployment/api/", {"q": "10.\x00"}, "query parameter 'q'"),
    ("post", "/network/test/shop/Deployment/api/rules", {"cidr": "10.0.0.0/8\x00", "direction": "egress"},
     "form field 'cidr'"),
    ("get", "/api/v1/workloads/test/shop%00/Deployment/api/draft/", {}, "path"),
    ("get", "/api/v1/workloads/", {"namespace": "shop\x00"}, "query parameter 'namespace'"),
])
def test_a_nul_character_is_a_400_that_says_where(editor: Any, method: str, path: str, data: dict,
                                                   where: str) -> None:
    # On PostgreSQL it would otherwise be a 500 from inside a query ("text fields cannot contain NUL").
    response = getattr(signed_in(editor), method)(path, data)
    assert response.status_code == 400
    text = response.json()["detail"] if path.startswith("/api/") else response.content.decode()
    assert text == f"{where}: a NUL character (%00) is not allowed"
