"""Ingestion over HTTP (design §8): flow lines and inventory dumps through the write paths of the commands.

Part of the service layer: each function takes the acting user first. Ingesting is for the Admin role everywhere;
a cluster the user may not see does not exist for them (``ScopeError``).

What comes in is hostile until read. The body is read at most ``NETSEC_MAX_UPLOAD_BYTES``, and so is what it
decompresses to: gzip is decompressed as a stream, chunk by chunk, so that a gzip bomb stops at the limit rather
than filling memory (``TooLarge``, HTTP 413). It goes to a temporary file (memory for the first few MB, disk past
them) and is checked whole, UTF-8 and all, before anything is written: a refused upload leaves nothing behind.

Idempotency: a batch sent with a key is recorded (``IngestBatch``) with its answer and the SHA-256 of its content,
after its work is done. The same key and content again answer that answer with ``replayed: true`` and store
nothing; the same key with other content is refused, rather than silently dropping a different batch. Flows are
idempotent by themselves as well (each event's fingerprint is stored once), so a retry of a call that failed
half-way stores no flow twice.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import IO, Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from flows import access
from flows.ingest.inventory import Snapshot, parse_bytes
from flows.ingest.reader import FORMATS
from flows.models import Cluster, IngestBatch
from flows.store.inventory import apply_snapshot
from flows.store.raw_flows import ingest_lines
from flows.tasks import aggregate_flows
from policies.adapter import ScopeError
from policies.services import audit

MAX_ERRORS = 20  # malformed lines reported by line number; all of them are counted
MAX_KEY_LENGTH = 200  # IngestBatch.key
GZIP_MAGIC = b"\x1f\x8b"  # never the start of UTF-8 text (0x8b is a continuation byte)
_CHUNK = 64 * 1024
_IN_MEMORY = 4 * 1024 * 1024  # the temporary file stays in memory up to this size

Body = bytes | IO[bytes]


class TooLarge(ValueError):
    """The body, or what it decompresses to, passes the upload limit (HTTP 413)."""

    def __init__(self, limit: int, *, decompressed: bool = False) -> None:
        what = "decompresses to more than" if decompressed else "is larger than"
        super().__init__(f"body: the upload {what} the limit of {limit:,} bytes (NETSEC_MAX_UPLOAD_BYTES); "
                         "send it in smaller batches")


# --------------------------------------------------------------------------------------------- services


def ingest_flows(user: Any, cluster: str, body: Body, *, fmt: str, key: str | None = None,
                 gzipped: bool = False) -> dict[str, Any]:
    """Store flow lines (``fmt``: hubble or netsec) as raw flows of ``cluster``, then aggregate them.

    The answer counts every line once (stored, duplicate, skipped or malformed; malformed lines are reported
    with their line numbers, the first MAX_ERRORS of them) and says whether aggregation ran inline (Celery is
    eager: "done") or was queued.
    """
    target = _cluster(user, cluster, "ingesting flows")
    if fmt not in FORMATS:
        raise ValueError(f"format: {fmt!r} is not a flow format; use one of {', '.join(sorted(FORMATS))}")
    key = _key(key)
    with _content(body, gzipped=gzipped) as (content, digest):
        if (replay := _replay(target, IngestBatch.Kind.FLOWS, key, digest)) is not None:
            return replay
        _check_utf8(content)
        summary = ingest_lines(target, content, fmt, max_errors=MAX_ERRORS)
    # Always, even when every line was a duplicate: a retry after a failed aggregation must still aggregate.
    aggregate_flows.delay(target.id)
    answer = {
        "lines": summary.lines, "stored": summary.stored, "duplicates": summary.duplicates,
        "skipped": summary.skipped, "malformed": summary.malformed,
        "errors": [{"line": e.line, "field": e.field, "message": e.message} for e in summary.errors],
        "replayed": False, "aggregation": "done" if aggregate_flows.app.conf.task_always_eager else "queued",
    }
    details = {k: answer[k] for k in ("lines", "stored", "duplicates", "skipped", "malformed")}
    return _record(user, target, IngestBatch.Kind.FLOWS, key, digest, answer, "flows.ingested",
                   format=fmt, **details)


def ingest_inventory(user: Any, cluster: str, body: Body, *, partial: bool = False, key: str | None = None,
                     gzipped: bool = False, source: str = "upload") -> dict[str, Any]:
    """Import a ``kubectl get ... -o yaml|json`` dump as the inventory of ``cluster``, as ``import_inventory`` does.

    Everything is parsed before anything is written, and the write is one transaction: a bad item anywhere is an
    ``InventoryError`` (a ValueError naming ``source``, line, document, item and field) and changes nothing.
    ``partial``: the dump is not the whole cluster, so nothing is marked deleted.
    """
    target = _cluster(user, cluster, "importing an inventory")
    key = _key(key)
    with _content(body, gzipped=gzipped) as (content, digest):
        raw = content.read()
    if (replay := _replay(target, IngestBatch.Kind.INVENTORY, key, digest)) is not None:
        return replay
    objects, ignored = parse_bytes(raw, source)
    snapshot = Snapshot.of(objects, ignored=ignored)
    # The import and its record commit together. Should another call with the same key and content have been
    # recorded meanwhile, the import changed what that one did (nothing more) and its answer is the answer; with
    # other content, the ValueError undoes this import.
    with transaction.atomic():
        stats = apply_snapshot(target, snapshot, observed_at=timezone.now(), full=not partial)
        answer = {
            "objects": len(snapshot.objects), "mode": "partial" if partial else "full",
            "kinds": {kind: asdict(counts) for kind, counts in stats.kinds.items()},
            "ignored": dict(stats.ignored), "addresses_opened": stats.addresses_opened,
            "addresses_closed": stats.addresses_closed, "placeholders": stats.placeholders[:MAX_ERRORS],
            "replayed": False,
        }
        return _record(user, target, IngestBatch.Kind.INVENTORY, key, digest, answer, "inventory.imported",
                       mode=answer["mode"], objects=answer["objects"])


# ----------------------------------------------------------------------------------------------- helpers


def _cluster(user: Any, name: str, what: str) -> Cluster:
    """The cluster, if the user may see it (else ScopeError, as for one that does not exist), for an Admin."""
    found = Cluster.objects.restrict(user).filter(name=name).first()
    if found is None:
        raise ScopeError(f"cluster {name!r} does not exist")
    access.require_everywhere(user, "admin", what)
    return found


def _key(key: str | None) -> str | None:
    if key is None or not key.strip():
        return None
    key = key.strip()
    if len(key) > MAX_KEY_LENGTH or not (key.isascii() and key.isprintable()):
        raise ValueError(f"Idempotency-Key: 1 to {MAX_KEY_LENGTH} printable ASCII characters")
    return key


class _Capped(io.RawIOBase):
    """A stream that raises TooLarge as soon as more than ``limit`` bytes come out of it."""

    def __init__(self, stream: IO[bytes], limit: int) -> None:
        self._stream, self._left, self._limit = stream, limit, limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._stream.read(min(len(buffer), self._left + 1))
        if len(data) > self._left:
            raise TooLarge(self._limit)
        self._left -= len(data)
        buffer[: len(data)] = data
        return len(data)


@contextmanager
def _content(body: Body, *, gzipped: bool) -> Iterator[tuple[IO[bytes], str]]:
    """The content of the body in a temporary file at offset 0, and its SHA-256; TooLarge past the limit.

    Decompressed when ``gzipped`` (Content-Encoding: gzip) or when it starts as gzip does (a `.gz` file sent
    as it is). Nothing past the limit is read, compressed or not.
    """
    limit = settings.NETSEC_MAX_UPLOAD_BYTES
    raw = io.BufferedReader(_Capped(io.BytesIO(body) if isinstance(body, bytes) else body, limit), _CHUNK)
    compressed = gzipped or raw.peek(2)[:2] == GZIP_MAGIC
    reader: IO[bytes] = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
    digest = hashlib.sha256()
    with tempfile.SpooledTemporaryFile(max_size=_IN_MEMORY) as content:
        try:
            while chunk := reader.read(_CHUNK):  # GzipFile.read(n) inflates at most n bytes: a bomb stays a chunk
                if content.tell() + len(chunk) > limit:
                    raise TooLarge(limit, decompressed=True)
                digest.update(chunk)
                content.write(chunk)
        except (OSError, EOFError, zlib.error) as exc:
            problem = "not valid gzip" if compressed else "cannot be read"
            raise ValueError(f"body: {problem}: {exc or type(exc).__name__}") from None
        content.seek(0)
        yield content, digest.hexdigest()


def _check_utf8(content: IO[bytes]) -> None:
    """ValueError naming the line and byte of the first bytes that are not UTF-8; the file is left at 0."""
    offset = 0
    for number, line in enumerate(content, start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"body: not UTF-8 text (line {number}, byte {offset + exc.start})") from None
        offset += len(line)
    content.seek(0)


def _replay(cluster: Cluster, kind: str, key: str | None, digest: str) -> dict[str, Any] | None:
    """The first answer to this key, if the key was used; ValueError if it was, for other content."""
    if key is None:
        return None
    batch = IngestBatch.objects.filter(cluster=cluster, kind=kind, key=key).first()
    if batch is None:
        return None
    answer = dict(batch.summary)
    if answer.pop("sha256", None) != digest:
        raise ValueError(f"Idempotency-Key: {key!r} was used for another {kind} batch of cluster {cluster.name!r}; "
                         "send a new batch with a new key")
    return {**answer, "replayed": True}


def _record(user: Any, cluster: Cluster, kind: str, key: str | None, digest: str, answer: dict[str, Any],
            action: str, **details: Any) -> dict[str, Any]:
    """Record the batch under its key (if any) and the audit event; the answer, or the first one if another call
    with the same key was recorded in the meantime (both stored the same, so only one counts)."""
    try:
        with transaction.atomic():
            if key is not None:
                IngestBatch.objects.create(cluster=cluster, kind=kind, key=key, summary={**answer, "sha256": digest})
            audit(user, action, f"cluster {cluster.name}", cluster=cluster.name, key=key or "", **details)
    except IntegrityError:
        replay = _replay(cluster, kind, key, digest)
        if replay is None:
            raise
        return replay
    return answer
