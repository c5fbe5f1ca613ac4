"""The permission matrix (design §9): every route of the URL resolver, pages, API and admin site alike, for
anonymous, viewer, editor, admin and a namespace-limited user, with the status each one gets.

The routes come from the resolver, so a route added without a rule here fails ``test_every_route_has_a_rule``.
A rule says what a route needs (``login``, ``view``, ``edit`` or ``admin``) and what it answers when that is
met; the statuses follow from the personas' roles:

- anonymous: the login page (302) for pages, 401 for the API;
- viewer (Viewers, every namespace), editor (Editors), admin (Admins and staff);
- limited: an Editor of namespaces ``shop`` and ``market`` only. ``vault`` and what runs there do not exist
  for them: a workload or namespace route aimed at ``vault`` is a 404, as for something that does not exist,
  and no response they get, for any route, ever names what ``vault`` holds (``test_..._never_leaks``).

The admin site is for staff: the non-staff personas are sent to its login page; the admin persona gets what
``ADMIN_RIGHTS`` lists for each registered model, and a 403 for the rest.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from flows.access import SYSTEM, Role
from flows.aggregate import aggregate_cluster
from flows.models import CIDRConfig, Cluster, IPAlias, Namespace, NamespaceGrant, NetworkPolicy
from policies import ingestion, services
from policies.models import ManualRule
from tests import factories as f

PERSONAS = ("anonymous", "viewer", "editor", "admin", "limited")
User = get_user_model()

# Everything that names what ``vault`` holds: its name, labels (keys and values), workload, pod address and
# the policy applied there.
HIDDEN = ("vault", "ledger", "custodian", "treasury", "secret-tier", "crown", "ledger-lockdown", "10.244.7.7")


# ------------------------------------------------------------------------------------------------- world


@dataclass
class World:
    cluster: Cluster
    users: dict[str, Any]
    tokens: dict[str, str]
    alias: IPAlias
    cidr_config: CIDRConfig


def _user(name: str, *groups: str, staff: bool = False) -> Any:
    user = User.objects.create_user(name, password="pw", is_staff=staff)
    # get_or_create: a transactional test (tests/api/test_schema.py) flushes the groups the migration made.
    user.groups.add(*(Group.objects.get_or_create(name=group)[0] for group in groups))
    return user


def build_world() -> World:
    cluster = Cluster.objects.create(name="test", pod_cidrs="10.244.0.0/16", service_cidrs="10.96.0.0/12")
    f.namespace(cluster, "market", labels={"team": "market"})  # no name label: namespace-labels has work to do
    f.namespace(cluster, "vault", labels={"kubernetes.io/metadata.name": "vault", "custodian": "treasury"})
    frontend = f.workload(cluster, "shop", "Deployment", "frontend")
    api = f.workload(cluster, "shop", "Deployment", "api")
    checkout = f.workload(cluster, "market", "Deployment", "checkout")
    ledger = f.workload(cluster, "vault", "StatefulSet", "ledger", labels={"app": "ledger", "secret-tier": "crown"})
    f.pod(cluster, frontend, "frontend-1", "10.244.1.1")
    f.pod(cluster, api, "api-1", "10.244.1.2", ports=(("http", 8080, "TCP"),))
    f.pod(cluster, checkout, "checkout-1", "10.244.2.1")
    f.pod(cluster, ledger, "ledger-0", "10.244.7.7", ports=(("pg", 5432, "TCP"),))
    f.service(cluster, "shop", "api", {"app": "api"}, "10.96.0.20", [(80, "TCP", 8080)])
    recent = timezone.now() - timedelta(hours=1)
    for src, dst, port in (("10.244.1.1", "10.244.1.2", 8080), ("10.244.2.1", "10.244.1.2", 8080),
                           ("10.244.1.2", "10.244.7.7", 5432), ("10.244.7.7", "10.244.1.2", 8080),
                           ("10.244.1.2", "203.0.113.9", 443), ("10.244.7.7", "198.51.100.7", 443)):
        f.flow(cluster, src, 40000, dst, port, time=recent)
    aggregate_cluster(cluster)
    spec = {"podSelector": {}, "policyTypes": ["Ingress"]}
    NetworkPolicy.objects.create(
        cluster=cluster, namespace=f.namespace(cluster, "vault"), name="ledger-lockdown", spec=spec,
        manifest={"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                  "metadata": {"name": "ledger-lockdown", "namespace": "vault"}, "spec": spec})
    users = {
        "viewer": _user("viewer", "Viewers"),
        "editor": _user("editor", "Editors"),
        "admin": _user("admin", "Admins", staff=True),
        "limited": _user("limited"),
    }
    grant = NamespaceGrant.objects.create(user=users["limited"], role=Role.EDITOR)
    grant.namespaces.add(*Namespace.objects.filter(cluster=cluster, name__in=["shop", "market"]))
    for target in (("shop", "Deployment", "api"), ("vault", "StatefulSet", "ledger")):
        services.add_manual_rule(SYSTEM, services.resolve_scope(SYSTEM, "test", *target), "egress", "192.0.2.0/24",
                                 "443", "a rule to look at")
    ingestion.ingest_flows(SYSTEM, "test", FLOW_LINE, fmt="netsec", key="matrix")
    return World(
        cluster=cluster, users=users,
        tokens={name: services.create_token(user, "matrix").secret for name, user in users.items()},
        alias=IPAlias.objects.create(name="office", cidr="198.51.100.0/24"),
        cidr_config=CIDRConfig.objects.create(cidr="192.168.0.0/16", category="External", label="lab"),
    )


@pytest.fixture
def world(db: None) -> World:
    return build_world()


# ------------------------------------------------------------------------------------------------- rules

TARGETS = {
    "workload": {"shop": {"cluster": "test", "namespace": "shop", "kind": "Deployment", "name": "api"},
                 "vault": {"cluster": "test", "namespace": "vault", "kind": "StatefulSet", "name": "ledger"}},
    "namespace": {"shop": {"cluster": "test", "namespace": "shop"},
                  "vault": {"cluster": "test", "namespace": "vault"}},
}
Prepare = Callable[[World, str, dict[str, str]], dict[str, Any]]


@dataclass(frozen=True)
class Rule:
    """How to call a route, what it needs and what it answers then."""

    method: str
    needs: str  # "none", "login", "view", "edit" or "admin"
    ok: int
    target: str = ""  # "workload" or "namespace": called for shop and for vault
    data: dict[str, Any] | None = None
    prepare: Prepare | None = None  # more URL arguments, made for each call (an object to delete)
    api: bool = False
    htmx: bool = False
    anonymous: int | None = None  # what anonymous gets when it is not the login page or 401
    raw: tuple[str, bytes] | None = None  # an upload: its content type and body (``data`` is the query)
    others: dict[str, int] = field(default_factory=dict)  # statuses that the roles do not explain


def page(method: str, needs: str, ok: int = 200, **more: Any) -> Rule:
    return Rule(method, needs, ok, **{"htmx": method == "POST", **more})


def api(method: str, needs: str, ok: int = 200, **more: Any) -> Rule:
    return Rule(method, needs, ok, api=True, **more)


def _rule_of(target: str) -> Prepare:
    def prepare(world: World, persona: str, where: dict[str, str]) -> dict[str, Any]:
        scope = services.resolve_scope(SYSTEM, where["cluster"], where["namespace"], where["kind"], where["name"])
        services.add_manual_rule(SYSTEM, scope, "egress", "192.0.2.0/24", "8443", f"for {persona}")
        return {target: ManualRule.objects.latest("pk").pk}

    return prepare


def _alias(world: World, persona: str, where: dict[str, str]) -> dict[str, Any]:
    return {"pk": IPAlias.objects.create(name=f"gone-{persona}", cidr="100.64.0.0/10").pk}


def _cidr(world: World, persona: str, where: dict[str, str]) -> dict[str, Any]:
    return {"pk": CIDRConfig.objects.create(cidr="100.64.0.0/10", category="Internal", label=persona).pk}


def _own_token(world: World, persona: str, where: dict[str, str]) -> dict[str, Any]:
    user = world.users.get(persona) or world.users["viewer"]
    return {"pk": services.create_token(user, "to revoke").token.pk}


def CLUSTER(*_: Any) -> dict[str, Any]:  # noqa: N802 - reads as the constant it is
    return {"cluster": "test"}


FLOW_LINE = (b'{"time": "2026-11-27T16:00:00Z", "protocol": "TCP", "source": {"ip": "10.244.1.1", "port": 40000},'
             b' "destination": {"ip": "10.244.1.2", "port": 8080}}\n')
INVENTORY_DUMP = b"apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Namespace, metadata: {name: extra}}\n"
W, NS = "workload", "namespace"
SPAN = {"since": "24h"}
RULES: dict[str, Rule] = {
    # Pages.
    "login": page("GET", "none", others={p: 302 for p in PERSONAS[1:]}),  # signed in: on to the landing page
    "logout": page("POST", "none", 302, htmx=False),
    "landing": page("GET", "login"),
    "select": page("GET", "login", 302, data={"cluster": "test", "namespace": "shop", "kind": "Deployment",
                                              "name": "api"}),
    "tokens": page("GET", "login"),
    "status": page("GET", "admin"),
    "healthz": page("GET", "none"),
    "readyz": page("GET", "none"),
    "network": page("GET", "view", target=W),
    "set-rows": page("POST", "edit", target=W, data={"key": "ingress:Deployment/shop/frontend:8080/TCP",
                                                     "included": "0"}),
    "set-mode": page("POST", "edit", target=W, data={"direction": "egress", "mode": "block-all"}),
    "add-rule": page("POST", "edit", target=W, data={"direction": "egress", "cidr": "203.0.113.0/24",
                                                     "ports": "443"}),
    "remove-rule": page("POST", "edit", target=W, prepare=None, data={}),  # the rule's id goes in the body
    "label-namespace": page("POST", "edit", target=W, data={"namespace": "market", "label": "team=market"}),
    "name-address": page("POST", "admin", target=W, data={"cidr": "203.0.113.9", "name": "partner"}),
    "policy-yaml": page("GET", "edit", target=W),
    "topology-json": page("GET", "view", target=W),
    "namespace-yaml": page("GET", "edit", target=NS),
    # API: documents.
    "api-schema": api("GET", "login"),
    "api-docs": page("GET", "login"),  # a page for people, with a session: else to the login page
    # API: reading.
    "api-clusters": api("GET", "login"),
    "api-namespaces": api("GET", "login", prepare=CLUSTER),  # vault: just not listed
    "api-namespace-policies": api("GET", "edit", target=NS, data=SPAN),
    "api-workloads": api("GET", "login", data={"cluster": "test"}),
    "api-communications": api("GET", "view", target=W, data={"direction": "ingress"}),
    "api-policy": api("GET", "view", target=W, data=SPAN),
    "api-policy-yaml": api("GET", "edit", target=W, data=SPAN),
    "api-topology": api("GET", "view", target=W, data=SPAN),
    "api-applied-policies": api("GET", "view", target=W, data=SPAN),
    "api-draft": api("GET", "view", target=W),
    # API: drafts.
    "api-draft-modes": api("PATCH", "edit", target=W, data={"egress_mode": "allow-namespace"}),
    "api-draft-rows": api("POST", "edit", target=W, data={"keys": ["ingress:Deployment/shop/frontend:8080/TCP"],
                                                          "included": False}),
    "api-draft-rules": api("POST", "edit", 201, target=W, data={"direction": "egress", "cidr": "203.0.113.0/24",
                                                                "ports": "443"}),
    "api-draft-rule": api("DELETE", "edit", target=W, prepare=_rule_of("rule")),
    "api-draft-namespace-labels": api("POST", "edit", target=W, data={"namespace": "market", "key": "team",
                                                                      "value": "market"}),
    # API: cluster-wide data.
    "api-aliases": api("GET", "login"),
    "api-aliases-add": api("POST", "admin", 201, data={"cidr": "203.0.113.0/24", "name": "partner"}),
    "api-alias": api("DELETE", "admin", 204, prepare=_alias),
    "api-cidrs": api("GET", "login"),
    "api-cidrs-add": api("POST", "admin", 201, data={"cidr": "172.16.0.0/12", "category": "Internal"}),
    "api-cidr": api("DELETE", "admin", 204, prepare=_cidr),
    "api-tokens": api("GET", "login"),
    "api-tokens-add": api("POST", "login", 201, data={"name": "ci"}),
    "api-token": api("DELETE", "login", prepare=_own_token),
    "api-audit": api("GET", "admin"),
    "api-audit-lines": api("GET", "admin"),
    # API: ingestion.
    "api-ingest-flows": api("POST", "admin", prepare=CLUSTER, data={"format": "netsec"},
                            raw=("application/x-ndjson", FLOW_LINE)),
    "api-ingest-inventory": api("POST", "admin", prepare=CLUSTER, data={"partial": "true"},
                                raw=("application/yaml", INVENTORY_DUMP)),
}
# Routes that take more than one method get a rule per method: "<route>-<suffix>" -> the route's name.
SAME_ROUTE = {"api-draft-modes": "api-draft", "api-aliases-add": "api-aliases", "api-cidrs-add": "api-cidrs",
              "api-tokens-add": "api-tokens", "tokens-add": "tokens", "tokens-revoke": "tokens"}
RULES["tokens-add"] = page("POST", "login", data={"name": "laptop"})
RULES["tokens-revoke"] = page("POST", "login", prepare=_own_token, data={})


def expected(rule: Rule, persona: str, target: str) -> int:
    if persona in rule.others:
        return rule.others[persona]
    if persona == "anonymous":
        if rule.needs == "none":
            return rule.ok
        return rule.anonymous or (401 if rule.api else 302)
    if persona == "limited" and target == "vault":
        return 404
    allowed = {"none": set(PERSONAS), "login": set(PERSONAS), "view": set(PERSONAS),
               "edit": {"editor", "admin", "limited"}, "admin": {"admin"}}[rule.needs]
    return rule.ok if persona in allowed else 403


# ------------------------------------------------------------------------------------------------ routes


def routes() -> dict[str, str]:
    """Every route of the resolver: its name (``admin:...`` for the admin site; the pattern when it has
    none), and its pattern."""
    found: dict[str, str] = {}

    def walk(patterns: list, prefix: str, namespace: str) -> None:
        for entry in patterns:
            pattern = prefix + str(entry.pattern)
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, pattern, entry.namespace or namespace)
            elif isinstance(entry, URLPattern):
                name = f"{namespace}:{entry.name}" if namespace and entry.name else entry.name or pattern
                found[name] = pattern

    walk(get_resolver().url_patterns, "", "")
    return found


def admin_routes() -> dict[str, str]:
    return {name: pattern for name, pattern in routes().items() if pattern.startswith("admin/")}


def test_every_route_has_a_rule() -> None:
    """A route added without a rule of the matrix fails here; so does a rule whose route went away."""
    product = {name for name, pattern in routes().items() if not pattern.startswith("admin/")}
    ruled = {SAME_ROUTE.get(name, name) for name in RULES}
    assert product - ruled == set(), "routes without a rule in the permission matrix"
    assert ruled - product == set(), "rules of routes that do not exist"
    for name in admin_routes():
        admin_rule(name)  # raises for an admin route or model the matrix does not know


# ------------------------------------------------------------------------------------------------ calling


def client_of(world: World, persona: str, rule: Rule) -> Client:
    if persona == "anonymous":
        return Client()
    if rule.api and persona != "viewer":
        # Integrations use tokens; the viewer calls the API with its browser session, as /api/docs does.
        return Client(headers={"Authorization": f"Bearer {world.tokens[persona]}"})
    client = Client()
    client.force_login(world.users[persona])
    return client


def call(world: World, name: str, persona: str, target: str) -> tuple[Any, str]:
    """The response to one persona's call of one route, and the text of everything it sent."""
    rule = RULES[name]
    kwargs = dict(TARGETS[rule.target][target]) if rule.target else {}
    data = dict(rule.data or {})
    if rule.prepare:
        kwargs.update(rule.prepare(world, persona, kwargs))
    if name == "remove-rule":
        data["rule"] = str(_rule_of("rule")(world, persona, kwargs)["rule"])
    if name == "tokens-revoke":
        data["revoke"] = str(kwargs.pop("pk"))
    url = reverse(SAME_ROUTE.get(name, name), kwargs=kwargs or None)
    client = client_of(world, persona, rule)
    headers = {"HX-Request": "true"} if rule.htmx else {}
    method = getattr(client, rule.method.lower())
    if rule.raw:
        response = client.post(f"{url}?{urlencode(data)}", rule.raw[1], content_type=rule.raw[0])
    elif rule.api and rule.method != "GET":
        response = method(url, data, content_type="application/json", headers=headers)
    else:
        response = method(url, data, headers=headers)
    return response, f"{url} {data}"


