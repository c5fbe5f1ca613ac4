"""``bench.engine`` without the peer: the synthetic cluster, the files both sides read, our connectivity on
them, and the reading of the analyzer's answer (on text in its format; the analyzer itself is not run)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from bench import _nca
from bench import engine as bench_engine
from policies.engine import Connection, Endpoint, Evaluator


def test_the_cluster_is_made_from_the_seed_and_round_trips_through_the_files(tmp_path: Path) -> None:
    cluster = bench_engine.synthesize(60, 30, seed=3)
    assert cluster == bench_engine.synthesize(60, 30, seed=3)
    assert cluster != bench_engine.synthesize(60, 30, seed=4)
    assert len(cluster.pods) == 60 and len(cluster.policies) == 30
    namespaces, pods, policies = bench_engine.load(bench_engine.write(cluster, tmp_path))
    assert [p.key for p in pods] == [(p["metadata"]["namespace"], p["metadata"]["name"]) for p in cluster.pods]
    assert len(policies) == 30 and len(namespaces) == len(cluster.namespaces)
    assert len({p.key for p in pods}) == 60 and len({ip for p in pods for ip in p.ips}) == 60


def test_ip_blocks_stay_outside_the_pods_addresses() -> None:
    # The shared semantics: the analyzer never applies an ipBlock to a pod, so none may cover one.
    cluster = bench_engine.synthesize(200, 150, seed=5)
    addresses = [ipaddress.ip_address(p["status"]["podIP"]) for p in cluster.pods]
    for policy in cluster.policies:
        for direction, field in (("ingress", "from"), ("egress", "to")):
            for rule in policy["spec"].get(direction) or ():
                for peer in rule.get(field) or ():
                    block = peer.get("ipBlock")
                    if block:
                        network = ipaddress.ip_network(block["cidr"])
                        excepted = [ipaddress.ip_network(c) for c in block.get("except", ())]
                        assert not any(a in network and not any(a in e for e in excepted) for a in addresses)


def test_connectivity_of_the_bench_cluster_equals_probing_every_pair(tmp_path: Path) -> None:
    cluster = bench_engine.synthesize(40, 40, seed=11)
    files = bench_engine.write(cluster, tmp_path)
    columns = bench_engine.columns_in_play(cluster)
    result = bench_engine.ours(files, columns)
    namespaces, pods, policies = bench_engine.load(files)
    evaluator = Evaluator(namespaces, pods, policies)
    allowed = 0
    for i, source in enumerate(pods):
        for j, destination in enumerate(pods):
            for column in columns:
                expected = evaluator.evaluate(Connection(Endpoint.of_pod(source), Endpoint.of_pod(destination),
                                                         *column)).allowed
                assert bool(result.destinations(i, column) >> j & 1) is expected
                allowed += expected and i != j
    assert 0 < allowed == result.count()


COLUMNS = [(53, "UDP"), (53, "TCP"), (80, "TCP"), (8050, "TCP"), (8050, "SCTP"), (9090, "TCP"), (1, "UDP")]


def allowed_columns(text: str) -> set[tuple[int, str]]:
    mask = _nca.column_mask(text, COLUMNS)
    return {column for k, column in enumerate(COLUMNS) if mask >> k & 1}


def test_the_analyzers_connection_sets_are_read_as_columns() -> None:
    assert allowed_columns("All connections") == set(COLUMNS)
    assert allowed_columns("No connections") == set()
    assert allowed_columns("{protocols:TCP,dst_ports:8050,9090}") == {(8050, "TCP"), (9090, "TCP")}
    assert allowed_columns("{protocols:TCP,dst_ports:80-8050}") == {(80, "TCP"), (8050, "TCP")}
    assert allowed_columns("{protocols:TCP, UDP,dst_ports:53}") == {(53, "TCP"), (53, "UDP")}
    assert allowed_columns("{protocols:UDP},{protocols:TCP,dst_ports:80}") == {(53, "UDP"), (1, "UDP"), (80, "TCP")}
    assert allowed_columns("{protocols:all but TCP, UDP}") == {(8050, "SCTP")}
    assert allowed_columns("All but {protocols:TCP}") == {(53, "UDP"), (1, "UDP"), (8050, "SCTP")}
    assert allowed_columns("{dst_ports:53}") == {(53, "UDP"), (53, "TCP")}
    assert allowed_columns("53,80") == {(53, "UDP"), (53, "TCP"), (80, "TCP")}


def test_the_analyzers_answer_is_read_per_pod_pair(tmp_path: Path) -> None:
    output = tmp_path / "out.txt"
    output.write_text(
        "0.0.0.0-9.255.255.255 => a/p0 : All connections\n"
        "a/p0 => b/p1 : {protocols:TCP,dst_ports:80}\n"
        "a/p0 => b/p1 : {protocols:UDP,dst_ports:53}\n"
        "b/p1 => a/p0 : All connections\n"
        "b/p1 => 203.0.113.0-203.0.113.255 : All connections\n"
    )
    rows = _nca.allowed(output, _nca.names([("a", "p0"), ("b", "p1")]), COLUMNS)
    assert rows[(80, "TCP")] == [0b10, 0b01]
    assert rows[(53, "UDP")] == [0b10, 0b01]
    assert rows[(9090, "TCP")] == [0b00, 0b01]
