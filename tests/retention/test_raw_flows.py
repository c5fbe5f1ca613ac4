"""Raw flows under retention: pruned in bounded batches (SQLite) or by dropping day partitions (PostgreSQL),
partitions made for whatever day a batch holds, re-sending still a no-op, two creators never failing."""

from __future__ import annotations

import json
import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from flows.aggregate import bucket_sql
from flows.models import Cluster, IngestBatch, RawFlow
from flows.retention import RetentionPolicy, apply_retention, ensure_partitions
from flows.store import raw_flows
from flows.store.raw_flows import partition_name, store_records
from tests.retention.conftest import SQLITE, partitions, postgres_only, records

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 2, 4, 30, tzinfo=UTC)
POLICY = RetentionPolicy(raw_flows_days=7, hourly_days=90, daily_days=400, batch=10)
CUTOFF = datetime(2026, 11, 25, tzinfo=UTC)  # NOW's day, less 7 days: rows before it go


def _old_and_new(cluster: Cluster) -> None:
    """25 raw flows on three days before the cutoff, 2 on the cutoff's day and 1 today."""
    store_records(cluster, records(datetime(2026, 11, 22, 23, 59, 50, tzinfo=UTC), 25, step=timedelta(hours=2)))
    store_records(cluster, records(CUTOFF, 2, tag="kept"))
    store_records(cluster, records(NOW - timedelta(minutes=5), 1, tag="today"))


def test_raw_flows_before_the_cutoff_day_go_and_the_others_stay(cluster: Cluster) -> None:
    _old_and_new(cluster)
    assert RawFlow.objects.filter(time__lt=CUTOFF).count() == 25
    result = apply_retention(NOW, policy=POLICY)
    assert result.raw_flows == 25
    assert RawFlow.objects.count() == 3 and not RawFlow.objects.filter(time__lt=CUTOFF).exists()
    again = apply_retention(NOW, policy=POLICY)
    assert (again.raw_flows, again.partitions_dropped) == (0, [])


@SQLITE
def test_sqlite_deletes_in_bounded_batches(cluster: Cluster) -> None:
    _old_and_new(cluster)
    with CaptureQueriesContext(connection) as queries:
        apply_retention(NOW, policy=POLICY)
    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith('DELETE FROM "flows_rawflow"')]
    assert len(deletes) == 3  # 10 + 10 + 5 rows: never one statement for everything
    assert all("LIMIT 10" in sql for sql in deletes)


@pytest.mark.parametrize("table", ["flows_communication", "flows_ingestbatch"])
def test_other_rows_go_in_bounded_batches_too(cluster: Cluster, table: str) -> None:
    if table == "flows_ingestbatch":
        IngestBatch.objects.bulk_create(IngestBatch(cluster=cluster, kind="flows", key=f"k{i}") for i in range(25))
        IngestBatch.objects.update(created=CUTOFF - timedelta(days=1))
        IngestBatch.objects.create(cluster=cluster, kind="flows", key="recent")
    else:
        from flows.models import Communication

        old = datetime(2025, 1, 1, tzinfo=UTC)  # before the 400 days of daily rows
        Communication.objects.bulk_create(
            Communication(cluster=cluster, bucket=old + timedelta(days=i), granularity="day", sealed=True,
                          src_ip="10.0.0.1", dst_ip="10.0.0.2", port=80, protocol="TCP", connections=1,
                          first_seen=old, last_seen=old) for i in range(25))
    with CaptureQueriesContext(connection) as queries:
        result = apply_retention(NOW, policy=POLICY)
    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith(f'DELETE FROM "{table}"')]
    assert len(deletes) == 3
    assert (result.ingest_batches, result.communications_expired) == ((25, 0) if table == "flows_ingestbatch"
                                                                      else (0, 25))
    if table == "flows_ingestbatch":
        assert list(IngestBatch.objects.values_list("key", flat=True)) == ["recent"]


