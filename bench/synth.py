"""A synthetic cluster and its Hubble traffic: deterministic (seeded), scalable, streamed to files.

``python -m bench.synth --namespaces 20 --workloads 10 --replicas 3 --flows 1000000 --span 4h --out DIR`` writes

* ``DIR/inventory.json``: what ``kubectl get namespaces,nodes,pods,services,endpointslices,deployments,replicasets,
  daemonsets,statefulsets -A -o json`` prints (a ``kind: List``), as ``manage.py import_inventory`` reads it. Import it
  with ``--observed-at`` the end of the span (``Summary.observed_at``): it is the dump taken then.
* ``DIR/flows.jsonl``: exactly ``--flows`` lines as ``hubble observe -o jsonpb`` prints them
  (``{"flow": {...}, "node_name": ..., "time": ...}``), roughly in time order, as ``import_flows --format hubble``
  and the ingestion API read them.

The cluster: N namespaces of M workloads (Deployments with their ReplicaSets, every tenth a StatefulSet) of R
replicas each, a Service with a ClusterIP in front of every workload that listens, plus the usual system pieces:
``kube-system/coredns`` behind ``kube-dns``, a ``node-exporter`` DaemonSet and a ``prometheus`` StatefulSet in
``monitoring``, an ``ingress-nginx`` controller, ``default/kubernetes`` with its EndpointSlice; nodes hold /22 pod
ranges of 10.64.0.0/10.

The traffic (one "connection" at a time, each a handful of events):

* TCP between pods, reported at both ends (an EGRESS event from the client's node, an INGRESS event from the
  server's, for every packet Hubble reports: SYN, SYN-ACK, the first ACK, FIN from the client and, one time in four,
  from the server), the replies with ``is_reply: true``; about 30 % of all lines are replies;
* most of it through a Service: ``destination_service`` set, the address already the backend pod's (socket load
  balancing), and one connection in twenty seen before translation (the client's events carry the ClusterIP and the
  service port, with the world identity, as on a cluster without socket LB);
* DNS to kube-dns before a share of connections (UDP query and answer at both ends) and L7 DNS events from the
  client's DNS proxy (``Type: L7``, ``l7.dns`` with the answer's addresses);
* egress to external services by name (world identity, ``destination_names``), ingress from internet clients to the
  ingress controller, the API server through ``default/kubernetes``, Prometheus scrapes of pod IPs, kubelet probes
  from each pod's own node (``reserved:host``);
* policy drops (``verdict: DROPPED``, POLICY_DENIED, with SYN retransmits): one forbidden pair of workloads per
  namespace denied at the server's ingress, and some egress to an unknown address denied at the client;
* a few long-lived connections seen only as ACK/PSH, some events without ``is_reply`` (older agents), and the odd
  ``lost_events`` line (skipped by the importer, not malformed);
* pod churn: a share (``--churn``) of Deployment pods is evicted during the span and replaced by a new pod with a
  new address (one in five reuses the old one, on the same node). Flows use whichever pod was running at their
  time. The dump lists the evicted pods as ``phase: Failed`` (``reason: Evicted``) with their container's
  ``finishedAt``, as the API keeps them until they are collected: their address history is closed there.

Everything comes from one ``random.Random`` seeded from the shape, and no set or dict order that depends on string
hashing is used, so the same shape gives byte-identical files. Lines are produced a window of a few thousand at a
time (sorted by time within it) and written at once: memory does not grow with ``--flows``.
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import math
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import orjson

VERSION = 2  # bump when the output of a given shape changes (cached files are keyed by it)

START = datetime(2026, 11, 20, tzinfo=UTC)
POD_CIDR, SERVICE_CIDR, NODE_CIDR = "10.64.0.0/10", "10.96.0.0/12", "172.18.0.0/16"
_POD_BASE = (10 << 24) | (64 << 16)
_SERVICE_BASE = (10 << 24) | (96 << 16)
_PER_NODE = 1024  # a /22 per node
_NS = 1_000_000_000
API_CLUSTER_IP, DNS_CLUSTER_IP, API_PORT = "10.96.0.1", "10.96.0.10", 6443

# Role of the j-th workload of a namespace (j % 10): what it listens on and whether a Service fronts it.
_ROLES = ("web", "api", "api", "worker", "api", "cache", "api", "db", "api", "queue")
_LISTEN: dict[str, tuple[str, int, int]] = {  # role -> (port name, container port, service port)
    "web": ("http", 8080, 80), "api": ("grpc", 50051, 50051), "cache": ("redis", 6379, 6379),
    "db": ("postgres", 5432, 5432), "queue": ("amqp", 5672, 5672),
}
_METRICS = ("metrics", 9090)
_EXTERNAL = tuple(
    (f"203.0.113.{10 + i}" if i < 12 else f"198.51.100.{10 + i}", f"api.vendor-{i:02d}.example", 443)
    for i in range(24)
)
_TCP_SUMMARY = {
    ("SYN",): "TCP Flags: SYN", ("ACK", "SYN"): "TCP Flags: SYN, ACK", ("ACK",): "TCP Flags: ACK",
    ("ACK", "FIN"): "TCP Flags: ACK, FIN", ("ACK", "PSH"): "TCP Flags: ACK, PSH",
}
_POINT_SUBTYPE = {"TO_ENDPOINT": 0, "TO_STACK": 3, "TO_OVERLAY": 4}


def _ip(value: int) -> str:
    return f"{value >> 24}.{(value >> 16) & 255}.{(value >> 8) & 255}.{value & 255}"


def _uid(*parts: object) -> str:
    return hashlib.md5("/".join(map(str, parts)).encode(), usedforsecurity=False).hexdigest()


def _suffix(rng: random.Random, n: int) -> str:
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return "".join(rng.choice(alphabet) for _ in range(n))


def _rfc3339(ns: int) -> str:
    return datetime.fromtimestamp(ns // _NS, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_span(text: str) -> timedelta:
    """``90s``, ``15m``, ``4h``, ``7d``."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if not text or text[-1] not in units or not text[:-1].isdigit() or int(text[:-1]) <= 0:
        raise ValueError(f"span {text!r}: a positive number with s, m, h or d, e.g. 4h")
    return timedelta(seconds=int(text[:-1]) * units[text[-1]])


