"""The communications of some workloads over a span, rolled up per peer: what the tables are made of.

One grouped query per call, whatever the number of peers. The rows it returns are plain data; the
policy layer turns them into the rows users see and decide on (``policies.adapter``).

Old communications are daily rows (``flows.retention`` rolls hours up into days): a span counts a daily row
whole when its day overlaps the span and its connections were not all before the span or after it. A span
made of whole days therefore gives the same totals before and after a rollup; one that starts or ends inside
a rolled-up day counts the whole day, which only ever shows a communication that did happen that day (a
policy built from it never misses one).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Func, IntegerField, Q, QuerySet
from django.utils.dateparse import parse_datetime

from flows import rollup
from flows.models import Communication, Pod, Service, Workload

# Kinds a user may pick (design §6); ReplicaSet and Pod only for owners with no controller above them.
SCOPE_KINDS = ("Service", "Deployment", "DaemonSet", "StatefulSet", "CronJob", "Job", "ReplicaSet", "Pod")


@dataclass(frozen=True, slots=True)
class Observed:
    """The connections between the workloads asked for and one peer, on one port, over the span.

    ``outgoing``: the workloads asked for are the source (an egress row) rather than the destination.
    The peer is a workload (``peer_workload_id``) or an address nothing resolved (``peer_ip``).
    """

    outgoing: bool
    peer_workload_id: int | None
    peer_ip: str
    port: int
    protocol: str
    denied: bool
    node_local: bool
    connections: int
    first_seen: datetime
    last_seen: datetime
    # Where ``hours`` counts from, and the database's text of the connections per hour (parsed when asked for).
    origin: datetime | None = None
    hour_text: str = ""
    # The end of the row among the workloads asked for (its source for an outgoing row).
    own_workload_id: int | None = None

    @property
    def hours(self) -> tuple[tuple[datetime, int], ...]:
        """Connections per hour bucket that has any, in order (a rolled-up day's at the start of its day)."""
        return _hours(self.origin, self.hour_text) if self.origin is not None else ()


_GROUP = ("src_workload_id", "src_ip", "dst_workload_id", "dst_ip", "port", "protocol", "denied", "node_local")
HOUR, DAY = timedelta(hours=1), timedelta(days=1)


def in_span(cluster_id: int, start: datetime, end: datetime) -> QuerySet[Communication]:
    """The communications of a cluster that count for the hour buckets of [start, end] (``start`` on the hour).

    Hourly rows by their bucket; daily rows when their day overlaps the hours of the span and their first and
    last connection do not both fall outside them. One range on ``bucket`` for both, so the indexes serve.
    """
    until = end.replace(minute=0, second=0, microsecond=0) + HOUR  # the end of the last hour bucket counted
    return Communication.objects.filter(cluster_id=cluster_id, bucket__gt=start - DAY, bucket__lte=end).filter(
        Q(granularity=Communication.Granularity.HOUR, bucket__gte=start)
        | Q(granularity=Communication.Granularity.DAY, last_seen__gte=start, first_seen__lt=until)
    )


class _Slice(Func):
    """The index of the slice of ``slice_hours`` hours, counted from ``start``, that a bucket falls in (floor
    division, so that a daily row starting before ``start`` gets a negative one): the same integer on both
    databases, from the bucket's seconds since the epoch."""

    output_field = IntegerField()

    def __init__(self, expression: Any, start: datetime, slice_hours: int) -> None:
        super().__init__(expression)
        self.origin, self.width = int(start.timestamp()), 3600 * int(slice_hours)

    def _floor(self, seconds: str) -> str:
        x, d = f"({seconds} - {self.origin})", self.width
        return f"(({x} - ((({x} %%%% {d}) + {d}) %%%% {d})) / {d})"

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> Any:  # PostgreSQL, and the default
        return super().as_sql(compiler, connection,
                              template=self._floor("CAST(EXTRACT(EPOCH FROM %(expressions)s) AS BIGINT)"), **extra)

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return super().as_sql(compiler, connection,
                              template=self._floor("CAST(strftime('%%%%s', %(expressions)s) AS INTEGER)"), **extra)


def _moment(value: Any) -> datetime:
    """A datetime read by a raw query: SQLite gives the text Django stored (UTC, naive)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    moment = parse_datetime(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _uncovered(start: datetime, end: datetime, days: list[datetime]) -> list[Q]:
    """Bucket ranges of the span that the summarised ``days`` (sorted, whole days inside it) leave to the
    communications themselves, each with both bounds so that the (workload, bucket) indexes serve it."""
    ranges: list[Q] = []
    low, after = Q(bucket__gt=start - DAY), None
    for day in days:
        if day != after:  # a gap before this day (or the span's start)
            ranges.append(low & Q(bucket__lt=day))
        low, after = Q(bucket__gte=day + DAY), day + DAY
    ranges.append(low & Q(bucket__lte=end))
    return ranges


def _sides(ids: list[int], ranges: list[Q]) -> Q:
    """Either end among ``ids``, within one of ``ranges``: one index condition per side and range."""
    out = Q(pk__in=[])
    for side in ("src_workload_id__in", "dst_workload_id__in"):
        for bucket_range in ranges:
            out |= Q(**{side: ids}) & bucket_range
    return out


def observed(cluster_id: int, workload_ids: Iterable[int], start: datetime, end: datetime, *,
             slice_hours: int = 1) -> list[Observed]:
    """Communications of ``workload_ids`` with the hour buckets of [start, end] grouped per peer and port,
    both directions, with their connections per hour (``Observed.hours``, read when asked for): one query,
    whatever the number of peers.

    The whole days of the span that ``flows.rollup`` summarised are read from their summaries, the other hours
    from the communications; the database groups both per key, the hours gathered into one text column, so
    that a week of hourly rows comes back as one row per peer and port. ``slice_hours`` is accepted for
    callers that group hours into slices themselves (the hours come back one by one)."""
    ids = list(workload_ids)
    if not ids:
        return []
    days = rollup.summarised_days(cluster_id, start, end)
    hourly = (in_span(cluster_id, start, end).filter(_sides(ids, _uncovered(start, end, days)))
              .annotate(o=_Slice("bucket", start, 1)).values(*_GROUP, "o", "connections", "first_seen", "last_seen")
              .order_by())
    parts = [hourly.query.sql_with_params()]
    if days:
        summary = (rollup.CommunicationDay.objects.filter(cluster_id=cluster_id, day__in=days)
                   .filter(Q(src_workload_id__in=ids) | Q(dst_workload_id__in=ids))
                   .annotate(o=_Slice("day", start, 1))
                   .values(*_GROUP, "o", "connections", "first_seen", "last_seen", "hours").order_by())
        parts.append(summary.query.sql_with_params())
    qn = connection.ops.quote_name
    keys = ", ".join(qn(k) for k in _GROUP)
    concat = "GROUP_CONCAT({}, ',')" if connection.vendor == "sqlite" else "STRING_AGG({}, ',')"
    # Each part grouped per key first (a hash of a few thousand keys), then the parts together.
    selects = [f"SELECT {keys}, SUM(connections) AS c, MIN(first_seen) AS f, MAX(last_seen) AS l, "
               + concat.format("CAST(o AS TEXT) || ':' || CAST(connections AS TEXT)")
               + f" AS t FROM ({parts[0][0]}) AS hourly GROUP BY {keys}"]
    if days:
        selects.append(f"SELECT {keys}, SUM(connections), MIN(first_seen), MAX(last_seen), "
                       + concat.format(f"CAST(o AS TEXT) || '=' || {qn('hours')}")
                       + f" FROM ({parts[1][0]}) AS summary GROUP BY {keys}")
    if len(selects) == 1:
        outer = selects[0]
    else:
        union = " UNION ALL ".join(selects)
        outer = (f"SELECT {keys}, SUM(c), MIN(f), MAX(l), {concat.format('t')} FROM ({union}) AS span "
                 f"GROUP BY {keys}")
    params = tuple(p for _, part in parts for p in part)
    with connection.cursor() as cursor:
        cursor.execute(outer, params)
        rows = cursor.fetchall()
    wanted = set(ids)
    out: list[Observed] = []
    for row in rows:
        src_w, src_ip, dst_w, dst_ip, port, protocol, denied, node_local, connections, first, last, text = row
        first_seen, last_seen, denied, node_local = _moment(first), _moment(last), bool(denied), bool(node_local)
        # A workload talking to itself (or to another of the same scope) is a row of both tables.
        if src_w in wanted:
            out.append(Observed(True, dst_w, dst_ip, port, protocol, denied, node_local, int(connections),
                                first_seen, last_seen, start, text, src_w))
        if dst_w in wanted:
            out.append(Observed(False, src_w, src_ip, port, protocol, denied, node_local, int(connections),
                                first_seen, last_seen, start, text, dst_w))
    return out


def _hours(origin: datetime, text: str) -> tuple[tuple[datetime, int], ...]:
    """``"o:n,o=h:n h:n,..."`` (hours from ``origin``; a summarised day's hours from its own offset) as
    (hour, connections) in order, each hour once."""
    counts: dict[int, int] = {}
    for item in text.split(",") if text else ():
        base, sep, rest = item.partition("=")
        if sep:
            offset = int(base)
            for pair in rest.split(" "):
                hour, _, n = pair.partition(":")
                key = offset + int(hour)
                counts[key] = counts.get(key, 0) + int(n)
        else:
            hour, _, n = item.partition(":")
            counts[int(hour)] = counts.get(int(hour), 0) + int(n)
    return tuple((origin + HOUR * k, n) for k, n in sorted(counts.items()))


def service_workload_ids(service: Service) -> list[int]:
    """Top-level workloads whose live pods the Service's selector picks (none for a selectorless one)."""
    if not service.selector:
        return []
    pods = Pod.objects.live().filter(namespace_id=service.namespace_id, workload__isnull=False)
    ids = {pod.workload_id for pod in pods.only("labels", "workload")
           if all(pod.labels.get(k) == v for k, v in service.selector.items())}
    return list(Workload.objects.filter(id__in=ids).order_by("kind", "name").values_list("id", flat=True))
