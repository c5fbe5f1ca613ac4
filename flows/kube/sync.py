"""The live sync: the inventory read from the Kubernetes API, written through the one upsert path.

``sync_cluster(cluster)`` lists every resource of ``RESOURCES`` at the cluster scope and applies the whole
as one snapshot, with ``import_inventory``'s code (``parse_object`` then ``apply_snapshot``). What it
does to the cluster's rows depends on how the lists went:

- every list complete: a *full* snapshot of every namespace. Objects that are not listed any more, those of
  a namespace that is gone included, are soft-deleted and their pod addresses closed;
- some list failed after its retries (or some of its items could not be read): what was listed is upserted
  and nothing at all is deleted (``full=False``). A missing list says nothing about what exists, and a
  sync that deleted every pod because the pod list timed out would unresolve every flow.

Each attempt is recorded on the cluster (``last_sync*`` fields) for the admin and the status page.

``watch_pods`` follows pod changes between two full lists (``manage.py sync_cluster --watch``): the
events go through the same write path, so a new pod's address resolves flows within a second or so rather
than at the next periodic sync. ``sync_and_watch`` strings the two together: list, watch from the list's
resourceVersion, and list afresh whenever the server says that version is too old (410 Gone).
"""

from __future__ import annotations

import contextlib
import math
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import orjson
from django.db import close_old_connections, transaction
from django.utils import timezone

from flows.ingest.inventory import FieldError, InventoryObj, PodObj, Snapshot, parse_object
from flows.kube.api import (
    ApiError,
    ApiOptions,
    KubeApi,
    KubeConfigError,
    Listing,
    Target,
    list_all,
    watch_lines,
)
from flows.kube.resources import RESOURCES, Resource
from flows.models import Cluster
from flows.store.inventory import ImportStats, KindStats, apply_snapshot

POD_RESOURCE: Resource = next(r for r in RESOURCES if r.kind == "Pod")
_PROBLEMS_SHOWN = 3  # unreadable items named per kind in the error; the count says how many more
_PLACEHOLDERS_KEPT = 20  # placeholder names kept in the summary JSON


def target_for(cluster: Cluster, kubeconfig: str | None = None, context: str | None = None) -> Target:
    """Where this run reads the API: the options given, else the cluster's settings (in-cluster, or its
    kubeconfig and context), else the client's default kubeconfig and its current context.

    A context alone is looked up in the cluster's kubeconfig; another kubeconfig alone is read with its own
    current context (the cluster's context names one in the cluster's file, maybe not in that one).
    """
    if kubeconfig:
        return Target(kubeconfig, context or "")
    if context:
        return Target(cluster.kubeconfig, context)
    if cluster.in_cluster:
        return Target(in_cluster=True)
    return Target(cluster.kubeconfig, cluster.context)


# ----------------------------------------------------------------------------------------------- result


@dataclass
class KindSummary:
    """How the list of one kind went."""

    listed: int = 0  # items the API returned
    pages: int = 0
    retries: int = 0  # failed requests tried again
    restarts: int = 0  # lists begun again after their continue token expired
    unreadable: int = 0  # items that parse_object refused
    error: str = ""  # why the kind counts as failed; "" when it was listed completely
    resource_version: str = ""  # of the list, where a watch of the kind may start
    skipped: bool = False  # not tried: an earlier list failed in a way every request would


