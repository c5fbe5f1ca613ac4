"""One input parsed and stored by several processes: ``import_flows --workers N`` on PostgreSQL.

Parsing a Hubble line costs more than storing it, and one Python process uses one core. So the process that reads
the input only cuts it into blocks of ``batch_size`` lines, numbered, and hands them to a pool of ``workers``
processes; each parses its block and stores it as one batch through ``store_records``, on its own database
connection. Nothing else changes:

* duplicates across blocks (an event repeated far apart, two imports of one file at once) are refused by the
  database's unique key, as between two importers, and counted as duplicates from the insert's row count;
* every block commits on its own under the shared ingest lock, so aggregation's watermark stays exact;
* at most two blocks per worker are in flight, so memory stays bounded by the batch size whatever the input;
* line numbers in errors are those of the input, and the first ``max_errors`` errors *by line* are kept.

Workers are forked from the reading process (Django is set up once); the database connections are closed before
the fork, so that no two processes ever share one socket.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor

from django.db import connections

from flows.ingest.reader import parse_lines
from flows.ingest.records import IngestSummary
from flows.models import Cluster

# Blocks in flight per worker: one being worked on, one waiting, so that no worker idles while the reader cuts.
IN_FLIGHT_PER_WORKER = 2


def ingest_in_processes(
    cluster_id: int,
    lines: Iterable[bytes | str],
    fmt: str,
    summary: IngestSummary,
    *,
    workers: int,
    batch_size: int,
    max_errors: int,
    progress: Callable[[IngestSummary], None] | None = None,
) -> IngestSummary:
    """Parse and store ``lines`` in ``workers`` processes; the counts go into ``summary``, which is returned."""
    connections.close_all()
    pending: deque[Future[IngestSummary]] = deque()

    def collect(part: IngestSummary) -> None:
        for counter in ("lines", "stored", "duplicates", "skipped", "malformed"):
            setattr(summary, counter, getattr(summary, counter) + getattr(part, counter))
        summary.errors.extend(part.errors)
        if progress is not None:
            progress(summary)

    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
        try:
            for first_line, block in _blocks(lines, batch_size):
                pending.append(pool.submit(_ingest_block, cluster_id, fmt, first_line, block, batch_size, max_errors))
                while len(pending) >= IN_FLIGHT_PER_WORKER * workers:
                    collect(pending.popleft().result())
            while pending:
                collect(pending.popleft().result())
        finally:
            for future in pending:
                future.cancel()
    summary.errors = sorted(summary.errors, key=lambda error: error.line)[:max_errors]
    return summary


def _blocks(lines: Iterable[bytes | str], size: int) -> Iterator[tuple[int, list[bytes | str]]]:
    """The input in numbered blocks of ``size`` lines: (number of the block's first line, its lines)."""
    block: list[bytes | str] = []
    first = 1
    for line in lines:
        block.append(line)
        if len(block) == size:
            yield first, block
            first += size
            block = []
    if block:
        yield first, block


def _ingest_block(
    cluster_id: int, fmt: str, first_line: int, block: list[bytes | str], batch_size: int, max_errors: int
) -> IngestSummary:
    """In a worker: parse one block and store its flows; the block's counts and its first errors."""
    from flows.store.raw_flows import counted, store_records

    part = IngestSummary()
    results = parse_lines(block, fmt, first_line=first_line, start_of_input=first_line == 1)
    part.stored, part.duplicates = store_records(Cluster(pk=cluster_id), counted(results, part, max_errors),
                                                 batch_size)
    return part
