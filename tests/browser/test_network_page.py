"""The five everyday tasks of ui.md on the network page, in a real browser, and what each role may do there.

One small cluster for every test: shop/frontend → shop/api → data/db, api → an external proxy and the
cluster DNS, shop/worker → data/db only, and legacy/sync → api from a namespace without labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import yaml
from django.contrib.auth import get_user_model
from django.utils import timezone

from flows.aggregate import aggregate_cluster
from flows.ingest.inventory import NamespaceObj, Snapshot
from flows.models import Cluster, Namespace, NamespaceGrant
from flows.store.inventory import apply_snapshot
from tests import factories as f

pytestmark = pytest.mark.browser

User = get_user_model()
PROXY = "203.0.113.10"
XSS = "<img src=x onerror=alert(1)>"


@dataclass(frozen=True)
class World:
    cluster: Cluster
    editor: Any
    viewer: Any
    admin: Any
    shop_only: Any  # an Editor of the shop namespace only


def page_of(name: str, **query: str) -> str:
    params = "&".join(f"{k}={v}" for k, v in query.items())
    return f"/network/test/shop/Deployment/{name}/" + (f"?{params}" if params else "")


@pytest.fixture
def world(roles: dict[str, Any]) -> World:
    cluster = Cluster.objects.create(name="test", pod_cidrs="10.244.0.0/16", service_cidrs="10.96.0.0/12")
    f.namespace(cluster, "legacy", labels={"team": "archive"})  # no name label: use case 5
    frontend = f.workload(cluster, "shop", "Deployment", "frontend", labels={"app": "frontend", "note": XSS})
    api = f.workload(cluster, "shop", "Deployment", "api")
    worker = f.workload(cluster, "shop", "Deployment", "worker")
    db = f.workload(cluster, "data", "StatefulSet", "db")
    sync = f.workload(cluster, "legacy", "Deployment", "sync")
    dns = f.workload(cluster, "kube-system", "Deployment", "coredns", labels={"k8s-app": "kube-dns"})
    for workload, ip, ports in ((frontend, "10.244.1.1", ()), (api, "10.244.1.2", (("http", 8080, "TCP"),)),
                                (worker, "10.244.1.3", ()), (db, "10.244.1.4", (("pg", 5432, "TCP"),)),
                                (sync, "10.244.1.5", ()), (dns, "10.244.0.10", (("dns", 53, "UDP"),))):
        f.pod(cluster, workload, f"{workload.name}-1", ip, ports=ports)
    recent = timezone.now() - timedelta(hours=1)
    for n, (src, dst, port, proto) in enumerate([
        ("10.244.1.1", "10.244.1.2", 8080, "TCP"), ("10.244.1.2", "10.244.1.4", 5432, "TCP"),
        ("10.244.1.2", PROXY, 443, "TCP"), ("10.244.1.2", "10.244.0.10", 53, "UDP"),
        ("10.244.1.5", "10.244.1.2", 8080, "TCP"), ("10.244.1.3", "10.244.1.4", 5432, "TCP"),
        ("10.244.1.3", "10.244.0.10", 53, "UDP"),
    ]):
        f.flow(cluster, src, 40000 + n, dst, port, proto=proto, flags="SYN" if proto == "TCP" else "",
               time=recent - timedelta(minutes=n))
    aggregate_cluster(cluster)
    editor = User.objects.create_user("editor", password="x")
    editor.groups.add(roles["Editors"])
    viewer = User.objects.create_user("viewer", password="x")
    viewer.groups.add(roles["Viewers"])
    shop_only = User.objects.create_user("shop-team", password="x")
    grant = NamespaceGrant.objects.create(user=shop_only, role="editor")
    grant.namespaces.add(Namespace.objects.get(cluster=cluster, name="shop"))
    admin = User.objects.create_superuser("admin", password="x")
    return World(cluster, editor, viewer, admin, shop_only)


def edge_colours(page: Any) -> dict[str, str]:
    """Every edge of the live Cytoscape graph: its id → 'allowed' or 'blocked', by its drawn colour."""
    return page.evaluate("""() => {
        const cy = document.getElementById('cy')._cyreg.cy;
        return Object.fromEntries(cy.edges().map(e => [e.id(),
            e.style('line-color').replace(/ /g, '') === 'rgb(220,38,38)' ? 'blocked' : 'allowed']));
    }""")


def policy(page: Any) -> dict:
    return yaml.safe_load(page.locator("#policy-yaml").inner_text())


def row(page: Any, key: str) -> Any:
    return page.locator(f'tr[data-key="{key}"]')


# ------------------------------------------------------------------------------------------ use cases


def test_only_allow_chosen_communications(world: World, signed_in: Any) -> None:
    browser = signed_in(world.editor)
    page = browser.open(page_of("api", tab="egress"))
    db_row = row(page, "egress:StatefulSet/data/db:5432/TCP")
    assert db_row.locator(".st").inner_text() == "allowed"
    assert "1✕" in page.locator("#tab-egress").inner_text()  # the external proxy, excluded by default
    browser.change(lambda: db_row.locator('input[type="checkbox"]').click())
    assert row(page, "egress:StatefulSet/data/db:5432/TCP").locator(".st").inner_text() == "blocked by the draft"
    assert "2✕" in page.locator("#tab-egress").inner_text()  # the tab badge follows, without a reload
    assert "2 blocked" in page.locator("#summary-egress").inner_text()  # and the table's counts
    browser.shot("egress-row-excluded")

    page.click("#tab-topology")
    page.wait_for_function("() => document.getElementById('cy')._cyreg")
    assert edge_colours(page)["e:w:StatefulSet/data/db:egress:blocked"] == "blocked"
    browser.shot("topology-edge-red")

    page.click("#tab-policy")
    text = page.locator("#policy-yaml").inner_text()
    assert "app: db" not in text and "ipBlock" not in text
    assert page.url.endswith("tab=policy")
    browser.shot("yaml-without-db")


def test_allow_proxy_static_ips(world: World, signed_in: Any) -> None:
    browser = signed_in(world.editor)
    page = browser.open(page_of("api", tab="egress"))
    chip = page.locator("#panel-egress a.chip-filter", has_text="External")
    browser.swap(chip.click, lambda r: "cat=External" in r.url)
    assert page.locator("#panel-egress a.chip-filter[aria-current]").inner_text().startswith("External")
    assert PROXY in page.locator("#panel-egress .addresses").inner_text()
    form = page.locator("#panel-egress form.add-rule")
    # A bad range is said next to the form, and nothing is saved.
    form.locator('input[name="cidr"]').fill(f"{PROXY}/33")
    answer = browser.swap(form.locator('button[type="submit"]').click, lambda r: r.request.method == "POST")
    assert answer.status == 422
    page.wait_for_selector("#rule-error-egress .problem")
    assert "cidr" in page.locator("#rule-error-egress").inner_text()
    assert page.locator("#panel-egress form.manual-rule").count() == 0
    browser.shot("bad-cidr-inline")
    form.locator('input[name="cidr"]').fill(f"{PROXY}/32")
    form.locator('input[name="ports"]').fill("443/TCP")
    browser.change(lambda: form.locator('button[type="submit"]').click())
    # Everything else out: the header checkbox of the in-cluster table.
    browser.change(lambda: page.locator("#all-egress").click())
    browser.shot("only-the-proxy-rule")

    page.click("#tab-topology")
    page.wait_for_function("() => document.getElementById('cy')._cyreg")
    colours = edge_colours(page)
    allowed = sorted(edge for edge, colour in colours.items() if colour == "allowed" and ":egress:" in edge)
    # The proxy's edge and the DNS lookups (which every restricted egress keeps) are the only black ones.
    assert allowed == ["e:c:External:egress:allowed", "e:w:Deployment/kube-system/coredns:egress:allowed"], colours
    browser.shot("topology-only-proxy-black")
    page.click("#tab-policy")
    blocks = [peer["ipBlock"]["cidr"] for rule in policy(page)["spec"]["egress"] for peer in rule["to"]
              if "ipBlock" in peer]
    assert blocks == [f"{PROXY}/32"]


def test_only_inside_the_namespace(world: World, signed_in: Any) -> None:
    browser = signed_in(world.editor)
    page = browser.open(page_of("frontend", tab="egress"))
    browser.change(lambda: page.locator('#panel-egress input[value="allow-namespace"]').check())
    assert not page.locator('#panel-ingress input[value="allow-namespace"]').is_checked()
    browser.change(lambda: page.locator("#panel-egress button[name=both]").click())
    assert page.locator('#panel-ingress input[value="allow-namespace"]').is_checked()
    assert page.locator('#panel-egress tbody input[type="checkbox"]').first.is_disabled()
    page.click("#tab-policy")
    spec = policy(page)["spec"]
    assert spec["ingress"] == [{"from": [{"podSelector": {}}]}]
    peers = [peer for rule in spec["egress"] for peer in rule["to"]]
    assert {"podSelector": {}} in peers
    names = [peer.get("podSelector", {}).get("matchLabels", {}) for peer in peers]
    assert not any("app" in labels for labels in names)  # no workload named, only the namespace and DNS
    browser.shot("namespace-only-yaml")


def test_egress_to_one_other_namespace_only(world: World, signed_in: Any) -> None:
    browser = signed_in(world.editor)
    page = browser.open(page_of("worker", tab="ingress"))
    assert "will deny all ingress" in page.locator("#panel-ingress").inner_text()
    browser.shot("empty-ingress")
    page.click("#tab-egress")
    browser.swap(lambda: page.select_option("#panel-egress select[name=ns]", "data"), lambda r: "ns=data" in r.url)
    keys = page.locator("#panel-egress table.rows tbody tr").evaluate_all("rows => rows.map(r => r.dataset.key)")
    assert keys == ["egress:StatefulSet/data/db:5432/TCP"]
    page.click("#tab-policy")
    egress = policy(page)["spec"]["egress"]
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "data"}},
            "podSelector": {"matchLabels": {"app": "db"}}} in [peer for rule in egress for peer in rule["to"]]
    assert any(peer.get("podSelector") == {"matchLabels": {"k8s-app": "kube-dns"}}
               for rule in egress for peer in rule["to"])
    browser.shot("cross-namespace-yaml")


def test_a_relabelled_namespace(world: World, signed_in: Any) -> None:
    browser = signed_in(world.editor)
    page = browser.open(page_of("api", tab="ingress"))
    banner = page.locator("#banners")
    assert "Namespace legacy has no label to select it by" in banner.inner_text()
    assert "namespace needs a label" in row(page, "ingress:Deployment/legacy/sync:8080/TCP").inner_text()
    browser.shot("unlabelled-banner")
    page.click("#tab-topology")
    page.wait_for_function("() => document.getElementById('cy')._cyreg")
    assert edge_colours(page)["e:w:Deployment/legacy/sync:ingress:blocked"] == "blocked"

    # The namespace gets its labels with the next inventory import.
    apply_snapshot(world.cluster, Snapshot.of([NamespaceObj(name="legacy", labels={
        "kubernetes.io/metadata.name": "legacy", "team": "archive"})]), observed_at=timezone.now(), full=False)
    page = browser.open(page_of("api", tab="topology"))
    assert "has no label" not in page.locator("#banners").inner_text()
    page.wait_for_function("() => document.getElementById('cy')._cyreg")
    assert edge_colours(page)["e:w:Deployment/legacy/sync:ingress:allowed"] == "allowed"
    browser.shot("labelled-edge-black")


def test_the_scope_bar_moves_between_workloads_without_a_reload(world: World, signed_in: Any) -> None:
    browser = signed_in(world.viewer)
    page = browser.open(page_of("api", tab="egress"))
    page.evaluate("window.notReloaded = true")
    with page.expect_response(lambda r: "/network/test/shop/Deployment/worker/" in r.url):
        page.select_option('#scopebar select[name="name"]', "worker")
    page.wait_for_load_state("networkidle")
    page.wait_for_selector(".workload-head h1:text('worker')")
    assert page.url.endswith("/network/test/shop/Deployment/worker/?tab=egress")
    assert page.evaluate("window.notReloaded") is True
    assert page.locator("main#page").count() == 1 and page.locator("main#page main").count() == 0
    page.go_back()
    page.wait_for_selector(".workload-head h1:text('api')")
    browser.shot("scope-bar")


# --------------------------------------------------------------------------------------------- roles


def test_a_viewer_sees_everything_and_can_change_nothing(world: World, signed_in: Any) -> None:
    browser = signed_in(world.viewer)
    page = browser.open(page_of("api", tab="egress"))
    assert page.locator('#panel-egress tbody form input[type="checkbox"]').count() == 0  # no toggles
    assert page.locator('#panel-egress input[name="mode"]').first.is_disabled()
    assert page.locator("form.add-rule").count() == 0
    # The server refuses what the page does not offer.
    status = page.evaluate("""async () => (await fetch(location.pathname + 'rows', {method: 'POST',
        headers: {'X-CSRFToken': JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRFToken'],
                  'HX-Request': 'true', 'Content-Type': 'application/x-www-form-urlencoded'},
        body: 'key=' + encodeURIComponent('egress:StatefulSet/data/db:5432/TCP')})).status""")
    assert status == 403
    browser.shot("viewer")


def test_an_admin_only_action_by_an_editor_is_refused(world: World, signed_in: Any) -> None:
    editor = signed_in(world.editor)
    page = editor.open(page_of("api", tab="egress", cat="External"))
    assert page.locator("details.admin-actions").count() == 0
    status = page.evaluate("""async () => (await fetch(location.pathname + 'addresses', {method: 'POST',
        headers: {'X-CSRFToken': JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRFToken'],
                  'HX-Request': 'true', 'Content-Type': 'application/x-www-form-urlencoded'},
        body: 'action=alias&cidr=203.0.113.10&name=proxy'})).status""")
    assert status == 403

    admin = signed_in(world.admin)
    page = admin.open(page_of("api", tab="egress", cat="External"))
    page.locator("details.admin-actions summary").click()
    form = page.locator("details.admin-actions form").first
    form.locator('input[name="name"]').fill("egress-proxy")
    form.locator('input[name="allowed"]').check()
    admin.change(lambda: form.locator('button[type="submit"]').click())
    assert "Aliased 1" in page.locator("#panel-egress .addresses .chips").inner_text()
    page = admin.open(page_of("api", tab="egress", cat="Aliased"))
    assert "egress-proxy" in page.locator("#panel-egress .addresses tbody").inner_text()
    admin.shot("admin-alias")


def test_a_namespace_limited_user_sees_only_its_namespace(world: World, signed_in: Any) -> None:
    browser = signed_in(world.shop_only)
    page = browser.open(page_of("api", tab="ingress"))
    assert page.locator('#scopebar select[name="namespace"] option').all_inner_texts() == ["shop · 3"]
    html = page.content()
    assert "legacy" not in html and "sync" not in html and "app: db" not in html
    assert "other namespace" in page.locator("#panel-ingress").inner_text()
    browser.shot("limited-user")
    assert browser.open("/network/test/data/StatefulSet/db/").locator(".problem").inner_text().startswith("Not found")


# ------------------------------------------------------------------------------------- safe rendering


def test_labels_are_text_in_the_table_the_graph_and_the_yaml(world: World, signed_in: Any) -> None:
    browser = signed_in(world.editor)
    page = browser.open(page_of("api", tab="topology"))
    page.wait_for_function("() => document.getElementById('cy')._cyreg")
    # Hover the frontend node: its pane lists its labels, the dangerous one as plain text.
    position = page.evaluate("""() => {
        const node = document.getElementById('cy')._cyreg.cy.getElementById('w:Deployment/shop/frontend');
        const box = document.getElementById('cy').getBoundingClientRect();
        const p = node.renderedPosition();
        return {x: box.left + p.x, y: box.top + p.y};
    }""")
    page.mouse.move(position["x"], position["y"])
    page.wait_for_selector("#pane:not([hidden])")
    assert XSS in page.locator("#pane").inner_text()
    assert page.locator("img[src='x']").count() == 0
    browser.shot("label-as-text")
    # Not a valid Kubernetes label, so no selector uses it: frontend is selected by its app label alone.
    page = browser.open(page_of("frontend", tab="policy"))
    assert policy(page)["spec"]["podSelector"] == {"matchLabels": {"app": "frontend"}}
    assert page.locator("img[src='x']").count() == 0
