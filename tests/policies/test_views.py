"""The web pages over HTTP, with Django's test client (no browser): sign-in, the landing page, the scope
bar's redirects, the network page of a workload, its changes (HTMX fragments and plain redirects),
permissions enforced on the server, downloads, CSRF, escaping, and the layer the views stand on.

One small world for every test, its flows an hour old (inside the page's default span of 24 hours):
shop/frontend -> shop/api, legacy/archiver -> shop/api, shop/api -> vault/ledger and shop/api -> an
address outside the cluster; NetworkPolicies applied in shop (api's ingress), vault (every pod's ingress)
and legacy (archiver's egress); a namespace ``quiet`` without flows, and a second cluster ``zeta``.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
from dataclasses import dataclass
from datetime import timedelta
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import yaml
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.http import HttpResponse
from django.test import Client
from django.utils import timezone

from flows.access import SYSTEM, Role
from flows.aggregate import aggregate_cluster
from flows.models import CIDRConfig, Cluster, IPAlias, Namespace, NamespaceGrant, NetworkPolicy
from policies import engine, services
from policies.models import Draft, DraftRevision, ManualRule, RowDecision
from tests import factories as f

User = get_user_model()
PASSWORD = "correct horse battery staple"
HTMX = {"HX-Request": "true"}
API = "/network/test/shop/Deployment/api/"  # the page of shop/api: the stable URL contract
FRONTEND_ROW = "ingress:Deployment/shop/frontend:8080/TCP"
OUTSIDE_IP = "203.0.113.9"
# What names the peers in namespaces a user granted only shop may not see: namespaces, workloads,
# labels, addresses and the policies applied there.
HIDDEN = ("vault", "ledger", "legacy", "archive", "division", "10.244.1.3", "10.244.1.4")
# Every part of the network page a change answers with, swapped out of band (policies/changed.html).
OOB_PARTS = {"banners", "tabs", "panel-ingress", "panel-egress", "topology-box", "panel-applied", "panel-policy",
             "footer"}
# What a change may write: a refused one leaves all of it as it was.
WRITTEN = (Draft, DraftRevision, RowDecision, ManualRule, IPAlias, CIDRConfig)
# Every change the page posts, with valid input: (the path after the workload's URL, the form). The rule
# to remove is the ``manual_rule`` fixture's: its id is posted as ``rule``.
CHANGES: dict[str, tuple[str, dict[str, str]]] = {
    "exclude a row": ("rows", {"key": FRONTEND_ROW}),
    "set the rule of both directions": ("mode", {"direction": "egress", "mode": "block-all", "both": "1"}),
    "add a manual rule": ("rules", {"direction": "egress", "cidr": "198.51.100.0/24", "ports": "443"}),
    "remove a manual rule": ("rules/remove", {}),
    "select a namespace by a label": ("namespace-label", {"namespace": "legacy", "label": "division=archive"}),
    "name an address": ("addresses", {"action": "alias", "cidr": OUTSIDE_IP, "name": "partner"}),
    "configure a CIDR": ("addresses", {"action": "cidr", "cidr": "203.0.113.0/24", "category": "Internal"}),
}
XSS = "<img src=x onerror=alert(1)>"


# ------------------------------------------------------------------------------------------------ helpers


@dataclass(frozen=True)
class World:
    """What the ``world`` fixture made, for the tests to act on."""

    cluster: Cluster
    shop: Namespace
    api: engine.Scope  # shop/api, resolved by SYSTEM


class _Parsed(HTMLParser):
    """The start tags of a page with their attributes, and the text of the cells of every table row."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.rows: list[list[str]] = []
        self._in_cell = False
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))
        if tag == "tr":
            self.rows.append([])
        elif tag == "td" and self.rows:
            self.rows[-1].append("")
            self._in_cell = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._in_cell = False

    def handle_data(self, data: str) -> None:
        if self._in_cell:
            self.rows[-1][-1] += data


