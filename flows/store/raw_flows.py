"""Writing parsed flows as RawFlow rows: batched, idempotent, with memory bounded by the batch size.

Rows are written with ``INSERT ... ON CONFLICT (cluster_id, fingerprint) DO NOTHING`` rather than
``bulk_create``: the ORM spends ~200 µs of Python per 25-column row (field preparation, SQL
assembly, 37-row statements under SQLite's 999-parameter cap), which made a million-line import
take minutes. On SQLite (3.24+) the statement runs through ``executemany``; on PostgreSQL one
statement per batch takes each column as an array. Either way the database does the duplicate
check against stored rows in the same statement (no SELECT round trip), and the row count says
exactly how many rows were new, races with a concurrent import of the same events included.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from typing import Any

from django.db import connection, transaction
from django.db.models import Field

from flows.ingest.reader import parse_lines
from flows.ingest.records import FlowRecord, IngestSummary, LineError
from flows.iputil import canonical_ip
from flows.models import Cluster, RawFlow

DEFAULT_BATCH_SIZE = 5000
# PostgreSQL advisory lock: shared by every batch insert, taken exclusively by aggregation for a moment.
RAW_FLOW_WRITE_LOCK = 0x6E657473  # "nets"

# Every concrete RawFlow column but the id, in the order _row() produces values.
# tests/ingest/test_store.py checks that this list still covers the model.
COLUMNS = (
    "cluster", "fingerprint", "time", "verdict", "protocol", "src_ip", "dst_ip", "src_port", "dst_port",
    "is_reply", "tcp_flags", "traffic_direction", "node_name",
    "src_namespace", "src_pod", "src_workload_kind", "src_workload_name", "src_reserved",
    "dst_namespace", "dst_pod", "dst_workload_kind", "dst_workload_name", "dst_reserved",
    "dst_service", "dst_names", "dns_query", "dns_ips",
)


def store_records(
    cluster: Cluster, records: Iterable[FlowRecord], batch_size: int = DEFAULT_BATCH_SIZE
) -> tuple[int, int]:
    """Store flow records as raw flows of ``cluster``; return (stored, duplicates).

    Records are consumed lazily and at most ``batch_size`` rows are held at once. A record whose
    fingerprint is already stored for the cluster, or repeats one earlier in the input, is a
    duplicate and is not stored again, so re-importing the same input adds nothing. Each batch is
    one transaction.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    stored = duplicates = 0
    # Fingerprint -> row; a dict drops repeats within the batch before they reach the database.
    batch: dict[str, tuple[Any, ...]] = {}
    for record in records:
        fingerprint = record.fingerprint
        if fingerprint in batch:
            duplicates += 1
            continue
        batch[fingerprint] = _row(cluster.pk, record, fingerprint)
        if len(batch) >= batch_size:
            new = _insert(list(batch.values()))
            stored += new
            duplicates += len(batch) - new
            batch = {}
    if batch:
        new = _insert(list(batch.values()))
        stored += new
        duplicates += len(batch) - new
    return stored, duplicates


def _insert(rows: list[tuple[Any, ...]]) -> int:
    """Insert rows, skipping those whose (cluster, fingerprint) is stored; return how many were new."""
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One statement per batch: each column travels as one array parameter, bound server-side
            # by psycopg's own cursor (Django's default client-side cursor would quote every value in
            # Python), and unnest() turns the arrays back into rows.
            import psycopg

            with psycopg.Cursor(cursor.connection) as raw:
                # Before the sequence hands out ids: aggregation waits for batches in flight before it
                # reads its watermark, so no id below the watermark can still be uncommitted.
                raw.execute("SELECT pg_advisory_xact_lock_shared(%s)", [RAW_FLOW_WRITE_LOCK])
                raw.execute(_postgres_sql(), [list(column) for column in zip(*rows, strict=True)])
                return raw.rowcount
        # sqlite3 runs executemany in C, without a round trip per row: the fastest way there.
        cursor.executemany(_sqlite_sql(), rows)
        return cursor.rowcount


def _fields() -> list[Field]:
    return [RawFlow._meta.get_field(name) for name in COLUMNS]


def _head() -> str:
    quote = connection.ops.quote_name
    return f"INSERT INTO {quote(RawFlow._meta.db_table)} ({', '.join(quote(f.column) for f in _fields())}) "


_TAIL = " ON CONFLICT (cluster_id, fingerprint) DO NOTHING"


@lru_cache(maxsize=1)
def _sqlite_sql() -> str:
    return _head() + "VALUES (" + ", ".join(["%s"] * len(COLUMNS)) + ")" + _TAIL


@lru_cache(maxsize=1)
def _postgres_sql() -> str:
    # Arrays of the base type: a cast to varchar(n) would silently truncate a value the column refuses.
    types = [f.db_type(connection) for f in _fields()]
    arrays = ", ".join(f"%b::{'text' if t.startswith('varchar') else t}[]" for t in types)
    return _head() + f"SELECT * FROM unnest({arrays})" + _TAIL


# Flows repeat the same few thousand addresses: parse each once. Bounded, so memory stays flat.
_canonical_ip = lru_cache(maxsize=65536)(canonical_ip)


def _row(cluster_id: int, record: FlowRecord, fingerprint: str) -> tuple[Any, ...]:
    src, dst = record.source, record.destination
    ops = connection.ops
    return (
        cluster_id,
        fingerprint,
        # The backend's own adaptation: naive UTC text on SQLite, an aware datetime on PostgreSQL.
        ops.adapt_datetimefield_value(record.time),
        record.verdict,
        record.protocol,
        _canonical_ip(src.ip),
        _canonical_ip(dst.ip),
        src.port,
        dst.port,
        record.is_reply,
        ",".join(sorted(record.tcp_flags)),
        record.traffic_direction,
        record.node_name,
        src.namespace, src.pod, src.workload_kind, src.workload_name, src.reserved,
        dst.namespace, dst.pod, dst.workload_kind, dst.workload_name, dst.reserved,
        record.destination_service,
        ops.adapt_json_value(list(record.destination_names), None),
        record.dns_query,
        ops.adapt_json_value([_canonical_ip(ip) for ip in record.dns_ips], None),
    )


def ingest_lines(
    cluster: Cluster,
    lines: Iterable[bytes | str],
    fmt: str,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_errors: int = 20,
    progress: Callable[[IngestSummary], None] | None = None,
    progress_every: int = 1024,
) -> IngestSummary:
    """Parse and store one input; the summary counts every line once (stored, duplicate, skipped or
    malformed) and keeps the first ``max_errors`` errors, so that memory stays bounded however bad
    the input is. ``progress`` is called every ``progress_every`` lines with the running summary."""
    summary = IngestSummary()

    def readable() -> Iterator[bytes | str]:
        # A read failure half-way (disk error, truncated gzip) ends this input, but the lines read
        # before it are still stored: the caller reports the failure from the summary.
        try:
            yield from lines
        except (OSError, EOFError) as exc:
            summary.read_error = str(exc) or type(exc).__name__

    def flows() -> Iterator[FlowRecord]:
        for result in parse_lines(readable(), fmt):
            summary.lines += 1
            if isinstance(result, FlowRecord):
                yield result
            elif isinstance(result, LineError):
                summary.malformed += 1
                if len(summary.errors) < max_errors:
                    summary.errors.append(result)
            else:
                summary.skipped += 1
            if progress is not None and summary.lines % progress_every == 0:
                progress(summary)

    summary.stored, summary.duplicates = store_records(cluster, flows(), batch_size)
    return summary
