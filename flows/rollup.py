"""Day summaries of communications: what a span of days reads instead of every hour of every peer.

A summary row holds, for one cluster, one UTC day and one key (endpoints, port, protocol, denied, node_local),
the day's connections, first and last seen, and its connections per hour (``hours``: ``"h:n h:n"``, hours of
the day 0-23 that have any; a daily row of ``flows.retention`` counts at hour 0, where its bucket is). It is a
pure function of that day's rows in ``flows_communication``, hourly and daily alike.

A day is summarised once it is over, and only a day marked in ``RollupDay`` is read from the summary:
``flows.communications`` reads the whole days of a span that are marked from here and every other hour (the
partial first and last days, today, a day not summarised yet) from the communications themselves, so a span
gives the same totals whether its days are summarised or not.

Whoever changes the communications of a past day calls ``refresh_rollup`` in the same transaction:
aggregation after it rebuilt hour buckets (with the buckets, and ``since`` for a rebuild), retention after it
rolled hours up into days (with those days) and ``expire_rollup`` after it expired old communications. A
workload's deletion cascades to its summary rows as to its communications. ``refresh_rollup`` also
summarises the recent days that are over and not marked yet (``CATCH_UP_DAYS``), so a quiet day still gets
its summary with the next aggregation.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection, models
from django.utils import timezone

DAY = timedelta(days=1)
# Days that are over and not summarised yet are summarised by the next refresh when they are this recent
# (older ones only when a refresh names them, e.g. ``refresh_rollup(cluster, since=...)`` after an upgrade).
CATCH_UP_DAYS = 35

_KEY = ("src_workload_id", "src_ip", "dst_workload_id", "dst_ip", "port", "protocol", "denied", "node_local")


class CommunicationDay(models.Model):
    """The communications of one key over one UTC day, with its connections per hour (see the module)."""

    cluster = models.ForeignKey("flows.Cluster", on_delete=models.CASCADE, related_name="+")
    day = models.DateTimeField(help_text="start of the UTC day")
    # Named reverse relations, so that retention sees a workload a summary still points at (hidden ones it would not).
    src_workload = models.ForeignKey("flows.Workload", null=True, blank=True, on_delete=models.CASCADE,
                                     related_name="egress_day_summaries")
    src_ip = models.CharField(max_length=45, blank=True)
    dst_workload = models.ForeignKey("flows.Workload", null=True, blank=True, on_delete=models.CASCADE,
                                     related_name="ingress_day_summaries")
    dst_ip = models.CharField(max_length=45, blank=True)
    port = models.PositiveIntegerField()
    protocol = models.CharField(max_length=8)
    denied = models.BooleanField(default=False)
    node_local = models.BooleanField(default=False)
    connections = models.PositiveBigIntegerField(default=0)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    hours = models.TextField(help_text='connections per hour of the day that has any: "h:n h:n"')

    class Meta:
        indexes = [
            models.Index(fields=["src_workload", "day"]),
            models.Index(fields=["dst_workload", "day"]),
            models.Index(fields=["cluster", "day"]),
        ]

    def __str__(self) -> str:
        return f"{self.day:%Y-%m-%d} {self.src_workload_id or self.src_ip} → {self.dst_workload_id or self.dst_ip}"


class RollupDay(models.Model):
    """A day of a cluster whose summary is complete: spans read it from ``CommunicationDay``."""

    cluster = models.ForeignKey("flows.Cluster", on_delete=models.CASCADE, related_name="+")
    day = models.DateTimeField()
    built = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["cluster", "day"], name="rollup_day_unique")]

    def __str__(self) -> str:
        return f"cluster {self.cluster_id}: {self.day:%Y-%m-%d}"


def day_of(moment: datetime) -> datetime:
    """The start of the UTC day of ``moment``."""
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _epoch(column: str) -> str:
    if connection.vendor == "sqlite":
        return f"CAST(strftime('%%s', {column}) AS INTEGER)"
    return f"CAST(EXTRACT(EPOCH FROM {column}) AS BIGINT)"


def _concat(expression: str, separator: str) -> str:
    if connection.vendor == "sqlite":
        return f"GROUP_CONCAT({expression}, '{separator}')"
    return f"STRING_AGG({expression}, '{separator}')"


def _build_sql() -> str:
    keys = ", ".join(_KEY)
    hour = f"(({_epoch('bucket')} - %(epoch)s) / 3600)"
    text = _concat(f"CAST({hour} AS TEXT) || ':' || CAST(connections AS TEXT)", " ")
    return f"""
