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
from django.db.models import Func, IntegerField, Max, Min, Q, QuerySet, Sum
from django.utils.dateparse import parse_datetime

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
    # Connections per bucket that has any, in order: an hour, or a whole day for a rolled-up day.
    hours: tuple[tuple[datetime, int], ...] = ()


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


def observed(cluster_id: int, workload_ids: Iterable[int], start: datetime, end: datetime, *,
             slice_hours: int = 1) -> list[Observed]:
    """Communications of ``workload_ids`` with the hour buckets of [start, end] grouped per peer and port,
    both directions, with their connections per slice of ``slice_hours`` hours from ``start`` (``hours``: the
    start of each slice that has any, in order): one query, whatever the number of peers.

    The database groups twice: per key and slice, then per key, the slices gathered into one text column
    ("slice:connections,..."), so that a week of hourly rows comes back as one row per peer and port."""
    ids = list(workload_ids)
    if not ids:
        return []
    slice_hours = max(1, int(slice_hours))
    span = in_span(cluster_id, start, end).filter(Q(src_workload_id__in=ids) | Q(dst_workload_id__in=ids))
    inner = (span.annotate(slice=_Slice("bucket", start, slice_hours)).values(*_GROUP, "slice")
             .annotate(c=Sum("connections"), f=Min("first_seen"), l=Max("last_seen")).order_by())
    sql, params = inner.query.sql_with_params()
    qn = connection.ops.quote_name
    keys = ", ".join(qn(k) for k in _GROUP)
    joined = ("GROUP_CONCAT(CAST({s} AS TEXT) || ':' || CAST(c AS TEXT), ',')" if connection.vendor == "sqlite"
              else "STRING_AGG(CAST({s} AS TEXT) || ':' || CAST(c AS TEXT), ',')").format(s=qn("slice"))
    outer = f"SELECT {keys}, SUM(c), MIN(f), MAX(l), {joined} FROM ({sql}) AS per_slice GROUP BY {keys}"
    with connection.cursor() as cursor:
        cursor.execute(outer, params)
        rows = cursor.fetchall()
    width = HOUR * slice_hours
    wanted = set(ids)
    out: list[Observed] = []
    for row in rows:
        src_w, src_ip, dst_w, dst_ip, port, protocol, denied, node_local, connections, first, last, text = row
        slices = sorted((int(k), int(n)) for k, n in (part.split(":") for part in text.split(",")))
        hours = tuple((start + width * k, n) for k, n in slices)
        first_seen, last_seen, denied, node_local = _moment(first), _moment(last), bool(denied), bool(node_local)
        # A workload talking to itself (or to another of the same scope) is a row of both tables.
        if src_w in wanted:
            out.append(Observed(True, dst_w, dst_ip, port, protocol, denied, node_local, int(connections),
                                first_seen, last_seen, hours))
        if dst_w in wanted:
            out.append(Observed(False, src_w, src_ip, port, protocol, denied, node_local, int(connections),
                                first_seen, last_seen, hours))
    return out


def service_workload_ids(service: Service) -> list[int]:
    """Top-level workloads whose live pods the Service's selector picks (none for a selectorless one)."""
    if not service.selector:
        return []
    pods = Pod.objects.live().filter(namespace_id=service.namespace_id, workload__isnull=False)
    ids = {pod.workload_id for pod in pods.only("labels", "workload")
           if all(pod.labels.get(k) == v for k, v in service.selector.items())}
    return list(Workload.objects.filter(id__in=ids).order_by("kind", "name").values_list("id", flat=True))
