"""The demo: a multi-namespace microservice shop, as a kubectl dump and as observed flows.

Everything here is data built by code, deterministic for a given anchor time, and loaded through the
same import paths that real dumps and real flows take (inventory snapshot, flow store, aggregation).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from flows.ingest.records import Endpoint, FlowRecord

POD_CIDR, SERVICE_CIDR, NODE_CIDR = "10.244.0.0/16", "10.96.0.0/12", "172.18.0.0/24"
NODES = {"node-a": "172.18.0.2", "node-b": "172.18.0.3", "node-c": "172.18.0.4"}


@dataclass(frozen=True)
class App:
    namespace: str
    kind: str  # Deployment, StatefulSet, DaemonSet, CronJob, Job
    name: str
    replicas: int
    ports: tuple[tuple[str, int, str], ...]  # (name, containerPort, protocol)
    labels: tuple[tuple[str, str], ...] = ()
    service_port: int | None = None  # a ClusterIP Service in front, on this port → first container port


def _labels(app: App) -> dict[str, str]:
    base = {"app.kubernetes.io/name": app.name, "app.kubernetes.io/part-of": "shop"}
    base.update(dict(app.labels) or {"app": app.name})
    return base


# Namespace → labels. "legacy" has none at all, as on clusters before Kubernetes 1.21 (use case 5).
NAMESPACES: dict[str, dict[str, str]] = {
    "shop": {"kubernetes.io/metadata.name": "shop", "team": "web", "env": "prod"},
    "payments": {"kubernetes.io/metadata.name": "payments", "team": "payments", "env": "prod"},
    "data": {"kubernetes.io/metadata.name": "data", "team": "platform"},
    "batch": {"kubernetes.io/metadata.name": "batch", "team": "platform"},
    "logging": {"kubernetes.io/metadata.name": "logging", "team": "platform"},
    "monitoring": {"kubernetes.io/metadata.name": "monitoring", "team": "platform"},
    "ingress-nginx": {"kubernetes.io/metadata.name": "ingress-nginx"},
    "kube-system": {"kubernetes.io/metadata.name": "kube-system"},
    "default": {"kubernetes.io/metadata.name": "default"},
    "legacy": {},
}

APPS: tuple[App, ...] = (
    App("ingress-nginx", "Deployment", "ingress-nginx-controller", 2, (("http", 80, "TCP"), ("https", 443, "TCP")),
        (("app.kubernetes.io/name", "ingress-nginx"), ("app.kubernetes.io/component", "controller"))),
    App("shop", "Deployment", "frontend", 3, (("http", 8080, "TCP"), ("metrics", 9090, "TCP")), service_port=80),
    App("shop", "Deployment", "cart", 2, (("grpc", 7070, "TCP"), ("metrics", 9090, "TCP")), service_port=7070),
    App("shop", "Deployment", "checkout", 2, (("grpc", 5050, "TCP"), ("metrics", 9090, "TCP")), service_port=5050),
    App("shop", "Deployment", "catalog", 2, (("grpc", 3550, "TCP"),), service_port=3550),
    App("shop", "Deployment", "recommendation", 1, (("grpc", 8080, "TCP"),), service_port=8080),
    App("shop", "Deployment", "currency", 1, (("grpc", 7000, "TCP"),), service_port=7000),
    App("shop", "Deployment", "shipping", 1, (("grpc", 50051, "TCP"),), service_port=50051),
    App("shop", "Deployment", "ad", 1, (("grpc", 9555, "TCP"),), service_port=9555),
    App("shop", "Deployment", "email", 1, (("http", 8080, "TCP"),), service_port=5000),
    App("payments", "Deployment", "payment", 2, (("grpc", 50051, "TCP"),), service_port=50051),
    App("payments", "Deployment", "fraud-check", 1, (("https", 8443, "TCP"),), service_port=443),
    App("data", "StatefulSet", "postgres", 3, (("postgres", 5432, "TCP"),), service_port=5432),
    App("data", "StatefulSet", "redis", 1, (("redis", 6379, "TCP"),), service_port=6379),
    App("logging", "DaemonSet", "fluent-bit", 3, (("metrics", 2020, "TCP"),)),
    App("monitoring", "StatefulSet", "prometheus", 1, (("web", 9090, "TCP"),), service_port=9090),
    App("batch", "CronJob", "exchange-rates", 1, ()),
    App("batch", "Job", "db-migrate-v42", 1, ()),
    App("legacy", "Deployment", "inventory-sync", 1, (("http", 8080, "TCP"),)),
    App("kube-system", "Deployment", "coredns", 2,
        (("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"), ("metrics", 9153, "TCP")), (("k8s-app", "kube-dns"),),
        service_port=53),
)

# External endpoints: (ip, DNS name or "", why it is there).
STRIPE = ("203.0.113.10", "api.stripe.com")
RATES = ("198.51.100.20", "api.exchangerate.example")
LOG_SAAS = ("192.0.2.50", "intake.logs.example.net")  # inside an admin's External CIDR "log-saas"
PARTNER = ("203.0.113.200", "")  # inside an alias "partner-sftp"
UNKNOWN_PRIVATE = ("192.168.50.7", "")  # a private address nobody configured
OLD_PROXY = ("10.10.0.99", "")  # private, outside the cluster ranges
CLIENTS = ("198.51.100.101", "198.51.100.102", "203.0.113.77")  # internet users of the ingress
# The ClusterIP of default/kubernetes; the API server behind it listens on the control-plane node's 6443.
API_CLUSTER_IP, API_NODE, API_PORT = "10.96.0.1", "node-a", 6443

# Who talks to whom: (source, destination, destination port, protocol, connections per hour, active days ago).
# A source/destination is "namespace/name" of an app, or an external IP. "active" is (from, to) in days ago,
# so that the time span matters: some traffic is only a few hours old, some stopped days ago.
EDGES: tuple[tuple[str, str, int, str, int, tuple[float, float]], ...] = (
    ("ingress-nginx/ingress-nginx-controller", "shop/frontend", 8080, "TCP", 12, (7, 0)),
    ("shop/frontend", "shop/cart", 7070, "TCP", 8, (7, 0)),
    ("shop/frontend", "shop/catalog", 3550, "TCP", 10, (7, 0)),
    ("shop/frontend", "shop/recommendation", 8080, "TCP", 4, (7, 0)),
    ("shop/frontend", "shop/currency", 7000, "TCP", 6, (7, 0)),
    ("shop/frontend", "shop/ad", 9555, "TCP", 3, (7, 0)),
    ("shop/frontend", "shop/checkout", 5050, "TCP", 2, (7, 0)),
    ("shop/checkout", "shop/cart", 7070, "TCP", 2, (7, 0)),
    ("shop/checkout", "payments/payment", 50051, "TCP", 2, (7, 0)),
    ("shop/checkout", "shop/shipping", 50051, "TCP", 2, (7, 0)),
    ("shop/checkout", "shop/email", 8080, "TCP", 1, (7, 0)),
    ("shop/checkout", "shop/currency", 7000, "TCP", 2, (7, 0)),
    ("shop/checkout", "data/postgres", 5432, "TCP", 1, (7, 0)),  # denied by the applied policy
    ("shop/cart", "data/redis", 6379, "TCP", 8, (7, 0)),
    ("shop/recommendation", "shop/catalog", 3550, "TCP", 4, (7, 0)),
    ("payments/payment", "data/postgres", 5432, "TCP", 3, (7, 0)),
    ("payments/payment", "payments/fraud-check", 8443, "TCP", 2, (7, 0)),
    ("payments/fraud-check", STRIPE[0], 443, "TCP", 2, (7, 0)),
    ("shop/email", PARTNER[0], 22, "TCP", 1, (5, 2)),
    ("shop/cart", OLD_PROXY[0], 3128, "TCP", 1, (7, 4)),  # stopped four days ago
    ("shop/catalog", UNKNOWN_PRIVATE[0], 8443, "TCP", 1, (0.4, 0)),  # new in the last ten hours
    ("batch/exchange-rates", RATES[0], 443, "TCP", 1, (7, 0)),
    ("batch/exchange-rates", "data/postgres", 5432, "TCP", 1, (7, 0)),
    ("batch/db-migrate-v42", "data/postgres", 5432, "TCP", 2, (2, 1.9)),
    ("logging/fluent-bit", LOG_SAAS[0], 443, "TCP", 6, (7, 0)),
    ("monitoring/prometheus", "shop/frontend", 9090, "TCP", 4, (7, 0)),
    ("monitoring/prometheus", "shop/cart", 9090, "TCP", 4, (7, 0)),
    ("monitoring/prometheus", "shop/checkout", 9090, "TCP", 4, (7, 0)),
    ("monitoring/prometheus", "logging/fluent-bit", 2020, "TCP", 4, (7, 0)),
    ("monitoring/prometheus", "kube-system/coredns", 9153, "TCP", 4, (7, 0)),
    # Service discovery and the ingress controller's watch of Ingresses: the API server, through its ClusterIP.
    ("monitoring/prometheus", API_CLUSTER_IP, 443, "TCP", 2, (7, 0)),
    ("ingress-nginx/ingress-nginx-controller", API_CLUSTER_IP, 443, "TCP", 1, (7, 0)),
    ("legacy/inventory-sync", "shop/catalog", 3550, "TCP", 2, (7, 0)),
    (CLIENTS[0], "ingress-nginx/ingress-nginx-controller", 443, "TCP", 10, (7, 0)),
    (CLIENTS[1], "ingress-nginx/ingress-nginx-controller", 443, "TCP", 6, (7, 0)),
    (CLIENTS[2], "ingress-nginx/ingress-nginx-controller", 443, "TCP", 2, (1, 0)),
)

DNS_CLIENTS = ("shop/frontend", "shop/checkout", "shop/cart", "payments/payment", "payments/fraud-check",
               "batch/exchange-rates", "logging/fluent-bit", "legacy/inventory-sync")

APPLIED_POLICY = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "postgres-clients", "namespace": "data"},
    "spec": {
        "podSelector": {"matchLabels": {"app": "postgres"}},
        "policyTypes": ["Ingress"],
        "ingress": [{
            "from": [
                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "payments"}}},
                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "batch"}}},
            ],
            "ports": [{"port": "postgres", "protocol": "TCP"}],
        }],
    },
}


def _hash(*parts: object, n: int = 10) -> str:
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:n]


def _suffix(*parts: object, n: int = 5) -> str:
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    digest = int(_hash(*parts, n=16), 16)
    return "".join(alphabet[(digest >> (5 * i)) % len(alphabet)] for i in range(n))


@dataclass
class DemoPod:
    app: App
    name: str
    ip: str
    node: str
    owner_kind: str
    owner_name: str
    start: datetime


def build(cluster: str, anchor: datetime) -> tuple[list[dict], list[DemoPod]]:
    """The inventory as `kubectl get ... -A -o yaml` would print it at ``anchor``, and the pods."""
    ts = (anchor - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    items: list[dict] = []
    for name, labels in NAMESPACES.items():
        meta: dict = {"name": name, "uid": _hash(cluster, "ns", name, n=32), "creationTimestamp": ts}
        if labels:
            meta["labels"] = dict(labels)
        items.append({"apiVersion": "v1", "kind": "Namespace", "metadata": meta})
    for node, ip in NODES.items():
        items.append({"apiVersion": "v1", "kind": "Node",
                      "metadata": {"name": node, "uid": _hash(cluster, "node", node, n=32), "creationTimestamp": ts,
                                   "labels": {"kubernetes.io/hostname": node}},
                      "status": {"addresses": [{"type": "InternalIP", "address": ip},
                                               {"type": "Hostname", "address": node}]}})
    pods: list[DemoPod] = []
    next_ip = iter(range(10, 250))
    for index, app in enumerate(APPS):
        labels = _labels(app)
        ports = [{"name": n, "containerPort": p, "protocol": proto} for n, p, proto in app.ports]
        template = {"metadata": {"labels": dict(labels)},
                    "spec": {"containers": [{"name": app.name, "image": f"registry.example/{app.name}:1.4",
                                             "ports": ports}]}}
        uid = _hash(cluster, app.kind, app.namespace, app.name, n=32)
        meta = {"name": app.name, "namespace": app.namespace, "uid": uid, "creationTimestamp": ts,
                "labels": dict(labels)}
        selector = {"matchLabels": dict(labels)}
        owners: list[tuple[str, str, str, dict]] = []  # pod owner (kind, name, uid, extra labels)
        if app.kind == "Deployment":
            h = _suffix(cluster, app.name, "rs", n=10)
            rs_uid = _hash(cluster, "rs", app.namespace, app.name, n=32)
            items.append({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
                          "spec": {"replicas": app.replicas, "selector": selector, "template": template}})
            rs_labels = {**labels, "pod-template-hash": h}
            items.append({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                          "metadata": {"name": f"{app.name}-{h}", "namespace": app.namespace, "uid": rs_uid,
                                       "creationTimestamp": ts, "labels": rs_labels,
                                       "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                                            "name": app.name, "uid": uid, "controller": True}]},
                          "spec": {"replicas": app.replicas,
                                   "selector": {"matchLabels": rs_labels},
                                   "template": {**template, "metadata": {"labels": rs_labels}}}})
            owners.append(("ReplicaSet", f"{app.name}-{h}", rs_uid, {"pod-template-hash": h}))
        elif app.kind in ("StatefulSet", "DaemonSet"):
            spec = {"selector": selector, "template": template}
            if app.kind == "StatefulSet":
                spec |= {"replicas": app.replicas, "serviceName": app.name}
            items.append({"apiVersion": "apps/v1", "kind": app.kind, "metadata": meta, "spec": spec})
            owners.append((app.kind, app.name, uid, {"controller-revision-hash": f"{app.name}-{_suffix(uid)}"}))
        elif app.kind == "CronJob":
            items.append({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta,
                          "spec": {"schedule": "0 * * * *",
                                   "jobTemplate": {"spec": {"template": {**template, "spec": {
                                       **template["spec"], "restartPolicy": "OnFailure"}}}}}})
            job = f"{app.name}-{int(anchor.timestamp()) // 3600 * 60}"
            job_uid = _hash(cluster, "job", job, n=32)
            items.append({"apiVersion": "batch/v1", "kind": "Job",
                          "metadata": {"name": job, "namespace": app.namespace, "uid": job_uid,
                                       "creationTimestamp": ts, "labels": {**labels, "job-name": job},
                                       "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob",
                                                            "name": app.name, "uid": uid, "controller": True}]},
                          "spec": {"template": template}})
            owners.append(("Job", job, job_uid, {"job-name": job, "controller-uid": job_uid}))
        elif app.kind == "Job":
            # As `kubectl create job` (or a Helm hook) makes it: the selector is only the controller's uid.
            run = {"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": app.name,
                   "controller-uid": uid, "job-name": app.name}
            items.append({"apiVersion": "batch/v1", "kind": "Job", "metadata": meta,
                          "spec": {"selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}},
                                   "template": {**template, "metadata": {"labels": {**labels, **run}}}}})
            owners.append(("Job", app.name, uid, run))
        owner_kind, owner_name, owner_uid, extra = owners[0]
        node_names = list(NODES)
        for i in range(app.replicas if app.kind != "DaemonSet" else len(NODES)):
            if app.kind == "StatefulSet":
                pod_name = f"{app.name}-{i}"
            elif app.kind == "DaemonSet":
                pod_name = f"{app.name}-{_suffix(cluster, app.name, i)}"
            else:
                pod_name = f"{owner_name}-{_suffix(cluster, app.name, i)}"
            node = node_names[(index + i) % len(node_names)] if app.kind != "DaemonSet" else node_names[i]
            ip = f"10.244.{node_names.index(node) + 1}.{next(next_ip)}"
            start = anchor - timedelta(days=21)
            pods.append(DemoPod(app, pod_name, ip, node, owner_kind, owner_name, start))
            items.append({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": pod_name, "namespace": app.namespace, "uid": _hash(cluster, "pod", pod_name, n=32),
                             "creationTimestamp": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                             "labels": {**labels, **extra},
                             "ownerReferences": [{"apiVersion": "apps/v1", "kind": owner_kind, "name": owner_name,
                                                  "uid": owner_uid, "controller": True}]},
                "spec": {"nodeName": node, "containers": template["spec"]["containers"]},
                "status": {"phase": "Running", "hostIP": NODES[node], "podIP": ip, "podIPs": [{"ip": ip}],
                           "startTime": start.strftime("%Y-%m-%dT%H:%M:%SZ")},
            })
        if app.service_port and app.ports:
            target_name, _, proto = app.ports[0]
            cluster_ip = f"10.96.{index // 200}.{10 if app.name == 'coredns' else 20 + index}"
            svc_ports = [{"name": target_name, "port": app.service_port, "targetPort": target_name,
                          "protocol": proto}]
            if app.name == "coredns":
                svc_name = "kube-dns"
                svc_ports = [{"name": "dns", "port": 53, "targetPort": 53, "protocol": "UDP"},
                             {"name": "dns-tcp", "port": 53, "targetPort": 53, "protocol": "TCP"}]
            else:
                svc_name = app.name
            items.append({"apiVersion": "v1", "kind": "Service",
                          "metadata": {"name": svc_name, "namespace": app.namespace,
                                       "uid": _hash(cluster, "svc", svc_name, n=32), "creationTimestamp": ts,
                                       "labels": dict(labels)},
                          "spec": {"type": "ClusterIP", "clusterIP": cluster_ip, "clusterIPs": [cluster_ip],
                                   "selector": dict(labels), "ports": svc_ports}})
    items += _api_server(cluster, ts)
    items.append({**APPLIED_POLICY, "metadata": {**APPLIED_POLICY["metadata"],
                                                 "uid": _hash(cluster, "netpol", n=32), "creationTimestamp": ts}})
    return items, pods


def _api_server(cluster: str, ts: str) -> list[dict]:
    """``default/kubernetes`` (no selector) and its EndpointSlice and Endpoints, as kubeadm makes them."""
    meta = {"namespace": "default", "creationTimestamp": ts}
    port = {"name": "https", "port": API_PORT, "protocol": "TCP"}
    return [
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {**meta, "name": "kubernetes", "uid": _hash(cluster, "svc", "kubernetes", n=32),
                      "labels": {"component": "apiserver", "provider": "kubernetes"}},
         "spec": {"type": "ClusterIP", "clusterIP": API_CLUSTER_IP, "clusterIPs": [API_CLUSTER_IP],
                  "ports": [{"name": "https", "port": 443, "targetPort": API_PORT, "protocol": "TCP"}]}},
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
         "metadata": {**meta, "name": "kubernetes", "uid": _hash(cluster, "eps", "kubernetes", n=32),
                      "labels": {"kubernetes.io/service-name": "kubernetes"}},
         "endpoints": [{"addresses": [NODES[API_NODE]], "conditions": {"ready": True}}], "ports": [port]},
        {"apiVersion": "v1", "kind": "Endpoints",
         "metadata": {**meta, "name": "kubernetes", "uid": _hash(cluster, "ep", "kubernetes", n=32)},
         "subsets": [{"addresses": [{"ip": NODES[API_NODE]}], "ports": [port]}]},
    ]


def flows(cluster: str, anchor: datetime, pods: list[DemoPod], days: int = 7) -> list[FlowRecord]:
    """Seven days of connections along EDGES, each seen at both ends where Hubble would see it."""
    rng = random.Random(f"{cluster}:{anchor.isoformat()}")
    by_app: dict[str, list[DemoPod]] = {}
    for p in pods:
        by_app.setdefault(f"{p.app.namespace}/{p.app.name}", []).append(p)
    names = {STRIPE[0]: STRIPE[1], RATES[0]: RATES[1], LOG_SAAS[0]: LOG_SAAS[1]}
    edges = list(EDGES) + [(c, "kube-system/coredns", 53, "UDP", 6, (7, 0)) for c in DNS_CLIENTS]
    records: list[FlowRecord] = []

    def endpoint(pod: DemoPod | None, ip: str, port: int, reserved: str = "") -> Endpoint:
        if pod is None:
            # A ClusterIP before translation carries no identity; every other address here is the world's.
            return Endpoint(ip=ip, port=port, reserved=reserved or ("" if ip == API_CLUSTER_IP else "world"))
        return Endpoint(ip=pod.ip, port=port, namespace=pod.app.namespace, pod=pod.name,
                        workload_kind=pod.app.kind if pod.app.kind != "Job" else "Job",
                        workload_name=pod.app.name)

    for hour in range(days * 24, 0, -1):
        start = anchor - timedelta(hours=hour)
        daytime = 8 <= start.hour < 20
        for src, dst, port, proto, rate, (active_from, active_to) in edges:
            if not (anchor - timedelta(days=active_from) <= start < anchor - timedelta(days=active_to)):
                continue
            count = max(1, round(rate * (1.5 if daytime else 0.5) * rng.uniform(0.6, 1.4)))
            for _ in range(count):
                at = start + timedelta(seconds=rng.uniform(0, 3599))
                client = rng.choice(by_app[src]) if src in by_app else None
                server = rng.choice(by_app[dst]) if dst in by_app else None
                client_ip, server_ip = (client.ip if client else src), (server.ip if server else dst)
                sport = rng.randint(32768, 60999)
                c_end = endpoint(client, client_ip, sport)
                s_end = endpoint(server, server_ip, port)
                to_dns = names.get(server_ip, "")
                dropped = src == "shop/checkout" and dst == "data/postgres"
                flags = ("SYN",) if proto == "TCP" else ()
                common = {"time": at, "protocol": proto, "node_name": f"{cluster}/{client.node if client else ''}"}
                if client is not None:
                    records.append(FlowRecord(source=c_end, destination=s_end, is_reply=False, tcp_flags=flags,
                                              traffic_direction="EGRESS",
                                              destination_names=(to_dns,) if to_dns else (),
                                              event_id=_hash(cluster, "e", at.isoformat(), client_ip, sport, n=32),
                                              **common))
                if server is not None:
                    records.append(FlowRecord(
                        time=at + timedelta(milliseconds=1), protocol=proto, source=c_end, destination=s_end,
                        is_reply=False, tcp_flags=flags, traffic_direction="INGRESS",
                        verdict="DROPPED" if dropped else "FORWARDED", node_name=f"{cluster}/{server.node}",
                        event_id=_hash(cluster, "i", at.isoformat(), client_ip, sport, n=32)))
                    if not dropped:
                        records.append(FlowRecord(
                            time=at + timedelta(milliseconds=2), protocol=proto, source=s_end, destination=c_end,
                            is_reply=True, tcp_flags=("ACK", "SYN") if proto == "TCP" else (),
                            traffic_direction="INGRESS", node_name=f"{cluster}/{server.node}",
                            event_id=_hash(cluster, "r", at.isoformat(), client_ip, sport, n=32)))
        # Kubelet readiness probes from each pod's own node: always allowed, never a rule.
        for p in pods:
            if p.app.ports and p.app.ports[0][2] == "TCP" and hour % 6 == 0:
                at = start + timedelta(seconds=rng.uniform(0, 3599))
                records.append(FlowRecord(
                    time=at, protocol="TCP", source=Endpoint(NODES[p.node], rng.randint(32768, 60999), reserved="host"),
                    destination=endpoint(p, p.ip, p.app.ports[0][1]), is_reply=False, tcp_flags=("SYN",),
                    traffic_direction="INGRESS", node_name=f"{cluster}/{p.node}",
                    event_id=_hash(cluster, "probe", at.isoformat(), p.name, n=32)))
    return records