def body(response: Any) -> str:
    content = b"".join(response.streaming_content) if response.streaming else response.content
    headers = " ".join(f"{k}: {v}" for k, v in response.items())
    return f"{headers}\n{content.decode(errors='replace')}"


def leaks(text: str, asked: str) -> list[str]:
    """The hidden words in ``text`` that the request did not say itself."""
    return [word for word in HIDDEN if word not in asked and re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])",
                                                                         text)]


CASES = [(name, target) for name, rule in RULES.items() for target in (("shop", "vault") if rule.target else ("",))]


@pytest.mark.parametrize(("name", "target"), CASES, ids=[f"{n}-{t}" if t else n for n, t in CASES])
def test_route(world: World, name: str, target: str) -> None:
    rule = RULES[name]
    got, want = {}, {}
    for persona in PERSONAS:
        cache.clear()
        response, asked = call(world, name, persona, target)
        got[persona], want[persona] = response.status_code, expected(rule, persona, target)
        text = body(response)
        if response.status_code == 302 and persona == "anonymous" and rule.needs != "none":
            assert response["Location"].startswith(reverse("login") + "?next="), response["Location"]
        if response.status_code == 401:
            assert response.has_header("WWW-Authenticate")
        if persona == "limited":
            assert leaks(text, asked) == [], f"{name} ({target}) shows the limited user what vault holds"
    assert got == want, f"got {got}, want {want}"


