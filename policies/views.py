"""The pages: the landing page and the network page of one workload, with its fragments and downloads.

Every view calls the service layer (``services`` for changes, ``pages`` for what a page shows) and
nothing else for policy work. HTMX requests get fragments (a changed draft answers with every part of
the page it changes, swapped out of band); plain requests get whole pages and redirects, so the page
works with JavaScript off, the topology aside.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseLocation

from flows.timespan import parse_time
from policies import engine, pages, services

Handler = Callable[..., HttpResponse]


def _page_url(cluster: str, namespace: str, kind: str, name: str, **query: str) -> str:
    url = reverse("network", args=[cluster, namespace, kind, name])
    query = {k: v for k, v in query.items() if v and not (k == "since" and v == pages.DEFAULT_SPAN)}
    return f"{url}?{urlencode(query)}" if query else url


def _problem(request: HttpRequest, status: int, message: str) -> HttpResponse:
    template = "policies/problem.html#message" if request.htmx else "policies/problem.html"
    return render(request, template, {"message": message, "status": status}, status=status)


def _scoped(view: Handler) -> Handler:
    """Resolve the workload of the URL for the acting user: a selection the user may not see is a 404 like
    one that does not exist, a change the user may not make a 403, bad input a 422 with the message."""

    @wraps(view)
    def wrapped(request: HttpRequest, cluster: str, namespace: str, kind: str, name: str) -> HttpResponse:
        try:
            scope = services.resolve_scope(request.user, cluster, namespace, kind, name)
            return view(request, scope)
        except services.ScopeError as exc:
            return _problem(request, 404, str(exc))
        except PermissionDenied as exc:
            return _problem(request, 403, str(exc) or "you may not do that here")
        except ValueError as exc:
            return _problem(request, 422, str(exc))

    return login_required(wrapped)


# ------------------------------------------------------------------------------------------------ pages


@login_required
@require_GET
def landing(request: HttpRequest) -> HttpResponse:
    return render(request, "policies/landing.html", {"clusters": pages.overview(request.user)})


@login_required
@require_GET
def select(request: HttpRequest) -> HttpResponse:
    """The scope bar's form: the nearest valid selection to what was picked, as the page's own URL."""
    get = request.GET
    picked = pages.choices(request.user, get.get("cluster", ""), get.get("namespace", ""), get.get("kind", ""),
                           get.get("name", ""))
    if not picked.name:
        return HttpResponseRedirect(reverse("landing"))
    url = _page_url(picked.cluster, picked.namespace, picked.kind, picked.name, since=get.get("since", ""),
                    tab=get.get("tab", ""))
    if request.htmx:
        return HttpResponseLocation(url, target="#page", select="#page", swap="outerHTML")
    return HttpResponseRedirect(url)


FILTERS = ("q", "ns", "sort", "cat", "rows")  # rows=all: every row of the tables, not the first ROW_LIMIT


def _state(request: HttpRequest) -> dict[str, str]:
    """The span, tab and filters of the page a request comes from. A change posts them, so that the parts it
    gets back show what the user was looking at."""
    params = request.POST if request.method == "POST" else request.GET
    span, _ = pages.span(params.get("since"))
    tab = params.get("tab") if params.get("tab") in pages.TABS else "egress"
    return {"since": span, "tab": tab, **{k: params.get(k, "").strip() for k in FILTERS if params.get(k, "").strip()}}


def _context(request: HttpRequest, scope: engine.Scope, *, tables_only: bool = False) -> dict[str, Any]:
    state = _state(request)
    names = [scope.cluster, scope.namespace, scope.kind, scope.name]
    page = pages.network_page(request.user, scope, since=state["since"], q=state.get("q", ""),
                              ns=state.get("ns", ""), sort=state.get("sort", "-connections"), cat=state.get("cat", ""),
                              limit=None if state.get("rows") == "all" else pages.ROW_LIMIT, tables_only=tables_only)
    return {
        "page": page,
        "tab": state["tab"],
        "state": state,
        "choices": pages.choices(request.user, scope.cluster, scope.namespace, scope.kind, scope.name),
        "spans": pages.SPANS,
        "modes": list(engine.MODE_LABELS.items()),
        "page_url": _page_url(scope.cluster, scope.namespace, scope.kind, scope.name, **state),
        "base_url": reverse("network", args=[scope.cluster, scope.namespace, scope.kind, scope.name]),
        # What every row's forms repeat, made once per page rather than once per row.
        "row_urls": {name.replace("-", "_"): reverse(name, args=names) for name in ("set-rows", "name-address")},
        "state_inputs": mark_safe(render_to_string("policies/_state.html", {"state": state})),  # noqa: S308
    }


CSRF_SLOT = "netsecCsrfTokenSlot"  # where a kept page's forms take the CSRF token of the request served


@_scoped
@require_GET
def network(request: HttpRequest, scope: engine.Scope) -> HttpResponse:
    target = request.htmx.target if request.htmx else None
    if target in ("panel-ingress", "panel-egress"):
        # The table fragment shows neither the topology nor the applied policies: they are not computed.
        def html() -> str:
            context = _context(request, scope, tables_only=True)
            return render_to_string("policies/network.html#direction", {
                **context, "d": getattr(context["page"], target.removeprefix("panel-")), "csrf_token": CSRF_SLOT},
                request)
    else:
        def html() -> str:
            return render_to_string("policies/network.html", {**_context(request, scope), "csrf_token": CSRF_SLOT},
                                    request)

    # Kept for the user (pages.kept_html): its forms get this request's CSRF token when served.
    kept = pages.kept_html(request.user, scope, (request.get_full_path(), target), html)
    return HttpResponse(kept.replace(CSRF_SLOT, get_token(request)))


def _before(request: HttpRequest, scope: engine.Scope) -> pages.NetworkPage | None:
    """The tables as the page showed them before a change (HTMX only): the answer swaps what differs."""
    return _context(request, scope, tables_only=True)["page"] if request.htmx else None


def _changed(request: HttpRequest, scope: engine.Scope, before: pages.NetworkPage | None = None) -> HttpResponse:
    """After a change: every part of the page it changes (HTMX, swapped out of band), or the page again.
    With the tables as they were ``before``, a table that changed in a few rows gets only those rows."""
    if not request.htmx:
        return HttpResponseRedirect(_page_url(scope.cluster, scope.namespace, scope.kind, scope.name,
                                              **_state(request)))
    context = _context(request, scope)
    return render(request, "policies/changed.html",
                  {**context, "parts": pages.changed_parts(before, context["page"])})


@_scoped
@require_POST
def set_rows(request: HttpRequest, scope: engine.Scope) -> HttpResponse:
    before = _before(request, scope)
    services.set_rows(request.user, scope, request.POST.getlist("key"), request.POST.get("included") == "1")
    return _changed(request, scope, before)


@_scoped
@require_POST
def set_mode(request: HttpRequest, scope: engine.Scope) -> HttpResponse:
    direction, mode = request.POST.get("direction", ""), request.POST.get("mode", "")
    directions = engine.DIRECTIONS if request.POST.get("both") == "1" else (direction,)
    for each in directions:
        services.set_mode(request.user, scope, each, mode)
    return _changed(request, scope)


@_scoped
@require_POST
def add_rule(request: HttpRequest, scope: engine.Scope) -> HttpResponse:
    post = request.POST
    services.add_manual_rule(request.user, scope, post.get("direction", ""), post.get("cidr", ""),
                             post.get("ports", ""), post.get("note", ""))
    return _changed(request, scope)


@_scoped
@require_POST
def remove_rule(request: HttpRequest, scope: engine.Scope) -> HttpResponse:
    try:
        rule_id = int(request.POST.get("rule", ""))
    except ValueError:
        raise ValueError("rule: not a rule number") from None
    services.remove_manual_rule(request.user, scope, rule_id)
    return _changed(request, scope)


@_scoped
@require_POST
def label_namespace(request: HttpRequest, scope: engine.Scope) -> HttpResponse:
    post = request.POST
    key, _, value = post.get("label", "").partition("=")
    services.set_namespace_label(request.user, scope, post.get("namespace", ""), key.strip(), value.strip())
    return _changed(request, scope)


@_scoped
@require_POST
def name_address(request: HttpRequest, scope: engine.Scope) -> HttpResponse:
    """An admin's action on an unresolved address: an alias (allowed or not), or a CIDR configuration."""
    post = request.POST
    if post.get("action") == "cidr":
        services.set_cidr_config(request.user, post.get("cidr", ""), post.get("category", ""),
                                 cluster=scope.cluster, label=post.get("label", ""))
    else:
        services.set_alias(request.user, post.get("cidr", ""), post.get("name", ""), cluster=scope.cluster,
                           allowed=post.get("allowed") == "1")
    return _changed(request, scope)