INSERT INTO flows_communicationday (cluster_id, day, {keys}, connections, first_seen, last_seen, hours)
SELECT cluster_id, %(day)s, {keys}, SUM(connections), MIN(first_seen), MAX(last_seen), {text}
FROM flows_communication
WHERE cluster_id = %(cluster)s AND bucket >= %(day)s AND bucket < %(next)s
GROUP BY cluster_id, {keys}
"""


def _rebuild_day(cluster_id: int, day: datetime) -> int:
    adapt = connection.ops.adapt_datetimefield_value
    CommunicationDay.objects.filter(cluster_id=cluster_id, day=day).delete()
    with connection.cursor() as cursor:
        cursor.execute(_build_sql(), {"cluster": cluster_id, "day": adapt(day), "next": adapt(day + DAY),
                                      "epoch": int(day.timestamp())})
        made = max(cursor.rowcount, 0)
    RollupDay.objects.update_or_create(cluster_id=cluster_id, day=day, defaults={"built": timezone.now()})
    return made


def _cluster_id(cluster: Any) -> int:
    return cluster if isinstance(cluster, int) else cluster.pk


def refresh_rollup(cluster: Any, buckets: Iterable[datetime] = (), *, since: datetime | None = None,
                   now: datetime | None = None) -> int:
    """Summarise again the days that are over and hold one of ``buckets`` or start on or after the day of
    ``since``, and the recent days that are over and not summarised yet; return the summary rows written.

    Call it in the transaction that changed the communications of those days. ``cluster``: a Cluster or its id.
    """
    from flows.models import Communication

    cluster_id = _cluster_id(cluster)
    today = day_of(now or timezone.now())
    days = {d for d in map(day_of, buckets) if d < today}
    if since is not None:
        first = day_of(since)
        had = Communication.objects.filter(cluster_id=cluster_id, bucket__gte=first, bucket__lt=today)
        days.update(day_of(b) for b in had.datetimes("bucket", "day", tzinfo=UTC))
        days.update(RollupDay.objects.filter(cluster_id=cluster_id, day__gte=first, day__lt=today)
                    .values_list("day", flat=True))
    recent = {today - DAY * n for n in range(1, CATCH_UP_DAYS + 1)}
    marked = set(RollupDay.objects.filter(cluster_id=cluster_id, day__in=recent).values_list("day", flat=True))
    days.update(recent - marked)
    return sum(_rebuild_day(cluster_id, day) for day in sorted(days))


def expire_rollup(cluster: Any, before: datetime) -> int:
    """Forget the summaries of the days before ``before`` (their communications expired); rows deleted."""
    cluster_id = _cluster_id(cluster)
    RollupDay.objects.filter(cluster_id=cluster_id, day__lt=day_of(before)).delete()
    n, _ = CommunicationDay.objects.filter(cluster_id=cluster_id, day__lt=day_of(before)).delete()
    return n


def summarised_days(cluster_id: int, start: datetime, end: datetime) -> list[datetime]:
    """The whole UTC days inside the hour buckets [start, end] (``start`` on the hour) that are summarised."""
    last_hour = end.replace(minute=0, second=0, microsecond=0)
    first = day_of(start)
    if first < start:
        first += DAY
    wanted = []
    while first + DAY - timedelta(hours=1) <= last_hour:
        wanted.append(first)
        first += DAY
    if not wanted:
        return []
    return sorted(RollupDay.objects.filter(cluster_id=cluster_id, day__in=wanted).values_list("day", flat=True))
