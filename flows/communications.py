"""The ingress and egress tables of a workload: communications over a time span, rolled up per peer.

This is the one read path that the command line, the web UI, the API and policy generation share.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from django.db.models import Max, Min, Q, Sum
from django.utils import timezone

from flows.classify import IPClassifier, IPInfo
from flows.models import Cluster, Communication, Namespace, Pod, Service, Workload

Direction = Literal["ingress", "egress"]
DIRECTIONS: tuple[Direction, ...] = ("ingress", "egress")

# Kinds a user may pick (design §6); ReplicaSet and Pod only for owners with no controller above them.
SCOPE_KINDS = ("Service", "Deployment", "DaemonSet", "StatefulSet", "CronJob", "Job", "ReplicaSet", "Pod")

_SPAN = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class ScopeError(ValueError):
    """The selection names nothing we know, said in words a user can act on."""


def parse_span(text: str) -> timedelta:
    """'12h', '7d', '30m', '2w' → timedelta; ValueError with the accepted forms otherwise."""
    match = _SPAN.match(text or "")
    if not match or int(match.group(1)) <= 0:
        raise ValueError(f"time span {text!r}: use a positive number and a unit m, h, d or w, e.g. 12h or 7d")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


@dataclass(frozen=True)
class Scope:
    """What a policy is written for: a workload, or a Service's backends."""

    cluster: Cluster
    namespace: Namespace
    kind: str
    name: str
    workloads: tuple[Workload, ...]
    service: Service | None = None

    @property
    def workload_ids(self) -> list[int]:
        return [w.id for w in self.workloads]

    def as_json(self) -> dict:
        return {"cluster": self.cluster.name, "namespace": self.namespace.name, "kind": self.kind,
                "name": self.name}


def service_backends(service: Service) -> list[Workload]:
    """Top-level workloads whose pods a Service's selector picks."""
    if not service.selector:
        return []
    ids = {
        pod.workload_id
        for pod in Pod.objects.filter(namespace=service.namespace, workload__isnull=False).only("labels", "workload")
        if all(pod.labels.get(k) == v for k, v in service.selector.items())
    }
    return list(Workload.objects.filter(id__in=ids).order_by("kind", "name"))


def resolve_scope(cluster: str | Cluster, namespace: str, kind: str, name: str) -> Scope:
    if isinstance(cluster, str):
        try:
            cluster = Cluster.objects.get(name=cluster)
        except Cluster.DoesNotExist:
            raise ScopeError(f"cluster {cluster!r} does not exist") from None
    if kind not in SCOPE_KINDS:
        raise ScopeError(f"kind {kind!r}: use one of {', '.join(SCOPE_KINDS)}")
    try:
        ns = Namespace.objects.get(cluster=cluster, name=namespace)
    except Namespace.DoesNotExist:
        raise ScopeError(f"namespace {namespace!r} does not exist in cluster {cluster.name!r}") from None
    if kind == "Service":
        try:
            service = Service.objects.get(namespace=ns, name=name)
        except Service.DoesNotExist:
            raise ScopeError(f"Service {namespace}/{name} does not exist in cluster {cluster.name!r}") from None
        return Scope(cluster, ns, kind, name, tuple(service_backends(service)), service)
    # Only top-level owners are scopes: a Job of a CronJob rolls up to the CronJob, a ReplicaSet of a
    # Deployment to the Deployment.
    workload = Workload.objects.filter(namespace=ns, kind=kind, name=name, parent__isnull=True).first()
    if workload is None:
        child = Workload.objects.filter(namespace=ns, kind=kind, name=name).select_related("parent").first()
        hint = f"; its pods roll up to {child.parent.kind} {child.parent.name}" if child and child.parent else ""
        raise ScopeError(f"{kind} {namespace}/{name} is not a workload in cluster {cluster.name!r}{hint}")
    return Scope(cluster, ns, kind, name, (workload,))