# ------------------------------------------------------------------------------------------------- the shape


@dataclass(frozen=True)
class Shape:
    """What to generate. ``nodes`` 0: one node per 50 pods (at least 3)."""

    namespaces: int = 20
    workloads: int = 10  # per namespace
    replicas: int = 3
    nodes: int = 0
    flows: int = 100_000
    span: timedelta = timedelta(hours=4)
    start: datetime = START
    seed: int = 1
    churn: float = 0.1  # share of Deployment pods replaced during the span
    cluster: str = "bench"

    def __post_init__(self) -> None:
        if min(self.namespaces, self.workloads, self.replicas) < 1 or self.flows < 0:
            raise ValueError("namespaces, workloads and replicas must be at least 1, flows at least 0")
        if not 0 <= self.churn <= 1:
            raise ValueError("churn is a share, 0 to 1")
        if self.start.tzinfo is None:
            raise ValueError("start must be timezone-aware")

    @property
    def app_pods(self) -> int:
        return self.namespaces * self.workloads * self.replicas

    @property
    def node_count(self) -> int:
        return self.nodes or max(3, math.ceil(self.app_pods / 50))

    @property
    def end(self) -> datetime:
        return self.start + self.span

    def key(self) -> str:
        """A short stable name for files generated from this shape."""
        text = "|".join(f"{f.name}={getattr(self, f.name)}" for f in fields(self)) + f"|v{VERSION}"
        return hashlib.sha256(text.encode()).hexdigest()[:12]


# ------------------------------------------------------------------------------------------------- the model


@dataclass(slots=True, eq=False)
class Pod:
    workload: Workload
    name: str
    uid: str
    ip: str
    node: int
    start: int  # ns since the epoch
    end: int | None = None  # evicted at (ns), None while it runs
    endpoint: dict[str, Any] = field(default_factory=dict)  # as Hubble prints a pod endpoint
    mac: str = ""


@dataclass(slots=True, eq=False)
class Service:
    namespace: str
    name: str
    cluster_ip: str
    ports: list[tuple[str, int, int | str, str]]  # (name, port, targetPort, protocol)
    ref: dict[str, str] = field(default_factory=dict)  # destination_service as Hubble prints it


@dataclass(slots=True, eq=False)
class Workload:
    namespace: str
    name: str
    kind: str  # Deployment, StatefulSet, DaemonSet
    role: str
    labels: dict[str, str]
    ports: list[tuple[str, int, str]]  # container ports (name, port, protocol)
    identity: int
    uid: str
    slots: list[list[Pod]] = field(default_factory=list)  # replica slot -> pods in order (churn adds one)
    service: Service | None = None
    replicaset: str = ""  # a Deployment's current ReplicaSet
    hubble: list[dict[str, str]] = field(default_factory=list)  # `workloads` as Hubble prints it

    def pod_at(self, rng: random.Random, at: int) -> Pod:
        """A pod of the workload that is running at ``at`` (the first one, should none be)."""
        incarnations = self.slots[rng.randrange(len(self.slots))]
        for pod in incarnations:
            if pod.start <= at and (pod.end is None or at < pod.end):
                return pod
        return incarnations[-1] if at >= incarnations[-1].start else incarnations[0]


