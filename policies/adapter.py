"""ORM ↔ engine: turns inventory rows and communications into the engine's plain dataclasses."""

from __future__ import annotations

import re
from collections.abc import Iterable

from flows import communications as comms
from flows.models import ContainerPort, NetworkPolicy, Pod, PodAddress, Workload
from policies import engine

_PORT = re.compile(r"^\s*(\d+)(?:\s*-\s*(\d+))?\s*(?:/\s*(TCP|UDP|SCTP))?\s*$", re.IGNORECASE)


def parse_ports(text: str) -> tuple[engine.PortRange, ...]:
    """'443/TCP, 8000-8100/tcp, 53/UDP' → port ranges; empty text = every port. ValueError says which part."""
    ranges = []
    for part in (p for p in text.split(",") if p.strip()):
        match = _PORT.match(part)
        if not match:
            raise ValueError(f"ports: {part.strip()!r} is not PORT[-END][/TCP|UDP|SCTP]")
        start, end, proto = int(match.group(1)), match.group(2), (match.group(3) or "TCP").upper()
        end_port = int(end) if end else None
        if not 1 <= start <= 65535 or (end_port is not None and not start < end_port <= 65535):
            raise ValueError(f"ports: {part.strip()!r} is out of range 1-65535 or the end is not after the start")
        ranges.append(engine.PortRange(start, proto, end_port))
    return tuple(ranges)


def _selector_labels(workload: Workload) -> tuple[dict[str, str], tuple[engine.Requirement, ...]]:
    selector = workload.selector or {}
    labels = dict(selector.get("matchLabels") or {})
    expressions = tuple(
        engine.Requirement(e["key"], e["operator"], tuple(sorted(e.get("values") or ())))
        for e in selector.get("matchExpressions") or ()
    )
    if not labels and not expressions:
        labels = dict(workload.template_labels or {})
    return labels, expressions


def _representative(workload_ids: Iterable[int]) -> tuple[tuple[engine.ContainerPort, ...], tuple[str, ...]]:
    """Container ports and current IPs of a workload's live pods (named ports resolve against these)."""
    pods = list(Pod.objects.live().filter(workload_id__in=list(workload_ids)).values_list("id", flat=True))
    ports = sorted(
        {
            (name or None, port, proto)
            for name, port, proto in ContainerPort.objects.filter(pod_id__in=pods).values_list(
                "name", "port", "protocol"
            )
        },
        key=lambda p: (p[1], p[2], p[0] or ""),
    )
    ips = tuple(
        sorted(
            PodAddress.objects.filter(pod_id__in=pods, valid_to__isnull=True).values_list("ip", flat=True).distinct()
        )
    )
    return tuple(engine.ContainerPort(*p) for p in ports), ips


def engine_scope(scope: comms.Scope) -> engine.Scope:
    if scope.service is not None:
        labels, expressions = dict(scope.service.selector or {}), ()
    else:
        labels, expressions = _selector_labels(scope.workloads[0])
    template = dict(scope.workloads[0].template_labels) if scope.workloads else dict(labels)
    ports, ips = _representative(scope.workload_ids)
    return engine.Scope(
        cluster=scope.cluster.name,
        namespace=scope.namespace.name,
        kind=scope.kind,
        name=scope.name,
        pod_labels=labels,
        match_expressions=expressions,
        namespace_labels=dict(scope.namespace.labels),
        template_labels=template or None,
        ports=ports,
        ips=ips,
    )


def workload_peer(workload: Workload) -> engine.WorkloadPeer:
    labels, _ = _selector_labels(workload)
    ports, ips = _representative([workload.id])
    return engine.WorkloadPeer(
        namespace=workload.namespace.name,
        kind=workload.kind,
        name=workload.name,
        pod_labels=labels,
        namespace_labels=dict(workload.namespace.labels),
        template_labels=dict(workload.template_labels) or None,
        ports=ports,
        ips=ips,
    )


def engine_rows(rows: Iterable[comms.CommunicationRow], peers: dict[int, engine.WorkloadPeer] | None = None
                ) -> tuple[engine.CommunicationRow, ...]:
    """Rows the policy decides on. Traffic from a pod's own node is always allowed: no rule, no row.

    ``peers`` caches peer workloads by id; share one dict across the scopes of one run.
    """
    peers = {} if peers is None else peers
    out = []
    for row in rows:
        if row.node_local:
            continue
        if row.peer is not None:
            if row.peer.id not in peers:
                peers[row.peer.id] = workload_peer(row.peer)
            peer: engine.WorkloadPeer | engine.IPPeer | engine.CIDRPeer = peers[row.peer.id]
        elif row.ip.alias_cidr:
            peer = engine.CIDRPeer(row.ip.alias_cidr)
        else:
            peer = engine.IPPeer(row.ip.ip)
        out.append(
            engine.CommunicationRow(
                direction=row.direction,
                peer=peer,
                port=row.port,
                protocol=row.protocol,
                included=row.included,
                key=row.peer_key,
            )
        )
    return tuple(out)


def applied_policies(cluster_id: int) -> list[dict]:
    """Manifests of the NetworkPolicies applied in the cluster now."""
    return [
        p.manifest
        or {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": p.name, "namespace": p.namespace.name},
            "spec": p.spec,
        }
        for p in NetworkPolicy.objects.live().filter(cluster_id=cluster_id).select_related("namespace")
    ]
