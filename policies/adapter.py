"""ORM ↔ engine: every mapping between the database's rows and the engine's plain dataclasses.

Everything here reads in bulk, so that the number of queries for a scope does not grow with its peers:
the pods, container ports and addresses of all the workloads a table names come in three queries.
Access is not checked here: the service layer does that before it calls in.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from flows.classify import IPClassifier, IPInfo
from flows.communications import SCOPE_KINDS, Observed, observed, service_workload_ids
from flows.iputil import ip_key
from flows.models import Cluster, ContainerPort, Namespace, NetworkPolicy, Pod, PodAddress, Service, Workload
from policies import engine, memo
from policies.models import Draft, ManualRule


class ScopeError(ValueError):
    """The selection names nothing the user may see, said in words the user can act on."""


# ------------------------------------------------------------------------------------------- pod owners


@dataclass(frozen=True)
class _Pods:
    """What the pods of one workload show: the labels they share, their container ports, their addresses."""

    labels: Mapping[str, str]
    ports: tuple[engine.ContainerPort, ...]
    ips: tuple[str, ...]


def _pods_of(workloads: Iterable[Workload]) -> dict[int, _Pods]:
    """The live pods of each workload, in at most three queries whatever their number."""
    workloads = list(workloads)
    ids = [w.id for w in workloads]
    shared: dict[int, dict[str, str]] = {}
    # Only an owner missing from the inventory needs its pods' labels: the others have a template.
    placeholders = [w.id for w in workloads if w.placeholder]
    for workload_id, labels in Pod.objects.live().filter(workload_id__in=placeholders).values_list(
            "workload_id", "labels"):
        have = shared.get(workload_id)
        shared[workload_id] = dict(labels) if have is None else {k: v for k, v in have.items() if labels.get(k) == v}
    ports: dict[int, set[tuple[str | None, int, str]]] = defaultdict(set)
    for workload_id, name, port, protocol in ContainerPort.objects.filter(
            pod__workload_id__in=ids, pod__deleted_at__isnull=True).values_list(
            "pod__workload_id", "name", "port", "protocol"):
        ports[workload_id].add((name or None, port, protocol))
    ips: dict[int, set[str]] = defaultdict(set)
    for workload_id, ip in PodAddress.objects.filter(
            pod__workload_id__in=ids, pod__deleted_at__isnull=True, valid_to__isnull=True).values_list(
            "pod__workload_id", "ip"):
        ips[workload_id].add(ip)
    return {
        w.id: _Pods(
            labels=shared.get(w.id, {}) if w.placeholder else dict(w.template_labels or {}),
            ports=tuple(engine.ContainerPort(*p) for p in sorted(ports[w.id], key=lambda p: (p[1], p[2], p[0] or ""))),
            ips=tuple(sorted(ips[w.id], key=ip_key)),
        )
        for w in workloads
    }


def _selector(data: Mapping | None) -> engine.LabelSelector | None:
    """A stored LabelSelector as the engine's; None when there is none."""
    if not data:
        return None
    labels = tuple(sorted((data.get("matchLabels") or {}).items()))
    requirements = sorted(
        (engine.Requirement(e["key"], e["operator"], tuple(sorted(e.get("values") or ())))
         for e in data.get("matchExpressions") or ()),
        key=lambda r: (r.key, r.operator, r.values),
    )
    selector = engine.LabelSelector(labels, tuple(requirements))
    return None if selector.is_empty else selector


def _peer(workload: Workload, pods: _Pods) -> engine.WorkloadPeer:
    return engine.WorkloadPeer(
        namespace=workload.namespace.name, kind=workload.kind, name=workload.name, pod_labels=pods.labels,
        own_selector=_selector(workload.selector), namespace_labels=dict(workload.namespace.labels),
        ports=pods.ports, ips=pods.ips,
    )


def _scope(cluster: Cluster, namespace: Namespace, workload: Workload, pods: _Pods) -> engine.Scope:
    return engine.Scope(
        cluster=cluster.name, namespace=namespace.name, kind=workload.kind, name=workload.name,
        pod_labels=pods.labels, own_selector=_selector(workload.selector), namespace_labels=dict(namespace.labels),
        ports=pods.ports, ips=pods.ips, cluster_id=cluster.id, namespace_id=namespace.id,
        workload_ids=(workload.id,),
    )