@dataclass
class SyncResult:
    """What one sync did: the one-line ``str()`` is for logs and the Celery result, ``summary()`` the JSON
    recorded on the cluster."""

    cluster: str
    ok: bool
    started: datetime
    duration: float = 0.0
    full: bool = False  # whether deletions were applied (every list complete)
    source: str = ""  # where the API settings came from
    api: str = ""  # the API server's URL
    kinds: dict[str, KindSummary] = field(default_factory=dict)
    stats: ImportStats = field(default_factory=ImportStats)
    error: str = ""
    observed_at: datetime | None = None

    @property
    def failed(self) -> dict[str, str]:
        return {kind: s.error for kind, s in self.kinds.items() if s.error}

    @property
    def listed(self) -> int:
        return sum(s.listed for s in self.kinds.values())

    def summary(self) -> dict[str, Any]:
        stats = self.stats
        return {
            "ok": self.ok,
            "full": self.full,
            "source": self.source,
            "api": self.api,
            "started": self.started.isoformat(),
            "observed_at": self.observed_at.isoformat() if self.observed_at else None,
            "duration": round(self.duration, 3),
            "kinds": {kind: asdict(s) for kind, s in self.kinds.items()},
            "failed": self.failed,
            "import": {
                "kinds": {kind: asdict(s) for kind, s in stats.kinds.items()},
                "addresses_opened": stats.addresses_opened,
                "addresses_closed": stats.addresses_closed,
                "placeholders": len(stats.placeholders),
                "placeholder_names": stats.placeholders[:_PLACEHOLDERS_KEPT],
                "ignored": dict(stats.ignored),
            },
            "error": self.error,
        }

    def __str__(self) -> str:
        kinds = self.stats.kinds.values()
        written = (f"{sum(s.created for s in kinds)} created, {sum(s.updated for s in kinds)} updated, "
                   f"{sum(s.deleted for s in kinds)} deleted, {self.stats.addresses_opened} addresses opened, "
                   f"{self.stats.addresses_closed} closed")
        took = f"in {self.duration:.1f}s"
        if self.ok:
            return f"{self.cluster}: synced {self.listed} objects of {len(self.kinds)} kinds {took}: {written}"
        if not self.kinds:
            return f"{self.cluster}: sync failed {took}: {self.error}"
        return (f"{self.cluster}: sync failed for {', '.join(self.failed)} {took}; {self.listed} objects upserted, "
                f"nothing deleted: {written}")


# ------------------------------------------------------------------------------------------- recording


def _apply(cluster: Cluster, snapshot: Snapshot, *, observed_at: datetime, full: bool) -> ImportStats:
    """apply_snapshot, with the cluster's row locked: the periodic sync and a watch of the same cluster
    write one after the other, never interleaved (PostgreSQL; SQLite serialises writers anyway)."""
    with transaction.atomic():
        Cluster.objects.select_for_update().filter(pk=cluster.pk).values_list("pk", flat=True).first()
        return apply_snapshot(cluster, snapshot, observed_at=observed_at, full=full)


def record(cluster: Cluster, result: SyncResult) -> None:
    """Store how the attempt went on the cluster (an UPDATE of those fields only: an admin may be editing
    the others)."""
    finished = timezone.now()
    values: dict[str, Any] = {
        "last_sync_attempt": finished,
        "last_sync_duration": result.duration,
        "last_sync_error": result.error,
        "last_sync_summary": result.summary(),
    }
    if result.ok:
        values["last_sync"] = finished
    Cluster.objects.filter(pk=cluster.pk).update(**values)
    for name, value in values.items():
        setattr(cluster, name, value)


def record_failure(cluster: Cluster, error: str, *, started: datetime, source: str = "") -> SyncResult:
    """Record an attempt that failed before anything was listed (bad API settings) and return its result."""
    result = SyncResult(cluster.name, ok=False, started=started, source=source, error=error,
                        duration=(timezone.now() - started).total_seconds())
    record(cluster, result)
    return result


# ------------------------------------------------------------------------------------------------ sync


def _describe(item: object, kind: str) -> str:
    metadata = item.get("metadata") if isinstance(item, dict) else None
    if not isinstance(metadata, dict):
        return kind
    name, namespace = metadata.get("name"), metadata.get("namespace")
    if isinstance(name, str) and name:
        return f"{kind} {namespace}/{name}" if isinstance(namespace, str) and namespace else f"{kind} {name}"
    return kind


def _read(listing: Listing, objects: list[InventoryObj], ignored: Counter[str]) -> KindSummary:
    """Parse the items of one list into ``objects``; the summary says what the list took and what failed."""
    kind = listing.resource.kind
    summary = KindSummary(listed=len(listing.items), pages=listing.pages, retries=listing.attempts.retries,
                          restarts=listing.attempts.restarts, resource_version=listing.resource_version)
    problems: list[str] = []
    for item in listing.items:
        try:
            parsed = parse_object(item, kind=kind)  # List items carry no kind of their own
        except FieldError as exc:
            problems.append(f"{_describe(item, kind)}: {exc}")
            continue
        if parsed is None:
            ignored[kind] += 1  # an EndpointSlice that no Service owns
        else:
            objects.append(parsed)
    listing.items = []  # the raw JSON is no longer needed: keep one copy of the cluster in memory, not two
    summary.unreadable = len(problems)
    if listing.error is not None:
        summary.error = listing.error.message
    elif problems:
        more = len(problems) - _PROBLEMS_SHOWN
        shown = "; ".join(problems[:_PROBLEMS_SHOWN]) + (f"; and {more} more" if more > 0 else "")
        summary.error = f"{len(problems)} of {summary.listed} items could not be read: {shown}"
    return summary


