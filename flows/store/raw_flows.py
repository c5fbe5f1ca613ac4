"""Writing parsed flows as RawFlow rows: batched, idempotent, with memory bounded by the batch size.

Rows are written with ``INSERT ... ON CONFLICT (cluster_id, fingerprint) DO NOTHING`` rather than
``bulk_create``: the ORM spends ~200 µs of Python per 25-column row (field preparation, SQL
assembly, 37-row statements under SQLite's 999-parameter cap), which made a million-line import
take minutes. On SQLite (3.24+) the statement runs through ``executemany``; on PostgreSQL one
statement per batch takes each column as an array. Either way the database does the duplicate
check against stored rows in the same statement (no SELECT round trip), and the row count says
exactly how many rows were new, races with a concurrent import of the same events included.

On PostgreSQL the table is partitioned by range of ``time``, one partition per UTC day, so that retention
drops a day instead of deleting its rows. A row with no partition for its day would be refused, and flows
can be of any day (backfills, replays, tests with fixed dates), so every batch first makes sure the
partitions of its days exist (``ensure_partitions_for``): the days known to exist are cached in the
process, the catalog is asked about the others, and a missing one is created as a plain table then
attached. That takes a SHARE UPDATE EXCLUSIVE lock on the parent, which lets inserts and reads go on
(``CREATE TABLE ... PARTITION OF`` would take ACCESS EXCLUSIVE and stall every ingest behind a long
aggregation). Creators serialise on an advisory lock and look again once they hold it, so two processes
that want the same day never fail each other. Should a partition vanish under a batch (retention dropped
an old day another process still thought existed), the batch forgets the day, recreates it and retries.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

import orjson
from django.db import connection, transaction
from django.db.models import Field

from flows.ingest.reader import parse_lines
from flows.ingest.records import FlowRecord, IngestSummary, LineError
from flows.iputil import canonical_ip
from flows.models import Cluster, RawFlow

DEFAULT_BATCH_SIZE = 5000
# PostgreSQL advisory lock, one per cluster (``write_lock``): shared by every batch insert of the cluster, taken
# exclusively by the cluster's aggregation for a moment. Per cluster, so that aggregating one cluster never holds
# up the imports of the others.
RAW_FLOW_WRITE_LOCK = 0x6E657473  # "nets"


def write_lock(cluster_id: int) -> int:
    """The advisory lock key of a cluster's raw flow writes: "nets" and the cluster id, in one bigint."""
    return RAW_FLOW_WRITE_LOCK << 32 | cluster_id & 0xFFFFFFFF
# PostgreSQL advisory lock taken (per transaction) by whoever creates a day partition of the raw flows.
PARTITION_LOCK = 0x6E657470  # "netp"
# How often a batch retries after a partition it counted on was dropped under it.
PARTITION_RETRIES = 3

log = logging.getLogger(__name__)

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
    adapt_time = connection.ops.adapt_datetimefield_value
    for record in records:
        fingerprint = record.fingerprint
        if fingerprint in batch:
            duplicates += 1
            continue
        batch[fingerprint] = _row(cluster.pk, record, fingerprint, adapt_time)
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
    """Insert rows (all of one cluster), skipping those whose (cluster, time, fingerprint) is stored; return how
    many were new."""
    if connection.vendor != "postgresql":
        with transaction.atomic(), connection.cursor() as cursor:
            # sqlite3 runs executemany in C, without a round trip per row: the fastest way there.
            cursor.executemany(_sqlite_sql(), rows)
            return cursor.rowcount
    import psycopg

    time_index = COLUMNS.index("time")
    days = {_day(row[time_index]) for row in rows}
    for attempt in range(PARTITION_RETRIES + 1):
        # Outside the insert's transaction (when the caller has none open): a new partition is committed at
        # once, and the insert does not hold its locks while another creator waits.
        ensure_partitions_for(days)
        try:
            # The batch goes by COPY into a temporary staging table (no WAL, no index, emptied at commit),
            # then one INSERT ... SELECT moves it over with the duplicate check. psycopg's own cursor writes
            # the COPY rows in C; Django's cursor would quote every value in Python.
            with transaction.atomic(), connection.cursor() as cursor, psycopg.Cursor(cursor.connection) as raw:
                # Before the sequence hands out ids: aggregation waits for batches in flight before it
                # reads its watermark, so no id below the watermark can still be uncommitted.
                raw.execute("SELECT pg_advisory_xact_lock_shared(%s)", [write_lock(rows[0][0])])
                # Made in the batch's own transaction when missing: a pooler that hands each transaction to
                # another server connection (PgBouncer's transaction mode) finds it there too.
                raw.execute(_staging_sql())
                with raw.copy(_copy_sql()) as copy:
                    for row in rows:
                        copy.write_row(row)
                raw.execute(_move_sql())
                moved = raw.rowcount
                # Emptied now: ON COMMIT DELETE ROWS alone would leave this batch in it when the caller's
                # transaction spans several batches (each batch is then a savepoint, and nothing commits in
                # between). A TRUNCATE, not a DELETE in the move: it costs the server 15 % less per batch.
                raw.execute(f"TRUNCATE {STAGING_TABLE}")
                return moved
        except psycopg.errors.CheckViolation as exc:
            if not _is_missing_partition(exc) or attempt == PARTITION_RETRIES:
                raise
            log.info("a raw flow partition was dropped under a batch; recreating it (%s)", exc)
            forget_partitions(partition_name(day) for day in days)
    raise AssertionError("unreachable")


