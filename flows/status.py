"""How the live operation is doing, for the admins' status page: per cluster the last sync and aggregation,
the backlog of raw flows not aggregated yet, and the Celery queue. Nothing here changes anything."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db.models import Max

from flows.locks import held
from flows.models import AggregationState, Cluster, RawFlow

BACKLOG_CAP = 1_000_000  # counted up to this many: "more than a million" is all a person needs to know


@dataclass(frozen=True)
class ClusterStatus:
    cluster: Cluster
    api: str  # how the sync reaches the API, or "" when the cluster is fed by dumps only
    syncing: bool
    aggregating: bool
    aggregated_at: datetime | None
    aggregation_error: str  # why the last aggregation run failed, '' after a success
    backlog: int  # raw flows that aggregation has not seen, up to BACKLOG_CAP
    newest_flow: datetime | None

    @property
    def sync_failed(self) -> bool:
        return bool(self.cluster.last_sync_error)

    @property
    def backlog_capped(self) -> bool:
        return self.backlog >= BACKLOG_CAP


@dataclass(frozen=True)
class QueueStatus:
    mode: str  # "in-process" (no broker: tasks run in the request) or "redis"
    broker: str = ""  # host:port/db, never the password
    depth: int | None = None  # tasks waiting in the queue
    workers: list[str] = field(default_factory=list)
    problem: str = ""
    queue: str = ""


def _api(cluster: Cluster) -> str:
    if cluster.in_cluster:
        return "in-cluster service account"
    if cluster.kubeconfig:
        return cluster.kubeconfig + (f" (context {cluster.context})" if cluster.context else "")
    return ""


def cluster_status(cluster: Cluster) -> ClusterStatus:
    state = AggregationState.objects.filter(cluster=cluster).first()
    watermark = state.last_raw_flow_id if state else 0
    pending = RawFlow.objects.filter(cluster=cluster, id__gt=watermark)
    return ClusterStatus(
        cluster=cluster, api=_api(cluster),
        syncing=held(f"sync:{cluster.id}"), aggregating=held(f"aggregate:{cluster.id}"),
        aggregated_at=state.last_run if state else None,
        aggregation_error=state.last_error if state else "",
        backlog=pending[:BACKLOG_CAP].count(),
        newest_flow=RawFlow.objects.filter(cluster=cluster).aggregate(t=Max("time"))["t"],
    )


def _broker_name(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path or ''}"


def queue_status(*, ping_timeout: float = 0.5) -> QueueStatus:
    """The depth of the task queue in Redis and the workers that answer a ping."""
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    if not settings.REDIS_URL:
        return QueueStatus(mode="in-process", queue=queue)
    import redis
    from celery import Celery

    broker = _broker_name(settings.REDIS_URL)
    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
        # kombu keeps a list per priority step: the queue's name, and the name + "\x06\x16" + step.
        keys = [queue, *(f"{queue}\x06\x16{step}" for step in range(1, 10))]
        depth = sum(client.llen(key) for key in keys)
    except redis.RedisError as exc:
        return QueueStatus(mode="redis", broker=broker, queue=queue, problem=f"{type(exc).__name__}: {exc}")
    # Through REDIS_URL itself, whatever broker this process's app was set up with (replies come back on
    # the app's own connection, so a connection handed to the app's inspect is not enough).
    probe = Celery(broker=settings.REDIS_URL, set_as_current=False)
    try:
        replies: dict[str, Any] = probe.control.inspect(timeout=ping_timeout).ping() or {}
    finally:
        probe.close()
    return QueueStatus(mode="redis", broker=broker, depth=depth, workers=sorted(replies), queue=queue)


def overview() -> tuple[list[ClusterStatus], QueueStatus]:
    return [cluster_status(c) for c in Cluster.objects.all()], queue_status()
