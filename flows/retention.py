"""Retention: what is kept, for how long, and how the rest goes (the daily job; ``manage.py apply_retention``).

- **Raw flows** are kept ``raw_flows_days`` (whole UTC days: a row goes once its day ended that long ago). On
  PostgreSQL their table is partitioned by day, so pruning drops partitions: no dead rows, no vacuum, no
  index bloat, whatever the volume. SQLite deletes them in batches of ``batch`` rows.
- **Hourly communications** are kept ``hourly_days``. Before their raw flows go, the hours are *sealed*:
  aggregation rebuilds an hour from all its raw flows, and once some of those are gone a rebuild (a backfill
  of that hour, a rebuild after a sync) would replace the hour's counts with a part of them. Older hours are
  rolled up into one **daily** row per key (endpoints, port, protocol, denied, node_local): connections
  summed, first seen the earliest, last seen the latest, so any span made of whole days keeps its totals.
- **Daily communications** are kept ``daily_days``.
- **Ingest batches** (the API's idempotency records) are kept as long as raw flows: a retry older than that
  would find its flows pruned anyway.
- **Soft-deleted inventory** goes once nothing still needs it: closed pod address intervals and deleted
  pods, services and network policies once the raw flows they resolved are pruned; deleted workloads and
  namespaces then too, but never one that a remaining row points at (a communication, a pod, a child
  workload, a draft, a grant: deleting a workload would cascade its communications away); deleted nodes
  only once they were gone before the oldest communication of their cluster (their addresses classify
  communications as Internal). Everything a pruned row owns (a pod's ports, a service's addresses) goes with it.

Every step is set-based SQL in short transactions of at most ``batch`` rows (a loop per batch, per day or per
partition, never per row), takes the aggregation lock of the cluster it changes communications of, and can
be run again at any time: a second run the same day finds nothing to do.
"""

from __future__ import annotations

import logging
import time as clock
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, models, transaction
from django.db.models import Exists, Max, Min, OuterRef, QuerySet
from django.db.models.functions import TruncDay
from django.utils import timezone

from flows import versions
from flows.models import (
    AggregationState,
    Cluster,
    Communication,
    IngestBatch,
    Namespace,
    NetworkPolicy,
    Node,
    Pod,
    PodAddress,
    RawFlow,
    Service,
    Workload,
)
from flows.rollup import expire_rollup, refresh_rollup
from flows.store.raw_flows import attached_partitions, ensure_partitions_for, forget_partitions, partition_name

log = logging.getLogger(__name__)

DAY = timedelta(days=1)
HOUR = Communication.Granularity.HOUR
DAILY = Communication.Granularity.DAY
# Dropping a partition needs a moment of ACCESS EXCLUSIVE on the raw flow table: ask for it this long (others
# queue behind the request meanwhile), and try again a few times, a little later each time, before leaving
# the partition to the next run.
DROP_LOCK_TIMEOUT = "2s"
DROP_ATTEMPTS = 5
DROP_BACKOFF_SECONDS = 3.0
# The most ids one inventory batch names (SQLite takes at most 32766 parameters per statement).
MAX_ID_BATCH = 10000


@dataclass(frozen=True)
class RetentionPolicy:
    """How long each kind of row is kept, in days, and how many rows one statement deletes."""

    raw_flows_days: int = 7
    hourly_days: int = 90
    daily_days: int = 400
    batch: int = 10000

    def __post_init__(self) -> None:
        for name in ("raw_flows_days", "hourly_days", "daily_days", "batch"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"retention {name}={value!r}: a positive whole number is needed")
        if self.hourly_days < self.raw_flows_days:
            raise ValueError(f"retention: hourly communications ({self.hourly_days} days) must be kept at least as "
                             f"long as the raw flows they are made of ({self.raw_flows_days} days)")
        if self.daily_days < self.hourly_days:
            raise ValueError(f"retention: daily communications ({self.daily_days} days) must be kept at least as "
                             f"long as hourly ones ({self.hourly_days} days)")

    @classmethod
    def from_settings(cls) -> RetentionPolicy:
        return cls(raw_flows_days=settings.NETSEC_KEEP_RAW_FLOWS_DAYS, hourly_days=settings.NETSEC_KEEP_HOURLY_DAYS,
                   daily_days=settings.NETSEC_KEEP_DAILY_DAYS, batch=settings.NETSEC_RETENTION_BATCH)