def make_user(name: str, *groups: str, password: str | None = None) -> Any:
    user = User.objects.create_user(name, password=password)
    user.groups.add(*(Group.objects.get(name=group) for group in groups))
    return user


def signed_in(user: Any, **options: Any) -> Client:
    client = Client(**options)
    client.force_login(user)
    return client


def html(response: HttpResponse) -> str:
    return response.content.decode()


def attributes(response: HttpResponse, name: str) -> list[str]:
    """The values of one attribute on every element of the page that has it, in order."""
    return [attrs[name] for _, attrs in _Parsed(html(response)).tags if name in attrs]


def landing_rows(response: HttpResponse) -> dict[str, list[str]]:
    """The landing page's namespace rows, by namespace: each cell's text, whitespace collapsed."""
    rows = [[" ".join(cell.split()) for cell in row] for row in _Parsed(html(response)).rows]
    return {row[0].split()[0]: row for row in rows if len(row) > 1}


def problem(response: HttpResponse) -> str:
    """The text of a problem answer (404, 403, 422): what it is, then the message."""
    found = re.search(r'<div class="problem" role="alert" data-status="\d+">(.*?)</div>', html(response), re.S)
    assert found, html(response)
    return " ".join(unescape(re.sub(r"<[^>]+>", "", found.group(1))).split())


def tab_count(response: HttpResponse, direction: str) -> int:
    found = re.search(rf'id="tab-{direction}"[^>]*>\w+ <span class="count">(\d+)</span>', html(response))
    assert found, f"no tab {direction}"
    return int(found.group(1))


def topology(response: HttpResponse) -> dict[str, Any]:
    found = re.search(r'<script id="topology-data" type="application/json">(.*?)</script>', html(response), re.S)
    assert found, "no topology data"
    return json.loads(found.group(1))


def topology_node(response: HttpResponse, node_id: str) -> dict[str, Any]:
    (node,) = [n["data"] for n in topology(response)["nodes"] if n["data"]["id"] == node_id]
    return node


def post_change(client: Client, change: str, **extra: str) -> HttpResponse:
    """One of ``CHANGES``, posted by HTMX as the page does, with ``extra`` fields."""
    path, form = CHANGES[change]
    return client.post(API + path, {**form, **extra}, headers=HTMX)


def snapshot() -> dict[str, list[dict]]:
    return {model.__name__: list(model.objects.order_by("pk").values()) for model in WRITTEN}


def row_included(world: World, key: str) -> bool:
    return {row.key: row for row in services.rows(SYSTEM, world.api)}[key].included


def draft(world: World) -> services.DraftView:
    return services.get_draft(SYSTEM, world.api)


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


# ----------------------------------------------------------------------------------------------- fixtures


