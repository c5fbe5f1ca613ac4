"""The integrations API (``/api/v1/``) over HTTP, with Django's test client: authentication (sessions and
Bearer tokens), tokens, the read endpoints and the shapes their serializers declare, drafts, aliases and
CIDR configuration, throttling, and errors that reveal nothing.

One small world for every test, its flows an hour old (inside the API's default span of 24 hours):
shop/frontend -> shop/api, legacy/archiver -> shop/api, shop/api -> vault/ledger and shop/api -> an
address outside the cluster; a Service shop/api; NetworkPolicies applied in shop (api's ingress) and vault
(every pod's ingress); a second cluster ``zeta`` with one workload.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from html.parser import HTMLParser
from io import StringIO
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.http import HttpResponse
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.throttling import UserRateThrottle

from flows import iputil
from flows.access import SYSTEM, Role
from flows.aggregate import aggregate_cluster
from flows.models import CIDRConfig, Cluster, IPAlias, Namespace, NamespaceGrant, NetworkPolicy
from policies import engine, services
from policies.api import serializers as s
from policies.api import urls as api_urls
from policies.models import ApiToken, AuditEvent, Draft, DraftRevision, ManualRule, RowDecision
from tests import factories as f

User = get_user_model()
V1 = "/api/v1/"
API = V1 + "workloads/test/shop/Deployment/api/"  # shop/api, as the page's URL names it
LEDGER = V1 + "workloads/test/vault/StatefulSet/ledger/"
FRONTEND_ROW = "ingress:Deployment/shop/frontend:8080/TCP"
OUTSIDE_IP = "203.0.113.9"
# What names what a user granted only shop may not see: namespaces, workloads, labels, addresses, policies.
HIDDEN = ("vault", "ledger", "legacy", "archiver", "archive", "division", "zeta", "gateway", "10.244.1.3",
          "10.244.1.4")
# What a change may write: a refused one leaves all of it as it was.
WRITTEN = (Draft, DraftRevision, RowDecision, ManualRule, IPAlias, CIDRConfig)
TOKEN_FIELDS = set(s.TokenOut().fields)
TOKEN_RE = re.compile(r"nsk_[0-9a-f]{8}_[A-Za-z0-9_-]{20,}")


# ------------------------------------------------------------------------------------------------ helpers


@dataclass(frozen=True)
class World:
    """What the ``world`` fixture made, for the tests to act on."""

    cluster: Cluster
    shop: Namespace
    api: engine.Scope  # shop/api, resolved by SYSTEM


class _Tags(HTMLParser):
    """The start tags of a page with their attributes."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))


def make_user(name: str, *groups: str, **extra: Any) -> Any:
    user = User.objects.create_user(name, **extra)
    user.groups.add(*(Group.objects.get(name=group) for group in groups))
    return user


def session(user: Any) -> Client:
    """A client signed in as ``user`` (the API takes the session, as the docs page does)."""
    client = Client()
    client.force_login(user)
    return client


def bearer(secret: str) -> Client:
    return Client(headers={"Authorization": f"Bearer {secret}"})


def token_client(user: Any, name: str = "tests") -> Client:
    """A client that sends a new token of ``user``."""
    return bearer(services.create_token(user, name).secret)


def send(client: Client, method: str, path: str, body: Any = None) -> HttpResponse:
    if method == "get":
        return client.get(path, body or {})
    return getattr(client, method)(path, body if body is not None else {}, content_type="application/json")


def results(response: HttpResponse) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.content
    return response.json()["results"]


def detail(response: HttpResponse) -> str:
    return response.json()["detail"]


def snapshot() -> dict[str, list[dict]]:
    return {model.__name__: list(model.objects.order_by("pk").values()) for model in WRITTEN}


def leaked(response: HttpResponse) -> list[str]:
    """The names of things in hidden namespaces (or clusters) that a response's body gives away."""
    text = response.content.decode().lower()
    return [word for word in HIDDEN if word in text]


def pod_owner(cluster: Cluster, namespace: str, kind: str, name: str, ip: str, labels: dict[str, str] | None = None,
              ports: tuple = ()) -> None:
    f.pod(cluster, f.workload(cluster, namespace, kind, name, labels=labels), f"{name}-0", ip, ports=ports)


def apply_policy(cluster: Cluster, namespace: str, name: str, spec: dict) -> None:
    NetworkPolicy.objects.create(cluster=cluster, namespace=f.namespace(cluster, namespace), name=name, spec=spec,
                                 manifest={"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                                           "metadata": {"name": name, "namespace": namespace}, "spec": spec})


def connect(cluster: Cluster, *pairs: tuple[str, str, int]) -> None:
    """A connection an hour ago for each (client IP, server IP, port), aggregated."""
    an_hour_ago = timezone.now() - timedelta(hours=1)
    for port, (src, dst, dport) in enumerate(pairs, start=40000):
        f.flow(cluster, src, port, dst, dport, time=an_hour_ago)
    aggregate_cluster(cluster)


def rows_of(scope: engine.Scope, direction: str) -> dict[str, engine.CommunicationRow]:
    return {row.key: row for row in services.rows(SYSTEM, scope, direction)}


def draft(world: World) -> services.DraftView:
    return services.get_draft(SYSTEM, world.api)


def parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))


# ----------------------------------------------------------------------------------------------- fixtures