# -------------------------------------------------------------------------------------------- admin site

# What the Admins role may do in the admin site, model by model: view, add, change, delete.
ADMIN_RIGHTS = {
    "flows.cluster": "vacd", "flows.namespace": "v", "flows.node": "v", "flows.workload": "v", "flows.service": "v",
    "flows.pod": "v", "flows.podaddress": "v", "flows.networkpolicy": "v", "flows.rawflow": "v",
    "flows.communication": "v", "flows.ipalias": "vacd", "flows.cidrconfig": "vacd", "flows.observedip": "v",
    "flows.servicebackend": "v", "flows.aggregationstate": "v", "flows.namespacegrant": "vacd",
    "flows.ingestbatch": "v", "flows.communicationday": "v", "flows.rollupday": "v",
    "flows.dataversion": "v",
    "policies.draft": "vacd", "policies.draftrevision": "vacd", "policies.apitoken": "vcd", "policies.auditevent": "v",
    "auth.user": "vacd", "auth.group": "vacd",
}
ADMIN_PAGES = {  # the admin site's own routes: what staff and the others get
    "admin:index": (200, 302), "admin:login": (302, 200), "admin:logout": (302, 302),
    "admin:password_change": (200, 302), "admin:password_change_done": (200, 302), "admin:jsi18n": (200, 302),
    "admin:autocomplete": (403, 302), "admin:auth_user_password_change": (200, 302),
    "admin:view_on_site": (404, 302), "admin:app_list": (200, 302),
}
MODEL_ROUTE = re.compile(r"^admin:(?P<app>\w+?)_(?P<model>[a-z]+)_(?P<view>changelist|add|change|delete|history)$")
NEEDS = {"changelist": "v", "add": "a", "change": "v", "delete": "d", "history": "v"}