def test_re_sending_stored_flows_adds_nothing(cluster: Cluster) -> None:
    batch = records(datetime(2026, 11, 30, 23, 59, 58, tzinfo=UTC), 5)  # across a day boundary: two partitions
    assert store_records(cluster, batch) == (5, 0)
    assert store_records(cluster, batch) == (0, 5)
    assert store_records(cluster, batch, batch_size=2) == (0, 5)
    assert RawFlow.objects.count() == 5
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT relkind FROM pg_class WHERE relname = 'flows_rawflow'")
            assert cursor.fetchone()[0] == "p"
        assert {partition_name(date(2026, 11, 30)), partition_name(date(2026, 12, 1))} <= partitions()


def test_a_flow_on_a_day_boundary_belongs_to_the_new_day(cluster: Cluster) -> None:
    midnight = datetime(2026, 11, 25, tzinfo=UTC)
    store_records(cluster, records(midnight - timedelta(microseconds=1), 2, step=timedelta(microseconds=1)))
    apply_retention(NOW, policy=POLICY)
    assert list(RawFlow.objects.values_list("time", flat=True)) == [midnight]


def test_dry_run_counts_what_a_run_does_and_changes_nothing(cluster: Cluster) -> None:
    _old_and_new(cluster)
    before = set(partitions())
    dry = apply_retention(NOW, policy=POLICY, dry_run=True)
    assert RawFlow.objects.count() == 28 and partitions() == before
    assert str(dry).startswith("retention: would prune 25 raw flows")
    real = apply_retention(NOW, policy=POLICY)
    assert (dry.raw_flows, dry.partitions_dropped) == (real.raw_flows, real.partitions_dropped)