def _is_missing_partition(exc: Exception) -> bool:
    return str(getattr(getattr(exc, "diag", None), "message_primary", "") or "").startswith("no partition of")


def _fields() -> list[Field]:
    return [RawFlow._meta.get_field(name) for name in COLUMNS]


def _head() -> str:
    quote = connection.ops.quote_name
    return f"INSERT INTO {quote(RawFlow._meta.db_table)} ({', '.join(quote(f.column) for f in _fields())}) "


# The columns of the uniq_raw_flow constraint: a partitioned table's unique keys include its partition key.
_TAIL = " ON CONFLICT (cluster_id, time, fingerprint) DO NOTHING"


@lru_cache(maxsize=1)
def _sqlite_sql() -> str:
    return _head() + "VALUES (" + ", ".join(["%s"] * len(COLUMNS)) + ")" + _TAIL


# PostgreSQL: the temporary table each batch is copied into before it is moved to the raw flows.
STAGING_TABLE = "netsec_raw_flow_batch"
# Columns held as JSON text in the batch, which the move casts to jsonb.
_JSON_COLUMNS = ("dst_names", "dns_ips")


@lru_cache(maxsize=1)
def _staging_sql() -> str:
    # The base types of the columns, without their lengths: a value the column refuses (too long) must fail
    # in the move, naming the column, not be cut here. JSON travels as text, parsed once by the cast.
    def base(field: Field) -> str:
        kind = field.db_type(connection)
        return "text" if kind.startswith("varchar") or field.column in _JSON_COLUMNS else kind
    columns = ", ".join(f"{connection.ops.quote_name(f.column)} {base(f)}" for f in _fields())
    return f"CREATE TEMPORARY TABLE IF NOT EXISTS {STAGING_TABLE} ({columns}) ON COMMIT DELETE ROWS"


@lru_cache(maxsize=1)
def _copy_sql() -> str:
    quote = connection.ops.quote_name
    return f"COPY {STAGING_TABLE} ({', '.join(quote(f.column) for f in _fields())}) FROM STDIN"


@lru_cache(maxsize=1)
def _move_sql() -> str:
    quote = connection.ops.quote_name
    values = ", ".join(quote(f.column) + ("::jsonb" if f.column in _JSON_COLUMNS else "") for f in _fields())
    return _head() + f"SELECT {values} FROM {STAGING_TABLE}" + _TAIL


# ------------------------------------------------------------------------------ day partitions (PostgreSQL)

DAY = timedelta(days=1)
# Partitions known to exist, per database (a test run switches databases within one process).
_known: dict[str, set[str]] = {}


def _day(value: datetime | date) -> date:
    """The UTC day a time falls in (a naive time is UTC, as the flow store and Django's UTC setting make it)."""
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).date()
    return value


def partition_name(day: date) -> str:
    """``flows_rawflow_p20261120``: the partition of one UTC day."""
    return f"{RawFlow._meta.db_table}_p{day:%Y%m%d}"


def partition_day(name: str) -> date | None:
    """The day of a partition named by ``partition_name``; None for any other table."""
    prefix = f"{RawFlow._meta.db_table}_p"
    if not name.startswith(prefix) or len(name) != len(prefix) + 8:
        return None
    try:
        return datetime.strptime(name[len(prefix):], "%Y%m%d").date()
    except ValueError:
        return None


def partition_bounds(day: date) -> str:
    """``FOR VALUES FROM (...) TO (...)`` of a day's partition. Literals (DDL takes no parameters), made from
    a date, with an explicit offset so that a bound means the same whatever the session's time zone."""
    def bound(d: date) -> str:
        return datetime.combine(d, time(0), tzinfo=UTC).isoformat(sep=" ")
    return f"FOR VALUES FROM ('{bound(day)}') TO ('{bound(day + DAY)}')"


def _cache() -> set[str]:
    return _known.setdefault(connection.settings_dict["NAME"], set())


def forget_partitions(names: Iterable[str]) -> None:
    """Drop names from this process's cache (a partition was dropped, or a batch found one missing)."""
    _cache().difference_update(names)