@dataclass(frozen=True)
class AdminRule:
    url: Callable[[], str]
    staff: int  # what the admin persona gets
    others: int = 302  # the non-staff personas: to the admin login


def _first(app: str, model: str) -> Any:
    from django.apps import apps

    found = apps.get_model(app, model).objects.order_by("pk").first()
    assert found is not None, f"the matrix's world has no {app}.{model} to open in the admin site: make one"
    return found


def admin_rule(name: str) -> AdminRule:
    pattern = admin_routes()[name]
    if name in ADMIN_PAGES:
        staff, others = ADMIN_PAGES[name]
        method_post = name == "admin:logout"

        def url() -> str:
            args = {"admin:app_list": {"app_label": "flows"},
                    "admin:view_on_site": {"content_type_id": 1, "object_id": "1"},
                    "admin:auth_user_password_change": {"id": str(_first("auth", "user").pk)}}.get(name)
            return ("POST " if method_post else "") + reverse(name, kwargs=args)

        return AdminRule(url, staff, others)
    if matched := MODEL_ROUTE.match(name):
        app, model, view = matched["app"], matched["model"], matched["view"]
        key = f"{app}.{model}"
        assert key in ADMIN_RIGHTS, f"{key} is in the admin site but not in ADMIN_RIGHTS"
        allowed = NEEDS[view] in ADMIN_RIGHTS[key] or (view == "change" and "c" in ADMIN_RIGHTS[key])
        if view in ("changelist", "add"):
            return AdminRule(lambda: reverse(name), 200 if allowed else 403)
        return AdminRule(lambda: reverse(name, args=[_first(app, model).pk]), 200 if allowed else 403)
    if pattern.endswith("<path:object_id>/"):  # an object's old URL: on to its change page
        app, model = pattern.split("/")[1:3]
        assert f"{app}.{model}" in ADMIN_RIGHTS, f"{app}.{model} is in the admin site but not in ADMIN_RIGHTS"
        return AdminRule(lambda: f"/{pattern.split('<')[0]}{_first(app, model).pk}/", 302)
    if pattern.endswith("(?P<url>.*)$") or pattern == "admin/(?P<url>.*)$":  # the catch-all
        return AdminRule(lambda: "/admin/no-such-page/", 404, 302)
    raise AssertionError(f"admin route {name} ({pattern}) has no rule in the permission matrix")