# ----------------------------------------------------------------------------------------------- tokens


@login_required
def tokens(request: HttpRequest) -> HttpResponse:
    """The user's API tokens: make one (shown once), revoke one."""
    made, problem = None, ""
    if request.method == "POST":
        try:
            if request.POST.get("revoke"):
                services.revoke_token(request.user, int(request.POST["revoke"]))
            else:
                expires = request.POST.get("expires", "").strip()
                made = services.create_token(request.user, request.POST.get("name", ""),
                                             expires_at=parse_time(expires) if expires else None)
        except ValueError as exc:
            problem = str(exc)
    status = 422 if problem else 200
    return render(request, "policies/tokens.html",
                  {"tokens": services.tokens(request.user), "made": made, "problem": problem}, status=status)


@login_required
@require_GET
def status(request: HttpRequest) -> HttpResponse:
    """For admins: is the inventory current, is aggregation keeping up, is the task queue draining?"""
    try:
        clusters, queue = services.operations_status(request.user)
    except PermissionDenied as exc:
        return _problem(request, 403, str(exc))
    return render(request, "policies/status.html", {"clusters": clusters, "queue": queue})


# -------------------------------------------------------------------------------------------- downloads


@_scoped
@require_GET
def policy_yaml(request: HttpRequest, scope: engine.Scope) -> HttpResponse:
    _, since = pages.span(request.GET.get("since"))
    filename, text = services.policy_file(request.user, scope, since=since)
    return _attachment(text, filename)


@login_required
@require_GET
def namespace_yaml(request: HttpRequest, cluster: str, namespace: str) -> HttpResponse:
    try:
        filename, text, _ = pages.namespace_yaml(request.user, cluster, namespace, since=request.GET.get("since"))
    except services.ScopeError as exc:
        return _problem(request, 404, str(exc))
    except PermissionDenied as exc:
        return _problem(request, 403, str(exc))
    except ValueError as exc:
        return _problem(request, 422, str(exc))
    return _attachment(text, filename)


@_scoped
@require_GET
def topology_json(request: HttpRequest, scope: engine.Scope) -> HttpResponse:
    _, since = pages.span(request.GET.get("since"))
    return HttpResponse(pages.topology_json(request.user, scope, since=since), content_type="application/json")


def _attachment(text: str, filename: str) -> HttpResponse:
    response = HttpResponse(text, content_type="application/yaml; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