def load_scope(cluster: Cluster, namespace: Namespace, kind: str, name: str) -> engine.Scope:
    """The scope a selection names (a top-level workload, or a Service and its backends)."""
    if kind not in SCOPE_KINDS:
        raise ScopeError(f"kind {kind!r}: use one of {', '.join(SCOPE_KINDS)}")
    if kind == "Service":
        service = Service.objects.filter(namespace=namespace, name=name).first()
        if service is None:
            raise ScopeError(f"Service {namespace.name}/{name} does not exist in cluster {cluster.name!r}")
        ids = service_workload_ids(service)
        backends = list(Workload.objects.filter(id__in=ids).order_by("kind", "name"))
        facts = _pods_of(backends)
        # A pod of the first backend stands for all of them in verdicts; without one, a pod the selector picks.
        labels = facts[backends[0].id].labels if backends else service.selector
        return engine.Scope(
            cluster=cluster.name, namespace=namespace.name, kind=kind, name=name, pod_labels=labels,
            own_selector=_selector({"matchLabels": service.selector}), namespace_labels=dict(namespace.labels),
            ports=tuple(dict.fromkeys(p for f in facts.values() for p in f.ports)),
            ips=tuple(sorted({ip for f in facts.values() for ip in f.ips}, key=ip_key)),
            cluster_id=cluster.id, namespace_id=namespace.id, workload_ids=tuple(ids),
        )
    # Only top-level owners are scopes: a Job of a CronJob rolls up to the CronJob, a ReplicaSet of a
    # Deployment to the Deployment.
    workload = Workload.objects.filter(namespace=namespace, kind=kind, name=name, parent__isnull=True).first()
    if workload is None:
        child = Workload.objects.filter(namespace=namespace, kind=kind, name=name).select_related("parent").first()
        hint = f"; its pods roll up to {child.parent.kind} {child.parent.name}" if child and child.parent else ""
        raise ScopeError(f"{kind} {namespace.name}/{name} is not a workload in cluster {cluster.name!r}{hint}")
    return _scope(cluster, namespace, workload, _pods_of([workload])[workload.id])


def namespace_scopes(cluster: Cluster, namespace: Namespace) -> list[engine.Scope]:
    """Every live top-level workload of a namespace as a scope (what ``generate_policy --all`` covers)."""
    workloads = list(Workload.objects.live().filter(namespace=namespace, parent__isnull=True).order_by("kind", "name"))
    facts = _pods_of(workloads)
    return [_scope(cluster, namespace, w, facts[w.id]) for w in workloads]


def workloads_of(namespaces: Iterable[Namespace]) -> dict[int, list[engine.WorkloadPeer]]:
    """Every live top-level workload of these namespaces as the engine sees a pod owner, by namespace id."""
    workloads = list(Workload.objects.live().filter(namespace__in=list(namespaces), parent__isnull=True)
                     .select_related("namespace").order_by("kind", "name"))
    facts = _pods_of(workloads)
    out: dict[int, list[engine.WorkloadPeer]] = defaultdict(list)
    for w in workloads:
        out[w.namespace_id].append(_peer(w, facts[w.id]))
    return out


# ------------------------------------------------------------------------------------------------- rows


def _address_peer(info: IPInfo) -> engine.AddressPeer:
    if info.service:
        cidrs = tuple(str(ipaddress.ip_network(a)) for a in info.service_addresses)
    else:
        cidrs = (info.alias_cidr,) if info.alias_cidr else ()
    return engine.AddressPeer(ip=info.ip, category=info.category, alias=info.alias, cidrs=cidrs,
                              dns_names=info.dns_names, service=info.service, allowed=info.allowed)


def span_start(since: timedelta, until: datetime) -> datetime:
    """The first hour bucket of a span ending at ``until``."""
    return (until - since).replace(minute=0, second=0, microsecond=0)


MAX_ACTIVITY_CELLS = 48