@dataclass(frozen=True)
class Cutoffs:
    """Start of the first UTC day kept, per kind: rows before it go."""

    raw: datetime
    hourly: datetime
    daily: datetime

    @classmethod
    def of(cls, now: datetime, policy: RetentionPolicy) -> Cutoffs:
        today = _utc(now).replace(hour=0, minute=0, second=0, microsecond=0)
        return cls(raw=today - policy.raw_flows_days * DAY, hourly=today - policy.hourly_days * DAY,
                   daily=today - policy.daily_days * DAY)


@dataclass
class RetentionResult:
    """What a run pruned, sealed and rolled up (or, for a dry run, would have)."""

    dry_run: bool = False
    raw_flows: int = 0
    partitions_dropped: list[str] = field(default_factory=list)
    partitions_busy: list[str] = field(default_factory=list)  # due, but the table stayed locked: next run
    partitions_created: list[str] = field(default_factory=list)
    sealed: int = 0  # hourly communications whose raw flows go
    rolled_up: int = 0  # hourly communications folded into daily rows
    daily_rows: int = 0  # daily rows those made (a day rolled up again is merged into its rows)
    communications_expired: int = 0  # older than the daily retention
    ingest_batches: int = 0
    inventory: dict[str, int] = field(default_factory=dict)  # model name → rows pruned

    def __str__(self) -> str:
        would = "would " if self.dry_run else ""
        partitions = f" ({len(self.partitions_dropped)} day partitions)" if self.partitions_dropped else ""
        busy = f", {len(self.partitions_busy)} partitions busy (next run)" if self.partitions_busy else ""
        inventory = ", ".join(f"{n} {name}" for name, n in sorted(self.inventory.items()) if n) or "nothing"
        created = (f"; {would}create {len(self.partitions_created)} partitions" if self.dry_run else
                   f"; created {len(self.partitions_created)} partitions") if self.partitions_created else ""
        return (
            f"retention: {would}{'prune' if would else 'pruned'} {self.raw_flows} raw flows{partitions}{busy}, "
            f"{self.ingest_batches} ingest batches, {self.communications_expired} expired communications; "
            f"{would}{'seal' if would else 'sealed'} {self.sealed} hourly communications, "
            f"{would}{'roll' if would else 'rolled'} {self.rolled_up} up into {self.daily_rows} daily rows; "
            f"inventory: {inventory}{created}"
        )


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def apply_retention(now: datetime | None = None, *, policy: RetentionPolicy | None = None,
                    dry_run: bool = False) -> RetentionResult:
    """Apply ``policy`` (default: the settings) as of ``now`` (default: now); ``dry_run``: count, change nothing.

    The order matters: the coming days' partitions first (ingestion needs them, whatever fails later); hours
    are sealed before their raw flows go; communications expire before the rollup, which then only folds
    hours that are kept as days; inventory is pruned last, against what remains.
    """
    policy = policy or RetentionPolicy.from_settings()
    now = _utc(now or timezone.now())
    cut = Cutoffs.of(now, policy)
    result = RetentionResult(dry_run=dry_run)
    if dry_run:
        result.partitions_created = _missing_partitions(_days_ahead(now, 3))
    else:
        result.partitions_created = ensure_partitions(now=now)
    clusters = list(Cluster.objects.order_by("id"))
    for cluster in clusters:
        result.sealed += _seal(cluster, cut.raw, policy.batch, dry_run)
    _prune_raw_flows(clusters, cut.raw, policy.batch, dry_run, result)
    for cluster in clusters:
        result.communications_expired += _expire_communications(cluster, cut.daily, policy.batch, dry_run)
        if not dry_run:
            expire_rollup(cluster, cut.daily)
        rolled, daily = _roll_up(cluster, cut.daily, cut.hourly, dry_run)
        result.rolled_up += rolled
        result.daily_rows += daily
    result.ingest_batches = _delete_in_batches(IngestBatch.objects.filter(created__lt=cut.raw), policy.batch, dry_run)
    for cluster in clusters:
        for name, n in _prune_inventory(cluster, cut.raw, min(policy.batch, MAX_ID_BATCH), dry_run).items():
            result.inventory[name] = result.inventory.get(name, 0) + n
    if not dry_run and (result.communications_expired or result.rolled_up):
        versions.bump(c.pk for c in clusters)  # after the changes committed: what pages kept is out of date
    log.info("%s", result)
    return result


