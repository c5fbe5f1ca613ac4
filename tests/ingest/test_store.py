"""store_records / ingest_lines: every column, idempotence, duplicates, batching, bounded memory."""

from __future__ import annotations

import dataclasses
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from flows.ingest.reader import parse_lines
from flows.ingest.records import Endpoint, FlowRecord
from flows.models import Cluster, RawFlow
from flows.store import raw_flows as store
from flows.store.raw_flows import COLUMNS, ingest_lines, store_records
from tests.ingest.helpers import HUBBLE_SAMPLE, parse, sample

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 27, 16, 0, tzinfo=UTC)


def flow(i: int = 0, **changes: object) -> FlowRecord:
    base = FlowRecord(
        time=T0 + timedelta(microseconds=i), protocol="TCP",
        source=Endpoint(ip="10.0.0.1", port=1024 + i % 60000), destination=Endpoint(ip="10.0.0.2", port=80),
        tcp_flags=("SYN",), event_id=f"event-{i}",
    )
    return dataclasses.replace(base, **changes)


def generated(count: int) -> Iterator[FlowRecord]:
    return (flow(i) for i in range(count))


def test_columns_cover_the_model() -> None:
    """The INSERT lists its columns; a RawFlow field added later must not be silently left out."""
    concrete = {f.name for f in RawFlow._meta.concrete_fields if not f.primary_key}
    assert set(COLUMNS) == concrete


def test_every_column_is_stored(cluster: Cluster) -> None:
    obj = sample(0)
    obj["flow"]["destination_service"] = {"name": "web-000", "namespace": "ns-001"}
    obj["flow"]["destination_names"] = ["web.example.com"]
    obj["flow"]["l4"]["TCP"]["flags"] = {"SYN": True, "ACK": True}
    record = parse(obj)
    assert isinstance(record, FlowRecord)
    assert store_records(cluster, [record]) == (1, 0)
    row = RawFlow.objects.values().get()
    del row["id"]
    assert row == {
        "cluster_id": cluster.id,
        "fingerprint": "id:22168d79-0000-4000-8000-b6589fc6ab0d",
        "time": T0,
        "verdict": "FORWARDED",
        "protocol": "TCP",
        "src_ip": "10.0.1.9",
        "dst_ip": "10.0.1.8",
        "src_port": 32857,
        "dst_port": 3000,
        "is_reply": False,
        "tcp_flags": "ACK,SYN",
        "traffic_direction": "EGRESS",
        "node_name": "node-000",
        "src_namespace": "ns-001",
        "src_pod": "api-001-8bsht5lgjx-q4jr6",
        "src_workload_kind": "Deployment",
        "src_workload_name": "api-001",
        "src_reserved": "",
        "dst_namespace": "ns-001",
        "dst_pod": "web-000-hphbqw7nn9-bb2wb",
        "dst_workload_kind": "Deployment",
        "dst_workload_name": "web-000",
        "dst_reserved": "",
        "dst_service": "ns-001/web-000",
        "dst_names": ["web.example.com"],
        "dns_query": "",
        "dns_ips": [],
    }


def test_dns_answers_are_stored(cluster: Cluster) -> None:
    obj = sample(0)
    obj["flow"]["l7"] = {"type": "RESPONSE", "dns": {"query": "API.Stripe.com.", "ips": ["203.0.113.10"]}}
    record = parse(obj)
    assert isinstance(record, FlowRecord)
    store_records(cluster, [record])
    assert RawFlow.objects.values_list("dns_query", "dns_ips").get() == ("api.stripe.com", ["203.0.113.10"])


def test_unknowns_and_reserved_identities(cluster: Cluster) -> None:
    record = flow(
        is_reply=None, tcp_flags=(), protocol="ICMPv6", verdict="DROPPED",
        source=Endpoint(ip="2001:DB8:0:0::1", reserved="host"),
        destination=Endpoint(ip="::FFFF:10.0.0.2", reserved="kube-apiserver"),
        time=datetime(2026, 11, 27, 16, 0, 0, 123456, tzinfo=UTC),
    )
    store_records(cluster, [record])
    row = RawFlow.objects.get()
    assert (row.src_ip, row.dst_ip) == ("2001:db8::1", "::ffff:a00:2")  # canonical text
    assert (row.src_port, row.dst_port, row.is_reply, row.tcp_flags) == (None, None, None, "")
    assert (row.src_reserved, row.dst_reserved, row.verdict) == ("host", "kube-apiserver", "DROPPED")
    assert (row.traffic_direction, row.dst_names) == ("UNKNOWN", [])
    assert row.time == datetime(2026, 11, 27, 16, 0, 0, 123456, tzinfo=UTC)


def test_storing_twice_adds_nothing(cluster: Cluster) -> None:
    assert store_records(cluster, generated(50)) == (50, 0)
    assert store_records(cluster, generated(50)) == (0, 50)
    assert RawFlow.objects.count() == 50


