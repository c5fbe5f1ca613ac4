"""The audit log: every change is recorded with who made it, when and where from (the page, the API or a
command), and only admins read it, through ``/api/v1/audit/``, as JSON lines at ``/api/v1/audit.jsonl``
and through the admin's "export_jsonl" action.

One small world for every test: shop/frontend -> shop/api an hour ago, a namespace ``vault``, and a
second cluster ``zeta`` with one workload.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.http import HttpResponse
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from flows.access import SYSTEM, Role
from flows.aggregate import aggregate_cluster
from flows.models import CIDRConfig, Cluster, IPAlias, Namespace, NamespaceGrant
from policies import engine, services
from policies.api import serializers as s
from policies.models import ApiToken, AuditEvent
from tests import factories as f

User = get_user_model()
V1 = "/api/v1/"
PAGE = "/network/test/shop/Deployment/api/"
API = V1 + "workloads/test/shop/Deployment/api/"
FRONTEND_ROW = "ingress:Deployment/shop/frontend:8080/TCP"
EVENT_FIELDS = set(s.AuditEventOut().fields)


# ------------------------------------------------------------------------------------------------ helpers


def make_user(name: str, *groups: str, **extra: Any) -> Any:
    user = User.objects.create_user(name, **extra)
    user.groups.add(*(Group.objects.get(name=group) for group in groups))
    return user


def session(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def token_client(user: Any) -> Client:
    """A client that sends a new token of ``user`` (making it is audited: callers count from after it)."""
    return Client(headers={"Authorization": f"Bearer {services.create_token(user, 'tests').secret}"})


def events(**filters: Any) -> list[AuditEvent]:
    """The audit log, oldest first."""
    return list(AuditEvent.objects.filter(**filters).order_by("at", "id"))


def event(action: str) -> AuditEvent:
    (found,) = events(action=action)
    return found


def who(e: AuditEvent) -> tuple[str, str, Any]:
    return e.actor, e.via, e.user


def lines(response: HttpResponse) -> list[dict[str, Any]]:
    """The JSON objects of a JSON-lines answer, one a line (streamed or not)."""
    body = b"".join(response.streaming_content) if response.streaming else response.content
    text = body.decode()
    assert text == "" or text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


class Clock:
    """The moments before and after something, to tell when it was recorded."""

    def __enter__(self) -> Clock:
        self.start = timezone.now()
        return self

    def __exit__(self, *exc: object) -> None:
        self.end = timezone.now()

    def saw(self, moment: datetime) -> bool:
        return self.start <= moment <= self.end


# ----------------------------------------------------------------------------------------------- fixtures


@pytest.fixture
def api(cluster: Cluster) -> engine.Scope:
    """shop/api, resolved by SYSTEM, in a small world."""
    frontend = f.workload(cluster, "shop", "Deployment", "frontend")
    api = f.workload(cluster, "shop", "Deployment", "api")
    f.pod(cluster, frontend, "frontend-1", "10.244.1.1")
    f.pod(cluster, api, "api-1", "10.244.1.2", ports=(("http", 8080, "TCP"),))
    f.namespace(cluster, "vault")
    f.flow(cluster, "10.244.1.1", 40000, "10.244.1.2", 8080, time=timezone.now() - timedelta(hours=1))
    aggregate_cluster(cluster)
    zeta = Cluster.objects.create(name="zeta")
    f.workload(zeta, "edge", "Deployment", "gateway")
    return services.resolve_scope(SYSTEM, "test", "shop", "Deployment", "api")


@pytest.fixture
def editor(api: engine.Scope) -> Any:
    return make_user("editor", "Editors")


@pytest.fixture
def admin(api: engine.Scope) -> Any:
    return make_user("admin", "Admins")


@pytest.fixture
def superuser(api: engine.Scope) -> Any:
    return User.objects.create_superuser("root", "root@example.com", "correct horse battery staple")


@pytest.fixture
def history(api: engine.Scope, editor: Any, admin: Any) -> dict[str, AuditEvent]:
    """Five events in two clusters by three actors, a day apart (oldest first): something to filter."""
    zeta = services.resolve_scope(SYSTEM, "zeta", "edge", "Deployment", "gateway")
    services.set_mode(editor, api, "egress", "block-all")
    services.set_mode(SYSTEM, zeta, "ingress", "block-all")
    services.set_alias(admin, "192.0.2.0/24", "partner", cluster="zeta")
    services.set_row(editor, api, FRONTEND_ROW, False)
    services.set_cidr_config(admin, "198.51.100.0/24", "External", label="lab")
    made = events()
    assert [e.action for e in made] == ["draft.mode", "draft.mode", "alias.saved", "draft.rows", "cidr.saved"]
    now = timezone.now()
    for age, e in zip(range(len(made) - 1, -1, -1), made, strict=True):
        AuditEvent.objects.filter(pk=e.pk).update(at=now - timedelta(days=age, minutes=1))
    return {name: AuditEvent.objects.get(pk=e.pk)
            for name, e in zip(["api mode", "zeta mode", "alias", "api row", "cidr"], made, strict=True)}


# ------------------------------------------------------------------------------------------ 1. changes


def test_a_draft_change_on_the_page_is_audited_with_who_when_and_where_from(api: engine.Scope, editor: Any
                                                                            ) -> None:
    with Clock() as clock:
        response = session(editor).post(PAGE + "rows", {"key": FRONTEND_ROW}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    e = event("draft.rows")
    assert who(e) == ("editor", "page", editor)
    assert clock.saw(e.at)
    assert (e.target, e.cluster, e.namespace) == ("Deployment shop/api", "test", "shop")
    assert e.details == {"summary": f"excluded {FRONTEND_ROW}"}
    assert len(events()) == 1


def test_a_draft_change_through_the_api_is_audited_as_the_api(api: engine.Scope, editor: Any) -> None:
    client = token_client(editor)
    with Clock() as clock:
        response = client.patch(API + "draft/", {"egress_mode": "block-all"}, content_type="application/json")
    assert response.status_code == 200
    e = event("draft.mode")
    assert who(e) == ("editor", "api", editor)
    assert clock.saw(e.at)
    assert (e.target, e.cluster, e.namespace) == ("Deployment shop/api", "test", "shop")
    assert e.details == {"summary": "egress rule: " + engine.MODE_LABELS["block-all"]}
    # Signed in with a session, the API is still the API.
    assert session(editor).post(API + "draft/rules/", {"direction": "egress", "cidr": "192.0.2.0/24"},
                                content_type="application/json").status_code == 201
    assert who(event("draft.rule_added")) == ("editor", "api", editor)


def test_a_change_from_a_command_is_audited_as_the_system(api: engine.Scope) -> None:
    out = StringIO()
    call_command("show_communications", "--cluster", "test", "--namespace", "shop", "--kind", "Deployment",
                 "--name", "api", "--direction", "ingress", "--format", "json", stdout=out)
    assert json.loads(out.getvalue())["rows"]  # it read something, and
    assert events() == []  # reading is not a change
    with Clock() as clock:
        services.set_mode(SYSTEM, api, "ingress", "allow-namespace")
    e = event("draft.mode")
    assert who(e) == ("system", "command", None)
    assert clock.saw(e.at)
    assert (e.cluster, e.namespace) == ("test", "shop")


def test_reading_through_the_api_is_not_audited(api: engine.Scope, admin: Any) -> None:
    client = session(admin)
    for path in ("clusters/", "workloads/", "aliases/", "cidrs/", "tokens/", "audit/"):
        assert client.get(V1 + path).status_code == 200, path
    for path in ("communications/?direction=ingress", "policy/", "policy.yaml", "topology/", "applied-policies/",
                 "draft/"):
        assert client.get(API + path).status_code == 200, path
    assert events() == []


def test_a_refused_change_is_not_audited(api: engine.Scope) -> None:
    viewer = make_user("viewer", "Viewers")
    assert session(viewer).post(PAGE + "rows", {"key": FRONTEND_ROW}).status_code == 403
    assert session(viewer).patch(API + "draft/", {"egress_mode": "block-all"},
                                 content_type="application/json").status_code == 403
    assert session(viewer).post(V1 + "aliases/", {"cidr": "192.0.2.0/24", "name": "partner"},
                                content_type="application/json").status_code == 403
    assert events() == []


def test_aliases_saved_and_removed_are_audited(api: engine.Scope, admin: Any) -> None:
    client = token_client(admin)
    with Clock() as clock:
        made = client.post(V1 + "aliases/", {"cidr": "192.0.2.0/24", "name": "partner", "cluster": "test",
                                             "allowed": True}, content_type="application/json")
    assert made.status_code == 201
    saved = event("alias.saved")
    assert who(saved) == ("admin", "api", admin) and clock.saw(saved.at)
    assert (saved.target, saved.cluster, saved.details) == ("partner (192.0.2.0/24)", "test", {"allowed": True})
    assert client.delete(V1 + f"aliases/{made.json()['id']}/").status_code == 204
    assert not IPAlias.objects.exists()
    removed = event("alias.removed")
    assert who(removed) == ("admin", "api", admin)
    assert (removed.target, removed.cluster) == ("partner (192.0.2.0/24)", "test")
    # Named on the network page, it is the page's.
    assert session(admin).post(PAGE + "addresses", {"action": "alias", "cidr": "203.0.113.9",
                                                    "name": "outside"}).status_code == 302
    (_, on_page) = events(action="alias.saved")
    assert who(on_page) == ("admin", "page", admin) and on_page.target == "outside (203.0.113.9/32)"


def test_cidr_configuration_saved_and_removed_is_audited(api: engine.Scope, admin: Any) -> None:
    client = session(admin)
    with Clock() as clock:
        made = client.post(V1 + "cidrs/", {"cidr": "198.51.100.0/24", "category": "External", "label": "lab"},
                           content_type="application/json")
    assert made.status_code == 201
    saved = event("cidr.saved")
    assert who(saved) == ("admin", "api", admin) and clock.saw(saved.at)
    assert (saved.target, saved.cluster) == ("198.51.100.0/24 External lab", "")
    assert client.delete(V1 + f"cidrs/{made.json()['id']}/").status_code == 204
    removed = event("cidr.removed")
    assert who(removed) == ("admin", "api", admin) and removed.target == "198.51.100.0/24 External lab"
    assert not CIDRConfig.objects.exists()
    assert client.post(PAGE + "addresses", {"action": "cidr", "cidr": "203.0.113.0/24",
                                            "category": "Internal"}).status_code == 302
    (_, on_page) = events(action="cidr.saved")
    assert (who(on_page), on_page.cluster) == (("admin", "page", admin), "test")


def test_tokens_made_and_revoked_are_audited_without_their_secret(api: engine.Scope, editor: Any) -> None:
    client = session(editor)
    with Clock() as clock:
        made = client.post(V1 + "tokens/", {"name": "exporter"}, content_type="application/json").json()
    created = event("token.created")
    assert who(created) == ("editor", "api", editor) and clock.saw(created.at)
    assert created.target == f"exporter ({made['prefix']}…) of editor"
    assert client.delete(V1 + f"tokens/{made['id']}/").status_code == 200
    revoked = event("token.revoked")
    assert who(revoked) == ("editor", "api", editor) and revoked.target == f"exporter ({made['prefix']}…) of editor"
    # On the tokens page, the page's.
    page = client.post("/tokens/", {"name": "on the page"})
    assert page.status_code == 200
    on_page = ApiToken.objects.get(name="on the page")
    assert client.post("/tokens/", {"revoke": str(on_page.pk)}).status_code == 200
    assert [(e.action, e.via) for e in events()][2:] == [("token.created", "page"), ("token.revoked", "page")]
    everything = json.dumps([e.as_json() for e in events()])
    assert made["token"] not in everything and made["token"].split("_", 2)[2] not in everything


def test_the_admins_revoke_action_is_audited(api: engine.Scope, editor: Any, superuser: Any) -> None:
    made = services.create_token(editor, "exporter")
    client = session(superuser)
    response = client.post(reverse("admin:policies_apitoken_changelist"),
                           {"action": "revoke", "_selected_action": [str(made.token.pk)]})
    assert response.status_code == 302
    assert ApiToken.objects.get().revoked_at is not None
    revoked = event("token.revoked")
    assert who(revoked) == ("root", "page", superuser)
    assert revoked.target == f"exporter ({made.token.prefix}…) of editor"


def test_a_grant_saved_and_deleted_in_the_admin_is_audited(api: engine.Scope, editor: Any, superuser: Any
                                                           ) -> None:
    client = session(superuser)
    shop, vault = (Namespace.objects.get(cluster__name="test", name=name) for name in ("shop", "vault"))
    with Clock() as clock:
        response = client.post(reverse("admin:flows_namespacegrant_add"), {
            "role": Role.EDITOR, "user": str(editor.pk), "group": "", "namespaces": [str(vault.pk), str(shop.pk)],
            "note": "on call", "_save": "Save"})
    assert response.status_code == 302, response.content.decode()[:2000]
    grant = NamespaceGrant.objects.get()
    saved = event("grant.saved")
    assert who(saved) == ("root", "page", superuser) and clock.saw(saved.at)
    assert (saved.target, saved.details) == ("Editor for editor", {"namespaces": ["test/shop", "test/vault"]})
    response = client.post(reverse("admin:flows_namespacegrant_change", args=[grant.pk]), {
        "role": Role.VIEWER, "user": str(editor.pk), "group": "", "namespaces": [str(shop.pk)], "note": "",
        "_save": "Save"})
    assert response.status_code == 302
    changed = events(action="grant.saved")[1]
    assert (changed.target, changed.details) == ("Viewer for editor", {"namespaces": ["test/shop"]})
    with Clock() as clock:
        response = client.post(reverse("admin:flows_namespacegrant_delete", args=[grant.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not NamespaceGrant.objects.exists()
    removed = event("grant.removed")
    assert who(removed) == ("root", "page", superuser) and clock.saw(removed.at)
    assert removed.target == "Viewer for editor"


def test_grants_deleted_together_in_the_admin_are_each_audited(api: engine.Scope, editor: Any, admin: Any,
                                                               superuser: Any) -> None:
    shop = Namespace.objects.get(cluster__name="test", name="shop")
    grants = [NamespaceGrant.objects.create(user=user, role=Role.VIEWER) for user in (editor, admin)]
    for grant in grants:
        grant.namespaces.add(shop)
    response = session(superuser).post(reverse("admin:flows_namespacegrant_changelist"), {
        "action": "delete_selected", "_selected_action": [str(g.pk) for g in grants], "post": "yes"})
    assert response.status_code == 302
    assert not NamespaceGrant.objects.exists()
    assert sorted(e.target for e in events(action="grant.removed")) == ["Viewer for admin", "Viewer for editor"]
    assert {who(e) for e in events(action="grant.removed")} == {("root", "page", superuser)}


# ------------------------------------------------------------------------------------------ 2. reading


def test_only_admins_read_the_audit_log(api: engine.Scope, editor: Any, admin: Any, superuser: Any) -> None:
    services.set_mode(SYSTEM, api, "egress", "block-all")
    shop_admin = make_user("shop-admin")  # an Admin of one namespace is not an admin of the log
    NamespaceGrant.objects.create(user=shop_admin, role=Role.ADMIN).namespaces.add(
        Namespace.objects.get(cluster__name="test", name="shop"))
    for user in (make_user("viewer", "Viewers"), editor, shop_admin):
        for client in (session(user), token_client(user)):
            for path in ("audit/", "audit.jsonl"):
                response = client.get(V1 + path)
                assert response.status_code == 403, (user, path)
                assert "Admin" in response.json()["detail"]
    for user in (admin, superuser):
        assert session(user).get(V1 + "audit/").json()["count"] >= 1
        assert token_client(user).get(V1 + "audit.jsonl").status_code == 200


def test_the_audit_log_is_newest_first_in_the_shape_the_serializer_declares(history: dict[str, AuditEvent],
                                                                            admin: Any) -> None:
    body = session(admin).get(V1 + "audit/").json()
    assert (body["count"], body["next"], body["previous"]) == (5, None, None)
    assert all(set(row) == EVENT_FIELDS for row in body["results"])
    assert body["results"] == [e.as_json() for e in reversed(list(history.values()))]
    newest = body["results"][0]
    assert (newest["actor"], newest["via"], newest["action"], newest["target"], newest["cluster"]) == (
        "admin", "page", "cidr.saved", "198.51.100.0/24 External lab", "")
    assert [e["at"] for e in body["results"]] == sorted((e["at"] for e in body["results"]), reverse=True)
    page = session(admin).get(V1 + "audit/", {"limit": 2, "offset": 2}).json()
    assert page["results"] == body["results"][2:4]


def test_the_audit_log_is_filtered_by_action_cluster_actor_and_since(history: dict[str, AuditEvent], admin: Any
                                                                     ) -> None:
    client = session(admin)

    def found(**query: str) -> list[str]:
        response = client.get(V1 + "audit/", query)
        assert response.status_code == 200, response.content
        return [f"{e['action']} {e['actor']} {e['cluster']}" for e in response.json()["results"]]

    assert found(action="draft") == ["draft.rows editor test", "draft.mode system zeta", "draft.mode editor test"]
    assert found(action="draft.mode") == ["draft.mode system zeta", "draft.mode editor test"]
    assert found(action="alias.saved") == ["alias.saved admin zeta"]
    assert found(cluster="zeta") == ["alias.saved admin zeta", "draft.mode system zeta"]
    assert found(cluster="test") == ["draft.rows editor test", "draft.mode editor test"]
    assert found(actor="system") == ["draft.mode system zeta"]
    assert found(actor="admin") == ["cidr.saved admin ", "alias.saved admin zeta"]
    since = (history["api row"].at - timedelta(seconds=1)).isoformat()
    assert found(since=since) == ["cidr.saved admin ", "draft.rows editor test"]
    assert found(since=since, actor="editor", cluster="test", action="draft") == ["draft.rows editor test"]
    assert found(actor="nobody") == []
    assert client.get(V1 + "audit/", {"since": "yesterday-ish"}).status_code == 400


def test_the_audit_log_exports_as_json_lines_oldest_first(history: dict[str, AuditEvent], admin: Any) -> None:
    client = token_client(admin)  # making it is the sixth event, the newest
    response = client.get(V1 + "audit.jsonl")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-ndjson"
    assert response["Content-Disposition"] == 'attachment; filename="netsec-audit.jsonl"'
    exported = lines(response)
    assert exported == [e.as_json() for e in events()]
    assert exported[:5] == [e.as_json() for e in history.values()]
    assert (exported[-1]["action"], exported[-1]["actor"]) == ("token.created", "admin")
    assert all(set(row) == EVENT_FIELDS for row in exported)
    filtered = lines(client.get(V1 + "audit.jsonl", {"action": "draft", "cluster": "test"}))
    assert filtered == [history["api mode"].as_json(), history["api row"].as_json()]


def test_the_admin_exports_the_selected_events_as_json_lines(history: dict[str, AuditEvent], superuser: Any
                                                              ) -> None:
    client = session(superuser)
    assert client.get(reverse("admin:policies_auditevent_changelist")).status_code == 200
    chosen = [history["cidr"], history["api mode"], history["alias"]]
    response = client.post(reverse("admin:policies_auditevent_changelist"),
                           {"action": "export_jsonl", "_selected_action": [str(e.pk) for e in chosen]})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-ndjson"
    assert response["Content-Disposition"] == 'attachment; filename="netsec-audit.jsonl"'
    assert lines(response) == [history[name].as_json() for name in ("api mode", "alias", "cidr")]  # oldest first
    assert AuditEvent.objects.count() == 5  # exporting is not a change