def ensure_partitions(days_ahead: int = 3, now: datetime | None = None) -> list[str]:
    """Create the raw flow partitions of today and the next ``days_ahead`` days (PostgreSQL; SQLite has none)
    so that ingestion rarely needs to; return the names created. Idempotent, safe beside a running ingest."""
    if days_ahead < 0:
        raise ValueError("days_ahead must be 0 or more")
    return ensure_partitions_for(_days_ahead(_utc(now or timezone.now()), days_ahead))


def _days_ahead(now: datetime, days_ahead: int) -> list[date]:
    today = now.date()
    return [today + timedelta(days=n) for n in range(days_ahead + 1)]


def _missing_partitions(days: Iterable[date]) -> list[str]:
    if connection.vendor != "postgresql":
        return []
    attached = attached_partitions()
    return [name for name in map(partition_name, days) if name not in attached]


# ------------------------------------------------------------------------------------------ helpers


def _lock_aggregation(cluster: Cluster) -> None:
    """Inside a transaction: wait for, then hold off, aggregation of the cluster (it locks the same row)."""
    state, _ = AggregationState.objects.get_or_create(cluster=cluster)
    AggregationState.objects.select_for_update().filter(pk=state.pk).first()


def _delete_in_batches(qs: QuerySet, batch: int, dry_run: bool, cluster: Cluster | None = None) -> int:
    """Delete the rows of ``qs`` (of a model nothing refers to) ``batch`` at a time: one DELETE ... WHERE id IN
    (SELECT id ... LIMIT batch) each, in its own transaction, so that locks and undo stay small."""
    if dry_run:
        return qs.count()
    model = qs.model
    total = 0
    while True:
        with transaction.atomic():
            if cluster is not None:
                _lock_aggregation(cluster)
            # Nothing cascades from these models (asserted by the tests), so Django deletes with one statement.
            n, _ = model._base_manager.filter(pk__in=qs.values("pk")[:batch]).delete()
        total += n
        if n < batch:
            return total


def _seal(cluster: Cluster, before: datetime, batch: int, dry_run: bool) -> int:
    """Mark the hourly rows of the hours whose raw flows go as sealed: aggregation leaves them alone from now on."""
    open_rows = Communication.objects.filter(cluster=cluster, sealed=False, bucket__lt=before)
    if dry_run:
        return open_rows.count()
    total = 0
    while True:
        with transaction.atomic():
            _lock_aggregation(cluster)
            n = Communication.objects.filter(pk__in=open_rows.values("pk")[:batch]).update(sealed=True)
        total += n
        if n < batch:
            return total


def _prune_raw_flows(clusters: list[Cluster], before: datetime, batch: int, dry_run: bool,
                     result: RetentionResult) -> None:
    if connection.vendor != "postgresql":
        for cluster in clusters:
            result.raw_flows += _delete_in_batches(RawFlow.objects.filter(cluster=cluster, time__lt=before), batch,
                                                   dry_run)
        return
    quote = connection.ops.quote_name
    for name, day in sorted(attached_partitions().items()):
        if day >= before.date():
            continue
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {quote(name)}")
            rows = cursor.fetchone()[0]
        if dry_run or _drop_partition(name):
            result.raw_flows += rows
            result.partitions_dropped.append(name)
        else:
            result.partitions_busy.append(name)


