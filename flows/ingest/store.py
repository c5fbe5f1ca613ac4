"""Writing parsed flows as RawFlow rows: batched, idempotent, with memory bounded by the batch size."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from django.db import connection, transaction

from flows.ingest.reader import parse_lines
from flows.ingest.records import FlowRecord, IngestSummary, LineError
from flows.iputil import canonical_ip
from flows.models import Cluster, RawFlow

DEFAULT_BATCH_SIZE = 5000


def store_records(
    cluster: Cluster, records: Iterable[FlowRecord], batch_size: int = DEFAULT_BATCH_SIZE
) -> tuple[int, int]:
    """Store flow records as raw flows of ``cluster``; return (stored, duplicates).

    Records are consumed lazily and at most ``batch_size`` rows are held at once. A record whose
    fingerprint is already stored for the cluster, or repeats one earlier in the input, is a
    duplicate and is not stored again, so re-importing the same input adds nothing.

    Each batch costs one SELECT of the fingerprints already stored, then one bulk INSERT with
    conflicts ignored. The SELECT makes the counts right; the ignored conflicts only matter when
    another import stores the same events between the two statements, in which case those rows
    count as stored by both imports but still exist once.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    stored = duplicates = 0
    batch: dict[str, RawFlow] = {}
    for record in records:
        fingerprint = record.fingerprint
        if fingerprint in batch:
            duplicates += 1
            continue
        batch[fingerprint] = _raw_flow(cluster, record, fingerprint)
        if len(batch) >= batch_size:
            new = _flush(cluster, batch)
            stored += new
            duplicates += len(batch) - new
            batch = {}
    if batch:
        new = _flush(cluster, batch)
        stored += new
        duplicates += len(batch) - new
    return stored, duplicates


def _flush(cluster: Cluster, batch: dict[str, RawFlow]) -> int:
    """Insert the rows of a batch that are not stored yet; return how many that was."""
    existing = _stored_fingerprints(cluster, list(batch))
    rows = [row for fingerprint, row in batch.items() if fingerprint not in existing]
    if rows:
        with transaction.atomic():
            RawFlow.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


def _stored_fingerprints(cluster: Cluster, fingerprints: list[str]) -> set[str]:
    # SQLite builds may cap bound parameters at 999 (one of them is the cluster id); PostgreSQL has no
    # such cap (None): there it is one query per batch.
    limit = connection.features.max_query_params
    step = limit - 1 if limit else len(fingerprints)
    stored = RawFlow.objects.filter(cluster=cluster)
    found: set[str] = set()
    for start in range(0, len(fingerprints), step):
        chunk = fingerprints[start:start + step]
        found.update(stored.filter(fingerprint__in=chunk).values_list("fingerprint", flat=True))
    return found


def _raw_flow(cluster: Cluster, record: FlowRecord, fingerprint: str) -> RawFlow:
    src, dst = record.source, record.destination
    return RawFlow(
        cluster=cluster,
        fingerprint=fingerprint,
        time=record.time,
        verdict=record.verdict,
        protocol=record.protocol,
        src_ip=canonical_ip(src.ip),
        dst_ip=canonical_ip(dst.ip),
        src_port=src.port,
        dst_port=dst.port,
        is_reply=record.is_reply,
        tcp_flags=",".join(sorted(record.tcp_flags)),
        traffic_direction=record.traffic_direction,
        node_name=record.node_name,
        src_namespace=src.namespace,
        src_pod=src.pod,
        src_workload_kind=src.workload_kind,
        src_workload_name=src.workload_name,
        src_reserved=src.reserved,
        dst_namespace=dst.namespace,
        dst_pod=dst.pod,
        dst_workload_kind=dst.workload_kind,
        dst_workload_name=dst.workload_name,
        dst_reserved=dst.reserved,
        dst_service=record.destination_service,
        dst_names=list(record.destination_names),
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
