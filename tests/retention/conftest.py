"""Retention tests: a few helpers shared by the modules, and the PostgreSQL-only marks."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from flows.ingest.records import Endpoint, FlowRecord
from flows.store import raw_flows

# Tests of one database's way of pruning: the run on the other database deselects them (tests/conftest.py).
SQLITE = pytest.mark.sqlite


def postgres_only(test):  # type: ignore[no-untyped-def]
    """A test of the day partitions, which only PostgreSQL has."""
    return pytest.mark.postgres(test)


def records(when: datetime, count: int, *, step: timedelta = timedelta(seconds=1), tag: str = "r") -> list[FlowRecord]:
    """``count`` distinct SYN events from ``when`` on, ``step`` apart."""
    return [FlowRecord(time=when + i * step, protocol="TCP", source=Endpoint("10.244.1.10", 30000 + i),
                       destination=Endpoint("10.244.2.20", 8080), is_reply=False, tcp_flags=("SYN",),
                       event_id=f"{tag}-{when:%Y%m%d%H%M}-{i}")
            for i in range(count)]


def partitions() -> set[str]:
    """The day partitions attached to the raw flow table now."""
    return set(raw_flows.attached_partitions())


@pytest.fixture(autouse=True)
def _forget_partitions() -> Iterator[None]:
    """Tests create and drop partitions behind other tests' backs: each starts and ends without a cache."""
    raw_flows._known.clear()
    yield
    raw_flows._known.clear()
