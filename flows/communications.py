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
from datetime import datetime, timedelta

from django.db.models import Max, Min, Q, QuerySet, Sum

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


def observed(cluster_id: int, workload_ids: Iterable[int], start: datetime, end: datetime) -> list[Observed]:
    """Communications of ``workload_ids`` with the hour buckets of [start, end] grouped per peer and port,
    both directions, with their connections per hour: two queries, whatever the number of peers."""
    ids = list(workload_ids)
    if not ids:
        return []
    span = in_span(cluster_id, start, end).filter(Q(src_workload_id__in=ids) | Q(dst_workload_id__in=ids))
    rows = span.values(*_GROUP).annotate(connections=Sum("connections"), first_seen=Min("first_seen"),
                                         last_seen=Max("last_seen"))
    hours: dict[tuple, list[tuple[datetime, int]]] = {}
    for r in span.values(*_GROUP, "bucket").annotate(connections=Sum("connections")).order_by("bucket"):
        hours.setdefault(tuple(r[k] for k in _GROUP), []).append((r["bucket"], r["connections"]))
    wanted = set(ids)
    out: list[Observed] = []
    for r in rows:
        # A workload talking to itself (or to another of the same scope) is a row of both tables.
        for outgoing in (True, False):
            own, peer = ("src", "dst") if outgoing else ("dst", "src")
            if r[f"{own}_workload_id"] not in wanted:
                continue
            out.append(Observed(
                outgoing=outgoing, peer_workload_id=r[f"{peer}_workload_id"], peer_ip=r[f"{peer}_ip"],
                port=r["port"], protocol=r["protocol"], denied=r["denied"], node_local=r["node_local"],
                connections=r["connections"], first_seen=r["first_seen"], last_seen=r["last_seen"],
                hours=tuple(hours.get(tuple(r[k] for k in _GROUP), ())),
            ))
    return out


def service_workload_ids(service: Service) -> list[int]:
    """Top-level workloads whose live pods the Service's selector picks (none for a selectorless one)."""
    if not service.selector:
        return []
    pods = Pod.objects.live().filter(namespace_id=service.namespace_id, workload__isnull=False)
    ids = {pod.workload_id for pod in pods.only("labels", "workload")
           if all(pod.labels.get(k) == v for k, v in service.selector.items())}
    return list(Workload.objects.filter(id__in=ids).order_by("kind", "name").values_list("id", flat=True))