class Cluster:
    """The inventory of a shape: nodes, namespaces, workloads and their pods over the span, services."""

    def __init__(self, shape: Shape) -> None:
        self.shape = shape
        rng = random.Random(f"netsec-bench-cluster:{shape.seed}:{shape.namespaces}:{shape.workloads}:"
                            f"{shape.replicas}:{shape.node_count}:{shape.churn}:{shape.start.isoformat()}:"
                            f"{shape.span.total_seconds()}")
        self.rng = rng
        self.start_ns = int(shape.start.timestamp()) * _NS
        self.end_ns = self.start_ns + int(shape.span.total_seconds()) * _NS
        self.created = _rfc3339(self.start_ns - 30 * 86400 * _NS)
        self.nodes = [f"node-{k:03d}" for k in range(shape.node_count)]
        self.node_ips = [_ip((172 << 24) | (18 << 16) | ((k // 250) << 8) | (k % 250 + 2)) for k in
                         range(shape.node_count)]
        self._next_ip = [2] * shape.node_count  # next free offset in each node's /22
        self._next_service = 0
        self.namespaces: list[str] = []
        self.workloads: list[Workload] = []
        self.pods: list[Pod] = []  # every pod ever, evicted ones included
        self.services: list[Service] = []
        self.evicted = 0
        self._build(rng)

    # ----------------------------------------------------------------------------------------- building

    def _pod_ip(self, node: int) -> str:
        offset = self._next_ip[node]
        if offset >= _PER_NODE - 1:
            raise ValueError(f"node {self.nodes[node]} has no free pod address left; use more nodes")
        self._next_ip[node] = offset + 1
        return _ip(_POD_BASE + node * _PER_NODE + offset)

    def _service_ip(self) -> str:
        self._next_service += 1
        return _ip(_SERVICE_BASE + 256 + self._next_service)  # 10.96.1.x on: .0.1 and .0.10 are taken

    def _workload(self, namespace: str, name: str, kind: str, role: str, ports: list[tuple[str, int, str]],
                  labels: dict[str, str] | None = None) -> Workload:
        wl = Workload(namespace=namespace, name=name, kind=kind, role=role,
                      labels=labels or {"app": name, "tier": role}, ports=ports,
                      identity=10_000 + len(self.workloads), uid=_uid(self.shape.cluster, kind, namespace, name),
                      hubble=[{"name": name, "kind": kind}])
        if kind == "Deployment":
            wl.replicaset = f"{name}-{_suffix(self.rng, 10)}"
        self.workloads.append(wl)
        return wl

    def _new_pod(self, wl: Workload, slot: int, node: int, start: int, ip: str | None = None) -> Pod:
        if wl.kind == "StatefulSet":
            name = f"{wl.name}-{slot}"
        elif wl.kind == "DaemonSet":
            name = f"{wl.name}-{_suffix(self.rng, 5)}"
        else:
            name = f"{wl.replicaset}-{_suffix(self.rng, 5)}"
        pod = Pod(workload=wl, name=name, uid=_uid(self.shape.cluster, "pod", wl.namespace, name, start),
                  ip=ip or self._pod_ip(node), node=node, start=start)
        labels = [f"k8s:{k}={v}" for k, v in sorted(wl.labels.items())] + [
            f"k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name={wl.namespace}",
            f"k8s:io.cilium.k8s.policy.cluster={self.shape.cluster}",
            f"k8s:io.cilium.k8s.policy.serviceaccount={wl.name if wl.role != 'system' else 'default'}",
            f"k8s:io.kubernetes.pod.namespace={wl.namespace}",
        ]
        pod.endpoint = {"ID": 100 + len(self.pods), "identity": wl.identity, "cluster_name": self.shape.cluster,
                        "namespace": wl.namespace, "labels": sorted(labels), "pod_name": name,
                        "workloads": wl.hubble}
        pod.mac = "02:42:" + ":".join(f"{self.rng.randrange(256):02x}" for _ in range(4))
        self.pods.append(pod)
        return pod

    def _place(self, wl: Workload, replicas: int) -> None:
        before = self.start_ns - 3 * 86400 * _NS
        for slot in range(replicas):
            node = slot if wl.kind == "DaemonSet" else self.rng.randrange(len(self.nodes))
            wl.slots.append([self._new_pod(wl, slot, node, before)])

    def _front(self, wl: Workload, port_name: str, port: int, target: int | str, proto: str = "TCP",
               cluster_ip: str | None = None, name: str | None = None,
               more: list[tuple[str, int, int | str, str]] | None = None) -> None:
        service = Service(namespace=wl.namespace, name=name or wl.name, cluster_ip=cluster_ip or self._service_ip(),
                          ports=[(port_name, port, target, proto), *(more or [])])
        service.ref = {"name": service.name, "namespace": service.namespace}
        wl.service = service
        self.services.append(service)

    def _build(self, rng: random.Random) -> None:
        shape = self.shape
        self.namespaces = ["kube-system", "monitoring", "ingress-nginx", "default"]
        self.dns = self._workload("kube-system", "coredns", "Deployment", "system",
                                  [("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"), ("metrics", 9153, "TCP")],
                                  {"k8s-app": "kube-dns"})
        self._place(self.dns, 2)
        self._front(self.dns, "dns", 53, 53, "UDP", cluster_ip=DNS_CLUSTER_IP, name="kube-dns",
                    more=[("dns-tcp", 53, 53, "TCP"), ("metrics", 9153, 9153, "TCP")])
        self.exporter = self._workload("monitoring", "node-exporter", "DaemonSet", "system", [("metrics", 9100, "TCP")])
        self._place(self.exporter, len(self.nodes))
        self.prometheus = self._workload("monitoring", "prometheus", "StatefulSet", "system", [("web", 9090, "TCP")])
        self._place(self.prometheus, 1)
        self._front(self.prometheus, "web", 9090, "web")
        self.ingress = self._workload("ingress-nginx", "ingress-nginx-controller", "Deployment", "system",
                                      [("http", 80, "TCP"), ("https", 443, "TCP")],
                                      {"app.kubernetes.io/name": "ingress-nginx",
                                       "app.kubernetes.io/component": "controller"})
        self._place(self.ingress, 2)
        self._front(self.ingress, "https", 443, "https", more=[("http", 80, "http", "TCP")])
        self.by_namespace: list[list[Workload]] = []
        for i in range(shape.namespaces):
            namespace = f"ns-{i:03d}"
            self.namespaces.append(namespace)
            apps = []
            for j in range(shape.workloads):
                role = _ROLES[j % len(_ROLES)]
                kind = "StatefulSet" if role == "db" else "Deployment"
                ports = [("metrics", 9090, "TCP")]
                if role in _LISTEN:
                    port_name, port, _ = _LISTEN[role]
                    ports.insert(0, (port_name, port, "TCP"))
                wl = self._workload(namespace, f"{role}-{j:03d}", kind, role, ports)
                self._place(wl, shape.replicas)
                if role in _LISTEN:
                    port_name, port, service_port = _LISTEN[role]
                    # The web tier's Service names its target port, the others give the number.
                    self._front(wl, port_name, service_port, port_name if role == "web" else port)
                apps.append(wl)
            self.by_namespace.append(apps)
        self._churn(rng)

    def _churn(self, rng: random.Random) -> None:
        if not self.shape.churn:
            return
        span = self.end_ns - self.start_ns
        for wl in self.workloads:
            if wl.kind != "Deployment" or wl.role == "system":
                continue
            for slot, incarnations in enumerate(wl.slots):
                if rng.random() >= self.shape.churn:
                    continue
                old = incarnations[-1]
                at = self.start_ns + int(span * rng.uniform(0.1, 0.9))
                old.end = at
                self.evicted += 1
                reuse = rng.random() < 0.2
                node = old.node if reuse else rng.randrange(len(self.nodes))
                incarnations.append(self._new_pod(wl, slot, node, at, ip=old.ip if reuse else None))

    # ----------------------------------------------------------------------------------------- the dump

    def inventory_items(self) -> Iterator[dict[str, Any]]:
        """The objects of the dump, one at a time, as the API prints them at the end of the span."""
        ts, cluster = self.created, self.shape.cluster
        for name in self.namespaces:
            yield {"apiVersion": "v1", "kind": "Namespace",
                   "metadata": {"name": name, "uid": _uid(cluster, "ns", name), "creationTimestamp": ts,
                                "labels": {"kubernetes.io/metadata.name": name}},
                   "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
        for name, ip in zip(self.nodes, self.node_ips, strict=True):
            yield {"apiVersion": "v1", "kind": "Node",
                   "metadata": {"name": name, "uid": _uid(cluster, "node", name), "creationTimestamp": ts,
                                "labels": {"kubernetes.io/hostname": name}},
                   "status": {"addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname",
                                                                                     "address": name}]}}
        for wl in self.workloads:
            yield from self._workload_items(wl)
        yield from self._api_server()

    def _template(self, wl: Workload, labels: dict[str, str]) -> dict[str, Any]:
        ports = [{"name": n, "containerPort": p, "protocol": proto} for n, p, proto in wl.ports]
        return {"metadata": {"labels": labels},
                "spec": {"containers": [{"name": wl.name, "image": f"registry.example/{wl.name}:1.0",
                                         "ports": ports}]}}

    def _workload_items(self, wl: Workload) -> Iterator[dict[str, Any]]:
        ts, cluster = self.created, self.shape.cluster
        meta = {"name": wl.name, "namespace": wl.namespace, "uid": wl.uid, "creationTimestamp": ts,
                "labels": dict(wl.labels)}
        selector = {"matchLabels": dict(wl.labels)}
        owner_kind, owner_name, owner_uid = wl.kind, wl.name, wl.uid
        extra: dict[str, str] = {}
        if wl.kind == "Deployment":
            extra = {"pod-template-hash": wl.replicaset.rpartition("-")[2]}
            rs_labels = {**wl.labels, **extra}
            rs_uid = _uid(cluster, "rs", wl.namespace, wl.replicaset)
            yield {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
                   "spec": {"replicas": len(wl.slots), "selector": selector,
                            "template": self._template(wl, dict(wl.labels))}}
            yield {"apiVersion": "apps/v1", "kind": "ReplicaSet",
                   "metadata": {"name": wl.replicaset, "namespace": wl.namespace, "uid": rs_uid,
                                "creationTimestamp": ts, "labels": rs_labels,
                                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": wl.name,
                                                     "uid": wl.uid, "controller": True}]},
                   "spec": {"replicas": len(wl.slots), "selector": {"matchLabels": rs_labels},
                            "template": self._template(wl, rs_labels)}}
            owner_kind, owner_name, owner_uid = "ReplicaSet", wl.replicaset, rs_uid
        else:
            spec: dict[str, Any] = {"selector": selector, "template": self._template(wl, dict(wl.labels))}
            if wl.kind == "StatefulSet":
                spec |= {"replicas": len(wl.slots), "serviceName": wl.name}
            yield {"apiVersion": "apps/v1", "kind": wl.kind, "metadata": meta, "spec": spec}
            extra = {"controller-revision-hash": f"{wl.name}-{wl.uid[:10]}"}
        containers = self._template(wl, {})["spec"]["containers"]
        for incarnations in wl.slots:
            for pod in incarnations:
                labels = {**wl.labels, **extra}
                if wl.kind == "StatefulSet":
                    labels["statefulset.kubernetes.io/pod-name"] = pod.name
                status: dict[str, Any] = {
                    "phase": "Running", "hostIP": self.node_ips[pod.node], "hostIPs": [{"ip": self.node_ips[pod.node]}],
                    "podIP": pod.ip, "podIPs": [{"ip": pod.ip}], "startTime": _rfc3339(pod.start),
                    "containerStatuses": [{"name": wl.name, "ready": True, "restartCount": 0,
                                           "state": {"running": {"startedAt": _rfc3339(pod.start)}}}],
                }
                if pod.end is not None:
                    status |= {"phase": "Failed", "reason": "Evicted",
                               "message": "The node was low on resource: memory.",
                               "containerStatuses": [{"name": wl.name, "ready": False, "restartCount": 0, "state": {
                                   "terminated": {"exitCode": 137, "reason": "Error",
                                                  "startedAt": _rfc3339(pod.start),
                                                  "finishedAt": _rfc3339(pod.end)}}}]}
                yield {"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": pod.name, "namespace": wl.namespace, "uid": pod.uid,
                                    "creationTimestamp": _rfc3339(pod.start), "labels": labels,
                                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": owner_kind,
                                                         "name": owner_name, "uid": owner_uid, "controller": True,
                                                         "blockOwnerDeletion": True}]},
                       "spec": {"nodeName": self.nodes[pod.node], "containers": containers,
                                "serviceAccountName": wl.name},
                       "status": status}
        if wl.service is not None:
            svc = wl.service
            spec = {"type": "LoadBalancer" if wl is self.ingress else "ClusterIP", "clusterIP": svc.cluster_ip,
                    "clusterIPs": [svc.cluster_ip], "selector": dict(wl.labels),
                    "ports": [{"name": n, "port": p, "targetPort": t, "protocol": proto}
                              for n, p, t, proto in svc.ports]}
            yield {"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": svc.name, "namespace": svc.namespace, "uid": _uid(cluster, "svc", svc.name),
                                "creationTimestamp": ts, "labels": dict(wl.labels)},
                   "spec": spec}

    def _api_server(self) -> Iterator[dict[str, Any]]:
        ts, cluster = self.created, self.shape.cluster
        meta = {"namespace": "default", "creationTimestamp": ts}
        yield {"apiVersion": "v1", "kind": "Service",
               "metadata": {**meta, "name": "kubernetes", "uid": _uid(cluster, "svc", "kubernetes"),
                            "labels": {"component": "apiserver", "provider": "kubernetes"}},
               "spec": {"type": "ClusterIP", "clusterIP": API_CLUSTER_IP, "clusterIPs": [API_CLUSTER_IP],
                        "ports": [{"name": "https", "port": 443, "targetPort": API_PORT, "protocol": "TCP"}]}}
        yield {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
               "metadata": {**meta, "name": "kubernetes", "uid": _uid(cluster, "eps", "kubernetes"),
                            "labels": {"kubernetes.io/service-name": "kubernetes"}},
               "endpoints": [{"addresses": [self.node_ips[0]], "conditions": {"ready": True}}],
               "ports": [{"name": "https", "port": API_PORT, "protocol": "TCP"}]}

    def write_inventory(self, out: IO[bytes]) -> int:
        """Write the dump as a JSON ``kind: List``, an item at a time; return how many items."""
        out.write(b'{"apiVersion":"v1","kind":"List","metadata":{"resourceVersion":""},"items":[\n')
        count = 0
        for item in self.inventory_items():
            out.write((b",\n" if count else b"") + orjson.dumps(item))
            count += 1
        out.write(b"\n]}\n")
        return count