def test_the_command_prints_what_it_did(cluster: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    from django.core.management import call_command

    store_records(cluster, records(datetime(2020, 1, 1, tzinfo=UTC), 3))
    call_command("apply_retention", "--dry-run")
    assert "would prune 3 raw flows" in capsys.readouterr().out
    assert RawFlow.objects.count() == 3
    call_command("apply_retention")
    assert "pruned 3 raw flows" in capsys.readouterr().out
    assert RawFlow.objects.count() == 0


# ------------------------------------------------------------------------------------ PostgreSQL partitions


@postgres_only
@pytest.mark.usefixtures("cluster")
def test_the_table_is_partitioned_with_time_in_its_keys() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_partkeydef('flows_rawflow'::regclass)")
        assert cursor.fetchone()[0] == "RANGE (\"time\")"
        cursor.execute("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                       "WHERE conrelid = 'flows_rawflow'::regclass AND contype IN ('p', 'u') ORDER BY conname")
        assert cursor.fetchall() == [("flows_rawflow_pkey", 'PRIMARY KEY (cluster_id, id, "time")'),
                                     ("uniq_raw_flow", 'UNIQUE (cluster_id, "time", fingerprint)')]


@postgres_only
def test_an_old_batch_gets_its_day_partition(cluster: Cluster) -> None:
    day = date(2019, 3, 14)
    assert partition_name(day) not in partitions()
    when = datetime(2019, 3, 14, 12, tzinfo=UTC)
    assert store_records(cluster, records(when, 3)) == (3, 0)
    assert partition_name(day) in partitions()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {partition_name(day)}")
        assert cursor.fetchone()[0] == 3


@postgres_only
def test_an_orm_row_gets_its_day_partition_too(cluster: Cluster) -> None:
    RawFlow.objects.create(cluster=cluster, fingerprint="x", time=datetime(2018, 7, 1, 8, tzinfo=UTC), protocol="TCP",
                           src_ip="10.0.0.1", dst_ip="10.0.0.2")
    RawFlow.objects.bulk_create([RawFlow(cluster=cluster, fingerprint="y", time=datetime(2018, 7, 2, tzinfo=UTC),
                                         protocol="TCP", src_ip="10.0.0.1", dst_ip="10.0.0.2")])
    assert {partition_name(date(2018, 7, 1)), partition_name(date(2018, 7, 2))} <= partitions()


@postgres_only
def test_retention_drops_whole_day_partitions_and_creates_the_coming_days(cluster: Cluster) -> None:
    _old_and_new(cluster)
    old_days = {partition_name(date(2026, 11, d)) for d in (22, 23, 24)}
    assert old_days <= partitions()
    result = apply_retention(NOW, policy=POLICY)
    assert set(result.partitions_dropped) >= old_days and result.partitions_busy == []
    left = partitions()
    assert not old_days & left
    assert partition_name(date(2026, 11, 25)) in left  # the cutoff's day stays whole
    coming = {partition_name(NOW.date() + timedelta(days=n)) for n in range(4)}
    assert coming <= left
    assert set(result.partitions_created) <= coming


@postgres_only
def test_ensure_partitions_is_idempotent() -> None:
    now = datetime(2031, 1, 30, tzinfo=UTC)
    made = ensure_partitions(days_ahead=3, now=now)
    assert made == [partition_name(date(2031, 1, 30) + timedelta(days=n)) for n in range(4)]
    raw_flows._known.clear()
    assert ensure_partitions(days_ahead=3, now=now) == []


@postgres_only
def test_a_batch_whose_partition_was_dropped_under_it_recreates_it(cluster: Cluster) -> None:
    when = datetime(2019, 6, 1, 10, tzinfo=UTC)
    store_records(cluster, records(when, 1, tag="first"))
    name = partition_name(when.date())
    raw_flows._cache().add(name)  # this process believes the day exists ...
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {name}")  # ... when another process's retention has dropped it
    assert store_records(cluster, records(when, 2, tag="second")) == (2, 0)
    assert name in partitions()


@postgres_only
def test_the_bucket_read_touches_one_partition_and_the_watermark_its_index(cluster: Cluster) -> None:
    for day in (20, 21, 22):
        store_records(cluster, records(datetime(2026, 11, day, 10, tzinfo=UTC), 3))
    start = datetime(2026, 11, 21, 10, tzinfo=UTC)
    params = {"cluster": cluster.id, "start": start, "end": start + timedelta(hours=1), "bucket": start}
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + bucket_sql(), params)
        plan = cursor.fetchone()[0]
        cursor.execute("EXPLAIN (FORMAT JSON) SELECT MAX(id) FROM flows_rawflow WHERE cluster_id = %s", [cluster.id])
        watermark = cursor.fetchone()[0]

    def nodes(node: dict) -> list[dict]:
        return [node] + [n for child in node.get("Plans", []) for n in nodes(child)]

    def raw(tree: list[dict]) -> list[dict]:
        return [n for n in nodes(tree[0]["Plan"]) if n.get("Relation Name", "").startswith("flows_rawflow")]

    assert {n["Relation Name"] for n in raw(plan)} == {partition_name(date(2026, 11, 21))}
    scans = raw(watermark)
    assert scans and all(n["Node Type"] in ("Index Only Scan", "Index Scan") for n in scans), json.dumps(watermark)
    assert all(n["Index Name"].endswith("_pkey") for n in scans)  # the key (cluster_id, id, time) of each day


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_creators_of_one_partition_never_fail(cluster: Cluster) -> None:
    """Both see the day missing, both try to make it: one does, the other finds it made, both batches land."""
    when = datetime(2019, 9, 9, 9, tzinfo=UTC)
    batch = records(when, 50)
    start = threading.Barrier(4)
    results: list[tuple[str, object]] = []

    def run(kind: str) -> None:
        try:
            start.wait(10)
            if kind == "store":
                results.append((kind, store_records(cluster, batch, batch_size=7)))
            else:
                results.append((kind, raw_flows._create_partition(partition_name(when.date()), when.date())))
        except Exception as exc:  # noqa: BLE001 - the assertion below reports it
            results.append((kind, exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(k,)) for k in ("store", "store", "create", "create")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not [r for r in results if isinstance(r[1], Exception)], results
    stored = sorted(r[1] for r in results if r[0] == "store")  # type: ignore[type-var]
    assert sum(s for s, _ in stored) == 50 and sum(d for _, d in stored) == 50  # each event stored once
    assert RawFlow.objects.filter(cluster=cluster).count() == 50
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                       "WHERE i.inhparent = 'flows_rawflow'::regclass AND c.relname = %s",
                       [partition_name(when.date())])
        assert cursor.fetchone()[0] == 1
        cursor.execute(f"DROP TABLE {partition_name(when.date())}")  # the flush empties tables, it drops none


def _hold_open(ready: threading.Event, release: threading.Event, sql: str) -> None:
    """Run ``sql`` in a transaction of another connection and keep it open until ``release``."""
    from django.db import transaction

    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
            ready.set()
            release.wait(30)
    finally:
        connections.close_all()


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_new_partition_does_not_wait_for_a_batch_in_flight(cluster: Cluster) -> None:
    """ATTACH takes SHARE UPDATE EXCLUSIVE: a batch inserting meanwhile (ROW EXCLUSIVE) neither waits nor blocks.
    (``CREATE TABLE ... PARTITION OF`` would wait here for ACCESS EXCLUSIVE, and every batch behind it.)"""
    store_records(cluster, records(datetime(2026, 11, 28, tzinfo=UTC), 1))
    ready, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold_open, args=(ready, release, (
        "INSERT INTO flows_rawflow (cluster_id, fingerprint, time, verdict, protocol, src_ip, dst_ip, tcp_flags, "
        "traffic_direction, node_name, src_namespace, src_pod, src_workload_kind, src_workload_name, src_reserved, "
        "dst_namespace, dst_pod, dst_workload_kind, dst_workload_name, dst_reserved, dst_service, dst_names, "
        f"dns_query, dns_ips) VALUES ({cluster.id}, 'held', '2026-11-28 10:00+00', 'FORWARDED', 'TCP', '10.0.0.1', "
        "'10.0.0.2', '', 'EGRESS', '', '', '', '', '', '', '', '', '', '', '', '', '[]', '', '[]')")))
    holder.start()
    try:
        assert ready.wait(10)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '3s'")
        try:
            assert ensure_partitions(days_ahead=0, now=datetime(2017, 2, 2, tzinfo=UTC)) == [
                partition_name(date(2017, 2, 2))]
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET lock_timeout")
    finally:
        release.set()
        holder.join(30)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {partition_name(date(2017, 2, 2))}")


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_partition_too_busy_to_drop_waits_for_the_next_run(cluster: Cluster,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from flows import retention

    monkeypatch.setattr(retention, "DROP_LOCK_TIMEOUT", "200ms")
    monkeypatch.setattr(retention, "DROP_ATTEMPTS", 2)
    monkeypatch.setattr(retention, "DROP_BACKOFF_SECONDS", 0.0)
    store_records(cluster, records(datetime(2026, 11, 10, 10, tzinfo=UTC), 4))
    ready, release = threading.Event(), threading.Event()
    reader = threading.Thread(target=_hold_open, args=(ready, release, "SELECT count(*) FROM flows_rawflow"))
    reader.start()
    try:
        assert ready.wait(10)
        busy = apply_retention(NOW, policy=POLICY)  # a long read (an aggregation) holds the table
    finally:
        release.set()
        reader.join(30)
    name = partition_name(date(2026, 11, 10))
    assert name in busy.partitions_busy and name not in busy.partitions_dropped and busy.raw_flows == 0
    assert RawFlow.objects.count() == 4
    later = apply_retention(NOW, policy=POLICY)
    assert name in later.partitions_dropped and later.raw_flows == 4 and not RawFlow.objects.exists()
