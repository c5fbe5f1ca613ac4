"""The Celery beat schedule, built from environment variables by a function so that a test can check it.

NETSEC_AGGREGATE_EVERY  seconds between aggregation runs (default 60)
NETSEC_SYNC_EVERY       seconds between live syncs of the clusters that have API settings (default 300)
NETSEC_RETENTION_AT     the time of day, UTC, HH:MM, of the daily retention run (default 03:30)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from celery.schedules import crontab

DEFAULTS = {"NETSEC_AGGREGATE_EVERY": "60", "NETSEC_SYNC_EVERY": "300", "NETSEC_RETENTION_AT": "03:30"}


class ScheduleError(ValueError):
    """A schedule variable with a value that cannot be used; the message names the variable."""


def _seconds(env: Mapping[str, str], name: str) -> float:
    raw = env.get(name, DEFAULTS[name]).strip()
    try:
        value = int(raw)
    except ValueError:
        raise ScheduleError(f"{name}={raw!r}: a whole number of seconds, e.g. {DEFAULTS[name]}") from None
    if value <= 0:
        raise ScheduleError(f"{name}={raw!r}: must be a positive number of seconds")
    return float(value)


def _time_of_day(env: Mapping[str, str], name: str) -> tuple[int, int]:
    raw = env.get(name, DEFAULTS[name]).strip()
    match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", raw)
    if not match:
        raise ScheduleError(f"{name}={raw!r}: a time of day in UTC as HH:MM, e.g. {DEFAULTS[name]}")
    return int(match[1]), int(match[2])


def beat_schedule(env: Mapping[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Periodic jobs: aggregation of what arrived, the live sync, and the daily retention run.

    Each entry expires when the next one is due, so a beat that ran while every worker was busy does not
    leave a pile of stale runs behind; the tasks lock per cluster, so an overlap waits or is skipped.
    """
    env = {} if env is None else env
    aggregate_every = _seconds(env, "NETSEC_AGGREGATE_EVERY")
    sync_every = _seconds(env, "NETSEC_SYNC_EVERY")
    hour, minute = _time_of_day(env, "NETSEC_RETENTION_AT")
    return {
        "aggregate-flows": {
            "task": "flows.tasks.aggregate_flows",
            "schedule": aggregate_every,
            "options": {"expires": aggregate_every},
        },
        "sync-clusters": {
            "task": "flows.tasks.sync_clusters",
            "schedule": sync_every,
            "options": {"expires": sync_every},
        },
        "apply-retention": {
            "task": "flows.tasks.apply_retention",
            "schedule": crontab(hour=str(hour), minute=str(minute)),
            "options": {"expires": 3600.0},
        },
    }
