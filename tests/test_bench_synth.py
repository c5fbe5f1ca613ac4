"""The benchmark's generator (bench/synth.py): deterministic, of the shape asked for, and read by the importers as
real dumps and real Hubble output are: every line imports (none malformed) and aggregates into communications."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from django.core.management import call_command

from bench import synth

SHAPE = synth.Shape(namespaces=3, workloads=10, replicas=2, flows=6_000, span=timedelta(hours=2), seed=3, churn=0.3)


def _generate(directory: Path, shape: synth.Shape = SHAPE) -> synth.Summary:
    return synth.generate(shape, directory)


def test_same_shape_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    first, again, other = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    _generate(first)
    _generate(again)
    _generate(other, synth.Shape(**{**SHAPE.__dict__, "seed": 4}))
    for name in ("flows.jsonl", "inventory.json"):
        assert (first / name).read_bytes() == (again / name).read_bytes()
    assert (first / "flows.jsonl").read_bytes() != (other / "flows.jsonl").read_bytes()


def test_lines_have_the_shape_asked_for(tmp_path: Path) -> None:
    summary = _generate(tmp_path)
    lines = (tmp_path / "flows.jsonl").read_bytes().splitlines()
    assert len(lines) == summary.lines == SHAPE.flows
    flows = [orjson.loads(line)["flow"] for line in lines]
    start, end = SHAPE.start, SHAPE.end
    assert all(start <= datetime.fromisoformat(f["time"]) < end for f in flows)
    replies = sum(1 for f in flows if f.get("is_reply"))
    assert 0.2 < replies / len(flows) < 0.4
    kinds = {"dropped": any(f["verdict"] == "DROPPED" for f in flows),
             "dns": any(f.get("l7", {}).get("dns", {}).get("ips") for f in flows),
             "world": any("reserved:world" in f["destination"].get("labels", []) for f in flows),
             "service": any("destination_service" in f for f in flows),
             "host": any("reserved:host" in f["source"].get("labels", []) for f in flows)}
    assert all(kinds.values()), kinds
    # Both ends: the same connection (client address and port) reported by two nodes, EGRESS and INGRESS.
    seen: dict[tuple[str, int], set[tuple[str, str]]] = {}
    for f in flows:
        if "TCP" in f["l4"] and f.get("is_reply") is False:
            key = (f["IP"]["source"], f["l4"]["TCP"]["source_port"])
            seen.setdefault(key, set()).add((f["node_name"], f["traffic_direction"]))
    assert sum(1 for ends in seen.values() if {d for _, d in ends} == {"EGRESS", "INGRESS"}) > len(seen) / 2
    assert summary.evicted > 0


@pytest.mark.django_db
def test_the_output_imports_and_aggregates(tmp_path: Path) -> None:
    from flows.aggregate import aggregate_cluster
    from flows.models import Cluster, Communication, PodAddress, RawFlow

    summary = _generate(tmp_path)
    out = io.StringIO()
    call_command("import_inventory", "--cluster", SHAPE.cluster, "--create", "--observed-at",
                 summary.observed_at.isoformat(), str(tmp_path / "inventory.json"), stdout=out)
    cluster = Cluster.objects.get(name=SHAPE.cluster)
    # Every evicted pod's address is closed where its container finished; its successor's is open.
    assert PodAddress.objects.filter(cluster=cluster, valid_to__isnull=False).count() == summary.evicted
    call_command("import_flows", "--cluster", SHAPE.cluster, str(tmp_path / "flows.jsonl"), stdout=out)
    assert f"total: {SHAPE.flows} lines read, {summary.flows} flows stored, 0 duplicates, " \
           f"{summary.lost_events} skipped, 0 malformed" in out.getvalue()
    assert RawFlow.objects.filter(cluster=cluster).count() == summary.flows

    result = aggregate_cluster(cluster)
    assert len(result.buckets) == 2
    rows = Communication.objects.filter(cluster=cluster)
    both = rows.filter(src_workload__isnull=False, dst_workload__isnull=False)
    assert both.filter(denied=False).exists() and both.filter(denied=True).exists()
    assert rows.filter(node_local=True).exists()  # kubelet probes from the pod's own node
    assert rows.filter(dst_workload__isnull=True, dst_ip__startswith="203.0.113.").exists()  # the world
    # A connection reported at both ends counts once: as many connections as client address and port pairs (a
    # connection whose packets straddle the hour counts in both hours).
    clients = set()
    for line in (tmp_path / "flows.jsonl").read_bytes().splitlines():
        flow = orjson.loads(line)["flow"]
        layer = flow["l4"].get("TCP") or flow["l4"].get("UDP")
        if flow.get("is_reply") is False and flow["Type"] == "L3_L4":
            clients.add((flow["IP"]["source"], layer["source_port"]))
    connections = sum(rows.values_list("connections", flat=True))
    assert len(clients) <= connections <= len(clients) * 1.02
    # The service traffic resolved to the workload behind the Service, whichever address the client saw.
    assert both.filter(dst_workload__name="api-001", port=50051).exists()


def test_span_and_shape_errors() -> None:
    assert synth.parse_span("90s") == timedelta(seconds=90)
    assert synth.parse_span("7d") == timedelta(days=7)
    for bad in ("", "4", "h", "-1h", "0m"):
        with pytest.raises(ValueError):
            synth.parse_span(bad)
    with pytest.raises(ValueError):
        synth.Shape(namespaces=0)
    with pytest.raises(ValueError):
        synth.Shape(start=datetime(2026, 1, 1))  # naive
    assert synth.Shape(start=datetime(2026, 1, 1, tzinfo=UTC)).node_count == 12