def test_duplicates_within_a_batch_and_across_batches(cluster: Cluster) -> None:
    records = [flow(1), flow(1), flow(2), flow(3), flow(2), flow(4), flow(1)]
    assert store_records(cluster, records, batch_size=2) == (4, 3)
    assert sorted(RawFlow.objects.values_list("fingerprint", flat=True)) == [f"id:event-{i}" for i in (1, 2, 3, 4)]


def test_without_an_event_id_the_content_identifies_the_event(cluster: Cluster) -> None:
    a = flow(1, event_id="")
    same = flow(1, event_id="", source=dataclasses.replace(a.source, pod="metadata-does-not-count"))
    later = flow(2, event_id="")
    assert store_records(cluster, [a, same, later]) == (2, 1)


def test_clusters_are_separate(cluster: Cluster) -> None:
    other = Cluster.objects.create(name="other")
    assert store_records(cluster, generated(5)) == (5, 0)
    assert store_records(other, generated(5)) == (5, 0)


def test_a_concurrent_import_of_the_same_events_is_not_an_error(cluster: Cluster) -> None:
    """The duplicate check is in the INSERT itself: rows another import stored count as duplicates."""
    RawFlow.objects.create(
        cluster=cluster, fingerprint=flow(3).fingerprint, time=flow(3).time, protocol="TCP", src_ip="1.1.1.1",
        dst_ip="1.1.1.2",
    )
    assert store_records(cluster, generated(5)) == (4, 1)
    assert RawFlow.objects.get(fingerprint=flow(3).fingerprint).src_ip == "1.1.1.1"  # left alone


def test_batch_size_must_be_positive(cluster: Cluster) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        store_records(cluster, [], batch_size=0)


def test_streaming_holds_at_most_one_batch(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    """200,000 records, batch size 1,000: never more than 1,000 records read ahead of the database."""
    produced = 0
    handed_over = 0
    largest_backlog = 0
    batch_sizes: list[int] = []

    def records() -> Iterator[FlowRecord]:
        nonlocal produced
        for i in range(200_000):
            produced += 1
            yield flow(i)

    def fake_insert(rows: list[tuple[object, ...]]) -> int:
        nonlocal handed_over, largest_backlog
        largest_backlog = max(largest_backlog, produced - handed_over)
        handed_over += len(rows)
        batch_sizes.append(len(rows))
        return len(rows)

    # The database is left out here to keep the test fast; the next test streams through it.
    monkeypatch.setattr(store, "_insert", fake_insert)
    assert store_records(cluster, records(), batch_size=1000) == (200_000, 0)
    assert largest_backlog == 1000
    assert max(batch_sizes) == 1000 and len(batch_sizes) == 200


def test_memory_stays_flat_through_parser_and_database(cluster: Cluster) -> None:
    """5,000 Hubble lines parsed and stored in batches of 100 peak at a fraction of what holding the
    5,000 parsed records alone takes (tracemalloc is slow, hence the modest count)."""
    template = sample(0)

    def lines(count: int) -> Iterator[bytes]:
        for i in range(count):
            template["flow"]["uuid"] = f"uuid-{i}"
            yield orjson.dumps(template)

    tracemalloc.start()
    try:
        summary = ingest_lines(cluster, lines(5000), "hubble", batch_size=100)
        _, streaming_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        held = list(parse_lines(lines(5000), "hubble"))
        holding_all, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (summary.lines, summary.stored, len(held)) == (5000, 5000, 5000)
    assert streaming_peak < holding_all / 4, f"{streaming_peak / 1e6:.1f} MB vs {holding_all / 1e6:.1f} MB"


def test_ingest_lines_counts_every_line_once(cluster: Cluster) -> None:
    lines = HUBBLE_SAMPLE.read_bytes().splitlines()
    bad = b'{"flow": {"time": "2026-11-27T16:00:00Z", "IP": {"source": "x", "destination": "10.0.0.1"}}}'
    mixed = [*lines, b"", bad, b"{", lines[0], b'{"lost_events": {}}']
    seen: list[int] = []
    summary = ingest_lines(
        cluster, mixed, "hubble", max_errors=1, progress=lambda s: seen.append(s.lines), progress_every=4,
    )
    assert (summary.lines, summary.stored, summary.duplicates, summary.skipped, summary.malformed) == (
        12, 7, 1, 2, 2,
    )
    assert [(e.line, e.field) for e in summary.errors] == [(9, "flow.IP.source")]  # capped at max_errors
    assert seen == [4, 8, 12]
    assert summary.read_error == ""


def test_a_read_error_keeps_what_was_read(cluster: Cluster) -> None:
    lines = HUBBLE_SAMPLE.read_bytes().splitlines()

    def failing() -> Iterator[bytes]:
        yield from lines[:3]
        raise EOFError("Compressed file ended before the end-of-stream marker was reached")

    summary = ingest_lines(cluster, failing(), "hubble")
    assert (summary.lines, summary.stored) == (3, 3)
    assert summary.read_error.startswith("Compressed file ended")
    assert RawFlow.objects.count() == 3
