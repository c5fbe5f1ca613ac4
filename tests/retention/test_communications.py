"""Communications under retention: sealed when their raw flows go, rolled up into days with the same totals
(through the query the pages and show_communications use), expired, and never rebuilt by aggregation after."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command

from flows.aggregate import aggregate_cluster
from flows.models import Communication, IngestBatch, RawFlow
from flows.retention import RetentionPolicy, apply_retention
from tests import factories as f
from tests.factories import T0

pytestmark = pytest.mark.django_db

POLICY = RetentionPolicy(raw_flows_days=7, hourly_days=90, daily_days=400, batch=3)
DAY0 = T0.replace(hour=0)  # 2026-11-20, the flows' first day
AFTER_RAW = DAY0 + timedelta(days=10)  # raw flows of DAY0 and DAY0+1 gone, hours kept
AFTER_HOURLY = DAY0 + timedelta(days=100)  # hours of DAY0 and DAY0+1 rolled up into days
AFTER_DAILY = DAY0 + timedelta(days=500)  # everything gone


@pytest.fixture
def traffic(cluster):
    """frontend → cart on 8080 and → an outside address on 443, over several hours of two days, plus a denied try."""
    fe = f.workload(cluster, "shop", "Deployment", "frontend")
    cart = f.workload(cluster, "shop", "Deployment", "cart")
    f.pod(cluster, fe, "frontend-a", "10.244.1.10")
    f.pod(cluster, cart, "cart-a", "10.244.2.20", ports=((8080, "TCP"),))
    port = iter(range(40000, 41000))
    for hours, count in ((0, 3), (1, 2), (5, 4), (26, 1), (30, 2)):
        for i in range(count):
            f.flow(cluster, "10.244.1.10", next(port), "10.244.2.20", 8080, time=T0 + timedelta(hours=hours, minutes=i))
    f.flow(cluster, "10.244.1.10", next(port), "203.0.113.9", 443, time=T0 + timedelta(hours=2))
    f.flow(cluster, "10.244.1.10", next(port), "10.244.2.20", 9999, time=T0 + timedelta(hours=3), verdict="DROPPED")
    aggregate_cluster(cluster)
    return {"frontend": fe, "cart": cart}


def _show(name: str, direction: str, since: str, until: datetime) -> list[dict]:
    out = io.StringIO()
    call_command("show_communications", cluster="test", namespace="shop", kind="Deployment", name=name,
                 direction=direction, since=since, until=until.isoformat(), format="json", stdout=out)
    return sorted(json.loads(out.getvalue())["rows"], key=lambda r: (r["port"], r["connections"]))


def _hourly_and_daily(cluster) -> tuple[int, int]:
    rows = Communication.objects.filter(cluster=cluster)
    return rows.filter(granularity="hour").count(), rows.filter(granularity="day").count()


def test_rollup_keeps_the_totals_of_whole_days(cluster, traffic) -> None:
    spans = [("3d", DAY0 + timedelta(days=2)), ("1d", DAY0 + timedelta(days=1) - timedelta(seconds=1)),
             ("1d", DAY0 + timedelta(days=2) - timedelta(seconds=1))]
    before = {(name, d, s): _show(name, d, s, u) for name in ("frontend", "cart") for d in ("egress", "ingress")
              for s, u in spans}
    hourly, _ = _hourly_and_daily(cluster)
    result = apply_retention(AFTER_HOURLY, policy=POLICY)
    assert (result.sealed, result.rolled_up) == (hourly, hourly)
    # One daily row per day and key: cart on 8080 both days, the outside address and the denied try on day 0.
    assert _hourly_and_daily(cluster) == (0, result.daily_rows) == (0, 4)
    assert not RawFlow.objects.exists()
    after = {(name, d, s): _show(name, d, s, u) for name in ("frontend", "cart") for d in ("egress", "ingress")
             for s, u in spans}
    assert after == before
    assert [r["connections"] for r in before[("frontend", "egress", "3d")]] == [1, 12, 1]  # 443, 8080, 9999


def test_a_span_inside_a_rolled_up_day_counts_the_whole_day(cluster, traffic) -> None:
    until = T0 + timedelta(hours=1, minutes=30)  # hours 10:00 and 11:00 of day 0: 5 connections to cart
    assert [r["connections"] for r in _show("cart", "ingress", "1h", until)] == [5]
    apply_retention(AFTER_HOURLY, policy=POLICY)
    assert [r["connections"] for r in _show("cart", "ingress", "1h", until)] == [9]  # the day's 3 + 2 + 4
    # A span after the last connection of the day, though within it, shows nothing, as before the rollup.
    assert _show("cart", "ingress", "2h", T0 + timedelta(hours=10)) == []


def test_hours_are_sealed_before_their_raw_flows_go(cluster, traffic) -> None:
    hourly, _ = _hourly_and_daily(cluster)
    result = apply_retention(AFTER_RAW, policy=POLICY)
    assert result.sealed == hourly and result.rolled_up == 0
    assert not Communication.objects.filter(sealed=False).exists()
    assert not RawFlow.objects.exists()


def test_aggregation_leaves_sealed_hours_alone(cluster, traffic) -> None:
    apply_retention(AFTER_RAW, policy=POLICY)
    rows = sorted(Communication.objects.values_list("id", "bucket", "connections"))
    # A backfill into a sealed hour: rebuilding it from this one flow would replace the three it counted.
    f.flow(cluster, "10.244.1.10", 45000, "10.244.2.20", 8080, time=T0 + timedelta(minutes=30))
    # One into an hour that has nothing yet is aggregated as usual.
    f.flow(cluster, "10.244.1.10", 45001, "10.244.2.20", 8080, time=T0 + timedelta(hours=8))
    result = aggregate_cluster(cluster)
    assert (result.buckets, result.sealed) == ([T0 + timedelta(hours=8)], [T0])
    assert sorted(Communication.objects.exclude(bucket=T0 + timedelta(hours=8))
                  .values_list("id", "bucket", "connections")) == rows
    assert aggregate_cluster(cluster, rebuild_since=DAY0 - timedelta(days=1)).sealed == [T0]
    assert sorted(Communication.objects.exclude(bucket=T0 + timedelta(hours=8))
                  .values_list("id", "bucket", "connections")) == rows


def test_aggregation_after_a_rollup_never_touches_the_daily_rows(cluster, traffic) -> None:
    apply_retention(AFTER_HOURLY, policy=POLICY)
    daily = sorted(Communication.objects.values_list("id", "bucket", "granularity", "connections"))
    # The first hour of a rolled-up day has the day's bucket: a rebuild of it must not delete the day.
    f.flow(cluster, "10.244.1.10", 45000, "10.244.2.20", 8080, time=DAY0 + timedelta(minutes=5))
    f.flow(cluster, "10.244.1.10", 45001, "10.244.2.20", 8080, time=T0 + timedelta(hours=4))
    result = aggregate_cluster(cluster, rebuild_since=DAY0 - timedelta(days=3))
    assert result.buckets == [] and set(result.sealed) == {DAY0, T0 + timedelta(hours=4)}
    assert sorted(Communication.objects.values_list("id", "bucket", "granularity", "connections")) == daily
    assert aggregate_cluster(cluster).raw_flows == 0  # the watermark moved past the flows it left alone


def test_a_day_rolled_up_again_is_merged_not_doubled(cluster, traffic) -> None:
    """Hours that turn up for a rolled-up day (written by hand here) fold into its existing daily rows."""
    apply_retention(AFTER_HOURLY, policy=POLICY)
    day_row = Communication.objects.get(bucket=DAY0, port=8080)
    noon, late = T0 + timedelta(hours=2), T0 + timedelta(hours=13) - timedelta(seconds=1)
    Communication.objects.create(
        cluster=cluster, bucket=noon, granularity="hour", sealed=True, src_workload=traffic["frontend"],
        dst_workload=traffic["cart"], port=8080, protocol="TCP", connections=5, first_seen=noon, last_seen=late)
    result = apply_retention(AFTER_HOURLY, policy=POLICY)
    assert (result.rolled_up, result.daily_rows) == (1, 0)
    merged = Communication.objects.get(bucket=DAY0, port=8080)
    assert merged.connections == day_row.connections + 5
    assert (merged.first_seen, merged.last_seen) == (day_row.first_seen, late)


def test_daily_rows_expire_after_their_days(cluster, traffic) -> None:
    apply_retention(AFTER_HOURLY, policy=POLICY)
    result = apply_retention(AFTER_DAILY, policy=POLICY)
    assert result.communications_expired == 4 and not Communication.objects.exists()


def test_a_second_run_finds_nothing_to_do(cluster, traffic) -> None:
    IngestBatch.objects.create(cluster=cluster, kind="flows", key="k")
    IngestBatch.objects.update(created=DAY0)
    first = apply_retention(AFTER_HOURLY, policy=POLICY)
    assert first.ingest_batches == 1
    second = apply_retention(AFTER_HOURLY, policy=POLICY)
    assert (second.raw_flows, second.sealed, second.rolled_up, second.daily_rows, second.communications_expired,
            second.ingest_batches, sum(second.inventory.values())) == (0, 0, 0, 0, 0, 0, 0)


def test_dry_run_counts_the_rollup_and_changes_nothing(cluster, traffic) -> None:
    rows = sorted(Communication.objects.values_list("id", "bucket", "granularity", "sealed", "connections"))
    dry = apply_retention(AFTER_HOURLY, policy=POLICY, dry_run=True)
    assert sorted(Communication.objects.values_list("id", "bucket", "granularity", "sealed", "connections")) == rows
    real = apply_retention(AFTER_HOURLY, policy=POLICY)
    assert (dry.sealed, dry.rolled_up, dry.daily_rows, dry.raw_flows) == (
        real.sealed, real.rolled_up, real.daily_rows, real.raw_flows)


def test_what_is_deleted_in_one_statement_has_nothing_pointing_at_it() -> None:
    """Retention deletes raw flows, communications and ingest batches without Django's collector: nothing may
    refer to them (a reference added later would be left dangling, or fail the run)."""
    for model in (RawFlow, Communication, IngestBatch):
        assert model._meta.related_objects == (), model


def test_days_that_start_at_utc_midnight() -> None:
    from flows.retention import Cutoffs

    cut = Cutoffs.of(datetime(2026, 12, 2, 1, 30, tzinfo=UTC), POLICY)
    assert (cut.raw, cut.hourly, cut.daily) == (datetime(2026, 11, 25, tzinfo=UTC), datetime(2026, 9, 3, tzinfo=UTC),
                                                datetime(2025, 10, 28, tzinfo=UTC))