@pytest.fixture
def world(cluster: Cluster) -> World:
    f.namespace(cluster, "legacy", labels={"division": "archive"})  # no name label
    pod_owner(cluster, "shop", "Deployment", "frontend", "10.244.1.1")
    pod_owner(cluster, "shop", "Deployment", "api", "10.244.1.2", ports=(("http", 8080, "TCP"),))
    pod_owner(cluster, "vault", "StatefulSet", "ledger", "10.244.1.3", ports=(("pg", 5432, "TCP"),))
    pod_owner(cluster, "legacy", "Deployment", "archiver", "10.244.1.4")
    f.service(cluster, "shop", "api", {"app": "api"}, "10.96.0.20", [(80, "TCP", 8080)])
    connect(cluster, ("10.244.1.1", "10.244.1.2", 8080), ("10.244.1.4", "10.244.1.2", 8080),
            ("10.244.1.2", "10.244.1.3", 5432), ("10.244.1.2", OUTSIDE_IP, 443))
    apply_policy(cluster, "shop", "api-ingress", {
        "podSelector": {"matchLabels": {"app": "api"}}, "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "frontend"}}}]}]})
    apply_policy(cluster, "vault", "vault-lockdown", {"podSelector": {}, "policyTypes": ["Ingress"]})
    zeta = Cluster.objects.create(name="zeta")
    f.workload(zeta, "edge", "Deployment", "gateway")
    return World(cluster=cluster, shop=Namespace.objects.get(cluster=cluster, name="shop"),
                 api=services.resolve_scope(SYSTEM, "test", "shop", "Deployment", "api"))


@pytest.fixture
def viewer(world: World) -> Any:
    return make_user("viewer", "Viewers")


@pytest.fixture
def editor(world: World) -> Any:
    return make_user("editor", "Editors")


@pytest.fixture
def admin(world: World) -> Any:
    return make_user("admin", "Admins")


@pytest.fixture
def shop_viewer(world: World) -> Any:
    """A Viewer of the shop namespace only."""
    user = make_user("shop-viewer")
    NamespaceGrant.objects.create(user=user, role=Role.VIEWER).namespaces.add(world.shop)
    return user


@pytest.fixture
def manual_rule(world: World) -> int:
    """A manual rule of shop/api's draft, added by the command line: something to remove."""
    return services.add_manual_rule(SYSTEM, world.api, "egress", "192.0.2.0/24", "53/UDP").manual_rules[0]["id"]


@pytest.fixture
def ranges(world: World) -> dict[str, Any]:
    """An alias for every cluster, one for zeta only, and a CIDR configuration for every cluster."""
    return {
        "office": IPAlias.objects.create(name="office", cidr="198.51.100.0/24"),
        "edge": IPAlias.objects.create(name="edge-lb", cidr="192.0.2.10", cluster=Cluster.objects.get(name="zeta")),
        "lab": CIDRConfig.objects.create(cidr="192.168.0.0/16", category="External", label="lab"),
    }


# ------------------------------------------------------------------------------ 1. authentication


ROUTE_ARGS = {"cluster": "test", "namespace": "shop", "kind": "Deployment", "name": "api", "rule": 1, "pk": 1}
API_ROUTES = [(p.name, method) for p in api_urls.urlpatterns for method in ("get", "post", "put", "patch", "delete")
              if hasattr(p.callback.view_class, method)]


def route(name: str) -> str:
    (pattern,) = [p for p in api_urls.urlpatterns if p.name == name]
    return reverse(name, kwargs={arg: ROUTE_ARGS[arg] for arg in pattern.pattern.converters})


@pytest.mark.parametrize(("name", "method"), API_ROUTES, ids=[f"{m.upper()} {n}" for n, m in API_ROUTES])
def test_every_api_route_refuses_an_anonymous_request_with_a_bearer_challenge(world: World, name: str,
                                                                              method: str) -> None:
    before = snapshot()
    response = send(Client(), method, route(name))
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert set(response.json()) == {"detail"}
    assert snapshot() == before
    assert not AuditEvent.objects.exists()


def test_the_schema_needs_authentication_too(world: World, viewer: Any) -> None:
    anonymous = Client().get("/api/schema/")
    assert anonymous.status_code == 401
    assert anonymous["WWW-Authenticate"].startswith("Bearer")
    for client in (session(viewer), token_client(viewer)):
        response = client.get("/api/schema/")
        assert response.status_code == 200
        schema = yaml.safe_load(response.content)
        assert schema["openapi"].startswith("3.")
        assert {"/api/v1/clusters/", "/api/v1/tokens/", "/api/v1/audit/"} <= set(schema["paths"])
        assert schema["components"]["securitySchemes"]["token"] == {
            "type": "http", "scheme": "bearer", "description": "an API token made on /tokens/ or by the API"}


def test_the_docs_need_a_session_and_load_swagger_ui_from_our_static_files(world: World, viewer: Any) -> None:
    anonymous = Client().get("/api/docs/")
    assert anonymous.status_code == 302 and anonymous["Location"] == "/login/?next=/api/docs/"
    client = session(viewer)
    response = client.get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "swagger-ui" in page
    urls = [attrs[name] for _, attrs in _Tags(page).tags for name in ("src", "href") if attrs.get(name)]
    ours = [u for u in urls if u.startswith("/static/drf_spectacular_sidecar/")]
    assert any(u.endswith("swagger-ui-bundle.js") for u in ours)
    assert any(u.endswith("swagger-ui.css") for u in ours)
    for url in ours:  # really our files, served by staticfiles
        assert finders.find(urlsplit(url).path.removeprefix("/static/")), url
    assert [u for u in urls if urlsplit(u).netloc or u.startswith("//")] == []  # no CDN, no other host
    assert not re.search(r"https?://(?!127\.0\.0\.1|localhost|testserver)", page.replace("http://www.w3.org", ""))
    # No inline script: Swagger UI's start-up script is a file of its own, served to the session too.
    scripts = [attrs for tag, attrs in _Tags(page).tags if tag == "script"]
    assert scripts and all(attrs.get("src") for attrs in scripts)
    (start,) = [attrs["src"] for attrs in scripts if "script" in parse_qs(urlsplit(attrs["src"]).query,
                                                                           keep_blank_values=True)]
    script = client.get(start)
    assert script.status_code == 200 and "javascript" in script["Content-Type"]
    assert "/api/schema/" in script.content.decode()


def test_a_change_with_a_session_needs_the_csrf_token_and_one_with_a_token_does_not(world: World, editor: Any
                                                                                    ) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(editor)
    before = snapshot()
    refused = client.patch(API + "draft/", {"egress_mode": "block-all"}, content_type="application/json")
    assert refused.status_code == 403
    assert "CSRF" in detail(refused)
    assert snapshot() == before
    csrf = client.get("/tokens/").cookies["csrftoken"].value
    assert client.patch(API + "draft/", {"egress_mode": "block-all"}, content_type="application/json",
                        headers={"X-CSRFToken": csrf}).status_code == 200
    secret = services.create_token(editor, "exporter").secret
    with_token = Client(enforce_csrf_checks=True, headers={"Authorization": f"Bearer {secret}"})
    assert with_token.patch(API + "draft/", {"ingress_mode": "block-all"},
                            content_type="application/json").status_code == 200
    assert (draft(world).ingress_mode, draft(world).egress_mode) == ("block-all", "block-all")


# ------------------------------------------------------------------------------------------ 2. tokens


def test_a_token_made_through_the_api_is_shown_once(world: World, viewer: Any) -> None:
    client = session(viewer)
    made = client.post(V1 + "tokens/", {"name": "exporter"}, content_type="application/json")
    assert made.status_code == 201
    body = made.json()
    assert set(body) == TOKEN_FIELDS | {"token"}
    assert (body["name"], body["user"], body["revoked_at"], body["last_used_at"]) == ("exporter", "viewer", None,
                                                                                    None)
    assert body["token"].startswith(f"nsk_{body['prefix']}_") and TOKEN_RE.fullmatch(body["token"])
    listed = client.get(V1 + "tokens/")
    (row,) = results(listed)
    assert set(row) == TOKEN_FIELDS
    assert (row["id"], row["prefix"]) == (body["id"], body["prefix"])
    assert body["token"] not in listed.content.decode()
    assert body["token"].split("_", 2)[2] not in listed.content.decode()


def test_the_database_keeps_only_the_sha256_digest_of_a_token(world: World, viewer: Any) -> None:
    secret = session(viewer).post(V1 + "tokens/", {"name": "exporter"}, content_type="application/json"
                                  ).json()["token"]
    (stored,) = ApiToken.objects.values()
    assert stored["digest"] == hashlib.sha256(secret.encode()).hexdigest()
    everything = json.dumps(list(ApiToken.objects.values()), default=str)
    assert secret not in everything
    assert secret.split("_", 2)[2] not in everything  # not even the random part


def test_a_bearer_token_authenticates_and_records_its_last_use(world: World, viewer: Any) -> None:
    made = services.create_token(viewer, "exporter")
    assert made.token.last_used_at is None
    before = timezone.now()
    response = bearer(made.secret).get(V1 + "clusters/")
    assert response.status_code == 200
    used = ApiToken.objects.get(pk=made.token.pk).last_used_at
    assert used is not None and before <= used <= timezone.now()
    # An old last use is brought up to date (it is written at most once a minute, not on every request).
    ApiToken.objects.filter(pk=made.token.pk).update(last_used_at=before - timedelta(minutes=5))
    assert Client(headers={"Authorization": f"Token {made.secret}"}).get(V1 + "clusters/").status_code == 200
    assert ApiToken.objects.get(pk=made.token.pk).last_used_at >= before
    # The user is the token's: it lists the token as theirs.
    (mine,) = results(bearer(made.secret).get(V1 + "tokens/"))
    assert (mine["user"], mine["name"]) == ("viewer", "exporter")


def test_every_token_made_authenticates(world: World, viewer: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    made = [services.create_token(viewer, f"token {i}") for i in range(20)]
    assert [m for m in made if "_" in m.secret.split("_", 2)[2]]  # about half of them (1 - 2**-20 certain)
    assert [m.secret for m in made if services.authenticate_token(m.secret) is None] == []
    assert {bearer(m.secret).get(V1 + "clusters/").status_code for m in made} == {200}


def test_an_expired_token_is_a_401(world: World, viewer: Any) -> None:
    made = services.create_token(viewer, "soon", expires_at=timezone.now() + timedelta(hours=1))
    assert bearer(made.secret).get(V1 + "clusters/").status_code == 200
    ApiToken.objects.filter(pk=made.token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = bearer(made.secret).get(V1 + "clusters/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    # A token cannot be made already expired.
    past = session(viewer).post(V1 + "tokens/", {"name": "late", "expires_at": "2020-01-01T00:00:00Z"},
                                content_type="application/json")
    assert past.status_code == 400 and detail(past).startswith("expires_at:")


def test_a_revoked_token_is_a_401(world: World, viewer: Any) -> None:
    made = services.create_token(viewer, "exporter")
    assert bearer(made.secret).get(V1 + "clusters/").status_code == 200
    revoked = session(viewer).delete(V1 + f"tokens/{made.token.pk}/")
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    response = bearer(made.secret).get(V1 + "clusters/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_an_inactive_users_token_is_a_401(world: World, viewer: Any) -> None:
    made = services.create_token(viewer, "exporter")
    viewer.is_active = False
    viewer.save()
    response = bearer(made.secret).get(V1 + "clusters/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer", "Bearer a b", "Bearer nsk_00000000_nothing", "Bearer {secret}x",
                                    "Bearer {prefix_only}"])
def test_an_unknown_or_malformed_token_is_a_401(world: World, viewer: Any, header: str) -> None:
    made = services.create_token(viewer, "exporter")
    value = header.format(secret=made.secret, prefix_only=made.secret.rsplit("_", 1)[0] + "_")
    response = Client(headers={"Authorization": value}).get(V1 + "clusters/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert ApiToken.objects.get().last_used_at is None


def test_a_user_may_not_list_another_users_tokens(world: World, viewer: Any, editor: Any) -> None:
    services.create_token(viewer, "viewer's")
    client = session(editor)
    response = client.get(V1 + "tokens/", {"user": "viewer"})
    assert response.status_code == 403
    assert "Admin" in detail(response)
    assert results(client.get(V1 + "tokens/")) == []  # their own list does not show it either
    assert "viewer's" not in response.content.decode()


def test_a_user_may_not_revoke_another_users_token(world: World, viewer: Any, editor: Any) -> None:
    made = services.create_token(viewer, "viewer's")
    client = session(editor)
    theirs = client.delete(V1 + f"tokens/{made.token.pk}/")
    missing = client.delete(V1 + f"tokens/{made.token.pk + 1000}/")
    # The service answers another user's token exactly as one that does not exist.
    assert theirs.status_code == missing.status_code == 404
    assert detail(theirs) == detail(missing).replace(str(made.token.pk + 1000), str(made.token.pk))
    assert detail(theirs) == f"token {made.token.pk} does not exist"
    assert ApiToken.objects.get().revoked_at is None
    assert bearer(made.secret).get(V1 + "clusters/").status_code == 200


def test_an_admin_lists_makes_and_revokes_another_users_tokens(world: World, viewer: Any, admin: Any) -> None:
    services.create_token(viewer, "viewer's")
    client = session(admin)
    assert [t["name"] for t in results(client.get(V1 + "tokens/", {"user": "viewer"}))] == ["viewer's"]
    assert results(client.get(V1 + "tokens/")) == []  # the admin's own
    made = client.post(V1 + "tokens/", {"name": "for viewer", "user": "viewer"}, content_type="application/json")
    assert made.status_code == 201 and made.json()["user"] == "viewer"
    (mine,) = results(bearer(made.json()["token"]).get(V1 + "tokens/?limit=1"))  # the token acts as the viewer
    assert mine["user"] == "viewer"
    revoked = client.delete(V1 + f"tokens/{made.json()['id']}/")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert bearer(made.json()["token"]).get(V1 + "clusters/").status_code == 401
    nobody = client.get(V1 + "tokens/", {"user": "nobody"})
    assert nobody.status_code == 400 and detail(nobody).startswith("user:")


def test_the_tokens_page_makes_a_token_shown_once_lists_and_revokes_it(world: World, viewer: Any) -> None:
    assert Client().get("/tokens/")["Location"].startswith("/login/")
    client = session(viewer)
    assert "No token yet." in client.get("/tokens/").content.decode()
    made = client.post("/tokens/", {"name": "exporter"})
    assert made.status_code == 200
    (secret,) = TOKEN_RE.findall(made.content.decode())
    token = ApiToken.objects.get()
    assert (token.name, token.user, secret.split("_", 2)[1]) == ("exporter", viewer, token.prefix)
    assert bearer(secret).get(V1 + "clusters/").status_code == 200
    listed = client.get("/tokens/").content.decode()
    assert secret not in listed and TOKEN_RE.findall(listed) == []  # never shown again
    assert "exporter" in listed and f"nsk_{token.prefix}_" in listed and "active" in listed
    revoked = client.post("/tokens/", {"revoke": str(token.pk)})
    assert revoked.status_code == 200
    assert ApiToken.objects.get().revoked_at is not None
    assert "revoked" in revoked.content.decode()
    assert bearer(secret).get(V1 + "clusters/").status_code == 401
    assert client.post("/tokens/", {"name": " "}).status_code == 422  # a name is needed
    assert ApiToken.objects.count() == 1


# ------------------------------------------------------------------------------------------- 3. reading


def test_clusters_list_the_clusters_with_their_namespace_counts(viewer: Any) -> None:
    response = session(viewer).get(V1 + "clusters/")
    assert response.json() == {"count": 2, "next": None, "previous": None,
                               "results": [{"name": "test", "namespaces": 3}, {"name": "zeta", "namespaces": 1}]}


def test_namespaces_have_their_labels_and_policy_coverage(world: World, viewer: Any) -> None:
    services.set_mode(SYSTEM, world.api, "egress", "block-all")  # a draft in shop
    found = {n["name"]: n for n in results(session(viewer).get(V1 + "clusters/test/namespaces/"))}
    assert list(found) == ["legacy", "shop", "vault"]
    assert set(found["shop"]) == set(s.NamespaceOut().fields)
    shop = found["shop"]
    assert shop["labels"] == {"kubernetes.io/metadata.name": "shop"}
    assert (shop["workloads"], shop["isolated_ingress"], shop["isolated_egress"], shop["drafts"]) == (2, 1, 0, 1)
    assert timezone.now() - timedelta(hours=2) < parse(shop["last_seen"]) < timezone.now()
    assert found["legacy"]["labels"] == {"division": "archive"}
    assert (found["vault"]["isolated_ingress"], found["vault"]["drafts"]) == (1, 0)


def test_the_namespaces_of_an_unknown_cluster_are_a_404(viewer: Any) -> None:
    response = session(viewer).get(V1 + "clusters/nowhere/namespaces/")
    assert response.status_code == 404
    assert response.json() == {"detail": "cluster 'nowhere' does not exist"}


def test_workloads_are_filtered_by_cluster_namespace_and_kind(world: World, viewer: Any) -> None:
    client = session(viewer)

    def listed(**query: str) -> list[tuple[str, ...]]:
        return [(w["cluster"], w["namespace"], w["kind"], w["name"]) for w in results(client.get(V1 + "workloads/",
                                                                                                 query))]

    every = results(client.get(V1 + "workloads/"))
    assert all(set(w) == set(s.WorkloadOut().fields) for w in every)
    assert len(every) == 6
    assert listed(cluster="test", namespace="shop") == [("test", "shop", "Deployment", "api"),
                                                        ("test", "shop", "Deployment", "frontend"),
                                                        ("test", "shop", "Service", "api")]
    assert listed(kind="Service") == [("test", "shop", "Service", "api")]
    assert listed(kind="StatefulSet") == [("test", "vault", "StatefulSet", "ledger")]
    assert listed(cluster="zeta") == [("zeta", "edge", "Deployment", "gateway")]
    assert listed(cluster="test", namespace="shop", kind="Deployment") == [("test", "shop", "Deployment", "api"),
                                                                           ("test", "shop", "Deployment", "frontend")]
    by_name = {(w["kind"], w["name"]): w for w in every if w["namespace"] == "shop"}
    assert by_name["Deployment", "api"]["labels"] == {"app": "api"}
    assert by_name["Deployment", "api"]["selector"] == {"matchLabels": {"app": "api"}}
    assert by_name["Service", "api"]["selector"] == {"matchLabels": {"app": "api"}}
    assert client.get(V1 + "workloads/", {"kind": "Spaceship"}).status_code == 400


@pytest.mark.parametrize("direction", ["ingress", "egress"])
def test_communications_are_the_rows_of_show_communications_with_their_keys(world: World, viewer: Any,
                                                                            direction: str) -> None:
    response = session(viewer).get(API + "communications/", {"direction": direction})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == set(s.CommunicationsOut().fields)
    assert (body["workload"], body["direction"], body["count"], body["next"]) == (
        {"cluster": "test", "namespace": "shop", "kind": "Deployment", "name": "api"}, direction, 2, None)
    assert all(set(row) == set(s.RowOut().fields) for row in body["rows"])
    expected = services.rows(SYSTEM, world.api, direction)
    assert [row["key"] for row in body["rows"]] == [row.key for row in expected]
    assert body["rows"] == [{"key": row.key, **row.as_json()} for row in expected]
    out = StringIO()
    call_command("show_communications", "--cluster", "test", "--namespace", "shop", "--kind", "Deployment",
                 "--name", "api", "--direction", direction, "--format", "json", stdout=out)
    command = json.loads(out.getvalue())
    assert command["workload"] == body["workload"]
    assert [{k: v for k, v in row.items() if k != "key"} for row in body["rows"]] == command["rows"]
    if direction == "ingress":
        assert FRONTEND_ROW in {row["key"] for row in body["rows"]}
    else:
        assert {row["peer"].get("ip") for row in body["rows"]} >= {OUTSIDE_IP}


def test_communications_need_a_direction_and_a_valid_span(viewer: Any) -> None:
    client = session(viewer)
    assert client.get(API + "communications/").status_code == 400
    assert client.get(API + "communications/", {"direction": "sideways"}).status_code == 400
    assert client.get(API + "communications/", {"direction": "ingress", "since": "forever"}).status_code == 400
    # until= moves the span: three days ago, the flows of an hour ago are not in it.
    assert client.get(API + "communications/", {"direction": "ingress", "since": "7d"}).json()["count"] == 2
    long_ago = (timezone.now() - timedelta(days=3)).isoformat()
    assert client.get(API + "communications/", {"direction": "ingress", "until": long_ago}).json()["count"] == 0


def test_the_policy_is_json_with_yaml_warnings_and_completeness(world: World, viewer: Any, shop_viewer: Any
                                                                ) -> None:
    # The span ends at a fixed time: "now" read twice may fall either side of a second.
    until = timezone.now().replace(microsecond=0)
    response = session(viewer).get(API + "policy/", {"until": until.isoformat()})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == set(s.PolicyOut().fields)
    assert (body["name"], body["complete"], body["error"]) == ("netsec-deployment-api", True, "")
    (policy,) = yaml.safe_load_all(body["yaml"])
    assert (policy["kind"], policy["metadata"]["name"], policy["metadata"]["namespace"]) == (
        "NetworkPolicy", "netsec-deployment-api", "shop")
    assert body["yaml"] == services.generate(SYSTEM, world.api, until=until).yaml
    assert all(set(w) == {"code", "message"} for w in body["warnings"])
    assert "namespace-unlabelled" in {w["code"] for w in body["warnings"]}  # legacy has no name label
    # Someone who may not see every peer gets a policy that says it is incomplete, naming none of them.
    limited = session(shop_viewer).get(API + "policy/")
    assert limited.json()["complete"] is False
    assert "peer-hidden" in {w["code"] for w in limited.json()["warnings"]}
    assert leaked(limited) == []


def test_the_policy_yaml_is_an_attachment_for_editors_only(world: World, viewer: Any, editor: Any) -> None:
    response = session(editor).get(API + "policy.yaml", {"since": "7d"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/yaml")
    assert response["Content-Disposition"] == 'attachment; filename="netsec-deployment-api.yaml"'
    (policy,) = yaml.safe_load_all(response.content)
    assert (policy["kind"], policy["metadata"]["name"]) == ("NetworkPolicy", "netsec-deployment-api")
    refused = session(viewer).get(API + "policy.yaml")
    assert refused.status_code == 403
    assert "Editor" in detail(refused)
    assert token_client(viewer).get(API + "policy.yaml").status_code == 403


def test_the_policies_of_a_namespace_are_one_yaml_attachment_for_editors_only(world: World, viewer: Any,
                                                                              editor: Any) -> None:
    path = V1 + "clusters/test/namespaces/shop/policies.yaml"
    response = session(editor).get(path)
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="netsec-test-shop.yaml"'
    documents = list(yaml.safe_load_all(response.content))
    assert [d["metadata"]["name"] for d in documents] == ["netsec-deployment-api", "netsec-deployment-frontend"]
    assert {d["kind"] for d in documents} == {"NetworkPolicy"}
    assert session(viewer).get(path).status_code == 403


def test_the_topology_has_nodes_edges_and_a_legend(world: World, viewer: Any) -> None:
    response = session(viewer).get(API + "topology/")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == set(s.TopologyOut().fields)
    assert body["nodes"][0]["data"]["id"] == "scope"
    assert {n["data"].get("name") for n in body["nodes"]} >= {"api", "frontend", "archiver", "ledger"}
    assert all({"source", "target", "allowed"} <= set(e["data"]) for e in body["edges"])
    assert all(isinstance(v, int) for v in body["legend"].values())
    assert body["legend"]["allowed"] + body["legend"]["blocked"] == len(body["edges"])
    assert body["legend"]["blocked"] >= 1  # api -> ledger: vault isolates ledger's ingress


def test_applied_policies_name_the_policies_and_the_rows_they_decide(world: World, viewer: Any) -> None:
    found = {p["key"]: p for p in results(session(viewer).get(API + "applied-policies/"))}
    assert list(found) == ["shop/api-ingress", "vault/vault-lockdown"]
    assert all(set(p) == set(s.AppliedPolicyOut().fields) for p in found.values())
    shop = found["shop/api-ingress"]
    assert shop["selects"] == ["this workload"]
    assert yaml.safe_load(shop["yaml"])["metadata"] == {"name": "api-ingress", "namespace": "shop"}
    decided = {row["row"]: row["allowed"] for row in shop["decides"]}
    assert decided == {"ingress shop/frontend 8080/TCP": True, "ingress legacy/archiver 8080/TCP": False}
    assert found["vault/vault-lockdown"]["selects"] == ["StatefulSet vault/ledger"]
    assert [row["allowed"] for row in found["vault/vault-lockdown"]["decides"]] == [False]


def test_lists_are_paginated_with_limit_and_offset(world: World, viewer: Any) -> None:
    client = session(viewer)
    every = results(client.get(V1 + "workloads/"))
    first = client.get(V1 + "workloads/", {"limit": 4}).json()
    assert (first["count"], len(first["results"]), first["previous"]) == (6, 4, None)
    assert parse_qs(urlsplit(first["next"]).query) == {"limit": ["4"], "offset": ["4"]}
    second = client.get(first["next"]).json()
    assert (second["next"], len(second["results"])) == (None, 2)
    assert second["previous"] is not None
    assert first["results"] + second["results"] == every
    # The communications page the same way.
    page = client.get(API + "communications/", {"direction": "egress", "limit": 1}).json()
    assert (page["count"], len(page["rows"])) == (2, 1)
    assert parse_qs(urlsplit(page["next"]).query)["offset"] == ["1"]
    rest = client.get(page["next"]).json()
    assert (len(rest["rows"]), rest["next"]) == (1, None)
    assert {page["rows"][0]["key"], rest["rows"][0]["key"]} == set(rows_of(world.api, "egress"))


def test_a_page_holds_100_rows_by_default_and_1000_at_most(world: World, viewer: Any) -> None:
    made = []
    for i in range(1001):
        cidr = f"10.{i // 256}.{i % 256}.0/24"
        start, end = iputil.range_keys(cidr)
        made.append(IPAlias(name=f"range-{i:04}", cidr=cidr, start_key=start, end_key=end))
    IPAlias.objects.bulk_create(made)
    client = session(viewer)
    default = client.get(V1 + "aliases/").json()
    assert (default["count"], len(default["results"])) == (1001, 100)
    assert parse_qs(urlsplit(default["next"]).query) == {"limit": ["100"], "offset": ["100"]}
    assert len(client.get(V1 + "aliases/", {"limit": 1000}).json()["results"]) == 1000
    # Past the largest page, or not a page at all: a 400 that says what is allowed, not a silent clamp.
    for bad in ({"limit": 1001}, {"limit": 0}, {"limit": "ten"}, {"offset": -1}):
        refused = client.get(V1 + "aliases/", bad)
        assert refused.status_code == 400 and detail(refused).startswith(f"{next(iter(bad))}: a whole number")


def test_a_namespace_limited_user_gets_a_404_for_another_namespaces_workload(world: World, shop_viewer: Any
                                                                            ) -> None:
    client = session(shop_viewer)
    assert client.get(API + "communications/", {"direction": "ingress"}).status_code == 200
    for path in ("communications/?direction=ingress", "policy/", "topology/", "applied-policies/", "draft/"):
        response = client.get(LEDGER + path)
        assert response.status_code == 404, path
        assert detail(response) == "namespace 'vault' does not exist in cluster 'test'"
    assert client.get(V1 + "clusters/test/namespaces/vault/policies.yaml").status_code == 404
    assert client.get(V1 + "clusters/zeta/namespaces/").status_code == 404


def test_a_namespace_limited_user_never_sees_hidden_names_in_the_lists(world: World, shop_viewer: Any,
                                                                       ranges: dict[str, Any]) -> None:
    client = session(shop_viewer)
    clusters = client.get(V1 + "clusters/")
    assert results(clusters) == [{"name": "test", "namespaces": 1}]
    namespaces = client.get(V1 + "clusters/test/namespaces/")
    assert [n["name"] for n in results(namespaces)] == ["shop"]
    workloads = client.get(V1 + "workloads/")
    assert {w["namespace"] for w in results(workloads)} == {"shop"}
    aliases = client.get(V1 + "aliases/")
    assert [a["name"] for a in results(aliases)] == ["office"]  # not zeta's
    ingress = client.get(API + "communications/", {"direction": "ingress"})
    egress = client.get(API + "communications/", {"direction": "egress"})
    opaque = [row for r in (ingress, egress) for row in r.json()["rows"] if row["peer"].get("other_namespace")]
    assert len(opaque) == 2 and all(set(row["peer"]) == {"other_namespace", "token"} for row in opaque)
    responses = [clusters, namespaces, workloads, aliases, ingress, egress, client.get(API + "topology/"),
                 client.get(API + "applied-policies/"), client.get(API + "draft/"),
                 client.get(V1 + "workloads/", {"cluster": "zeta"})]
    assert [leaked(r) for r in responses] == [[]] * len(responses)
    # Whoever may see everything is shown those names: the search above would find a leak.
    everything = session(make_user("everyone", "Viewers")).get(API + "communications/", {"direction": "ingress"})
    assert {"legacy", "archiver"} <= set(leaked(everything))


# ------------------------------------------------------------------------------------------- 4. drafts


def test_patch_sets_the_mode_of_one_direction_or_both(world: World, editor: Any) -> None:
    client = token_client(editor)
    assert client.get(API + "draft/").json()["exists"] is False
    response = client.patch(API + "draft/", {"ingress_mode": "allow-namespace"}, content_type="application/json")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == set(s.DraftOut().fields)
    assert (body["exists"], body["ingress_mode"], body["egress_mode"], body["updated_by"]) == (
        True, "allow-namespace", "custom", "editor")
    both = client.patch(API + "draft/", {"ingress_mode": "block-all", "egress_mode": "allow-all"},
                        content_type="application/json").json()
    assert (both["ingress_mode"], both["egress_mode"]) == ("block-all", "allow-all")
    assert (draft(world).ingress_mode, draft(world).egress_mode) == ("block-all", "allow-all")
    assert client.get(API + "draft/").json() == both


def test_a_bad_mode_is_a_400_and_saves_nothing(world: World, editor: Any) -> None:
    before = snapshot()
    response = session(editor).patch(API + "draft/", {"egress_mode": "open-sesame"}, content_type="application/json")
    assert response.status_code == 400
    assert snapshot() == before


def test_rows_are_included_or_excluded_by_the_keys_communications_give(world: World, editor: Any) -> None:
    client = session(editor)
    keys = [row["key"] for row in client.get(API + "communications/", {"direction": "ingress"}).json()["rows"]]
    assert FRONTEND_ROW in keys
    response = client.post(API + "draft/rows/", {"keys": [FRONTEND_ROW], "included": False},
                           content_type="application/json")
    assert response.status_code == 200
    assert response.json()["decisions"] == {FRONTEND_ROW: False}
    assert rows_of(world.api, "ingress")[FRONTEND_ROW].included is False
    again = client.post(API + "draft/rows/", {"keys": keys, "included": True}, content_type="application/json")
    assert again.json()["decisions"] == dict.fromkeys(keys, True)
    assert all(row.included for row in rows_of(world.api, "ingress").values())
    rows = client.get(API + "communications/", {"direction": "ingress"}).json()["rows"]
    assert all(row["included"] for row in rows)


def test_a_bad_row_key_is_a_400_and_saves_nothing(world: World, editor: Any) -> None:
    before = snapshot()
    response = session(editor).post(API + "draft/rows/", {"keys": [FRONTEND_ROW, "not a key"], "included": False},
                                    content_type="application/json")
    assert response.status_code == 400
    assert detail(response).startswith("row: 'not a key'")
    assert snapshot() == before
    assert session(editor).post(API + "draft/rows/", {"keys": [], "included": False},
                                content_type="application/json").status_code == 400


def test_a_manual_rule_is_added_and_removed(world: World, editor: Any) -> None:
    client = session(editor)
    response = client.post(API + "draft/rules/", {"direction": "egress", "cidr": "198.51.100.7", "ports": "443/TCP",
                                                  "note": "partner"}, content_type="application/json")
    assert response.status_code == 201
    (rule,) = response.json()["manual_rules"]
    assert {k: v for k, v in rule.items() if k != "id"} == {
        "direction": "egress", "cidr": "198.51.100.7/32", "note": "partner",
        "ports": [{"port": 443, "end_port": None, "protocol": "TCP"}]}
    assert "198.51.100.7/32" in client.get(API + "policy/").json()["yaml"]
    removed = client.delete(API + f"draft/rules/{rule['id']}/")
    assert removed.status_code == 200
    assert removed.json()["manual_rules"] == []
    assert not ManualRule.objects.exists()
    again = client.delete(API + f"draft/rules/{rule['id']}/")  # the service: not a rule of this workload
    assert again.status_code == 404 and detail(again).startswith(f"manual rule {rule['id']} does not exist")


@pytest.mark.parametrize(("field", "change"), [
    ("cidr", {"cidr": "300.0.0.0/8"}),
    ("cidr", {"cidr": "not-an-address"}),
    ("ports", {"ports": "99999"}),
    ("ports", {"ports": "443/ICMP"}),
    ("ports", {"ports": "443, http"}),
], ids=["cidr out of range", "cidr not an address", "port out of range", "unknown protocol", "port not a number"])
def test_a_bad_cidr_or_port_is_a_400_naming_the_field_and_saves_nothing(world: World, editor: Any, field: str,
                                                                         change: dict[str, str]) -> None:
    before = snapshot()
    body = {"direction": "egress", "cidr": "198.51.100.0/24", "ports": "443", **change}
    response = session(editor).post(API + "draft/rules/", body, content_type="application/json")
    assert response.status_code == 400
    assert detail(response).startswith(f"{field}: ")
    assert snapshot() == before


def test_the_api_refuses_a_bad_cidr_in_the_words_of_the_page(world: World, editor: Any) -> None:
    body = {"direction": "egress", "cidr": "300.0.0.0/8"}
    api = session(editor).post(API + "draft/rules/", body, content_type="application/json")
    page = session(editor).post("/network/test/shop/Deployment/api/rules", body, headers={"HX-Request": "true"})
    assert (api.status_code, page.status_code) == (400, 422)
    assert detail(api) in re.sub(r"\s+", " ", page.content.decode().replace("&#x27;", "'"))


def test_a_peer_namespace_is_selected_by_one_of_its_labels(world: World, editor: Any) -> None:
    response = session(editor).post(API + "draft/namespace-labels/",
                                    {"namespace": "legacy", "key": "division", "value": "archive"},
                                    content_type="application/json")
    assert response.status_code == 200
    assert response.json()["namespace_labels"] == {"legacy": ["division", "archive"]}
    assert draft(world).namespace_labels == {"legacy": ["division", "archive"]}


@pytest.mark.parametrize("body", [
    {"namespace": "legacy", "key": "division", "value": "not a label!"},
    {"namespace": "legacy", "key": "-bad-key", "value": "archive"},
    {"namespace": "nowhere", "key": "division", "value": "archive"},
], ids=["bad value", "bad key", "unknown namespace"])
def test_an_invalid_namespace_label_is_a_400_and_saves_nothing(world: World, editor: Any, body: dict[str, str]
                                                               ) -> None:
    before = snapshot()
    response = session(editor).post(API + "draft/namespace-labels/", body, content_type="application/json")
    assert response.status_code == 400
    assert detail(response).startswith("namespace label: ")
    assert snapshot() == before


DRAFT_CHANGES = {
    "set a mode": ("patch", "draft/", {"egress_mode": "block-all"}),
    "exclude a row": ("post", "draft/rows/", {"keys": [FRONTEND_ROW], "included": False}),
    "add a manual rule": ("post", "draft/rules/", {"direction": "egress", "cidr": "198.51.100.0/24"}),
    "remove a manual rule": ("delete", "draft/rules/{rule}/", None),
    "select a namespace by a label": ("post", "draft/namespace-labels/",
                                      {"namespace": "legacy", "key": "division", "value": "archive"}),
}


@pytest.mark.parametrize("change", DRAFT_CHANGES)
def test_a_viewer_changes_no_draft(world: World, viewer: Any, manual_rule: int, change: str) -> None:
    method, path, body = DRAFT_CHANGES[change]
    before = snapshot()
    for client in (session(viewer), token_client(viewer)):
        response = send(client, method, API + path.format(rule=manual_rule), body)
        assert response.status_code == 403
        assert "Editor" in detail(response)
    assert snapshot() == before


def test_a_namespace_limited_editor_changes_only_their_namespace(world: World) -> None:
    shop_editor = make_user("shop-editor")
    NamespaceGrant.objects.create(user=shop_editor, role=Role.EDITOR).namespaces.add(world.shop)
    client = token_client(shop_editor)
    before = snapshot()
    assert client.patch(LEDGER + "draft/", {"ingress_mode": "block-all"},
                        content_type="application/json").status_code == 404
    assert snapshot() == before
    assert client.patch(API + "draft/", {"ingress_mode": "block-all"},
                        content_type="application/json").status_code == 200
    assert draft(world).ingress_mode == "block-all"


def test_a_namespace_limited_editor_decides_a_hidden_peers_row_by_the_key_they_see(world: World) -> None:
    shop_editor = make_user("shop-editor")
    NamespaceGrant.objects.create(user=shop_editor, role=Role.EDITOR).namespaces.add(world.shop)
    client = token_client(shop_editor)
    rows = client.get(API + "communications/", {"direction": "ingress"}).json()["rows"]
    (hidden,) = [row["key"] for row in rows if row["peer"].get("other_namespace")]
    assert hidden.startswith("ingress:other/")
    response = client.post(API + "draft/rows/", {"keys": [hidden], "included": False},
                           content_type="application/json")
    assert response.status_code == 200
    assert response.json()["decisions"] == {hidden: False}  # under the key they see, and
    assert rows_of(world.api, "ingress")["ingress:Deployment/legacy/archiver:8080/TCP"].included is False  # the real
    assert leaked(response) == []


# ------------------------------------------------------------------------------- 5. aliases and CIDRs


def test_anyone_signed_in_reads_aliases_and_cidr_configuration(ranges: dict[str, Any], viewer: Any) -> None:
    for client in (session(viewer), token_client(viewer)):
        aliases = results(client.get(V1 + "aliases/"))
        assert all(set(a) == set(s.AliasOut().fields) for a in aliases)
        assert [(a["name"], a["cluster"], a["cidr"]) for a in aliases] == [
            ("edge-lb", "zeta", "192.0.2.10/32"), ("office", None, "198.51.100.0/24")]
        cidrs = results(client.get(V1 + "cidrs/"))
        assert cidrs == [{"id": ranges["lab"].pk, "cluster": None, "cidr": "192.168.0.0/16", "category": "External",
                          "label": "lab"}]


WRITES = {
    "save an alias": ("post", "aliases/", {"cidr": "203.0.113.0/24", "name": "partner"}),
    "remove an alias": ("delete", "aliases/{office}/", None),
    "save a CIDR configuration": ("post", "cidrs/", {"cidr": "203.0.113.0/24", "category": "Internal"}),
    "remove a CIDR configuration": ("delete", "cidrs/{lab}/", None),
}


@pytest.mark.parametrize("change", WRITES)
def test_only_admins_write_aliases_and_cidrs(ranges: dict[str, Any], editor: Any, change: str) -> None:
    method, path, body = WRITES[change]
    path = V1 + path.format(office=ranges["office"].pk, lab=ranges["lab"].pk)
    before = snapshot()
    for client in (session(editor), token_client(editor)):
        response = send(client, method, path, body)
        assert response.status_code == 403
        assert "Admin" in detail(response)
    assert snapshot() == before


def test_an_admin_saves_replaces_and_removes_an_alias(world: World, admin: Any) -> None:
    client = token_client(admin)
    made = client.post(V1 + "aliases/", {"cidr": OUTSIDE_IP, "name": "partner", "cluster": "test", "allowed": True},
                       content_type="application/json")
    assert made.status_code == 201
    assert {k: v for k, v in made.json().items() if k != "id"} == {
        "cluster": "test", "cidr": f"{OUTSIDE_IP}/32", "name": "partner", "allowed": True, "note": ""}
    (row,) = [r for r in rows_of(world.api, "egress").values() if getattr(r.peer, "ip", "") == OUTSIDE_IP]
    assert (row.peer.alias, row.included) == ("partner", True)  # an allowed alias is included by default
    replaced = client.post(V1 + "aliases/", {"cidr": OUTSIDE_IP, "name": "partner-2", "cluster": "test"},
                           content_type="application/json")
    assert replaced.status_code == 201 and replaced.json()["id"] == made.json()["id"]
    assert list(IPAlias.objects.values_list("name", flat=True)) == ["partner-2"]
    removed = client.delete(V1 + f"aliases/{made.json()['id']}/")
    assert removed.status_code == 204
    assert not IPAlias.objects.exists()
    again = client.delete(V1 + f"aliases/{made.json()['id']}/")
    assert again.status_code == 404 and detail(again).endswith("does not exist")


def test_an_admin_saves_and_removes_a_cidr_configuration(world: World, admin: Any) -> None:
    client = session(admin)
    made = client.post(V1 + "cidrs/", {"cidr": "203.0.113.0/24", "category": "Internal", "label": "vpn"},
                       content_type="application/json")
    assert made.status_code == 201
    assert {k: v for k, v in made.json().items() if k != "id"} == {
        "cluster": None, "cidr": "203.0.113.0/24", "category": "Internal", "label": "vpn"}
    (row,) = [r for r in rows_of(world.api, "egress").values() if getattr(r.peer, "ip", "") == OUTSIDE_IP]
    assert row.peer.category == "Internal"
    assert client.delete(V1 + f"cidrs/{made.json()['id']}/").status_code == 204
    assert not CIDRConfig.objects.exists()


BAD_RANGES = {
    "alias: bad CIDR": ("aliases/", {"cidr": "300.1.1.1", "name": "partner"}, "cidr"),
    "alias: empty name": ("aliases/", {"cidr": "192.0.2.1", "name": ""}, "name"),
    "alias: no name": ("aliases/", {"cidr": "192.0.2.1"}, "name"),
    "CIDR: bad CIDR": ("cidrs/", {"cidr": "10.0.0.0/33", "category": "Internal"}, "cidr"),
    "CIDR: bad category": ("cidrs/", {"cidr": "192.0.2.0/24", "category": "Elsewhere"}, "category"),
}


@pytest.mark.parametrize("case", BAD_RANGES)
def test_bad_alias_or_cidr_input_is_a_400_and_saves_nothing(world: World, admin: Any, case: str) -> None:
    path, body, field = BAD_RANGES[case]
    before = snapshot()
    response = session(admin).post(V1 + path, body, content_type="application/json")
    assert response.status_code == 400
    errors = response.json()
    assert field in errors or errors["detail"].startswith(f"{field}: "), errors
    assert snapshot() == before
    assert not AuditEvent.objects.exists()


# --------------------------------------------------------------------------------------- 6. throttling


def test_a_client_over_its_rate_gets_a_429_with_retry_after(world: World, viewer: Any, editor: Any,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # DRF read the settings' rates when it was imported: the class attribute is what counts.
    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", {**UserRateThrottle.THROTTLE_RATES, "user": "3/minute"})
    client = token_client(viewer)
    assert [client.get(V1 + "workloads/").status_code for _ in range(3)] == [200, 200, 200]
    response = client.get(V1 + "workloads/")
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 60
    assert "throttled" in detail(response).lower()
    assert session(viewer).get(V1 + "clusters/").status_code == 429  # the user's count, however they sign in
    assert token_client(editor).get(V1 + "workloads/").status_code == 200  # each user has their own


# ------------------------------------------------------------------------------------------- 7. errors


HIDDEN_OR_MISSING = [
    ("get", "workloads/test/{ns}/StatefulSet/{name}/communications/?direction=ingress", None),
    ("get", "workloads/test/{ns}/StatefulSet/{name}/policy/", None),
    ("get", "workloads/test/{ns}/StatefulSet/{name}/policy.yaml", None),
    ("get", "workloads/test/{ns}/StatefulSet/{name}/topology/", None),
    ("get", "workloads/test/{ns}/StatefulSet/{name}/applied-policies/", None),
    ("get", "workloads/test/{ns}/StatefulSet/{name}/draft/", None),
    ("patch", "workloads/test/{ns}/StatefulSet/{name}/draft/", {"egress_mode": "block-all"}),
    ("post", "workloads/test/{ns}/StatefulSet/{name}/draft/rules/", {"direction": "egress", "cidr": "192.0.2.0/24"}),
    ("get", "clusters/test/namespaces/{ns}/policies.yaml", None),
]


@pytest.mark.parametrize(("method", "path", "body"), HIDDEN_OR_MISSING,
                         ids=[f"{m.upper()} {p.split('{name}/')[-1] or 'namespace'}" for m, p, _ in HIDDEN_OR_MISSING])
def test_a_hidden_namespace_is_the_same_404_as_a_missing_one(world: World, method: str, path: str, body: Any) -> None:
    shop_editor = make_user("shop-editor")
    NamespaceGrant.objects.create(user=shop_editor, role=Role.EDITOR).namespaces.add(world.shop)
    client = token_client(shop_editor)
    before = snapshot()
    hidden = send(client, method, V1 + path.format(ns="vault", name="ledger"), body)
    hidden_ghost = send(client, method, V1 + path.format(ns="vault", name="ghost"), body)
    missing = send(client, method, V1 + path.format(ns="nowhere", name="ledger"), body)
    assert hidden.status_code == hidden_ghost.status_code == missing.status_code == 404
    assert hidden.json() == hidden_ghost.json() == {"detail": "namespace 'vault' does not exist in cluster 'test'"}
    assert missing.json() == {"detail": "namespace 'nowhere' does not exist in cluster 'test'"}
    assert snapshot() == before


def test_a_hidden_cluster_is_the_same_404_as_a_missing_one(world: World, shop_viewer: Any) -> None:
    client = session(shop_viewer)
    hidden = client.get(V1 + "clusters/zeta/namespaces/")
    missing = client.get(V1 + "clusters/nowhere/namespaces/")
    assert hidden.status_code == missing.status_code == 404
    assert detail(hidden) == detail(missing).replace("nowhere", "zeta")
    assert results(client.get(V1 + "workloads/", {"cluster": "zeta"})) == []


def test_a_row_key_naming_a_hidden_peer_is_refused_like_one_naming_nothing(world: World) -> None:
    shop_editor = make_user("shop-editor")
    NamespaceGrant.objects.create(user=shop_editor, role=Role.EDITOR).namespaces.add(world.shop)
    client = session(shop_editor)
    before = snapshot()
    answers = {}
    for key in ("ingress:Deployment/legacy/archiver:8080/TCP", "ingress:Deployment/legacy/ghost:8080/TCP",
                "ingress:Deployment/nowhere/ghost:8080/TCP", "ingress:other/0123456789abcdef:8080/TCP"):
        response = client.post(API + "draft/rows/", {"keys": [key], "included": False},
                               content_type="application/json")
        answers[key] = (response.status_code, detail(response).replace(key, "KEY"))
    assert set(answers.values()) == {(400, "row: 'KEY' is not a row of Deployment shop/api")}
    assert snapshot() == before


def test_a_hidden_namespace_label_is_refused_like_a_missing_one(world: World) -> None:
    shop_editor = make_user("shop-editor")
    NamespaceGrant.objects.create(user=shop_editor, role=Role.EDITOR).namespaces.add(world.shop)
    client = session(shop_editor)
    before = snapshot()
    answers = {}
    for namespace in ("legacy", "vault", "nowhere"):
        response = client.post(API + "draft/namespace-labels/", {"namespace": namespace, "key": "division",
                                                                  "value": "archive"}, content_type="application/json")
        answers[namespace] = (response.status_code, detail(response).replace(namespace, "NS"))
    assert set(answers.values()) == {(400, "namespace label: there is no namespace 'NS' in cluster 'test'")}
    assert snapshot() == before


@pytest.mark.parametrize(("method", "path", "body", "field"), [
    ("post", "aliases/", {"cidr": "192.0.2.1", "name": ""}, "name"),
    ("post", "cidrs/", {"cidr": "192.0.2.0/24", "category": "Elsewhere"}, "category"),
    ("patch", "workloads/test/shop/Deployment/api/draft/", {"egress_mode": "open-sesame"}, "egress_mode"),
    ("post", "workloads/test/shop/Deployment/api/draft/rules/", {"direction": "sideways", "cidr": "192.0.2.0/24"},
     "direction"),
    ("get", "workloads/test/shop/Deployment/api/communications/", {}, "direction"),
], ids=["empty alias name", "unknown category", "unknown mode", "unknown direction", "no direction"])
def test_every_400_has_a_detail_that_starts_with_the_field(world: World, admin: Any, method: str, path: str,
                                                           body: dict[str, str], field: str) -> None:
    # The views' contract and the schema's: a 400 is a ProblemOut, {"detail": "<field>: ..."}, whether the
    # serializer or the service layer finds the problem.
    response = send(session(admin), method, V1 + path, body)
    assert response.status_code == 400
    assert set(response.json()) == {"detail"}, response.json()
    assert detail(response).startswith(f"{field}: ")