def sync_cluster(cluster: Cluster, *, kubeconfig: str | None = None, context: str | None = None,
                 options: ApiOptions | None = None, api: KubeApi | None = None) -> SyncResult:
    """List the cluster's API into its inventory and record the attempt on it; never raises for API
    failures (they are in the result and on the cluster), only for database errors.

    The API settings are ``api`` when given (kept open), else those of ``target_for(cluster, kubeconfig,
    context)``. ``options`` tune page size, timeouts and retries.
    """
    started = timezone.now()
    clock = time.monotonic()
    own = api is None
    if api is None:
        target = target_for(cluster, kubeconfig, context)
        try:
            api = KubeApi.connect(target, options)
        except KubeConfigError as exc:
            return record_failure(cluster, str(exc), started=started, source=str(target))
    result = SyncResult(cluster.name, ok=False, started=started, source=str(api.target), api=api.host)
    try:
        objects: list[InventoryObj] = []
        ignored: Counter[str] = Counter()
        unreachable: ApiError | None = None
        for resource in RESOURCES:
            if unreachable is not None:
                # The server cannot be reached, or refuses these credentials: every other list would fail alike.
                result.kinds[resource.kind] = KindSummary(error="not listed: an earlier list failed in a way "
                                                                "every request would", skipped=True)
                continue
            listing = list_all(api, resource)
            if listing.error is not None and listing.error.everywhere:
                unreachable = listing.error
            result.kinds[resource.kind] = _read(listing, objects, ignored)
    finally:
        if own:
            api.close()

    failed = result.failed
    result.full = not failed
    result.observed_at = timezone.now()  # every list is done: what none of them has is gone by now
    if objects or result.full:
        snapshot = Snapshot.of(objects, kinds=[k for k, s in result.kinds.items() if not s.error], ignored=ignored,
                               all_namespaces=True)
        try:
            result.stats = _apply(cluster, snapshot, observed_at=result.observed_at, full=result.full)
        except Exception as exc:
            result.error = f"writing the inventory failed: {type(exc).__name__}: {exc}"
            result.duration = time.monotonic() - clock
            record(cluster, result)
            raise
    else:
        result.stats = ImportStats(ignored=dict(ignored))
    if failed:
        reasons = "; ".join(f"{kind}: {s.error}" for kind, s in result.kinds.items() if s.error and not s.skipped)
        skipped = [kind for kind, s in result.kinds.items() if s.skipped]
        untried = f"; not tried, as they would fail the same way: {', '.join(skipped)}" if skipped else ""
        result.error = (f"listing {', '.join(failed)} from {result.api} failed ({reasons}{untried}); nothing was "
                        f"deleted, the {result.listed} objects listed were upserted")
    result.ok = not failed
    result.duration = time.monotonic() - clock
    record(cluster, result)
    return result


# ----------------------------------------------------------------------------------------------- watch


@dataclass
class WatchResult:
    """What one watch did, from a list's resourceVersion until the deadline or the version expired."""

    resource_version: str
    events: Counter[str] = field(default_factory=Counter)  # ADDED, MODIFIED, DELETED, BOOKMARK
    batches: int = 0  # writes to the inventory (events that arrive together are written together)
    connections: int = 0
    retries: int = 0
    unreadable: int = 0
    pods: KindStats = field(default_factory=KindStats)
    addresses_opened: int = 0
    addresses_closed: int = 0
    expired: bool = False  # the server said the version is too old: list again
    failure: ApiError | None = None  # the watch could not go on (after its retries)

    def __str__(self) -> str:
        counts = ", ".join(f"{n} {kind}" for kind, n in sorted(self.events.items())) or "no events"
        p = self.pods
        text = (f"watched pods: {counts} in {self.batches} writes; pods {p.created} created, {p.updated} updated, "
                f"{p.deleted} deleted; addresses {self.addresses_opened} opened, {self.addresses_closed} closed")
        if self.unreadable:
            text += f"; {self.unreadable} events could not be read"
        if self.expired:
            text += "; resourceVersion expired (410 Gone): listing again"
        if self.failure is not None:
            text += f"; stopped: {self.failure.message}"
        return text

    def add(self, stats: ImportStats) -> None:
        pods = stats.kinds.get("Pod", KindStats())
        self.pods.created += pods.created
        self.pods.updated += pods.updated
        self.pods.deleted += pods.deleted
        self.addresses_opened += stats.addresses_opened
        self.addresses_closed += stats.addresses_closed


