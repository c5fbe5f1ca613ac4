"""The access rule of the service layer (design §9): roles, namespace grants, opaque peers, SYSTEM.

One small world is built for every test: shop/frontend -> shop/api (visible to a user limited to shop),
shop/api -> data/db and legacy/sync -> shop/api (in namespaces such a user may not see), NetworkPolicies
applied in both hidden namespaces, an alias and a CIDR configuration.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser, Group
from django.core.exceptions import PermissionDenied

from flows.access import SYSTEM, Role
from flows.aggregate import aggregate_cluster
from flows.models import CIDRConfig, Cluster, Communication, IPAlias, Namespace, NamespaceGrant, NetworkPolicy, Workload
from policies import engine, services
from policies.models import Draft, DraftRevision, ManualRule, RowDecision
from tests import factories as f
from tests.factories import T0

UNTIL = T0 + timedelta(hours=2)
FRONTEND_ROW = "ingress:Deployment/shop/frontend:8080/TCP"
DB_ROW = "egress:StatefulSet/data/db:5432/TCP"
SYNC_ROW = "ingress:Deployment/legacy/sync:8080/TCP"
# Everything that names the hidden peers: namespaces, workloads, their labels (keys and values), their
# addresses and the policies applied in their namespaces.
HIDDEN = ("data", "db", "legacy", "sync", "tier", "storage", "owner", "dba-crew", "division", "archive",
          "schedule", "nightly", "db-lockdown", "sync-out", "10.244.1.3", "10.244.1.4")
HIDDEN_WORDS = re.compile("|".join(rf"\b{re.escape(word)}\b" for word in sorted(HIDDEN, key=len, reverse=True)))
# What the service layer may write: a refused call must leave all of it as it was.
WRITTEN = (Draft, DraftRevision, RowDecision, ManualRule, IPAlias, CIDRConfig)

User = get_user_model()
Change = Callable[[Any, "World"], object]


# ------------------------------------------------------------------------------------------------ helpers


@dataclass(frozen=True)
class World:
    """What the ``world`` fixture made, for the tests to act on."""

    cluster: Cluster
    shop: Namespace
    api: engine.Scope  # shop/api, resolved by SYSTEM
    frontend: engine.Scope  # shop/frontend, resolved by SYSTEM
    db: engine.Scope  # data/db, resolved by SYSTEM
    alias: IPAlias
    cidr_config: CIDRConfig


def make_user(name: str, *groups: str, **extra: Any) -> Any:
    user = User.objects.create_user(name, **extra)
    user.groups.add(*(Group.objects.get(name=group) for group in groups))
    return user


def grant(role: Role, namespace: Namespace, name: str, *, through_group: bool) -> Any:
    """A user with ``role`` in ``namespace`` only: granted to the user, or to a group of theirs."""
    user = make_user(name)
    if through_group:
        team = Group.objects.create(name=f"{name}-team")
        user.groups.add(team)
        made = NamespaceGrant.objects.create(group=team, role=role)
    else:
        made = NamespaceGrant.objects.create(user=user, role=role)
    made.namespaces.add(namespace)
    return user


def snapshot() -> dict[str, list[dict]]:
    return {model.__name__: list(model.objects.order_by("pk").values()) for model in WRITTEN}


def assert_refused(error: type[Exception], call: Callable[[], object]) -> None:
    """``call`` raises ``error`` and writes nothing."""
    before = snapshot()
    with pytest.raises(error):
        call()
    assert snapshot() == before


def scope_error(user: Any, namespace: str, kind: str = "Deployment", name: str = "api") -> str:
    with pytest.raises(services.ScopeError) as info:
        services.resolve_scope(user, "test", namespace, kind, name)
    return str(info.value)


def by_key(rows: list[engine.CommunicationRow]) -> dict[str, engine.CommunicationRow]:
    return {row.key: row for row in rows}


def opaque(rows: list[engine.CommunicationRow]) -> list[engine.CommunicationRow]:
    return [row for row in rows if isinstance(row.peer, engine.OpaquePeer)]


def visible_names(user: Any) -> dict[str, list[str]]:
    """What ``restrict(user)`` leaves of namespaces, workloads and clusters."""
    return {
        "namespaces": sorted(Namespace.objects.restrict(user).values_list("name", flat=True)),
        "workloads": sorted(Workload.objects.restrict(user).values_list("name", flat=True)),
        "clusters": list(Cluster.objects.restrict(user).values_list("name", flat=True)),
    }


DRAFT_CHANGES: dict[str, Change] = {
    "set_mode": lambda user, w: services.set_mode(user, w.api, "egress", "block-all"),
    "set_row": lambda user, w: services.set_row(user, w.api, FRONTEND_ROW, False),
    "add_manual_rule": lambda user, w: services.add_manual_rule(user, w.api, "egress", "203.0.113.0/24", "443"),
    "remove_manual_rule": lambda user, w: services.remove_manual_rule(user, w.frontend, ManualRule.objects.get().pk),
    "set_namespace_label": lambda user, w: services.set_namespace_label(user, w.api, "legacy", "division", "archive"),
}
CLUSTER_CHANGES: dict[str, Change] = {
    "set_alias": lambda user, w: services.set_alias(user, "192.0.2.0/24", "partner", cluster="test", allowed=True),
    "remove_alias": lambda user, w: services.remove_alias(user, w.alias.pk),
    "set_cidr_config": lambda user, w: services.set_cidr_config(user, "172.16.0.0/12", "Internal", label="vpn"),
    "remove_cidr_config": lambda user, w: services.remove_cidr_config(user, w.cidr_config.pk),
}


def assert_cluster_changes_done(user: Any, world: World) -> None:
    """Every change of ``CLUSTER_CHANGES`` goes through: one alias and one CIDR configuration replaced."""
    for change in CLUSTER_CHANGES.values():
        change(user, world)
    assert list(IPAlias.objects.values_list("name", "cluster")) == [("partner", world.cluster.pk)]
    assert list(CIDRConfig.objects.values_list("cidr", "label")) == [("172.16.0.0/12", "vpn")]


def apply_policy(cluster: Cluster, namespace: str, name: str, spec: dict) -> None:
    NetworkPolicy.objects.create(cluster=cluster, namespace=f.namespace(cluster, namespace), name=name, spec=spec,
                                 manifest={"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                                           "metadata": {"name": name, "namespace": namespace}, "spec": spec})


# ----------------------------------------------------------------------------------------------- fixtures


@pytest.fixture
def world(cluster: Cluster) -> World:
    f.namespace(cluster, "data", labels={"kubernetes.io/metadata.name": "data", "owner": "dba-crew"})
    f.namespace(cluster, "legacy", labels={"division": "archive"})  # no name label: a warning for its peers
    frontend = f.workload(cluster, "shop", "Deployment", "frontend")
    api = f.workload(cluster, "shop", "Deployment", "api")
    db = f.workload(cluster, "data", "StatefulSet", "db", labels={"app": "db", "tier": "storage"})
    sync = f.workload(cluster, "legacy", "Deployment", "sync", labels={"app": "sync", "schedule": "nightly"})
    f.pod(cluster, frontend, "frontend-1", "10.244.1.1")
    f.pod(cluster, api, "api-1", "10.244.1.2", ports=(("http", 8080, "TCP"),))
    f.pod(cluster, db, "db-0", "10.244.1.3", ports=(("pg", 5432, "TCP"),))
    f.pod(cluster, sync, "sync-1", "10.244.1.4")
    f.flow(cluster, "10.244.1.1", 40000, "10.244.1.2", 8080)
    f.flow(cluster, "10.244.1.4", 40001, "10.244.1.2", 8080)
    f.flow(cluster, "10.244.1.2", 40002, "10.244.1.3", 5432)
    aggregate_cluster(cluster)
    # db's namespace isolates its ingress (api -> db is blocked there); sync's own policy admits its egress.
    apply_policy(cluster, "data", "db-lockdown", {"podSelector": {}, "policyTypes": ["Ingress"]})
    apply_policy(cluster, "legacy", "sync-out", {"podSelector": {"matchLabels": {"app": "sync"}},
                                                 "policyTypes": ["Egress"], "egress": [{}]})
    return World(
        cluster=cluster,
        shop=Namespace.objects.get(cluster=cluster, name="shop"),
        api=services.resolve_scope(SYSTEM, "test", "shop", "Deployment", "api"),
        frontend=services.resolve_scope(SYSTEM, "test", "shop", "Deployment", "frontend"),
        db=services.resolve_scope(SYSTEM, "test", "data", "StatefulSet", "db"),
        alias=IPAlias.objects.create(name="office", cidr="198.51.100.0/24"),
        cidr_config=CIDRConfig.objects.create(cidr="192.168.0.0/16", category="External", label="lab"),
    )


@pytest.fixture(params=["no role or grant", "anonymous"])
def nobody(request: pytest.FixtureRequest, world: World) -> Any:
    return make_user("nobody") if request.param == "no role or grant" else AnonymousUser()


@pytest.fixture(params=["granted to the user", "granted to a group"])
def through_group(request: pytest.FixtureRequest) -> bool:
    return request.param == "granted to a group"


@pytest.fixture
def shop_editor(world: World, through_group: bool) -> Any:
    return grant(Role.EDITOR, world.shop, "shop-editor", through_group=through_group)


@pytest.fixture
def shop_viewer(world: World, through_group: bool) -> Any:
    return grant(Role.VIEWER, world.shop, "shop-viewer", through_group=through_group)


@pytest.fixture
def frontend_rule(world: World) -> ManualRule:
    """A draft for shop/frontend made by SYSTEM, with one manual rule (something to remove); shop/api has
    no draft (something not to make)."""
    services.add_manual_rule(SYSTEM, world.frontend, "egress", "198.51.100.0/24", "443")
    return ManualRule.objects.get()


@pytest.fixture
def superuser(db: None) -> Any:
    return User.objects.create_superuser("root", password="x")


@pytest.fixture(params=["superuser", "SYSTEM"])
def almighty(request: pytest.FixtureRequest, superuser: Any) -> Any:
    return superuser if request.param == "superuser" else SYSTEM


# ------------------------------------------------------------------------------ 1. no role, no grant


def test_a_user_without_role_or_grant_sees_nothing(world: World, nobody: Any) -> None:
    # An existing namespace is answered exactly like one that does not exist.
    message = scope_error(nobody, "shop")
    assert message == scope_error(nobody, "ghost")
    assert "does not exist" in message
    assert visible_names(nobody) == {"namespaces": [], "workloads": [], "clusters": []}
    assert not Communication.objects.restrict(nobody).exists()
    # A scope obtained elsewhere does not let them read either.
    for read in (services.rows, services.generate, services.verdicts, services.get_draft):
        with pytest.raises(services.ScopeError):
            read(nobody, world.api)


def test_an_inactive_user_has_no_grant_either(world: World) -> None:
    inactive = grant(Role.EDITOR, world.shop, "left", through_group=False)
    inactive.groups.add(Group.objects.get(name="Editors"))
    inactive.is_active = False
    inactive.save()
    assert visible_names(inactive) == {"namespaces": [], "workloads": [], "clusters": []}
    assert_refused(services.ScopeError, lambda: services.set_mode(inactive, world.api, "egress", "block-all"))


# ---------------------------------------------------------------------------------------- 2. Viewers


def test_a_viewer_reads_rows_policies_and_verdicts(world: World) -> None:
    viewer = make_user("viewer", "Viewers")
    rows = services.rows(viewer, world.api, until=UNTIL)
    assert set(by_key(rows)) == {FRONTEND_ROW, DB_ROW, SYNC_ROW}  # a global role sees every peer
    generated = services.generate(viewer, world.api, until=UNTIL)
    assert generated.complete and "netsec-deployment-api" in generated.yaml
    assert len(services.verdicts(viewer, world.api, until=UNTIL).verdicts) == 3
    assert not services.get_draft(viewer, world.api).exists  # reading makes no draft
    assert not Draft.objects.exists()


@pytest.mark.parametrize("change", DRAFT_CHANGES)
def test_a_viewer_changes_no_draft(world: World, frontend_rule: ManualRule, change: str) -> None:
    viewer = make_user("viewer", "Viewers")
    assert_refused(PermissionDenied, lambda: DRAFT_CHANGES[change](viewer, world))
    assert not DraftRevision.objects.filter(author=viewer).exists()


# --------------------------------------------------------------------------------- 3. Editors, Admins


def test_an_editor_changes_drafts_and_revisions_record_the_author(world: World) -> None:
    editor = make_user("editor", "Editors")
    services.set_mode(editor, world.api, "ingress", "allow-namespace")
    services.set_row(editor, world.api, FRONTEND_ROW, False)
    rule_id = services.add_manual_rule(editor, world.api, "egress", "203.0.113.0/24", "443").manual_rules[0]["id"]
    assert ManualRule.objects.get(pk=rule_id).created_by == editor
    services.set_namespace_label(editor, world.api, "legacy", "division", "archive")
    services.remove_manual_rule(editor, world.api, rule_id)
    draft = services.get_draft(editor, world.api)
    assert draft.exists and draft.updated_by == "editor" and draft.ingress_mode == "allow-namespace"
    assert draft.manual_rules == [] and draft.decisions == {FRONTEND_ROW: False}
    assert draft.namespace_labels == {"legacy": ["division", "archive"]}
    revisions = list(DraftRevision.objects.filter(draft__scope_name="api"))
    assert len(revisions) == 5 and {r.author for r in revisions} == {editor}
    assert not by_key(services.rows(editor, world.api, until=UNTIL))[FRONTEND_ROW].included


@pytest.mark.parametrize("change", CLUSTER_CHANGES)
def test_an_editor_changes_no_alias_or_cidr_configuration(world: World, change: str) -> None:
    editor = make_user("editor", "Editors")
    assert_refused(PermissionDenied, lambda: CLUSTER_CHANGES[change](editor, world))


def test_an_admin_manages_aliases_and_cidr_configuration(world: World) -> None:
    assert_cluster_changes_done(make_user("admin", "Admins"), world)


@pytest.mark.parametrize(("field", "call"), [
    ("cidr", lambda admin: services.set_cidr_config(admin, "10.0.0.0/33", "Internal")),
    ("cidr", lambda admin: services.set_alias(admin, "10.0.0.0/33", "too-wide")),
    ("name", lambda admin: services.set_alias(admin, "10.0.0.0/8", "")),
    ("category", lambda admin: services.set_cidr_config(admin, "10.0.0.0/8", "Sideways")),
], ids=["cidr of a CIDR configuration", "cidr of an alias", "empty alias name", "unknown category"])
def test_bad_admin_input_is_a_value_error_naming_the_field(world: World, field: str,
                                                           call: Callable[[Any], object]) -> None:
    admin = make_user("admin", "Admins")
    before = snapshot()
    with pytest.raises(ValueError, match=rf"^{field}: "):
        call(admin)
    assert snapshot() == before


# ------------------------------------------------------------------------------- 4. namespace grants


def test_a_namespace_grant_restricts_every_queryset_to_its_namespaces(world: World, shop_editor: Any) -> None:
    other = Cluster.objects.create(name="other")
    f.workload(other, "shop", "Deployment", "elsewhere")  # same namespace name, another cluster: not granted
    assert visible_names(shop_editor) == {"namespaces": ["shop"], "workloads": ["api", "frontend"],
                                          "clusters": ["test"]}
    assert list(Namespace.objects.restrict(shop_editor, "edit")) == [world.shop]
    assert not Namespace.objects.restrict(shop_editor, "admin").exists()


def test_a_namespace_grant_hides_the_other_namespaces(world: World, shop_editor: Any) -> None:
    assert services.resolve_scope(shop_editor, "test", "shop", "Deployment", "api") == world.api
    message = scope_error(shop_editor, "data", "StatefulSet", "db")
    assert message == scope_error(shop_editor, "ghost", "StatefulSet", "db").replace("ghost", "data")
    # A scope obtained elsewhere is just as invisible, for reading and for changing.
    with pytest.raises(services.ScopeError):
        services.rows(shop_editor, world.db, until=UNTIL)
    assert_refused(services.ScopeError, lambda: services.set_mode(shop_editor, world.db, "egress", "block-all"))


def test_a_namespace_editor_changes_the_draft_of_a_workload_there(world: World, shop_editor: Any) -> None:
    draft = services.set_mode(shop_editor, world.api, "egress", "block-all")
    assert draft.egress_mode == "block-all" and draft.updated_by == shop_editor.get_username()
    assert DraftRevision.objects.get(draft__scope_name="api").author == shop_editor


def test_a_namespace_viewer_reads_but_changes_nothing(world: World, shop_viewer: Any) -> None:
    assert FRONTEND_ROW in by_key(services.rows(shop_viewer, world.api, until=UNTIL))
    assert services.generate(shop_viewer, world.api, until=UNTIL).yaml
    assert_refused(PermissionDenied, lambda: services.set_mode(shop_viewer, world.api, "egress", "block-all"))


# ------------------------------------------------------------------------------------ 5. opaque peers


def test_opaque_peers_leak_nothing(world: World, shop_editor: Any) -> None:
    rows = services.rows(shop_editor, world.api, until=UNTIL)
    judged = services.verdicts(shop_editor, world.api, until=UNTIL)
    generated = services.generate(shop_editor, world.api, until=UNTIL)
    assert len(opaque(rows)) == 2 and FRONTEND_ROW in by_key(rows)
    # The policies of the hidden namespaces do decide the hidden rows (db-lockdown isolates db's ingress,
    # sync-out admits sync's egress); only their names are withheld.
    withheld = "a policy in another namespace"
    assert [withheld in v.ingress.isolated_by + v.egress.admitted_by for v in judged.verdicts
            if isinstance(v.row.peer, engine.OpaquePeer)] == [True, True]
    shown = "\n".join([repr(rows), repr(judged), repr(generated), generated.yaml, judged.generated.yaml,
                       repr(generated.warnings), *(w.message for w in generated.warnings),
                       *(v.warning for v in judged.verdicts)])
    assert HIDDEN_WORDS.findall(shown) == []
    # The same calls by a user who may see everything do name them: the search would find a leak.
    everything = repr(services.verdicts(SYSTEM, world.api, until=UNTIL))
    assert {"data", "db", "legacy", "sync", "storage", "db-lockdown", "sync-out"} <= set(
        HIDDEN_WORDS.findall(everything))


def test_verdicts_of_hidden_rows_stay_exact(world: World, shop_editor: Any) -> None:
    real = {(v.row.direction, v.row.port): v for v in services.verdicts(SYSTEM, world.api, until=UNTIL).verdicts
            if v.row.key in (DB_ROW, SYNC_ROW)}
    limited = {(v.row.direction, v.row.port): v
               for v in services.verdicts(shop_editor, world.api, until=UNTIL).verdicts
               if isinstance(v.row.peer, engine.OpaquePeer)}
    assert real.keys() == limited.keys() == {("egress", 5432), ("ingress", 8080)}
    for side, verdict in limited.items():
        assert (verdict.allowed, verdict.blocked_by) == (real[side].allowed, real[side].blocked_by)
    assert real[("egress", 5432)].blocked_by == ("ingress",)  # db-lockdown
    assert limited[("egress", 5432)].policies == ("a policy in another namespace",)


def test_a_policy_is_complete_only_for_a_user_who_sees_every_peer(world: World, shop_editor: Any,
                                                                   superuser: Any) -> None:
    limited = services.generate(shop_editor, world.api, until=UNTIL)
    assert not limited.complete
    assert {w.code for w in limited.warnings} >= {"peer-hidden"}
    assert services.generate(superuser, world.api, until=UNTIL).complete


def test_a_limited_user_decides_on_an_opaque_row(world: World, shop_editor: Any) -> None:
    shown = next(r for r in opaque(services.rows(shop_editor, world.api, "egress", until=UNTIL)) if r.port == 5432)
    assert shown.included and by_key(services.rows(SYSTEM, world.api, until=UNTIL))[DB_ROW].included
    services.set_row(shop_editor, world.api, shown.key, False)
    assert not by_key(services.rows(SYSTEM, world.api, until=UNTIL))[DB_ROW].included
    assert not by_key(services.rows(shop_editor, world.api, "egress", until=UNTIL))[shown.key].included


def test_the_draft_a_limited_user_gets_names_no_hidden_peer(world: World, shop_editor: Any) -> None:
    shown = next(r for r in opaque(services.rows(shop_editor, world.api, "egress", until=UNTIL)) if r.port == 5432)
    services.set_namespace_label(SYSTEM, world.api, "legacy", "division", "archive")  # a hidden namespace's label
    returned = services.set_row(shop_editor, world.api, shown.key, False)
    read = services.get_draft(shop_editor, world.api)
    for draft in (returned, read):
        assert draft.decisions == {shown.key: False}  # the decision under the key the user was shown
        assert draft.namespace_labels == {}
        assert HIDDEN_WORDS.findall(repr(draft)) == []
    # Naming a hidden peer outright is refused as an unknown row: guessing reveals nothing.
    with pytest.raises(ValueError, match="is not a row of"):
        services.set_row(shop_editor, world.api, DB_ROW, True)


# ------------------------------------------------------------------------------ 6. superuser, SYSTEM


def test_a_superuser_and_system_see_and_do_everything(world: World, almighty: Any) -> None:
    assert visible_names(almighty) == {"namespaces": ["data", "legacy", "shop"],
                                       "workloads": ["api", "db", "frontend", "sync"], "clusters": ["test"]}
    assert services.resolve_scope(almighty, "test", "data", "StatefulSet", "db") == world.db
    assert set(by_key(services.rows(almighty, world.api, until=UNTIL))) == {FRONTEND_ROW, DB_ROW, SYNC_ROW}
    assert services.generate(almighty, world.api, until=UNTIL).complete
    services.set_row(almighty, world.api, DB_ROW, False)
    # SYSTEM has no account: its changes are recorded without an author.
    assert DraftRevision.objects.get(draft__scope_name="api").author == (None if almighty is SYSTEM else almighty)
    assert_cluster_changes_done(almighty, world)


def test_a_selectorless_service_in_a_hidden_namespace_is_opaque_but_the_api_server_is_not(
        world: World, shop_editor: Any) -> None:
    external = f.service(world.cluster, "data", "pg-external", {}, "10.96.0.40", [(5432, "TCP", 5432)])
    f.endpoint(external, "192.168.20.5", 5432)
    api_server = f.api_server(world.cluster, "172.18.0.2")
    f.flow(world.cluster, "10.244.1.2", 40010, "10.96.0.40", 5432)
    f.flow(world.cluster, "10.244.1.2", 40011, "10.96.0.1", 443)
    aggregate_cluster(world.cluster, rebuild_since=T0 - timedelta(hours=1))
    assert api_server.namespace.name == "default"  # a namespace the shop editor may not see either
    peers = [r.peer for r in services.rows(shop_editor, world.api, "egress", until=UNTIL)]
    assert "pg-external" not in repr(peers) and sum(isinstance(p, engine.OpaquePeer) for p in peers) == 2
    # The API server is the cluster's, not a tenant's: every user sees it for what it is.
    (api,) = [p for p in peers if isinstance(p, engine.AddressPeer)]
    assert (api.category, api.service, api.cidrs) == ("APIServer", "default/kubernetes", ("172.18.0.2/32",))
