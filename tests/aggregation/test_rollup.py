"""Day summaries (``flows.rollup``): a span reads the same communications whether its days are summarised or not,
whole days or not, hourly rows or days rolled up by retention; only days that are over and marked are read."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from flows.access import SYSTEM
from flows.communications import observed
from flows.models import Communication, CommunicationDay, RollupDay
from flows.retention import RetentionPolicy, apply_retention
from flows.rollup import expire_rollup, refresh_rollup, summarised_days
from policies import services
from tests import factories as f

pytestmark = pytest.mark.django_db

DAY0 = datetime(2026, 11, 20, tzinfo=UTC)
NOW = DAY0 + timedelta(days=5, hours=7, minutes=20)  # data up to the hour before: days 0-4 over, day 5 not


@pytest.fixture
def world(cluster):
    """api talks with 6 workloads and 3 addresses, some hours of every day of five and a bit; one peer's day 1
    is a rolled-up daily row (retention's), beside hourly rows of other days."""
    api = f.workload(cluster, "shop", "Deployment", "api")
    f.pod(cluster, api, "api-1", "10.244.0.2")
    peers = [f.workload(cluster, "shop" if i % 2 else "team", "Deployment", f"p{i}") for i in range(6)]
    rng = random.Random(7)
    rows = []
    hours = int((NOW - DAY0).total_seconds() // 3600)
    for h in range(hours):
        bucket = DAY0 + timedelta(hours=h)
        for i, peer in enumerate(peers):
            if rng.random() < 0.4 or (i == 0 and bucket.date() == (DAY0 + timedelta(days=1)).date()):
                continue
            out = i % 3 != 0
            rows.append(Communication(
                cluster=cluster, bucket=bucket, src_workload=api if out else peer, dst_workload=peer if out else api,
                port=8080, protocol="TCP", denied=i == 5, connections=rng.randint(1, 9),
                first_seen=bucket + timedelta(minutes=rng.randint(0, 20)),
                last_seen=bucket + timedelta(minutes=rng.randint(30, 59))))
        for ip in ("203.0.113.1", "10.10.0.4", "198.51.100.7"):
            if rng.random() < 0.3:
                rows.append(Communication(cluster=cluster, bucket=bucket, src_workload=api, dst_ip=ip, port=443,
                                          protocol="TCP", connections=rng.randint(1, 5), first_seen=bucket,
                                          last_seen=bucket + timedelta(minutes=10)))
    day1 = DAY0 + timedelta(days=1)
    rows.append(Communication(cluster=cluster, bucket=day1, granularity="day", sealed=True, src_workload=peers[0],
                              dst_workload=api, port=8080, protocol="TCP", connections=77,
                              first_seen=day1 + timedelta(hours=3), last_seen=day1 + timedelta(hours=20)))
    Communication.objects.bulk_create(rows)
    return {"api": api, "peers": peers}


def _seen(cluster, ids, start: datetime, end: datetime) -> list[tuple]:
    return sorted((o.outgoing, o.peer_workload_id or 0, o.peer_ip, o.port, o.protocol, o.denied, o.node_local,
                   o.connections, o.first_seen, o.last_seen, o.hours) for o in observed(cluster.id, ids, start, end))


SPANS = [
    (DAY0, DAY0 + timedelta(days=5, hours=6, minutes=59)),  # whole days and today's hours
    (DAY0 + timedelta(hours=7), DAY0 + timedelta(days=5, hours=6, minutes=30)),  # starts inside day 0
    (DAY0 + timedelta(days=1), DAY0 + timedelta(days=2) - timedelta(minutes=1)),  # exactly day 1
    (DAY0 + timedelta(days=1, hours=5), DAY0 + timedelta(days=3, hours=2)),  # two partial days and a whole one
    (DAY0 + timedelta(days=2, hours=3), DAY0 + timedelta(days=2, hours=9)),  # inside one day
    (DAY0 + timedelta(days=1, hours=3), DAY0 + timedelta(days=1, hours=4)),  # an hour of the rolled-up day
    (DAY0 - timedelta(days=2), DAY0 + timedelta(days=9)),  # wider than the data
]


@pytest.mark.parametrize("span", SPANS, ids=[f"span{i}" for i in range(len(SPANS))])
def test_summaries_give_what_the_hours_give(cluster, world, span) -> None:
    ids = [world["api"].id]
    before = _seen(cluster, ids, *span)
    assert before
    refresh_rollup(cluster, now=NOW)
    assert set(RollupDay.objects.values_list("day", flat=True)) >= {DAY0 + timedelta(days=n) for n in range(5)}
    assert CommunicationDay.objects.exists()
    assert _seen(cluster, ids, *span) == before
    # A peer's point of view (the other end of the same rows) too.
    peer = [world["peers"][3].id]
    assert _seen(cluster, peer, *span) == sorted(_seen_without_summaries(cluster, peer, span))


def _seen_without_summaries(cluster, ids, span) -> list[tuple]:
    marks = list(RollupDay.objects.values_list("cluster_id", "day"))
    RollupDay.objects.all().delete()
    try:
        return _seen(cluster, ids, *span)
    finally:
        RollupDay.objects.bulk_create(RollupDay(cluster_id=c, day=d) for c, d in marks)


def test_only_days_that_are_over_and_marked_are_read(cluster, world) -> None:
    refresh_rollup(cluster, now=NOW)
    today = NOW.replace(hour=0, minute=0)
    assert not RollupDay.objects.filter(day=today).exists()
    whole = [DAY0 + timedelta(days=n) for n in (1, 2, 3, 4)]
    assert summarised_days(cluster.id, DAY0 + timedelta(hours=1), NOW) == whole
    # A day whose summary is not marked is read from the hours, whatever rows its summary left.
    RollupDay.objects.filter(day=DAY0 + timedelta(days=2)).delete()
    CommunicationDay.objects.filter(day=DAY0 + timedelta(days=2)).update(connections=10**6)
    span = (DAY0 + timedelta(days=2), DAY0 + timedelta(days=3) - timedelta(minutes=1))
    assert all(row[7] < 10**6 for row in _seen(cluster, [world["api"].id], *span))


def test_a_changed_day_is_summarised_again(cluster, world) -> None:
    refresh_rollup(cluster, now=NOW)
    api, span = world["api"], (DAY0, NOW)
    bucket = DAY0 + timedelta(days=3, hours=4)
    Communication.objects.filter(bucket=bucket).delete()
    Communication.objects.create(cluster=cluster, bucket=bucket, src_workload=api, dst_ip="192.0.2.50", port=22,
                                 protocol="TCP", connections=3, first_seen=bucket, last_seen=bucket)
    refresh_rollup(cluster, [bucket], now=NOW)  # what aggregation does after rebuilding the bucket
    after = _seen(cluster, [api.id], *span)
    assert any(row[2] == "192.0.2.50" for row in after)
    assert after == sorted(_seen_without_summaries(cluster, [api.id], span))
    # ``since``: every day from then on, as after ``aggregate_flows --rebuild``.
    Communication.objects.filter(bucket__gte=DAY0 + timedelta(days=4)).delete()
    refresh_rollup(cluster, since=DAY0 + timedelta(days=4), now=NOW)
    assert not CommunicationDay.objects.filter(day=DAY0 + timedelta(days=4)).exists()
    assert _seen(cluster, [api.id], *span) == sorted(_seen_without_summaries(cluster, [api.id], span))


def test_summaries_follow_retention(cluster, world) -> None:
    """Hours rolled up into days move a day's activity to its first hour: the summary is made again."""
    span, api = (DAY0 + timedelta(hours=5), NOW), world["api"]
    refresh_rollup(cluster, now=NOW)
    policy = RetentionPolicy(raw_flows_days=1, hourly_days=3, daily_days=5)
    later = DAY0 + timedelta(days=6)
    apply_retention(later, policy=policy)  # days before DAY0+3 rolled up, none expired
    assert Communication.objects.filter(granularity="day", bucket=DAY0 + timedelta(days=2)).exists()
    refresh_rollup(cluster, [DAY0 + timedelta(days=n) for n in range(3)], now=later)
    assert _seen(cluster, [api.id], *span) == sorted(_seen_without_summaries(cluster, [api.id], span))
    apply_retention(DAY0 + timedelta(days=7), policy=policy)  # day 0 and 1 expire, day 3 is rolled up
    refresh_rollup(cluster, [DAY0 + timedelta(days=3)], now=DAY0 + timedelta(days=7))
    expire_rollup(cluster, DAY0 + timedelta(days=2))
    assert not CommunicationDay.objects.filter(day__lt=DAY0 + timedelta(days=2)).exists()
    assert not RollupDay.objects.filter(day__lt=DAY0 + timedelta(days=2)).exists()
    assert _seen(cluster, [api.id], *span) == sorted(_seen_without_summaries(cluster, [api.id], span))


def test_a_deleted_workload_takes_its_summaries_along(cluster, world) -> None:
    refresh_rollup(cluster, now=NOW)
    gone = world["peers"][1]
    assert CommunicationDay.objects.filter(dst_workload=gone).exists()
    gone_id = gone.id
    gone.delete()
    assert not CommunicationDay.objects.filter(dst_workload_id=gone_id).exists()


def test_the_page_rows_are_the_same_with_summaries(cluster, world) -> None:
    scope = services.resolve_scope(SYSTEM, "test", "shop", "Deployment", "api")

    def rows() -> list[tuple]:
        return [(r.key, r.connections, r.first_seen, r.last_seen, tuple(r.activity))
                for r in services.rows(SYSTEM, scope, since=timedelta(days=7), until=NOW)]

    before = rows()
    refresh_rollup(cluster, now=NOW)
    assert rows() == before
    assert any(sum(r[4]) for r in before)