def list_scopes(namespace: Namespace, kind: str) -> list[str]:
    """Names a user can pick for a kind in a namespace (live objects only)."""
    if kind == "Service":
        return list(Service.objects.live().filter(namespace=namespace).values_list("name", flat=True))
    return list(
        Workload.objects.live().filter(namespace=namespace, kind=kind, parent__isnull=True)
        .values_list("name", flat=True)
    )


@dataclass
class CommunicationRow:
    """One row of an ingress or egress table: a peer, a port, and what was seen over the span."""

    direction: Direction
    peer: Workload | None
    ip: IPInfo | None
    port: int
    protocol: str
    connections: int
    first_seen: datetime
    last_seen: datetime
    denied_in_cluster: bool
    node_local: bool
    included: bool = False

    @property
    def peer_key(self) -> str:
        """A stable identifier of the row, used by drafts to remember a decision."""
        who = f"{self.peer.kind}/{self.peer.namespace.name}/{self.peer.name}" if self.peer else f"ip/{self.ip.ip}"
        return f"{self.direction}:{who}:{self.port}/{self.protocol}"

    @property
    def default_included(self) -> bool:
        """Design §4: resolved in-cluster rows are allowed, unresolved IPs excluded unless an admin allowed
        them, and attempts denied in the cluster never re-opened silently."""
        if self.denied_in_cluster or self.node_local:
            return False
        if self.peer is not None:
            return True
        return bool(self.ip and self.ip.allowed)

    def as_json(self) -> dict:
        if self.peer is not None:
            peer = {"kind": self.peer.kind, "namespace": self.peer.namespace.name, "name": self.peer.name}
        else:
            peer = self.ip.as_peer()
        return {
            "peer": peer,
            "port": self.port,
            "protocol": self.protocol,
            "connections": self.connections,
            "first_seen": self.first_seen.isoformat(),
            "last_seen": self.last_seen.isoformat(),
            "denied_in_cluster": self.denied_in_cluster,
            "included": self.included,
            # Extension of the contract: traffic from the pod's own node needs no rule (kubelet probes).
            "always_allowed": self.node_local,
        }


def communications(scope: Scope, direction: Direction, *, since: timedelta = timedelta(hours=24),
                   until: datetime | None = None) -> list[CommunicationRow]:
    """The rows of one table, most connections first; ``included`` holds the default decision."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction {direction!r}: use ingress or egress")
    until = until or timezone.now()
    start = (until - since).replace(minute=0, second=0, microsecond=0)
    own, peer_wl, peer_ip = ("dst", "src", "src") if direction == "ingress" else ("src", "dst", "dst")
    qs = (
        Communication.objects.filter(cluster=scope.cluster, bucket__gte=start, bucket__lte=until)
        .filter(Q(**{f"{own}_workload_id__in": scope.workload_ids}))
        .values(f"{peer_wl}_workload_id", f"{peer_ip}_ip", "port", "protocol", "denied", "node_local")
        .annotate(connections=Sum("connections"), first_seen=Min("first_seen"), last_seen=Max("last_seen"))
    )
    raw = list(qs)
    peers = Workload.objects.select_related("namespace").in_bulk(
        {r[f"{peer_wl}_workload_id"] for r in raw if r[f"{peer_wl}_workload_id"]}
    )
    infos = IPClassifier(scope.cluster).classify_many(r[f"{peer_ip}_ip"] for r in raw if r[f"{peer_ip}_ip"])
    rows = []
    for r in raw:
        wl_id = r[f"{peer_wl}_workload_id"]
        row = CommunicationRow(
            direction=direction,
            peer=peers[wl_id] if wl_id else None,
            ip=None if wl_id else infos[r[f"{peer_ip}_ip"]],
            port=r["port"], protocol=r["protocol"], connections=r["connections"],
            first_seen=r["first_seen"], last_seen=r["last_seen"],
            denied_in_cluster=r["denied"], node_local=r["node_local"],
        )
        row.included = row.default_included
        rows.append(row)
    rows.sort(key=lambda r: (-r.connections, r.peer_key))
    return rows