_END = object()  # the reader's mark: the server closed the watch


class _Reader:
    """Reads one watch response in a thread, so that the main thread can wait for events with a timeout
    (the deadline) and write every event that has arrived meanwhile in one go."""

    def __init__(self, lines: Iterator[bytes], name: str) -> None:
        self.queue: queue.Queue[Any] = queue.Queue()
        self.stop = threading.Event()
        self.lines = lines
        self.thread = threading.Thread(target=self.run, name=name, daemon=True)
        self.thread.start()

    def run(self) -> None:
        try:
            for line in self.lines:
                if self.stop.is_set():
                    return
                self.queue.put(line)
            self.queue.put(_END)
        except ApiError as exc:
            self.queue.put(exc)
        except Exception as exc:  # whatever ends the stream, the main thread decides what to do
            self.queue.put(ApiError(f"reading the watch failed: {type(exc).__name__}: {exc}", retriable=True))


def _remaining(until: float | None) -> float | None:
    return None if until is None else until - time.monotonic()


def watch_pods(cluster: Cluster, resource_version: str, *, api: KubeApi, until: float | None = None,
               batch_max: int = 500, on_batch: Callable[[WatchResult], None] | None = None) -> WatchResult:
    """Apply pod events from ``resource_version`` on, until ``until`` (a ``time.monotonic()`` deadline; None:
    until interrupted), the version expires (``expired``) or the watch fails for good (``failure``).

    ADDED and MODIFIED pods are upserted, DELETED ones soft-deleted with their addresses closed, through
    ``apply_snapshot`` with ``full=False``: nothing else is touched. A watch the server ends (its
    timeoutSeconds) or a dropped connection goes on from the last version seen; errors are retried with
    the API's backoff, and 401/403 are not.
    """
    result = WatchResult(resource_version)
    backoff = api.options.backoff
    failures = 0  # errors in a row, with no event in between
    quiet = 0  # connections in a row that the server ended without an event
    while True:
        left = _remaining(until)
        if left is not None and left <= 0:
            return result
        timeout_seconds = api.options.watch_timeout
        if left is not None:
            timeout_seconds = max(1, min(timeout_seconds, math.ceil(left)))
        error: ApiError | None
        try:
            raw, lines = watch_lines(api, POD_RESOURCE, result.resource_version, timeout_seconds,
                                     read_timeout=timeout_seconds + api.options.timeout)
        except ApiError as exc:
            error = exc
        else:
            result.connections += 1
            seen = result.events.total()
            reader = _Reader(lines, f"watch-{cluster.name}")
            try:
                error = _follow(cluster, reader, result, until, batch_max, on_batch)
            finally:
                reader.stop.set()
                # Wakes the reader from its blocking read; a stream the server ended is released already.
                with contextlib.suppress(RuntimeError, ValueError, OSError):
                    raw.shutdown()
                raw.close()
            progressed = result.events.total() > seen
            if progressed:
                failures = quiet = 0
            if error is None:
                # The server ended the watch (its timeoutSeconds), or the deadline came: go on from the last
                # version. One that ends them at once, again and again, is not asked in a tight loop.
                quiet = 0 if progressed else quiet + 1
                if quiet > 1:
                    time.sleep(backoff.delay(quiet - 2))
                continue
        if error.status == 410:
            result.expired = True
            return result
        failures += 1
        if not error.retriable or failures >= backoff.attempts:
            if error.retriable and failures > 1:
                error.add(f"(after {failures} attempts)")
            result.failure = error
            return result
        result.retries += 1
        time.sleep(backoff.delay(failures - 1, error.retry_after))