def _drop_partition(name: str) -> bool:
    """DROP one day's partition; False if the raw flow table stayed too busy to lock, every attempt."""
    quote = connection.ops.quote_name
    for attempt in range(DROP_ATTEMPTS):
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT current_setting('lock_timeout')")
                previous = cursor.fetchone()[0]
                cursor.execute("SELECT set_config('lock_timeout', %s, true)", [DROP_LOCK_TIMEOUT])
                # A table with deferred foreign key checks still pending cannot be dropped: when the caller's
                # transaction wrote raw flows (a script, a test), run them now (Django's SET CONSTRAINTS pair).
                connection.check_constraints()
                cursor.execute(f"DROP TABLE IF EXISTS {quote(name)}")
                cursor.execute("SELECT set_config('lock_timeout', %s, true)", [previous])
            # Forgetting a partition is always safe: the next batch of that day asks the catalog again.
            forget_partitions([name])
            log.info("dropped raw flow partition %s", name)
            return True
        except OperationalError as exc:  # lock_not_available
            log.info("raw flow partition %s: table busy (%s), attempt %d", name, exc, attempt + 1)
            if connection.in_atomic_block:
                return False  # the caller's transaction decides; no sleeping inside it
            clock.sleep(DROP_BACKOFF_SECONDS * (attempt + 1))
    return False


def _expire_communications(cluster: Cluster, before: datetime, batch: int, dry_run: bool) -> int:
    """Communications older than the daily retention, hourly (left from before it) or daily."""
    return _delete_in_batches(Communication.objects.filter(cluster=cluster, bucket__lt=before), batch, dry_run,
                              cluster=cluster)


_KEY = "src_workload_id, src_ip, dst_workload_id, dst_ip, port, protocol, denied, node_local"
ROLLUP_SQL = f"""
INSERT INTO flows_communication
  (cluster_id, bucket, granularity, sealed, {_KEY}, connections, first_seen, last_seen)
SELECT cluster_id, %(day)s, 'day', TRUE, {_KEY}, SUM(connections), MIN(first_seen), MAX(last_seen)
FROM flows_communication
WHERE cluster_id = %(cluster)s AND bucket >= %(day)s AND bucket < %(next)s AND id <= %(top)s
GROUP BY cluster_id, {_KEY}
"""


def _roll_up(cluster: Cluster, after: datetime, before: datetime, dry_run: bool) -> tuple[int, int]:
    """Fold the hourly rows of each day in [after, before) into daily rows; return (hourly rows, daily rows).

    One transaction per day: the day's hourly rows and any daily rows it already has (hours that a backfill
    brought after an earlier rollup) are grouped into new daily rows, then the rows they were made of, all
    with an id up to the largest before the insert, are deleted.
    """
    hourly = Communication.objects.filter(cluster=cluster, granularity=HOUR, bucket__gte=after, bucket__lt=before)
    if dry_run:
        day = TruncDay("bucket", tzinfo=UTC)
        keys = [f.strip() for f in _KEY.split(",")]
        return hourly.count(), hourly.annotate(day=day).values("day", *keys).distinct().count()
    days = sorted(hourly.annotate(day=TruncDay("bucket", tzinfo=UTC)).values_list("day", flat=True).distinct())
    rolled = made = 0
    adapt = connection.ops.adapt_datetimefield_value
    for day in days:
        with transaction.atomic():
            _lock_aggregation(cluster)
            of_day = Communication.objects.filter(cluster=cluster, bucket__gte=day, bucket__lt=day + DAY)
            top = of_day.aggregate(m=Max("id"))["m"]
            if top is None:
                continue
            with connection.cursor() as cursor:
                cursor.execute(ROLLUP_SQL, {"cluster": cluster.id, "day": adapt(day), "next": adapt(day + DAY),
                                            "top": top})
                made += cursor.rowcount
            n, _ = of_day.filter(id__lte=top, granularity=HOUR).delete()
            rolled += n
            merged, _ = of_day.filter(id__lte=top, granularity=DAILY).delete()
            made -= merged
            refresh_rollup(cluster, [day])  # the day's activity moved to its daily row
    return rolled, made


# ---------------------------------------------------------------------------------------- inventory

# What a pruned row takes with it: rows that only describe it. Any other row that points at it keeps it.
_PARTS: dict[type[models.Model], tuple[str, ...]] = {
    Pod: ("container_ports",),
    Service: ("addresses", "service_ports", "endpoints"),
}


