"""The topology layout (pure): columns by direction, namespace boxes, folding, grouped addresses, verdicts."""

from __future__ import annotations

from typing import Any

from policies import engine, topology
from policies.engine import AddressPeer, CommunicationRow, SideVerdict, WorkloadPeer

SCOPE = engine.Scope("c", "shop", "Deployment", "api", pod_labels={"app": "api"})
ALLOWED, DENIED = SideVerdict("allowed"), SideVerdict("denied", ("shop/p",))


def verdict(direction: str, peer: Any, port: int = 8080, *, allowed: bool = True, connections: int = 1,
            node_local: bool = False) -> engine.RowVerdict:
    row = CommunicationRow(direction, peer, port, connections=connections, node_local=node_local)
    side = ALLOWED if allowed else DENIED
    return engine.RowVerdict(row, allowed, () if allowed else (direction,), side, side)


def workload(namespace: str, name: str) -> WorkloadPeer:
    return WorkloadPeer(namespace, "Deployment", name, {"app": name})


def nodes(layout: dict) -> dict[str, dict]:
    return {n["data"]["id"]: n for n in layout["nodes"]}


def test_ingress_peers_sit_left_egress_peers_right_and_peers_seen_both_ways_above() -> None:
    layout = topology.layout(SCOPE, [
        verdict("ingress", workload("shop", "frontend")),
        verdict("egress", workload("data", "db"), 5432),
        verdict("ingress", workload("shop", "batch")), verdict("egress", workload("shop", "batch"), 9000),
    ])
    by_id = nodes(layout)
    assert by_id["scope"]["position"] == {"x": 0, "y": 0} and "scope" in by_id["scope"]["classes"]
    assert by_id["w:Deployment/shop/frontend"]["position"]["x"] < 0
    assert by_id["w:Deployment/data/db"]["position"]["x"] > 0
    assert by_id["w:Deployment/shop/batch"]["position"]["y"] < 0  # both ways: above the workload
    # Peers sit in a box per namespace and column.
    assert by_id["w:Deployment/data/db"]["data"]["parent"] == "box:right:ns:data"
    assert by_id["box:right:ns:data"]["data"]["label"] == "namespace data"


def test_the_same_input_gives_the_same_positions() -> None:
    rows = [verdict("egress", workload(f"ns{i % 3}", f"w{i}"), 80 + i, connections=i) for i in range(30)]
    assert topology.layout(SCOPE, rows) == topology.layout(SCOPE, list(reversed(rows)))


def test_a_box_folds_past_25_peers_so_150_stay_readable() -> None:
    rows = [verdict("egress", workload("shop", f"w{i:03}"), connections=1000 - i) for i in range(150)]
    layout = topology.layout(SCOPE, rows)
    peers = [n for n in layout["nodes"] if "peer" in n["classes"]]
    assert len(peers) == topology.MAX_PER_BOX
    more = nodes(layout)["more:right:ns:shop"]
    assert more["data"]["label"] == "+126 more" and len(more["data"]["peers"]) == 126
    # The busiest peers are the ones shown; the folded ones share one edge with the "+N more" node.
    assert "w:Deployment/shop/w000" in nodes(layout) and "w:Deployment/shop/w149" not in nodes(layout)
    assert [e["data"]["id"] for e in layout["edges"] if e["data"]["target"].startswith("more:")] == [
        "e:more:right:ns:shop:egress:allowed"]
    assert len({(n["position"]["x"], n["position"]["y"]) for n in peers}) == len(peers)  # nothing on top of another


def test_addresses_are_grouped_never_a_node_per_ip() -> None:
    api_server = AddressPeer("172.18.0.2", "APIServer", cidrs=("172.18.0.2/32",), service="default/kubernetes")
    rows = [verdict("egress", AddressPeer(f"203.0.113.{i}", "External"), 443) for i in range(40)]
    rows += [verdict("egress", AddressPeer("198.51.100.7", "Aliased", alias="partner", cidrs=("198.51.100.0/24",)),
                     22),
             verdict("egress", api_server, 6443),
             verdict("ingress", AddressPeer("172.18.0.3", "Internal"), 8080, node_local=True)]
    by_id = nodes(topology.layout(SCOPE, rows))
    outside = sorted(i for i, n in by_id.items() if n["data"].get("parent", "").endswith(":outside"))
    assert outside == ["a:partner", "c:External", "s:default/kubernetes", "x:node"]
    assert by_id["c:External"]["data"]["sublabel"] == "40 IPs" and len(by_id["c:External"]["data"]["addresses"]) == 20
    assert by_id["c:External"]["data"]["more_addresses"] == 20
    assert by_id["s:default/kubernetes"]["data"]["label"] == "Kubernetes API server"
    assert by_id["x:node"]["data"]["label"] == "kubelet probes"


def test_edges_follow_the_verdicts_and_a_peer_with_every_edge_blocked_is_hollow() -> None:
    db, cache = workload("data", "db"), workload("shop", "cache")
    layout = topology.layout(SCOPE, [
        verdict("egress", db, 5432, allowed=False), verdict("egress", db, 5433, allowed=False),
        verdict("egress", cache, 6379), verdict("egress", cache, 6380, allowed=False),
    ])
    edges = {e["data"]["id"]: e for e in layout["edges"]}
    blocked = edges["e:w:Deployment/data/db:egress:blocked"]
    assert blocked["classes"] == "blocked" and blocked["data"]["label"] == "5432/TCP, 5433/TCP"
    assert blocked["data"]["keys"] == ["egress:Deployment/data/db:5432/TCP", "egress:Deployment/data/db:5433/TCP"]
    assert {"e:w:Deployment/shop/cache:egress:allowed", "e:w:Deployment/shop/cache:egress:blocked"} <= set(edges)
    by_id = nodes(layout)
    assert "hollow" in by_id["w:Deployment/data/db"]["classes"]
    assert "hollow" not in by_id["w:Deployment/shop/cache"]["classes"]
    assert layout["legend"] == {"peers": 2, "allowed": 1, "blocked": 2, "hollow": 1}


def test_an_unlabelled_namespace_box_carries_the_warning() -> None:
    layout = topology.layout(SCOPE, [verdict("ingress", workload("legacy", "sync"), allowed=False)],
                             unlabelled=frozenset({"legacy"}))
    assert "warn" in nodes(layout)["box:left:ns:legacy"]["classes"]
