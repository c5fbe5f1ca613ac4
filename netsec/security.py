"""The Content-Security-Policy header on every response (Django 5.2 has none built in; Django 6.0's
``django.middleware.csp`` with ``SECURE_CSP`` can replace this module after an upgrade).

Our pages load only their own static files: scripts never inline (htmx runs with ``allowEval: false``,
``network.js`` puts text with ``textContent``), no inline styles either; styles set through the CSSOM
(``element.style``, as Cytoscape does on its canvas) are not restricted by a policy. Two inline
stylesheets of libraries are allowed by their hashes. The policy holds in DEBUG too, so that development
sees a violation first.

NETSEC_CSP_REPORT_ONLY=1 sends it as Content-Security-Policy-Report-Only: browsers then report
violations (in the console) without blocking, to try a change of the policy on a running site.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.template import TemplateDoesNotExist
from django.template.loader import get_template

# The inline stylesheets of code we vendor or install, allowed one by one by their hash rather than by
# 'unsafe-inline': Cytoscape.js writes this one into <head> when it draws the topology, and Swagger UI's
# page at /api/docs/ (drf-spectacular's template) has a <style> block, hashed from the template itself.
CYTOSCAPE_STYLESHEET = ".__________cytoscape_container { position: relative; }"
SWAGGER_UI_TEMPLATE = "drf_spectacular/swagger_ui.html"

POLICY: dict[str, tuple[str, ...]] = {
    "default-src": ("'self'",),
    # Never 'unsafe-inline' or 'unsafe-eval' for scripts: that is what makes the policy worth having.
    "script-src": ("'self'",),
    "style-src": ("'self'",),  # and the hashes of inline_stylesheets()
    "img-src": ("'self'", "data:"),
    "font-src": ("'self'",),
    "connect-src": ("'self'",),
    "object-src": ("'none'",),
    "base-uri": ("'self'",),
    "form-action": ("'self'",),
    "frame-ancestors": ("'none'",),
}

HEADER = "Content-Security-Policy"
REPORT_ONLY_HEADER = "Content-Security-Policy-Report-Only"

# Django's own technical error pages (DEBUG only: the yellow 404 and 500 pages) are made of inline
# <style> and <script>; under the policy their tracebacks would not unfold. They carry this marker.
_DJANGO_DEBUG_PAGE = b'<meta name="robots" content="NONE,NOARCHIVE">'


def source_hash(text: str) -> str:
    digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
    return f"'sha256-{digest}'"


def inline_stylesheets() -> list[str]:
    """The text of every inline <style> allowed: Cytoscape's, and those of Swagger UI's page."""
    try:
        source = get_template(SWAGGER_UI_TEMPLATE).template.source
    except TemplateDoesNotExist:
        source = ""
    return [CYTOSCAPE_STYLESHEET, *re.findall(r"<style>(.*?)</style>", source, re.DOTALL)]


def policy_value() -> str:
    policy = {**POLICY, "style-src": (*POLICY["style-src"], *map(source_hash, inline_stylesheets()))}
    return "; ".join(f"{directive} {' '.join(sources)}" for directive, sources in policy.items())


def report_only() -> bool:
    return os.environ.get("NETSEC_CSP_REPORT_ONLY", "").strip().lower() in {"1", "true", "yes", "on"}


class ContentSecurityPolicyMiddleware:
    """Sets the policy on every response that does not already carry one of its own."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.header = REPORT_ONLY_HEADER if report_only() else HEADER
        self.value = policy_value()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if HEADER in response.headers or REPORT_ONLY_HEADER in response.headers:
            return response
        if settings.DEBUG and self._django_debug_page(response):
            return response
        response.headers[self.header] = self.value
        return response

    @staticmethod
    def _django_debug_page(response: HttpResponse) -> bool:
        return (response.status_code in (404, 500) and not response.streaming
                and _DJANGO_DEBUG_PAGE in response.content[:2000])


class NulCharacterMiddleware:
    """A NUL character in the path, the query or a page's form field is a 400: no name, label or address holds one,
    and PostgreSQL refuses it in a string (which would otherwise surface as a 500 from deep inside a query)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        where = self._nul_in(request)
        if where:
            message = f"{where}: a NUL character (%00) is not allowed"
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": message}, status=400)
            return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")
        return self.get_response(request)

    @staticmethod
    def _nul_in(request: HttpRequest) -> str:
        if "\x00" in request.path:
            return "path"
        for name, values in request.GET.lists():
            if "\x00" in name or any("\x00" in value for value in values):
                return f"query parameter {name.replace(chr(0), '%00')!r}"
        # The pages' forms; the API's bodies are JSON that its serializers check, or uploads read as they are.
        if request.method == "POST" and not request.path.startswith("/api/") and request.content_type in (
                "application/x-www-form-urlencoded", "multipart/form-data"):
            for name, values in request.POST.lists():
                if "\x00" in name or any("\x00" in value for value in values):
                    return f"form field {name.replace(chr(0), '%00')!r}"
        return ""