# ----------------------------------------------------------------------------------------------- the traffic


@dataclass
class Summary:
    """What one generation wrote (printed by the CLI, used by the benchmark)."""

    shape: Shape
    lines: int = 0
    flows: int = 0  # lines that are flows (all but lost_events)
    replies: int = 0
    dropped: int = 0
    l7: int = 0
    world: int = 0
    service: int = 0
    connections: int = 0
    both_ends: int = 0  # connections reported by the client's and the server's node
    lost_events: int = 0
    pods: int = 0
    evicted: int = 0
    seconds: float = 0.0

    @property
    def observed_at(self) -> datetime:
        return self.shape.end

    def text(self) -> str:
        def share(n: int) -> str:
            return f"{100 * n / self.flows:.1f} %" if self.flows else "-"

        return (f"{self.lines:,} lines ({self.flows:,} flows, {self.lost_events} lost_events) in {self.seconds:.1f} s "
                f"({self.lines / max(self.seconds, 1e-9):,.0f} lines/s); {self.pods:,} pods ({self.evicted} evicted "
                f"and replaced), {self.connections:,} connections ({self.both_ends:,} seen at both ends); replies "
                f"{share(self.replies)}, DROPPED {share(self.dropped)}, L7 DNS {share(self.l7)}, world "
                f"{share(self.world)}, via a Service {share(self.service)}")


