"""The Celery beat schedule, built by a function so that a test can check it."""

from __future__ import annotations


def beat_schedule(aggregate_every: int = 60, sync_every: int = 300) -> dict[str, dict]:
    """Periodic jobs: aggregation of new raw flows, and the live inventory sync of every cluster."""
    if aggregate_every <= 0 or sync_every <= 0:
        raise ValueError("schedule intervals must be positive numbers of seconds")
    return {
        "aggregate-flows": {
            "task": "flows.tasks.aggregate_flows",
            "schedule": float(aggregate_every),
            "options": {"expires": float(aggregate_every)},
        },
        "sync-clusters": {
            "task": "flows.tasks.sync_all_clusters",
            "schedule": float(sync_every),
            "options": {"expires": float(sync_every)},
        },
    }
