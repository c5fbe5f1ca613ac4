"""The Celery beat schedule, built by a function so that a test can check it."""

from __future__ import annotations


def beat_schedule(aggregate_every: int = 60) -> dict[str, dict]:
    """Periodic jobs: aggregation of the raw flows that arrived since the last run."""
    if aggregate_every <= 0:
        raise ValueError("schedule intervals must be positive numbers of seconds")
    return {
        "aggregate-flows": {
            "task": "flows.tasks.aggregate_flows",
            "schedule": float(aggregate_every),
            "options": {"expires": float(aggregate_every)},
        },
    }