class Traffic:
    """The flows of a cluster over its shape's span, as jsonpb lines."""

    WINDOW_LINES = 4000  # lines generated (and sorted) at a time

    def __init__(self, cluster: Cluster, summary: Summary, *, start: datetime | None = None,
                 end: datetime | None = None, flows: int | None = None) -> None:
        """Traffic of ``flows`` lines (default the shape's) over ``[start, end)`` (default the shape's span)."""
        self.c = cluster
        self.s = summary
        shape = cluster.shape
        self.start_ns = int((start or shape.start).timestamp()) * _NS
        self.end_ns = int((end or shape.end).timestamp()) * _NS
        if self.end_ns <= self.start_ns:
            raise ValueError("the traffic window must end after it starts")
        self.total = shape.flows if flows is None else flows
        self.rng = random.Random(f"netsec-bench-flows:{shape.seed}:{self.total}:{self.start_ns}:{self.end_ns}:"
                                 f"{shape.key()}")
        self.prefix = shape.cluster + "/"
        self._seconds: dict[int, str] = {}
        self.world = {"identity": 2, "labels": ["reserved:world"]}
        self.apiserver = {"identity": 7, "labels": ["reserved:kube-apiserver", "reserved:host"]}
        self.hosts = [{"ID": 1 + k, "identity": 1, "labels": ["reserved:host"]} for k in range(len(cluster.nodes))]
        self.listeners = [wl for wl in cluster.workloads if wl.role not in ("worker", "system")]
        self.scrapable = [pod for pod in cluster.pods if any(n == "metrics" for n, _, _ in pod.workload.ports)]
        self.macs = {pod.ip: pod.mac for pod in cluster.pods}
        self._edges()

    # Connection kinds, with their weights: the share of connections of each kind.
    def _edges(self) -> None:
        c = self.c
        edges: list[tuple[float, tuple[Any, ...]]] = []
        n = len(c.by_namespace)
        for i, apps in enumerate(c.by_namespace):
            weight = 1 / math.sqrt(i + 1)  # a few busy namespaces, a long tail
            roles: dict[str, list[Workload]] = {}
            for wl in apps:
                roles.setdefault(wl.role, []).append(wl)
            webs, apis = roles.get("web", []), roles.get("api", [])
            backends = roles.get("cache", []) + roles.get("db", [])
            clients = webs + apis + roles.get("worker", [])
            for web in webs:
                for api in apis[:3]:
                    edges.append((6 * weight, ("svc", web, api)))
            for k, api in enumerate(apis):
                if k + 1 < len(apis):
                    edges.append((2 * weight, ("svc", api, apis[k + 1])))
                for backend in backends:
                    edges.append((3 * weight, ("svc", api, backend)))
            for worker in roles.get("worker", []):
                for queue in roles.get("queue", []):
                    edges.append((2 * weight, ("svc", worker, queue)))
                for db in roles.get("db", []):
                    edges.append((1 * weight, ("svc", worker, db)))
            if n > 1 and webs and c.by_namespace[(i + 1) % n]:
                shared = [wl for wl in c.by_namespace[(i + 1) % n] if wl.role == "api"][:1]
                for api in shared:
                    edges.append((1 * weight, ("svc", webs[0], api)))
            for k, client in enumerate(clients):
                if k % 3 == 0:
                    edges.append((1 * weight, ("world", client, _EXTERNAL[(i * 7 + k) % len(_EXTERNAL)])))
            if webs:
                edges.append((4 * weight, ("ingress", webs[0])))
                edges.append((3 * weight, ("internet", webs[0])))
            # The forbidden pair: denied at the server's ingress by a policy.
            if roles.get("worker") and backends:
                edges.append((2 * weight, ("denied", roles["worker"][0], backends[-1])))
            if clients:
                edges.append((0.6 * weight, ("egress-denied", clients[-1])))
        total = sum(w for w, _ in edges)
        # Cluster-wide kinds, in proportion to the application traffic.
        edges.append((0.10 * total, ("scrape",)))
        edges.append((0.06 * total, ("probe",)))
        edges.append((0.01 * total, ("apiserver", c.prometheus)))
        edges.append((0.01 * total, ("apiserver", c.ingress)))
        edges.append((0.02 * total, ("established",)))
        cumulative, running = [], 0.0
        for weight, _ in edges:
            running += weight
            cumulative.append(running)
        self.edges = [edge for _, edge in edges]
        self.cumulative = cumulative

    # ------------------------------------------------------------------------------------------- events

    def _time(self, ns: int) -> str:
        second, fraction = divmod(ns, _NS)
        base = self._seconds.get(second)
        if base is None:
            if len(self._seconds) > 4096:
                self._seconds.clear()
            base = self._seconds[second] = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{base}.{fraction:09d}Z"

    def _uuid(self) -> str:
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"

    def _event(self, out: list[tuple[int, dict[str, Any]]], at: int, node: int, src_ip: str, dst_ip: str,
               proto: str, sport: int, dport: int, src: dict[str, Any], dst: dict[str, Any], direction: str,
               reply: bool | None, point: str = "", flags: tuple[str, ...] = (), verdict: str = "FORWARDED",
               service: dict[str, str] | None = None, names: list[str] | None = None,
               l7: dict[str, Any] | None = None, summary: str = "") -> None:
        l4: dict[str, Any] = {"source_port": sport, "destination_port": dport}
        if flags:
            l4["flags"] = dict.fromkeys(flags, True)
        flow: dict[str, Any] = {"time": self._time(at), "uuid": self._uuid(), "verdict": verdict}
        if verdict == "DROPPED":
            flow["drop_reason"] = 133
        flow["ethernet"] = {"source": self.macs.get(src_ip, "02:42:ac:12:00:01"),
                            "destination": self.macs.get(dst_ip, "02:42:ac:12:00:01")}
        flow["IP"] = {"source": src_ip, "destination": dst_ip, "ipVersion": "IPv4"}
        flow["l4"] = {proto: l4}
        flow["source"] = src
        flow["destination"] = dst
        flow["Type"] = "L7" if l7 else "L3_L4"
        flow["node_name"] = node_name = self.prefix + self.c.nodes[node]
        if names:
            flow["destination_names"] = names
        if l7:
            flow["l7"] = l7
            flow["event_type"] = {"type": 129}
        elif verdict == "DROPPED":
            flow["event_type"] = {"type": 1, "sub_type": 133}
        else:
            flow["event_type"] = {"type": 4, "sub_type": _POINT_SUBTYPE.get(point, 0)}
        flow["traffic_direction"] = direction
        if point and not l7:
            flow["trace_observation_point"] = point
        if reply is not None:
            flow["is_reply"] = reply
        if service:
            flow["destination_service"] = service
        if verdict == "DROPPED":
            flow["drop_reason_desc"] = "POLICY_DENIED"
        flow["Summary"] = summary or (_TCP_SUMMARY.get(flags, "TCP") if proto == "TCP" else proto)
        out.append((at, {"flow": flow, "node_name": node_name, "time": flow["time"]}))

    def _sport(self) -> int:
        return self.rng.randint(32768, 60999)

    def _tcp(self, out: list[tuple[int, dict[str, Any]]], at: int, client: Pod | None, server: Pod | None,
             c_ip: str, s_ip: str, port: int, c_ep: dict[str, Any], s_ep: dict[str, Any], *,
             service: dict[str, str] | None = None, names: list[str] | None = None, pre_nat: tuple[str, int] | None
             = None) -> None:
        """One TCP connection, each packet seen at each end Hubble observes (a pod end; the world and the host
        report nothing). ``pre_nat`` (ClusterIP, service port): the client's node saw the service address."""
        rng = self.rng
        sport = self._sport()
        latency = rng.randint(60_000, 400_000)  # ns between the two nodes
        work = rng.randint(200_000, 40_000_000)
        duration = work + rng.randint(1_000_000, 1_500_000_000)
        self.s.connections += 1
        if client is not None and server is not None:
            self.s.both_ends += 1
        # Addresses and port as the client's node sees them.
        v_ip, v_port, v_ep = (pre_nat[0], pre_nat[1], self.world) if pre_nat else (s_ip, port, s_ep)
        cross = client is None or server is None or client.node != server.node
        out_point = "TO_OVERLAY" if cross else "TO_STACK"
        packets: list[tuple[int, bool, tuple[str, ...]]] = [
            (0, False, ("SYN",)), (2 * latency + 50_000, True, ("ACK", "SYN")),
            (2 * latency + 90_000, False, ("ACK",)), (duration, False, ("ACK", "FIN")),
        ]
        if rng.random() < 0.25:  # the server's own FIN, when Hubble's aggregation reports it
            packets.append((duration + 2 * latency, True, ("ACK", "FIN")))
        unknown = rng.random() < 0.02  # an older agent: no is_reply at all
        for offset, reply, flags in packets:
            t = at + offset
            known: bool | None = None if unknown else reply
            if client is not None:
                # At the client's node: its request leaving, the answer arriving.
                if reply:
                    self._event(out, t + latency, client.node, v_ip, c_ip, "TCP", v_port, sport, v_ep, c_ep,
                                "EGRESS", known, "TO_ENDPOINT", flags)
                else:
                    self._event(out, t, client.node, c_ip, v_ip, "TCP", sport, v_port, c_ep, v_ep, "EGRESS", known,
                                out_point, flags, service=service, names=names)
            if server is not None:
                if reply:
                    self._event(out, t, server.node, s_ip, c_ip, "TCP", port, sport, s_ep, c_ep, "INGRESS", known,
                                "TO_STACK" if not cross else "TO_OVERLAY", flags)
                else:
                    self._event(out, t + latency, server.node, c_ip, s_ip, "TCP", sport, port, c_ep, s_ep,
                                "INGRESS", known, "TO_ENDPOINT", flags, service=service)

    def _dns(self, out: list[tuple[int, dict[str, Any]]], at: int, client: Pod, name: str, answer: str) -> None:
        """A UDP query to kube-dns and its answer, at both ends, and the client's DNS proxy's L7 events."""
        rng = self.rng
        dns = self.c.dns.pod_at(rng, at)
        sport = self._sport()
        latency = rng.randint(60_000, 400_000)
        took = rng.randint(200_000, 3_000_000)
        ref = self.c.dns.service.ref if self.c.dns.service else None
        c_ep, d_ep = client.endpoint, dns.endpoint
        self._event(out, at, client.node, client.ip, dns.ip, "UDP", sport, 53, c_ep, d_ep, "EGRESS", False,
                    "TO_STACK", service=ref)
        self._event(out, at + latency, dns.node, client.ip, dns.ip, "UDP", sport, 53, c_ep, d_ep, "INGRESS", False,
                    "TO_ENDPOINT", service=ref)
        self._event(out, at + latency + took, dns.node, dns.ip, client.ip, "UDP", 53, sport, d_ep, c_ep, "INGRESS",
                    True, "TO_STACK")
        self._event(out, at + 2 * latency + took, client.node, dns.ip, client.ip, "UDP", 53, sport, d_ep, c_ep,
                    "EGRESS", True, "TO_ENDPOINT")
        self.s.connections += 1
        self.s.both_ends += 1
        if rng.random() < 0.5 or not name.endswith(".cluster.local."):
            query = {"query": name, "qtypes": ["A"], "observation_source": "proxy"}
            self._event(out, at + 1000, client.node, client.ip, dns.ip, "UDP", sport, 53, c_ep, d_ep, "EGRESS",
                        False, l7={"type": "REQUEST", "dns": query}, service=ref,
                        summary=f"DNS Query {name} A")
            answered = {**query, "ips": [answer], "ttl": 30, "rcode": 0, "rrtypes": ["A"]}
            self._event(out, at + 2 * latency + took + 1000, client.node, dns.ip, client.ip, "UDP", 53, sport, d_ep,
                        c_ep, "EGRESS", True,
                        l7={"type": "RESPONSE", "latency_ns": str(took + 2 * latency), "dns": answered},
                        summary=f'DNS Answer "{answer}" TTL: 30 (Proxy {name} A)')

    def _drops(self, out: list[tuple[int, dict[str, Any]]], at: int, client: Pod, server: Pod | None, s_ip: str,
               port: int, s_ep: dict[str, Any], service: dict[str, str] | None) -> None:
        """A SYN and its retransmits, denied at the server's ingress (``server``) or at the client's egress."""
        sport = self._sport()
        latency = self.rng.randint(60_000, 400_000)
        self.s.connections += 1
        if server is not None:
            self.s.both_ends += 1
        for retry in range(self.rng.randint(1, 3)):
            t = at + (2**retry - 1) * _NS
            if server is None:
                self._event(out, t, client.node, client.ip, s_ip, "TCP", sport, port, client.endpoint, s_ep, "EGRESS",
                            False, flags=("SYN",), verdict="DROPPED")
                continue
            self._event(out, t, client.node, client.ip, s_ip, "TCP", sport, port, client.endpoint, s_ep, "EGRESS",
                        False, "TO_OVERLAY", ("SYN",), service=service)
            self._event(out, t + latency, server.node, client.ip, s_ip, "TCP", sport, port, client.endpoint, s_ep,
                        "INGRESS", False, flags=("SYN",), verdict="DROPPED")

    def _connection(self, out: list[tuple[int, dict[str, Any]]], at: int) -> None:
        rng, c = self.rng, self.c
        edge = self.edges[bisect.bisect_left(self.cumulative, rng.random() * self.cumulative[-1])]
        kind = edge[0]
        if kind == "svc":
            client, target = edge[1].pod_at(rng, at), edge[2]
            server = target.pod_at(rng, at)
            svc = target.service
            port = target.ports[0][1]
            if svc is not None and rng.random() < 0.2:
                self._dns(out, at - rng.randint(1_000_000, 30_000_000), client,
                          f"{svc.name}.{svc.namespace}.svc.cluster.local.", svc.cluster_ip)
            pre_nat = (svc.cluster_ip, svc.ports[0][1]) if svc is not None and rng.random() < 0.05 else None
            self._tcp(out, at, client, server, client.ip, server.ip, port, client.endpoint, server.endpoint,
                      service=svc.ref if svc else None, pre_nat=pre_nat)
        elif kind == "world":
            client = edge[1].pod_at(rng, at)
            ip, name, port = edge[2]
            self._dns(out, at - rng.randint(1_000_000, 30_000_000), client, name + ".", ip)
            self._tcp(out, at, client, None, client.ip, ip, port, client.endpoint, self.world, names=[name])
        elif kind == "ingress":
            controller, web = c.ingress.pod_at(rng, at), edge[1]
            server = web.pod_at(rng, at)
            svc = web.service
            self._tcp(out, at, controller, server, controller.ip, server.ip, web.ports[0][1], controller.endpoint,
                      server.endpoint, service=svc.ref if svc else None)
        elif kind == "internet":
            controller = c.ingress.pod_at(rng, at)
            client_ip = _ip((198 << 24) | (18 << 16) | rng.randrange(2**17))  # 198.18.0.0/15
            self._tcp(out, at, None, controller, client_ip, controller.ip, 443, self.world, controller.endpoint)
        elif kind == "denied":
            client, target = edge[1].pod_at(rng, at), edge[2]
            server = target.pod_at(rng, at)
            self._drops(out, at, client, server, server.ip, target.ports[0][1], server.endpoint,
                        target.service.ref if target.service else None)
        elif kind == "egress-denied":
            client = edge[1].pod_at(rng, at)
            ip = _ip((192 << 24) | (168 << 16) | (50 << 8) | rng.randrange(1, 40))
            self._drops(out, at, client, None, ip, rng.choice((22, 3128, 8443)), self.world, None)
        elif kind == "scrape":
            prometheus = c.prometheus.pod_at(rng, at)
            target = self._live(rng.choice(self.scrapable), at)
            port = next(p for n, p, _ in target.workload.ports if n == "metrics")
            self._tcp(out, at, prometheus, target, prometheus.ip, target.ip, port, prometheus.endpoint,
                      target.endpoint)
        elif kind == "probe":
            target = self._live(rng.choice(self.c.pods), at)
            port = target.workload.ports[0][1]
            proto = target.workload.ports[0][2]
            if proto != "TCP":
                port = next(p for _, p, pr in target.workload.ports if pr == "TCP")
            self._tcp(out, at, None, target, c.node_ips[target.node], target.ip, port, self.hosts[target.node],
                      target.endpoint)
        elif kind == "apiserver":
            client = edge[1].pod_at(rng, at)
            self._tcp(out, at, client, None, client.ip, c.node_ips[0], API_PORT, client.endpoint, self.apiserver,
                      service={"name": "kubernetes", "namespace": "default"})
        else:  # established: a long-lived connection between a web and an api pod, seen as ACK/PSH only
            target = rng.choice(self.listeners)
            caller = rng.choice(self.listeners)
            client, server = caller.pod_at(rng, at), target.pod_at(rng, at)
            sport = self._sport()
            latency = rng.randint(60_000, 400_000)
            port = target.ports[0][1]
            self.s.connections += 1
            self.s.both_ends += 1
            for offset, reply in ((0, False), (3 * latency, True)):
                t = at + offset
                src, dst = (server, client) if reply else (client, server)
                sp, dp = (port, sport) if reply else (sport, port)
                self._event(out, t, src.node, src.ip, dst.ip, "TCP", sp, dp, src.endpoint, dst.endpoint,
                            "INGRESS" if reply else "EGRESS", reply, "TO_OVERLAY", ("ACK", "PSH"))
                self._event(out, t + latency, dst.node, src.ip, dst.ip, "TCP", sp, dp, src.endpoint, dst.endpoint,
                            "INGRESS" if not reply else "EGRESS", reply, "TO_ENDPOINT", ("ACK", "PSH"))

    def _count(self, flow: dict[str, Any]) -> None:
        s = self.s
        if flow.get("is_reply"):
            s.replies += 1
        if flow["verdict"] == "DROPPED":
            s.dropped += 1
        if flow["Type"] == "L7":
            s.l7 += 1
        if flow["source"] is self.world or flow["destination"] is self.world:
            s.world += 1
        if "destination_service" in flow:
            s.service += 1

    def _live(self, pod: Pod, at: int) -> Pod:
        """The pod of the same slot running at ``at`` (a replaced pod's successor)."""
        for incarnations in pod.workload.slots:
            if pod in incarnations:
                for candidate in incarnations:
                    if candidate.start <= at and (candidate.end is None or at < candidate.end):
                        return candidate
        return pod

    def lines(self) -> Iterator[bytes]:
        """Exactly ``self.total`` lines, a window at a time, sorted by time within each window."""
        total = self.total
        if total == 0:
            return
        start, end = self.start_ns, self.end_ns
        span = end - start
        windows = max(1, math.ceil(total / self.WINDOW_LINES))
        width = span // windows
        written = 0
        lost_every = 200_000
        for w in range(windows):
            target = total * (w + 1) // windows
            out: list[tuple[int, dict[str, Any]]] = []
            low = start + w * width
            while written + len(out) < target:
                before = len(out)
                self._connection(out, low + self.rng.randrange(max(width, 1)))
                # Events outside the span (a DNS lookup just before it, a FIN just after) belong to the batch
                # before or after this one: left out, so that every line falls in [start, end).
                if out[before:] and not all(start <= t < end for t, _ in out[before:]):
                    out[before:] = [(t, e) for t, e in out[before:] if start <= t < end]
            out.sort(key=lambda pair: pair[0])
            del out[target - written:]  # the last connection of a window may overshoot: cut at the line count
            chunk = []
            for _, line in out:
                if (written + len(chunk)) % lost_every == lost_every - 1:
                    node = self.c.nodes[self.rng.randrange(len(self.c.nodes))]
                    lost = {"source": "HUBBLE_RING_BUFFER", "num_events_lost": 1 + self.rng.randrange(64),
                            "cpu": self.rng.randrange(2)}
                    line = {"lost_events": lost, "node_name": self.prefix + node, "time": line["time"]}
                    self.s.lost_events += 1
                else:
                    self._count(line["flow"])
                chunk.append(orjson.dumps(line))
            written += len(chunk)
            yield b"\n".join(chunk) + b"\n"
        self.s.lines = written
        self.s.flows = written - self.s.lost_events