# How the result names what was pruned of each model.
_NAMES: dict[type[models.Model], str] = {
    PodAddress: "pod addresses", Pod: "pods", NetworkPolicy: "network policies", Service: "services",
    Workload: "workloads", Node: "nodes", Namespace: "namespaces",
}


def _unreferenced(model: type[models.Model], qs: QuerySet) -> QuerySet:
    """``qs`` without the rows any other row points at, through any relation of any app (but ``_PARTS``)."""
    parts = _PARTS.get(model, ())
    for rel in model._meta.related_objects:
        if rel.get_accessor_name() in parts:
            continue
        if rel.many_to_many:
            through = rel.through
            link = next(f for f in through._meta.fields if f.is_relation and f.related_model is model)
            qs = qs.filter(~Exists(through._base_manager.filter(**{link.name: OuterRef("pk")})))
        else:
            qs = qs.filter(~Exists(rel.related_model._base_manager.filter(**{rel.field.name: OuterRef("pk")})))
    return qs


def _delete_rows(qs: QuerySet) -> int:
    """One DELETE of the rows of ``qs``, its conditions checked again by the database as it deletes.

    Not ``QuerySet.delete()``: Django's collector would find what points at the rows and cascade to it in
    Python, which is exactly what must never happen here (a workload's communications). The foreign keys
    are the database's: a row pointed at after the check makes the transaction fail, and nothing is lost.
    """
    model = qs.model
    quote = connection.ops.quote_name
    sql, params = qs.values("pk").order_by().query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {quote(model._meta.db_table)} WHERE {quote(model._meta.pk.column)} IN ({sql})", params
        )
        return cursor.rowcount


def _prune_model(cluster: Cluster, model: type[models.Model], candidates: QuerySet, batch: int,
                 dry_run: bool) -> int:
    qs = _unreferenced(model, candidates)
    if dry_run:
        return qs.count()
    total = 0
    while True:
        try:
            with transaction.atomic():
                _lock_aggregation(cluster)
                ids = list(qs.values_list("pk", flat=True).order_by("pk")[:batch])
                if not ids:
                    return total
                n = _delete_rows(qs.filter(pk__in=ids))
                gone = set(ids) - set(model._base_manager.filter(pk__in=ids).values_list("pk", flat=True))
                for accessor in _PARTS.get(model, ()) if gone else ():
                    rel = next(r for r in model._meta.related_objects if r.get_accessor_name() == accessor)
                    _delete_rows(rel.related_model._base_manager.filter(**{f"{rel.field.name}__in": gone}))
        except IntegrityError as exc:
            # Something came to point at a row between the check and the commit: keep them all, try next run.
            log.warning("retention: %s of %s kept this run: %s", model._meta.verbose_name_plural, cluster, exc)
            return total
        total += n
        if len(ids) < batch:
            return total


def _prune_inventory(cluster: Cluster, before: datetime, batch: int, dry_run: bool) -> dict[str, int]:
    """Soft-deleted inventory of one cluster that nothing needs any more (see the module docstring)."""
    counts: dict[str, int] = {}

    def prune(model: type[models.Model], candidates: QuerySet, *, repeat: bool = False) -> None:
        total = 0
        while True:
            n = _prune_model(cluster, model, candidates, batch, dry_run)
            total += n
            # A workload's parent is pruned once its last child is: go again while rows go.
            if not repeat or not n or dry_run:
                break
        counts[_NAMES[model]] = total

    deleted = {"cluster": cluster, "deleted_at__lt": before}
    prune(PodAddress, PodAddress.objects.filter(cluster=cluster, valid_to__lt=before))
    prune(Pod, Pod.objects.filter(**deleted))
    prune(NetworkPolicy, NetworkPolicy.objects.filter(**deleted))
    prune(Service, Service.objects.filter(**deleted))
    prune(Workload, Workload.objects.filter(**deleted), repeat=True)
    # A node's addresses make communications with it Internal: it stays while one from its time remains.
    oldest = Communication.objects.filter(cluster=cluster).aggregate(m=Min("bucket"))["m"]
    node_horizon = min(before, oldest) if oldest is not None else before
    prune(Node, Node.objects.filter(cluster=cluster, deleted_at__lt=node_horizon))
    prune(Namespace, Namespace.objects.filter(**deleted))
    return counts
