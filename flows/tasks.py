"""Celery tasks: thin, JSON arguments only, idempotent; the work lives in plain functions."""

from __future__ import annotations

from celery import shared_task

from flows.aggregate import aggregate_cluster
from flows.models import Cluster


@shared_task(autoretry_for=(Exception,), retry_backoff=True, retry_kwargs={"max_retries": 3})
def aggregate_flows(cluster_id: int | None = None) -> list[str]:
    """Aggregate new raw flows of one cluster, or of all of them."""
    clusters = Cluster.objects.all() if cluster_id is None else Cluster.objects.filter(pk=cluster_id)
    return [str(aggregate_cluster(c)) for c in clusters]