@pytest.mark.parametrize("name", sorted(admin_routes()))
def test_admin_site_route(world: World, name: str) -> None:
    rule = admin_rule(name)
    got, want = {}, {}
    for persona in PERSONAS:
        client = Client()
        if persona != "anonymous":
            client.force_login(world.users[persona])
        url = rule.url()
        post = url.startswith("POST ")
        response = client.post(url.removeprefix("POST ")) if post else client.get(url)
        got[persona] = response.status_code
        want[persona] = rule.staff if persona == "admin" else rule.others
        if name == "admin:login" and persona in ("viewer", "editor", "limited"):
            want[persona] = 200  # signed in, not staff: the login page says so
        if persona == "limited":
            assert leaks(body(response), url) == [], f"{name} shows the limited user what vault holds"
    assert got == want, f"got {got}, want {want}"


# ----------------------------------------------------------------------------------------- search probes

# What a curious limited user might ask for, beyond the routes' plain calls: searches, filters and errors
# that name the hidden namespace.
PROBES: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/network/test/shop/Deployment/api/", {"q": "10.244.7", "tab": "egress"}),
    ("GET", "/network/test/shop/Deployment/api/", {"ns": "vault", "tab": "ingress"}),
    ("GET", "/network/test/shop/Deployment/api/", {"tab": "unresolved"}),
    ("GET", "/network/test/shop/Deployment/api/", {"tab": "applied"}),
    ("GET", "/network/", {"cluster": "test", "namespace": "vault"}),
    ("GET", "/network/", {"cluster": "test", "namespace": "vault", "kind": "StatefulSet", "name": "ledger"}),
    ("GET", "/network/test/vault/policies.yaml", {}),
    ("API GET", "/api/v1/workloads/", {"namespace": "vault"}),
    ("API GET", "/api/v1/workloads/", {"kind": "StatefulSet"}),
    ("API GET", "/api/v1/workloads/test/shop/Deployment/api/communications/", {"direction": "egress"}),
    ("API GET", "/api/v1/clusters/test/namespaces/", {}),
    ("API POST", "/api/v1/workloads/test/shop/Deployment/api/draft/namespace-labels/",
     {"namespace": "vault", "key": "custodian", "value": "treasury"}),
    ("API POST", "/api/v1/workloads/test/shop/Deployment/api/draft/rows/",
     {"keys": ["egress:StatefulSet/vault/ledger:5432/TCP"], "included": True}),
    ("API GET", "/api/v1/audit/", {}),
    ("API GET", "/api/v1/tokens/", {"user": "admin"}),
]


@pytest.mark.parametrize(("method", "url", "data"), PROBES)
def test_a_limited_user_never_learns_what_another_namespace_holds(world: World, method: str, url: str,
                                                                   data: dict) -> None:
    client = Client(headers={"Authorization": f"Bearer {world.tokens['limited']}"})
    if method.startswith("API"):
        if method.endswith("POST"):
            response = client.post(url, data, content_type="application/json")
        else:
            response = client.get(url, data)
    else:
        client.force_login(world.users["limited"])
        response = client.get(url, data)
    assert response.status_code < 500
    assert leaks(body(response), f"{url} {data}") == []


def test_an_admin_sees_what_the_limited_user_does_not(world: World) -> None:
    """The leak checks mean something: the same calls by an admin do name what vault holds."""
    client = Client(headers={"Authorization": f"Bearer {world.tokens['admin']}"})
    seen = body(client.get("/api/v1/workloads/test/shop/Deployment/api/communications/", {"direction": "egress"}))
    seen += body(client.get("/api/v1/clusters/test/namespaces/"))
    seen += body(client.get("/api/v1/workloads/test/shop/Deployment/api/applied-policies/"))
    assert set(leaks(seen, "")) >= {"vault", "ledger", "custodian", "treasury", "ledger-lockdown"}
