"""Celery tasks: thin, JSON arguments only (ids and windows), idempotent; the work lives in plain functions.

Each task holds a lock per cluster (flows/locks.py) for at most its time limit, so the same job never runs
twice at once for one cluster — beat and a manual run, or two workers — and a worker that dies holding a
lock blocks the next run only until the lock expires. Errors a retry can cure (the database restarting, a
lost connection) are retried with exponential backoff; what a run found is its return value, and what went
wrong stays visible on the status page (the cluster's sync fields, the aggregation watermark and run time).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, InterfaceError
from django.db.models import Max, Q
from django.utils import timezone

from flows.aggregate import aggregate_cluster
from flows.locks import exclusive
from flows.models import AggregationState, Cluster, RawFlow

log = logging.getLogger(__name__)

# How long a run may take before its worker is stopped, and so how long its lock lives (a few minutes more).
AGGREGATE_LIMIT = 15 * 60
SYNC_LIMIT = 20 * 60
RETENTION_LIMIT = 2 * 60 * 60
LOCK_MARGIN = 120
# Worth a retry: the database or the broker went away for a moment.
TRANSIENT = (DatabaseError, InterfaceError, ConnectionError, TimeoutError)
RETRY = {"autoretry_for": TRANSIENT, "retry_backoff": 5, "retry_backoff_max": 300, "retry_jitter": True,
         "max_retries": 5}
# When the aggregation of a just-posted batch finds another run in progress, it tries again this much later.
BUSY_COUNTDOWN = 10
# The cache key that says a follow-up run of a cluster's aggregation is queued, and how long it may say so.
FOLLOW_UP = "netsec:aggregate-follow-up:{}"
FOLLOW_UP_TTL = BUSY_COUNTDOWN * 6
# The most a sync makes aggregation rebuild: older raw flows are pruned (and their hours sealed) anyway.
MAX_REBUILD = timedelta(days=settings.NETSEC_KEEP_RAW_FLOWS_DAYS)


def _pending(cluster: Cluster) -> bool:
    """Whether raw flows arrived that aggregation has not seen (one indexed MAX per cluster)."""
    top = RawFlow.objects.filter(cluster=cluster).aggregate(m=Max("id"))["m"]
    done = AggregationState.objects.filter(cluster=cluster).values_list("last_raw_flow_id", flat=True).first()
    return top is not None and top > (done or 0)


@shared_task(bind=True, time_limit=AGGREGATE_LIMIT, soft_time_limit=AGGREGATE_LIMIT - 30, **RETRY)
def aggregate_flows(self, cluster_id: int | None = None, rebuild_seconds: int | None = None) -> list[str]:
    """Aggregate the new raw flows of one cluster; without a cluster, queue that for every cluster with some.

    ``rebuild_seconds``: also rebuild the buckets of that many seconds back (after a sync that learnt
    addresses which flows already aggregated as unresolved belong to).
    """
    if cluster_id is None:
        queued = [c for c in Cluster.objects.all() if _pending(c)]
        for cluster in queued:
            aggregate_flows.delay(cluster.id)
        return [f"{c.name}: queued" for c in queued]
    cluster = Cluster.objects.filter(pk=cluster_id).first()
    if cluster is None:
        return [f"cluster {cluster_id}: gone"]
    with exclusive(f"aggregate:{cluster.id}", ttl=AGGREGATE_LIMIT + LOCK_MARGIN) as taken:
        if not taken:
            # The run in progress may have read its watermark before this batch landed: look again soon. One
            # such follow-up per cluster is enough (it aggregates everything committed before it runs), so the
            # batches posted during a long run do not each come back every few seconds; a rebuild always does.
            follow_up = FOLLOW_UP.format(cluster.id)
            if rebuild_seconds or self.request.retries or cache.add(follow_up, 1, timeout=FOLLOW_UP_TTL):
                raise self.retry(countdown=BUSY_COUNTDOWN, max_retries=30)
            return [f"{cluster.name}: skipped, a follow-up run is queued"]
        cache.delete(FOLLOW_UP.format(cluster.id))  # before the watermark is read: a later batch queues a new one
        since = timezone.now() - timedelta(seconds=rebuild_seconds) if rebuild_seconds else None
        try:
            result = aggregate_cluster(cluster, rebuild_since=since)
        except Exception as exc:
            # Kept where the status page and the admin show it, then retried (or not) as the task says.
            AggregationState.objects.update_or_create(
                cluster=cluster, defaults={"last_error": f"{type(exc).__name__}: {exc}"[:2000],
                                           "last_error_at": timezone.now()})
            raise
        AggregationState.objects.filter(cluster=cluster).exclude(last_error="").update(last_error="")
        return [str(result)]


def _syncable() -> Q:
    return ~Q(kubeconfig="") | Q(in_cluster=True)


@shared_task(time_limit=60, **RETRY)
def sync_clusters() -> list[str]:
    """Queue a live sync of every cluster that says how to reach its API; the others are fed by dumps."""
    clusters = list(Cluster.objects.filter(_syncable()))
    for cluster in clusters:
        sync_cluster.delay(cluster.id)
    return [f"{c.name}: queued" for c in clusters]


@shared_task(time_limit=SYNC_LIMIT, soft_time_limit=SYNC_LIMIT - 30, **RETRY)
def sync_cluster(cluster_id: int) -> str:
    """List the cluster's API into the inventory (flows/kube/sync.py records how it went on the cluster)."""
    from flows.kube.sync import sync_cluster as sync

    cluster = Cluster.objects.filter(pk=cluster_id).first()
    if cluster is None:
        return f"cluster {cluster_id}: gone"
    with exclusive(f"sync:{cluster.id}", ttl=SYNC_LIMIT + LOCK_MARGIN) as taken:
        if not taken:
            return f"{cluster.name}: skipped, a sync is running"
        previous = cluster.last_sync
        started = timezone.now()
        result = sync(cluster)
    if result.ok and result.stats.addresses_opened:
        # Flows from pods this sync met for the first time may have been aggregated as unresolved
        # addresses: rebuild the buckets since the previous sync (with a margin), not all of history.
        window = started - previous + timedelta(minutes=5) if previous else MAX_REBUILD
        aggregate_flows.delay(cluster.id, rebuild_seconds=int(min(window, MAX_REBUILD).total_seconds()))
    return str(result)


@shared_task(time_limit=RETENTION_LIMIT, soft_time_limit=RETENTION_LIMIT - 60, **RETRY)
def apply_retention() -> str:
    """The daily run: prune old raw flows (dropping day partitions on PostgreSQL), roll up and prune."""
    from flows.retention import apply_retention as retain

    with exclusive("retention", ttl=RETENTION_LIMIT + LOCK_MARGIN) as taken:
        if not taken:
            return "skipped: a retention run is in progress"
        return str(retain())