def _follow(cluster: Cluster, reader: _Reader, result: WatchResult, until: float | None, batch_max: int,
            on_batch: Callable[[WatchResult], None] | None) -> ApiError | None:
    """Write the events of one watch connection as they come; return the error that ended it, if any."""
    while True:
        left = _remaining(until)
        if left is not None and left <= 0:
            return None
        try:
            first = reader.queue.get(timeout=left)
        except queue.Empty:
            return None
        arrived = [first]
        while len(arrived) < batch_max:
            try:
                arrived.append(reader.queue.get_nowait())
            except queue.Empty:
                break
        # The last event of a pod wins: its state now, or its deletion.
        pending: dict[tuple[str, str, str], tuple[str, PodObj]] = {}
        version = result.resource_version
        ended, error = False, None
        for entry in arrived:
            if entry is _END or isinstance(entry, ApiError):
                ended, error = True, entry if isinstance(entry, ApiError) else None
                break
            event = _event(entry, result)
            if event is None:
                continue
            kind, value = event
            if kind == "ERROR":
                ended, error = True, value
                break
            if kind == "BOOKMARK":
                version = value or version
                continue
            pod, pod_version = value
            pending[(pod.namespace, pod.name, pod.uid)] = (kind, pod)
            version = pod_version or version
        if pending:
            _write(cluster, pending, result)
        result.resource_version = version
        if pending and on_batch is not None:
            on_batch(result)
        if ended:
            return error


def _event(line: bytes, result: WatchResult) -> tuple[str, Any] | None:
    """One line of a watch as (type, value): a pod event, a bookmark's version or an ERROR's ApiError."""
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError:
        result.unreadable += 1
        return None
    if not isinstance(event, dict) or not isinstance(event.get("object"), dict):
        result.unreadable += 1
        return None
    kind, obj = event.get("type"), event["object"]
    if kind == "ERROR":
        # A Status: 410 when the version is older than what the server keeps.
        code = obj.get("code") if isinstance(obj.get("code"), int) else 0
        message = obj.get("message") or obj.get("reason") or "no message"
        return "ERROR", ApiError(f"watch of pods: error {code} in the stream: {message}", status=code,
                                 retriable=code == 429 or code >= 500)
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    version = str(metadata.get("resourceVersion") or "")
    if kind == "BOOKMARK":
        result.events[kind] += 1
        return kind, version
    if kind not in ("ADDED", "MODIFIED", "DELETED"):
        result.unreadable += 1
        return None
    try:
        pod = parse_object(obj, kind="Pod")
    except FieldError:
        # Its state is unknown: the next full list reads it again (and says why it cannot).
        result.unreadable += 1
        return None
    if not isinstance(pod, PodObj):
        result.unreadable += 1
        return None
    result.events[kind] += 1
    return kind, (pod, version)


def _write(cluster: Cluster, pending: dict[tuple[str, str, str], tuple[str, PodObj]], result: WatchResult) -> None:
    if not transaction.get_connection().in_atomic_block:
        close_old_connections()  # a long-lived process: drop a connection the server closed meanwhile
    upserts = [pod for kind, pod in pending.values() if kind != "DELETED"]
    deleted = [pod for kind, pod in pending.values() if kind == "DELETED"]
    snapshot = Snapshot.of(upserts, kinds=["Pod"], deleted=deleted)
    result.add(_apply(cluster, snapshot, observed_at=timezone.now(), full=False))
    result.batches += 1


# ------------------------------------------------------------------------------------- list, then watch


def sync_and_watch(cluster: Cluster, *, api: KubeApi, seconds: float | None = None,
                   report: Callable[[SyncResult | WatchResult], None] | None = None) -> bool:
    """A full sync, then a watch of pods from its resourceVersion, and a fresh full sync whenever the
    version expires or the watch fails after its retries; for ``seconds`` (None: until interrupted).

    Returns whether the last full sync succeeded and the watch did not stop on an error that retries cannot
    cure (401/403); a failed full sync ends the run, so that a supervisor sees the failure and restarts it.
    """
    until = None if seconds is None else time.monotonic() + seconds
    idle_relists = 0
    while True:
        synced = sync_cluster(cluster, api=api)
        if report is not None:
            report(synced)
        if not synced.ok:
            return False
        left = _remaining(until)
        if left is not None and left <= 0:
            return True
        watched = watch_pods(cluster, synced.kinds["Pod"].resource_version, api=api, until=until)
        if report is not None:
            report(watched)
        if watched.failure is not None and not watched.failure.retriable:
            return False
        if not watched.expired and watched.failure is None:
            return True  # the deadline
        # A version that expires again and again before any event: do not list the cluster in a tight loop.
        idle_relists = idle_relists + 1 if not watched.batches else 0
        if idle_relists > 1:
            time.sleep(api.options.backoff.delay(idle_relists - 2))