def _cells(start: datetime, until: datetime) -> tuple[int, int]:
    """(number of cells, hours per cell) of the activity strip of a span."""
    span_hours = max(1, int((until - start).total_seconds() // 3600) + 1)
    cells = min(MAX_ACTIVITY_CELLS, span_hours)
    return cells, -(-span_hours // cells)


def _activity(hours: Iterable[tuple[datetime, int]], start: datetime, until: datetime) -> tuple[int, ...]:
    """Connections per equal slice of the span (an hour each up to 48 hours, longer slices beyond)."""
    cells, per_cell = _cells(start, until)
    out = [0] * cells
    for bucket, connections in hours:
        index = int((bucket - start).total_seconds() // 3600) // per_cell
        out[min(max(index, 0), cells - 1)] += connections
    return tuple(out)


class Activity(Sequence[int]):
    """A row's activity strip, worked out from its hours the first time it is read: a table shows the strip
    of the rows it renders only, while policies and verdicts are made from every row."""

    __slots__ = ("_cells", "_source")

    def __init__(self, source: Observed, start: datetime, until: datetime) -> None:
        self._source: tuple[Observed, datetime, datetime] | None = (source, start, until)
        self._cells: tuple[int, ...] = ()

    def _values(self) -> tuple[int, ...]:
        if self._source is not None:
            o, start, until = self._source
            self._cells, self._source = _activity(o.hours, start, until), None
        return self._cells

    def __len__(self) -> int:
        return len(self._values())

    def __getitem__(self, index: Any) -> Any:
        return self._values()[index]

    def __iter__(self) -> Iterator[int]:
        return iter(self._values())

    def __eq__(self, other: object) -> bool:
        return tuple(self) == (tuple(other) if isinstance(other, Sequence) else other)

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        return repr(self._values())


def classifier(cluster_id: int) -> IPClassifier:
    """What ``observed_rows`` classifies addresses with; one can serve every scope of a cluster in a run."""
    return IPClassifier(Cluster.objects.get(pk=cluster_id))


def observed_rows(scope: engine.Scope, *, since: timedelta, until: datetime,
                  addresses: IPClassifier | None = None) -> list[engine.CommunicationRow]:
    """The rows of both tables of a scope over the span, most connections first, ``included`` False (the
    draft decides it). Addresses of one selectorless Service are one row: they are allowed together."""
    return observed_rows_many([scope], since=since, until=until, addresses=addresses)[0]


def observed_rows_many(scopes: list[engine.Scope], *, since: timedelta, until: datetime,
                       addresses: IPClassifier | None = None) -> list[list[engine.CommunicationRow]]:
    """``observed_rows`` of each scope (of one cluster), in the same queries whatever their number: what a
    namespace's policies are made from. Kept under the cluster's data version (``policies.memo``): they are a
    function of the data, the scopes' workloads, the span's first hour and the hour of ``until``."""
    if not scopes:
        return []
    start = span_start(since, until)
    parts = (tuple(tuple(s.workload_ids) for s in scopes), start, memo.hour(until), since)
    return memo.kept(scopes[0].cluster_id, "rows", parts,
                     lambda: _observed_rows_many(scopes, start, until, addresses or classifier(scopes[0].cluster_id)))


def _observed_rows_many(scopes: list[engine.Scope], start: datetime, until: datetime, addresses: IPClassifier
                        ) -> list[list[engine.CommunicationRow]]:
    cluster = addresses.cluster
    owners: dict[int, list[int]] = defaultdict(list)  # workload id -> indexes of the scopes it is part of
    for index, scope in enumerate(scopes):
        for workload_id in scope.workload_ids:
            owners[workload_id].append(index)
    found = observed(cluster.id, owners, start, until, slice_hours=_cells(start, until)[1])
    peers = Workload.objects.select_related("namespace").in_bulk(
        {o.peer_workload_id for o in found if o.peer_workload_id})
    facts = _pods_of(peers.values())
    workload_peers = {pk: _peer(w, facts[pk]) for pk, w in peers.items()}
    infos = addresses.classify_many({o.peer_ip for o in found if not o.peer_workload_id})

    tables: list[dict[str, engine.CommunicationRow]] = [{} for _ in scopes]
    for o in found:
        peer = workload_peers[o.peer_workload_id] if o.peer_workload_id else _address_peer(infos[o.peer_ip])
        row = _row(o, peer, Activity(o, start, until))
        for index in owners[o.own_workload_id]:
            rows = tables[index]
            seen = rows.get(row.key)
            rows[row.key] = row if seen is None else _merge(seen, row)
    return [sorted(rows.values(), key=lambda r: (-r.connections, r.key)) for rows in tables]


def _row(o: Observed, peer: engine.RowPeer, activity: Sequence[int]) -> engine.CommunicationRow:
    return engine.CommunicationRow(
        direction="egress" if o.outgoing else "ingress", peer=peer, port=o.port, protocol=o.protocol,
        included=False, denied_in_cluster=o.denied, node_local=o.node_local, connections=o.connections,
        first_seen=o.first_seen, last_seen=o.last_seen, activity=activity,
    )


def _merge(a: engine.CommunicationRow, b: engine.CommunicationRow) -> engine.CommunicationRow:
    """Two rows of one key (two addresses of one Service): their counts added, the lower address shown."""
    peer = a.peer
    if isinstance(peer, engine.AddressPeer) and isinstance(b.peer, engine.AddressPeer):
        low = min(peer, b.peer, key=lambda p: ip_key(p.ip))
        peer = replace(low, dns_names=tuple(sorted(set(peer.dns_names) | set(b.peer.dns_names))))
    return replace(a, peer=peer, connections=a.connections + b.connections,
                   first_seen=min(a.first_seen, b.first_seen), last_seen=max(a.last_seen, b.last_seen),
                   activity=tuple(x + y for x, y in zip(a.activity, b.activity, strict=True)))


# ------------------------------------------------------------------------------ drafts, DNS, applied


def engine_draft(draft: Draft | None) -> engine.Draft:
    if draft is None:
        return engine.Draft()
    return engine.Draft(
        ingress_mode=draft.ingress_mode,
        egress_mode=draft.egress_mode,
        manual_rules=tuple(engine.ManualRule(r.direction, r.cidr, port_ranges(r)) for r in draft.manual_rules.all()),
        namespace_labels={ns: (kv[0], kv[1]) for ns, kv in (draft.namespace_labels or {}).items()},
    )


def port_ranges(rule: ManualRule) -> tuple[engine.PortRange, ...]:
    return tuple(engine.PortRange(**p) for p in rule.ports)


def ports_json(ranges: Iterable[engine.PortRange]) -> list[dict]:
    """Port ranges as ``ManualRule.ports`` stores them."""
    return [{"port": r.port, "end_port": r.end_port, "protocol": r.protocol} for r in ranges]


def dns_target(cluster: Cluster) -> engine.DNSTarget:
    return engine.DNSTarget(cluster.dns_namespace, dict(cluster.dns_pod_labels or {"k8s-app": "kube-dns"}))


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