def generate(shape: Shape, directory: Path, *, flows_name: str = "flows.jsonl",
             inventory_name: str | None = "inventory.json", start: datetime | None = None,
             end: datetime | None = None, flows: int | None = None, cluster: Cluster | None = None) -> Summary:
    """Write the inventory dump (unless ``inventory_name`` is None) and the flow lines of ``shape`` into
    ``directory``; return the summary (its connection counts include the few connections whose last events fell
    past a window's cut). ``start``, ``end`` and ``flows``: traffic for that part of the span only, of that many
    lines (the same cluster: its pods, addresses and churn are the shape's). Files appear whole or not at all."""
    started = time.perf_counter()
    directory.mkdir(parents=True, exist_ok=True)
    cluster = cluster or Cluster(shape)
    summary = Summary(shape=shape, pods=len(cluster.pods), evicted=cluster.evicted)
    if inventory_name is not None:
        tmp_inventory = directory / (inventory_name + ".tmp")
        with open(tmp_inventory, "wb") as out:
            cluster.write_inventory(out)
        tmp_inventory.replace(directory / inventory_name)
    tmp_flows = directory / (flows_name + ".tmp")
    with open(tmp_flows, "wb", buffering=1 << 20) as out:
        for chunk in Traffic(cluster, summary, start=start, end=end, flows=flows).lines():
            out.write(chunk)
    tmp_flows.replace(directory / flows_name)
    summary.seconds = time.perf_counter() - started
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.synth", description=__doc__.split("\n\n")[0])
    defaults = Shape()
    parser.add_argument("--namespaces", type=int, default=defaults.namespaces)
    parser.add_argument("--workloads", type=int, default=defaults.workloads, help="per namespace")
    parser.add_argument("--replicas", type=int, default=defaults.replicas)
    parser.add_argument("--nodes", type=int, default=0, help="default: one per 50 pods, at least 3")
    parser.add_argument("--flows", type=int, default=defaults.flows, help="lines to write")
    parser.add_argument("--span", default="4h", help="time the flows spread over, e.g. 60s, 4h, 7d")
    parser.add_argument("--start", default=START.isoformat(), help="start of the span (ISO 8601 with offset)")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--churn", type=float, default=defaults.churn, help="share of Deployment pods replaced")
    parser.add_argument("--cluster", default=defaults.cluster, help="the cluster name in node names and labels")
    parser.add_argument("--out", type=Path, required=True, help="directory for inventory.json and flows.jsonl")
    args = parser.parse_args(argv)
    try:
        shape = Shape(namespaces=args.namespaces, workloads=args.workloads, replicas=args.replicas, nodes=args.nodes,
                      flows=args.flows, span=parse_span(args.span), start=datetime.fromisoformat(args.start),
                      seed=args.seed, churn=args.churn, cluster=args.cluster)
    except ValueError as exc:
        parser.error(str(exc))
    summary = generate(shape, args.out)
    print(summary.text())
    print(f"import with: manage.py import_inventory --cluster {shape.cluster} --create --observed-at "
          f"{summary.observed_at.isoformat()} {args.out / 'inventory.json'}", file=sys.stderr)


if __name__ == "__main__":
    main()