@pytest.fixture
def world(cluster: Cluster) -> World:
    f.namespace(cluster, "legacy", labels={"division": "archive"})  # no name label: a banner on api's page
    pod_owner(cluster, "shop", "Deployment", "frontend", "10.244.1.1")
    pod_owner(cluster, "shop", "Deployment", "api", "10.244.1.2", ports=(("http", 8080, "TCP"),))
    pod_owner(cluster, "vault", "StatefulSet", "ledger", "10.244.1.3", ports=(("pg", 5432, "TCP"),))
    pod_owner(cluster, "legacy", "Deployment", "archiver", "10.244.1.4")
    pod_owner(cluster, "quiet", "CronJob", "report", "10.244.1.5")
    connect(cluster, ("10.244.1.1", "10.244.1.2", 8080), ("10.244.1.4", "10.244.1.2", 8080),
            ("10.244.1.2", "10.244.1.3", 5432), ("10.244.1.2", OUTSIDE_IP, 443))
    apply_policy(cluster, "shop", "api-ingress", {
        "podSelector": {"matchLabels": {"app": "api"}}, "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "frontend"}}}]}]})
    apply_policy(cluster, "vault", "vault-lockdown", {"podSelector": {}, "policyTypes": ["Ingress"]})
    apply_policy(cluster, "legacy", "archiver-out", {"podSelector": {"matchLabels": {"app": "archiver"}},
                                                     "policyTypes": ["Egress"], "egress": [{}]})
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
def shop_editor(world: World) -> Any:
    """An Editor of the shop namespace only."""
    user = make_user("shop-editor")
    made = NamespaceGrant.objects.create(user=user, role=Role.EDITOR)
    made.namespaces.add(world.shop)
    return user


@pytest.fixture
def manual_rule(world: World) -> int:
    """A manual rule of shop/api's draft, added by the command line: something to remove."""
    return services.add_manual_rule(SYSTEM, world.api, "egress", "192.0.2.0/24", "53/UDP").manual_rules[0]["id"]


# ------------------------------------------------------------------------------------ 1. signing in


ANONYMOUS_REQUESTS = [
    ("get", "/", {}),
    ("get", "/network/", {}),
    ("get", "/network/?cluster=test&namespace=shop", HTMX),
    ("get", API, {}),
    ("get", API + "?tab=ingress", {**HTMX, "HX-Target": "panel-ingress"}),
    ("get", API + "policy.yaml", {}),
    ("get", API + "topology.json", {}),
    ("get", "/network/test/shop/policies.yaml", {}),
    *(("post", API + path, HTMX) for path in dict(CHANGES.values())),
]


@pytest.mark.parametrize(("method", "path", "headers"), ANONYMOUS_REQUESTS,
                         ids=[f"{m} {p}{' (htmx)' if h else ''}" for m, p, h in ANONYMOUS_REQUESTS])
def test_anonymous_users_are_sent_to_sign_in(world: World, method: str, path: str, headers: dict[str, str]) -> None:
    before = snapshot()
    response = getattr(Client(), method)(path, headers=headers)
    assert response.status_code == 302
    assert response["Location"] == "/login/?" + urlencode({"next": path}, safe="/")
    assert snapshot() == before


def test_the_login_page_renders_and_a_good_login_lands_on_the_clusters(world: World) -> None:
    make_user("viewer", "Viewers", password=PASSWORD)
    client = Client()
    page = client.get("/login/")
    assert page.status_code == 200
    assert 'name="username"' in html(page) and 'name="csrfmiddlewaretoken"' in html(page)
    assert client.post("/login/", {"username": "viewer", "password": "wrong"}).status_code == 200  # shown again
    response = client.post("/login/", {"username": "viewer", "password": PASSWORD})
    assert (response.status_code, response["Location"]) == (302, "/")
    assert "Clusters" in html(client.get("/"))


# ---------------------------------------------------------------------------------------- 2. landing


def test_the_landing_page_shows_the_coverage_of_every_namespace_a_viewer_may_see(world: World, viewer: Any) -> None:
    services.set_mode(SYSTEM, world.api, "egress", "block-all")  # a draft in shop
    response = signed_in(viewer).get("/")
    assert response.status_code == 200
    rows = landing_rows(response)
    # Namespace, workloads (a count that opens the list of them), ingress isolated, egress isolated, drafts,
    # flows last seen.
    def count(cell: str) -> int:
        return int(re.match(r"\d+", cell).group())  # type: ignore[union-attr]

    assert count(rows["shop"][1]) == 2 and rows["shop"][2:5] == ["1/2", "0/2", "1"]
    assert "api" in rows["shop"][1] and "frontend" in rows["shop"][1]
    assert count(rows["vault"][1]) == 1 and rows["vault"][2:5] == ["1/1", "0/1", "0"]
    assert rows["legacy"][0] == "legacy needs a label" and rows["legacy"][2:5] == ["0/1", "1/1", "0"]
    assert count(rows["quiet"][1]) == 1 and rows["quiet"][2:] == ["0/1", "0/1", "0", "never"]
    assert rows["shop"][5] == rows["vault"][5] == "1 hour ago"
    assert count(rows["edge"][1]) == 1  # the second cluster
    # The namespace opens its first workload; the list opens each one.
    assert attributes(response, "href").count("/network/test/shop/Deployment/api/") == 2
    assert attributes(response, "href").count("/network/test/shop/Deployment/frontend/") == 1


def test_the_landing_page_shows_a_namespace_limited_user_only_their_namespace(world: World, shop_editor: Any
                                                                              ) -> None:
    response = signed_in(shop_editor).get("/")
    assert list(landing_rows(response)) == ["shop"]
    assert "zeta" not in html(response)
    assert not any(word in html(response) for word in HIDDEN)


# --------------------------------------------------------------------------------------- 3. scope bar


def test_the_network_link_opens_the_first_workload(viewer: Any) -> None:
    response = signed_in(viewer).get("/network/")
    assert (response.status_code, response["Location"]) == (302, "/network/test/legacy/Deployment/archiver/")


@pytest.mark.parametrize(("query", "expected"), [
    ("since=7d&tab=policy", "?since=7d&tab=policy"),
    ("since=24h&tab=applied", "?tab=applied"),
    ("since=24h", ""),
], ids=["span and tab kept", "the default span dropped", "nothing but the default"])
def test_a_selection_redirects_to_its_canonical_url(viewer: Any, query: str, expected: str) -> None:
    response = signed_in(viewer).get(f"/network/?cluster=test&namespace=shop&kind=Deployment&name=frontend&{query}")
    assert (response.status_code, response["Location"]) == (302, "/network/test/shop/Deployment/frontend/" + expected)


def test_an_htmx_selection_answers_with_hx_location(viewer: Any) -> None:
    response = signed_in(viewer).get("/network/?cluster=test&namespace=shop&kind=Deployment&name=frontend&since=7d",
                                     headers=HTMX)
    assert response.status_code == 200 and "Location" not in response
    # The new page's <main id="page"> takes the place of the old one, whole.
    assert json.loads(response["HX-Location"]) == {"path": "/network/test/shop/Deployment/frontend/?since=7d",
                                                   "target": "#page", "select": "#page", "swap": "outerHTML"}


def test_an_unknown_name_falls_back_to_the_first_workload_of_the_namespace(viewer: Any) -> None:
    response = signed_in(viewer).get("/network/?cluster=test&namespace=shop&kind=Deployment&name=ghost")
    assert response["Location"] == API


# ------------------------------------------------------------------------------------ 4. network page


def test_the_workload_page_shows_rows_counts_policies_and_topology(world: World, viewer: Any) -> None:
    response = signed_in(viewer).get(API)
    assert response.status_code == 200
    keys = {row.key for row in services.rows(SYSTEM, world.api)}
    assert len(keys) == 4 and FRONTEND_ROW in keys
    assert set(attributes(response, "data-key")) == keys
    assert (tab_count(response, "ingress"), tab_count(response, "egress")) == (2, 2)
    assert "netsec-deployment-api" in html(response)  # the generated policy
    assert "shop/api-ingress" in html(response) and "vault/vault-lockdown" in html(response)  # applied ones
    data = topology(response)
    assert {node["data"].get("name") for node in data["nodes"]} >= {"api", "frontend", "archiver", "ledger"}
    assert len(data["edges"]) >= 3 and all("scope" in (e["data"]["source"], e["data"]["target"])
                                           for e in data["edges"])


def test_a_hidden_workload_is_the_same_404_as_a_missing_one(world: World, shop_editor: Any) -> None:
    client = signed_in(shop_editor)
    hidden = client.get("/network/test/vault/StatefulSet/ledger/")
    missing = client.get("/network/test/nowhere/StatefulSet/ledger/")
    assert hidden.status_code == missing.status_code == 404
    assert problem(hidden) == problem(missing).replace("nowhere", "vault")
    assert "does not exist" in problem(hidden)
    assert client.get("/network/test/shop/Deployment/ghost/").status_code == 404


def test_an_unknown_span_is_a_422(viewer: Any) -> None:
    response = signed_in(viewer).get(API + "?since=forever")
    assert response.status_code == 422
    assert problem(response).startswith("Check what you entered. since: 'forever'")


# ---------------------------------------------------------------------------------------- 5. changes


def test_an_htmx_change_answers_with_every_part_it_changes(world: World, editor: Any) -> None:
    client = signed_in(editor)
    response = client.post(API + "mode", {"direction": "egress", "mode": "block-all", "tab": "egress"}, headers=HTMX)
    assert response.status_code == 200
    tags = [attrs for _, attrs in _Parsed(html(response)).tags]
    assert {attrs["id"] for attrs in tags if attrs.get("hx-swap-oob") == "true"} == OOB_PARTS
    assert "<html" not in html(response)  # parts, not the page


def test_a_row_change_answers_with_the_rows_it_changed_not_the_whole_tables(world: World, editor: Any) -> None:
    response = signed_in(editor).post(API + "rows", {"key": FRONTEND_ROW, "tab": "ingress"}, headers=HTMX)
    assert response.status_code == 200
    tags = [attrs for _, attrs in _Parsed(html(response)).tags]
    (row,) = [attrs for attrs in tags if attrs.get("data-key") == FRONTEND_ROW]
    swapped = {attrs["id"] for attrs in tags if attrs.get("hx-swap-oob") == "true"}
    # The ingress table gets the row, its counts and its "all" box; the egress table, untouched, nothing.
    assert swapped == (OOB_PARTS - {"panel-ingress", "panel-egress"}) | {row["id"], "summary-ingress",
                                                                          "all-cell-ingress"}
    assert not row_included(world, FRONTEND_ROW)
    assert "excluded" in row["class"].split()  # the ingress table shows the change
    # A table row swaps out of band from inside a template (htmx parses a bare <tr> away).
    assert re.search(rf'<template>\s*<tr id="{row["id"]}"', html(response))


def test_a_plain_change_redirects_back_to_the_page_it_came_from(world: World, editor: Any) -> None:
    response = signed_in(editor).post(API + "rows", {"key": FRONTEND_ROW, "tab": "ingress", "since": "7d"})
    assert (response.status_code, response["Location"]) == (302, API + "?since=7d&tab=ingress")
    assert not row_included(world, FRONTEND_ROW)
    response = signed_in(editor).post(API + "rows", {"key": FRONTEND_ROW, "included": "1", "tab": "policy"})
    assert response["Location"] == API + "?tab=policy"
    assert row_included(world, FRONTEND_ROW)


def test_the_rule_of_one_or_both_directions(world: World, editor: Any) -> None:
    client = signed_in(editor)
    client.post(API + "mode", {"direction": "ingress", "mode": "allow-namespace"}, headers=HTMX)
    assert (draft(world).ingress_mode, draft(world).egress_mode) == ("allow-namespace", "custom")
    response = client.post(API + "mode", {"direction": "egress", "mode": "block-all", "both": "1"}, headers=HTMX)
    assert response.status_code == 200
    assert (draft(world).ingress_mode, draft(world).egress_mode) == ("block-all", "block-all")


def test_a_manual_rule_is_added(world: World, editor: Any) -> None:
    response = signed_in(editor).post(API + "rules", {"direction": "egress", "cidr": "198.51.100.7",
                                                      "ports": "443/TCP", "note": "partner"}, headers=HTMX)
    assert response.status_code == 200
    (rule,) = draft(world).manual_rules
    assert (rule["direction"], rule["cidr"], rule["note"]) == ("egress", "198.51.100.7/32", "partner")
    assert "<code>198.51.100.7/32</code>" in html(response)


def test_a_bad_cidr_is_a_422_naming_the_field_and_saves_nothing(world: World, editor: Any) -> None:
    before = snapshot()
    response = signed_in(editor).post(API + "rules", {"direction": "egress", "cidr": "300.0.0.0/8"}, headers=HTMX)
    assert response.status_code == 422
    assert problem(response).startswith("Check what you entered. cidr: '300.0.0.0/8' is not a CIDR")
    assert snapshot() == before


def test_a_manual_rule_is_removed(world: World, editor: Any, manual_rule: int) -> None:
    response = signed_in(editor).post(API + "rules/remove", {"rule": str(manual_rule)}, headers=HTMX)
    assert response.status_code == 200
    assert draft(world).manual_rules == []
    assert not ManualRule.objects.exists()


def test_a_peer_namespace_is_selected_by_one_of_its_labels(world: World, editor: Any) -> None:
    client = signed_in(editor)
    banner = "Namespace <code>legacy</code> has no label to select it by."
    assert banner in html(client.get(API))
    response = client.post(API + "namespace-label", {"namespace": "legacy", "label": "division = archive"},
                           headers=HTMX)
    assert response.status_code == 200
    assert draft(world).namespace_labels == {"legacy": ["division", "archive"]}
    assert banner not in html(response)


def test_an_invalid_namespace_label_is_a_422_and_saves_nothing(world: World, editor: Any) -> None:
    client = signed_in(editor)
    before = snapshot()
    response = client.post(API + "namespace-label", {"namespace": "legacy", "label": "division=not a label!"},
                           headers=HTMX)
    assert response.status_code == 422
    assert snapshot() == before
    assert client.get(API).status_code == 200  # the page still opens
    assert "namespace label" in problem(response)


# ------------------------------------------------------------------------------------ 6. permissions


@pytest.mark.parametrize("change", CHANGES)
def test_a_viewer_changes_nothing(world: World, viewer: Any, manual_rule: int, change: str) -> None:
    before = snapshot()
    response = post_change(signed_in(viewer), change, rule=str(manual_rule))
    assert response.status_code == 403
    assert problem(response).startswith("Not allowed.")
    assert snapshot() == before


@pytest.mark.parametrize("change", ["name an address", "configure a CIDR"])
def test_an_editor_may_not_name_addresses(world: World, editor: Any, change: str) -> None:
    before = snapshot()
    response = post_change(signed_in(editor), change)
    assert response.status_code == 403
    assert "needs the Admin role" in problem(response)
    assert snapshot() == before


def test_an_admin_names_addresses_and_configures_cidrs(world: World, admin: Any) -> None:
    client = signed_in(admin)
    response = post_change(client, "name an address")
    assert response.status_code == 200
    assert list(IPAlias.objects.values_list("cidr", "name", "cluster")) == [(f"{OUTSIDE_IP}/32", "partner",
                                                                             world.cluster.pk)]
    assert "partner" in html(response)
    assert post_change(client, "configure a CIDR").status_code == 200
    assert list(CIDRConfig.objects.values_list("cidr", "category")) == [("203.0.113.0/24", "Internal")]


def test_a_namespace_limited_user_sees_hidden_peers_only_as_other_namespace(world: World, shop_editor: Any
                                                                            ) -> None:
    client = signed_in(shop_editor)
    assert client.get("/network/test/vault/StatefulSet/ledger/").status_code == 404
    assert client.get("/network/test/vault/policies.yaml").status_code == 404
    page = client.get(API)
    assert page.status_code == 200
    assert "other namespace" in html(page)
    assert [word for word in HIDDEN if word in html(page).lower()] == []
    # Whoever may see everything is shown those names: the search above would find a leak.
    everything = html(signed_in(make_user("everyone", "Viewers")).get(API))
    assert {"vault", "ledger", "legacy"} <= {word for word in HIDDEN if word in everything.lower()}


# -------------------------------------------------------------------------------------- 7. downloads


def test_the_policy_of_a_workload_downloads_as_yaml(editor: Any) -> None:
    response = signed_in(editor).get(API + "policy.yaml?since=7d")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="netsec-deployment-api.yaml"'
    (policy,) = yaml.safe_load_all(response.content)
    assert (policy["kind"], policy["metadata"]["name"], policy["metadata"]["namespace"]) == (
        "NetworkPolicy", "netsec-deployment-api", "shop")


def test_the_policies_of_a_namespace_download_as_one_file(world: World, editor: Any) -> None:
    f.workload(world.cluster, "shop", "Deployment", "unlabelled", labels={})  # no label to select its pods by
    response = signed_in(editor).get("/network/test/shop/policies.yaml")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="netsec-test-shop.yaml"'
    documents = list(yaml.safe_load_all(response.content))
    assert [d["metadata"]["name"] for d in documents] == ["netsec-deployment-api", "netsec-deployment-frontend"]
    assert {d["kind"] for d in documents} == {"NetworkPolicy"}


def test_downloading_policies_is_an_editors(viewer: Any) -> None:
    # Design §9: a Viewer reads the policy on the page; downloading it to apply it is an Editor's.
    client = signed_in(viewer)
    assert client.get(API + "policy.yaml").status_code == 403
    assert client.get("/network/test/shop/policies.yaml").status_code == 403
    page = html(client.get(API + "?tab=policy"))
    assert "policy.yaml" not in page and "policies.yaml" not in page


def test_the_topology_downloads_as_json(viewer: Any) -> None:
    response = signed_in(viewer).get(API + "topology.json")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    data = json.loads(response.content)
    assert data["nodes"][0]["data"]["id"] == "scope" and data["edges"]


# ------------------------------------------------------------------------------------------- 8. CSRF


def test_a_change_without_the_csrf_token_is_refused(world: World, editor: Any) -> None:
    client = signed_in(editor, enforce_csrf_checks=True)
    before = snapshot()
    response = client.post(API + "rows", {"key": FRONTEND_ROW}, headers=HTMX)
    assert response.status_code == 403
    assert snapshot() == before
    # With the token the page hands htmx (the cookie the page sets, sent back as a header), it goes through.
    token = client.get(API).cookies["csrftoken"].value
    assert client.post(API + "rows", {"key": FRONTEND_ROW}, headers={**HTMX, "X-CSRFToken": token}).status_code == 200
    assert not row_included(world, FRONTEND_ROW)


# ------------------------------------------------------------------------------------ 9. safe rendering


def test_a_hostile_label_value_is_never_markup(world: World, viewer: Any) -> None:
    # Not a valid Kubernetes label value, so no selector uses it: the page shows it as text in the topology
    # data, and escaped in the banner of an applied policy that selects by it (which cannot be read).
    pod_owner(world.cluster, "shop", "Deployment", "hostile", "10.244.1.6", labels={"app": "hostile", "note": XSS})
    connect(world.cluster, ("10.244.1.6", "10.244.1.2", 8080))
    apply_policy(world.cluster, "shop", "hostile-in", {"podSelector": {"matchLabels": {"note": XSS}},
                                                      "policyTypes": ["Ingress"]})
    client = signed_in(viewer)
    own, peer = client.get("/network/test/shop/Deployment/hostile/"), client.get(API)
    for page in (own, peer):
        assert page.status_code == 200
        assert "<img" not in html(page)
        assert "&lt;img src=x onerror=alert(1)&gt;" in html(page)
    assert topology_node(own, "scope")["labels"] == {"app": "hostile", "note": XSS}
    assert topology_node(peer, "w:Deployment/shop/hostile")["labels"] == {"app": "hostile", "note": XSS}


# ------------------------------------------------------------------------------------------ 10. layers


def test_the_views_reach_nothing_past_the_service_layer() -> None:
    views = Path(__file__).resolve().parents[2] / "policies" / "views.py"
    imported: set[str] = set()  # every module, and every name imported from one, as a dotted path
    for node in ast.walk(ast.parse(views.read_text())):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = importlib.util.resolve_name("." * node.level + (node.module or ""), "policies")
            imported.add(module)
            imported.update(f"{module}.{alias.name}" for alias in node.names)
    assert "policies.services" in imported  # the search finds what views import
    forbidden = ("flows.models", "policies.models", "policies.adapter", "django.db")
    assert sorted(name for name in imported if name.startswith(forbidden)) == []