def attached_partitions() -> dict[str, date]:
    """The day partitions attached to the raw flow table, as the catalog says now: name → day."""
    if connection.vendor != "postgresql":
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass AND NOT i.inhdetachpending",
            [RawFlow._meta.db_table],
        )
        names = [name for (name,) in cursor.fetchall()]
    return {name: day for name in names if (day := partition_day(name)) is not None}


def ensure_partitions_for(times: Iterable[datetime | date]) -> list[str]:
    """Make sure the day partitions of ``times`` exist (PostgreSQL; nothing on SQLite); return those created.

    Known days cost nothing; the catalog is asked once for the others. Names are cached only once the
    transaction that saw or made them commits: a partition created in a transaction that rolls back is gone.
    """
    if connection.vendor != "postgresql":
        return []
    cache = _cache()
    wanted = {partition_name(day): day for day in map(_day, times)}
    missing = {name: day for name, day in wanted.items() if name not in cache}
    if not missing:
        return []
    existing = attached_partitions()
    created = [name for name, day in sorted(missing.items()) if name not in existing and _create_partition(name, day)]
    found = set(missing)
    transaction.on_commit(lambda: cache.update(found))
    return created


def _create_partition(name: str, day: date) -> bool:
    """Create and attach one day's partition unless another process just did; True when this call made it."""
    table = RawFlow._meta.db_table
    quote = connection.ops.quote_name
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [PARTITION_LOCK])
        # Looked for again under the lock: whoever held it before us may have made this very partition.
        cursor.execute(
            "SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass AND c.relname = %s",
            [table, name],
        )
        if cursor.fetchone():
            return False
        # LIKE copies the columns, NOT NULL and CHECK constraints that ATTACH requires; ATTACH adds the
        # parent's indexes and foreign key. An unattached leftover of the same name (nothing we make) is used.
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {quote(name)} (LIKE {quote(table)} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
        )
        cursor.execute(f"ALTER TABLE {quote(table)} ATTACH PARTITION {quote(name)} {partition_bounds(day)}")
    log.info("created raw flow partition %s", name)
    return True


# Flows repeat the same few thousand addresses: parse each once. Bounded, so memory stays flat.
_canonical_ip = lru_cache(maxsize=65536)(canonical_ip)


_EMPTY_JSON_LIST = "[]"


def _json_list(values: Iterable[str]) -> str:
    """A list of strings as JSON text: the same text on both databases (SQLite stores it as it is)."""
    return orjson.dumps(list(values)).decode() if values else _EMPTY_JSON_LIST


def _row(
    cluster_id: int, record: FlowRecord, fingerprint: str, adapt_time: Callable[[datetime], Any]
) -> tuple[Any, ...]:
    src, dst = record.source, record.destination
    return (
        cluster_id,
        fingerprint,
        # The backend's own adaptation: naive UTC text on SQLite, an aware datetime on PostgreSQL.
        adapt_time(record.time),
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
        _json_list(record.destination_names),
        record.dns_query,
        _json_list([_canonical_ip(ip) for ip in record.dns_ips]) if record.dns_ips else _EMPTY_JSON_LIST,
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
    workers: int = 1,
) -> IngestSummary:
    """Parse and store one input; the summary counts every line once (stored, duplicate, skipped or
    malformed) and keeps the first ``max_errors`` errors, so that memory stays bounded however bad
    the input is. ``progress`` is called every ``progress_every`` lines with the running summary.

    With ``workers`` > 1 the lines are parsed and stored by that many processes (``flows.store.parallel``)
    when the database is PostgreSQL and no transaction is open; otherwise in this process."""
    summary = IngestSummary()

    def readable() -> Iterator[bytes | str]:
        # A read failure half-way (disk error, truncated gzip) ends this input, but the lines read
        # before it are still stored: the caller reports the failure from the summary.
        try:
            yield from lines
        except (OSError, EOFError) as exc:
            summary.read_error = str(exc) or type(exc).__name__

    if workers > 1 and connection.vendor == "postgresql" and not connection.in_atomic_block:
        from flows.store.parallel import ingest_in_processes

        return ingest_in_processes(cluster.pk, readable(), fmt, summary, workers=workers, batch_size=batch_size,
                                   max_errors=max_errors, progress=progress)
    records = counted(parse_lines(readable(), fmt), summary, max_errors, progress, progress_every)
    summary.stored, summary.duplicates = store_records(cluster, records, batch_size)
    return summary


def counted(
    results: Iterable[FlowRecord | LineError | Any],
    summary: IngestSummary,
    max_errors: int,
    progress: Callable[[IngestSummary], None] | None = None,
    progress_every: int = 1024,
) -> Iterator[FlowRecord]:
    """The flow records among parse results, each result counted in ``summary`` (the first errors kept)."""
    for result in results:
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
