"""Kubernetes objects in the shape `kubectl get -o yaml|json` prints, small enough to write inline."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
# The repository keeps a copy of ../shared/examples (tests/test_examples.py checks it is current).
SAMPLE = Path(__file__).resolve().parents[1] / "data" / "inventory.yaml"


def ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(name: str, namespace: str | None = None, *, uid: str | None = None, labels: dict | None = None,
         owner: tuple[str, str, str] | None = None, created: datetime = T0 - timedelta(days=1)) -> dict:
    m: dict[str, Any] = {"name": name, "uid": uid or f"uid-{namespace or ''}-{name}",
                         "creationTimestamp": ts(created)}
    if namespace is not None:
        m["namespace"] = namespace
    if labels:
        m["labels"] = dict(labels)
    if owner:
        kind, oname, ouid = owner
        group = {"ReplicaSet": "apps/v1", "Deployment": "apps/v1", "StatefulSet": "apps/v1", "DaemonSet": "apps/v1",
                 "Job": "batch/v1", "CronJob": "batch/v1"}.get(kind, "v1")
        m["ownerReferences"] = [{"apiVersion": group, "kind": kind, "name": oname, "uid": ouid,
                                 "controller": True, "blockOwnerDeletion": True}]
    return m


def namespace(name: str, labels: dict | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": meta(name, labels={"kubernetes.io/metadata.name": name, **(labels or {})}),
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}


def node(name: str, ip: str) -> dict:
    return {"apiVersion": "v1", "kind": "Node", "metadata": meta(name, labels={"kubernetes.io/hostname": name}),
            "status": {"addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}]}}


def workload(kind: str, ns: str, name: str, labels: dict, *, owner: tuple[str, str, str] | None = None,
             extra_labels: dict | None = None) -> dict:
    group = "batch/v1" if kind in ("Job", "CronJob") else "apps/v1"
    all_labels = {**labels, **(extra_labels or {})}
    template = {"metadata": {"labels": all_labels},
                "spec": {"containers": [{"name": "main", "image": f"example/{name}:1"}]}}
    spec: dict[str, Any]
    if kind == "CronJob":
        spec = {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": template}}}
    else:
        spec = {"selector": {"matchLabels": all_labels}, "template": template}
    return {"apiVersion": group, "kind": kind, "metadata": meta(name, ns, labels=all_labels, owner=owner),
            "spec": spec, "status": {"replicas": 1}}


def pod(ns: str, name: str, ip: str | None, *, owner: tuple[str, str, str] | None = None,
        labels: dict | None = None, node_name: str = "node-1", host_ip: str = "172.18.0.2",
        host_network: bool = False, ports: tuple = (("http", 8080, "TCP"),), phase: str = "Running",
        start: datetime | None = T0 - timedelta(hours=1), uid: str | None = None,
        finished: datetime | None = None) -> dict:
    status: dict[str, Any] = {"phase": phase, "hostIP": host_ip, "hostIPs": [{"ip": host_ip}]}
    if ip:
        status |= {"podIP": ip, "podIPs": [{"ip": ip}]}
    if start:
        status["startTime"] = ts(start)
    if finished:
        status["containerStatuses"] = [{"name": "main", "ready": False, "state": {
            "terminated": {"exitCode": 0, "reason": "Completed", "finishedAt": ts(finished)}}}]
    spec: dict[str, Any] = {
        "nodeName": node_name,
        "containers": [{"name": "main", "image": "example/app:1",
                        "ports": [{"name": n, "containerPort": p, "protocol": proto} for n, p, proto in ports]}],
    }
    if host_network:
        spec["hostNetwork"] = True
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": meta(name, ns, uid=uid, labels=labels or {"app": name}, owner=owner),
            "spec": spec, "status": status}


def service(ns: str, name: str, selector: dict, cluster_ip: str, ports: list[dict]) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta(name, ns, labels=selector),
            "spec": {"type": "ClusterIP", "clusterIP": cluster_ip, "clusterIPs": [cluster_ip],
                     "selector": selector, "ports": ports}}


def endpoint_slice(ns: str, service: str, addresses: list[str], ports: list[dict], *, suffix: str = "abcde",
                   address_type: str = "IPv4") -> dict:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": address_type,
            "metadata": meta(f"{service}-{suffix}", ns, labels={"kubernetes.io/service-name": service,
                                                                 "endpointslice.kubernetes.io/managed-by": "x"}),
            "endpoints": [{"addresses": [a], "conditions": {"ready": True}} for a in addresses], "ports": ports}


def endpoints(ns: str, name: str, addresses: list[str], ports: list[dict], not_ready: list[str] = ()) -> dict:
    subset: dict[str, Any] = {"addresses": [{"ip": a} for a in addresses], "ports": ports}
    if not_ready:
        subset["notReadyAddresses"] = [{"ip": a} for a in not_ready]
    return {"apiVersion": "v1", "kind": "Endpoints", "metadata": meta(name, ns), "subsets": [subset]}


def api_server(addresses: tuple[str, ...] = ("172.18.0.2",), *, with_endpoints: bool = True) -> list[dict]:
    """``default/kubernetes`` (ClusterIP 10.96.0.1:443, no selector) in front of the API server on 6443, as
    kubeadm and kind make it; with its EndpointSlice and legacy Endpoints, or with neither."""
    svc = service("default", "kubernetes", {}, "10.96.0.1", [{"name": "https", "port": 443, "targetPort": 6443}])
    del svc["spec"]["selector"]
    items = [namespace("default"), svc]
    if with_endpoints:
        port = [{"name": "https", "port": 6443, "protocol": "TCP"}]
        items += [endpoint_slice("default", "kubernetes", list(addresses), port, suffix=""),
                  endpoints("default", "kubernetes", list(addresses), port)]
        items[-2]["metadata"]["name"] = "kubernetes"
    return items


def api_server_static_pod(node_name: str, host_ip: str) -> dict:
    """The kube-apiserver static (mirror) pod of a control-plane node: host network, owned by its Node."""
    item = pod("kube-system", f"kube-apiserver-{node_name}", host_ip, node_name=node_name, host_ip=host_ip,
               host_network=True, ports=(), labels={"component": "kube-apiserver", "tier": "control-plane"})
    item["metadata"]["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": node_name, "uid": "n",
                                            "controller": True}]
    return item


def network_policy(ns: str, name: str, app: str) -> dict:
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {**meta(name, ns), "resourceVersion": "4711", "generation": 3,
                     "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{...}", "owner": "team-a"},
                     "managedFields": [{"manager": "kubectl", "operation": "Update"}]},
        "spec": {"podSelector": {"matchLabels": {"app": app}}, "policyTypes": ["Ingress"],
                 "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}],
                              "ports": [{"protocol": "TCP", "port": 8080}]}]},
    }


def shop() -> list[dict]:
    """A small cluster with every owner chain: Deployment, CronJob, Job, StatefulSet, DaemonSet,
    an orphan ReplicaSet, a bare pod, a hostNetwork pod, a service and a policy."""
    items = [namespace("shop", {"team": "shop"}), namespace("kube-system"), node("node-1", "172.18.0.2")]
    web = {"app": "web"}
    items += [
        workload("Deployment", "shop", "web", web),
        workload("ReplicaSet", "shop", "web-5d9f8", web, extra_labels={"pod-template-hash": "5d9f8"},
                 owner=("Deployment", "web", "uid-shop-web")),
        pod("shop", "web-5d9f8-aaaaa", "10.244.1.10", owner=("ReplicaSet", "web-5d9f8", "uid-shop-web-5d9f8"),
            labels={**web, "pod-template-hash": "5d9f8"}),
        pod("shop", "web-5d9f8-bbbbb", "10.244.1.11", owner=("ReplicaSet", "web-5d9f8", "uid-shop-web-5d9f8"),
            labels={**web, "pod-template-hash": "5d9f8"}),
        workload("CronJob", "shop", "report", {"app": "report"}),
        workload("Job", "shop", "report-29000000", {"app": "report"},
                 extra_labels={"batch.kubernetes.io/job-name": "report-29000000", "job-name": "report-29000000"},
                 owner=("CronJob", "report", "uid-shop-report")),
        pod("shop", "report-29000000-ccccc", "10.244.1.12",
            owner=("Job", "report-29000000", "uid-shop-report-29000000"),
            labels={"app": "report", "job-name": "report-29000000"}),
        workload("Job", "shop", "migrate", {"app": "migrate"}),
        pod("shop", "migrate-ddddd", "10.244.1.13", owner=("Job", "migrate", "uid-shop-migrate"),
            labels={"app": "migrate"}),
        workload("StatefulSet", "shop", "db", {"app": "db"}),
        pod("shop", "db-0", "10.244.1.14", owner=("StatefulSet", "db", "uid-shop-db"),
            labels={"app": "db", "statefulset.kubernetes.io/pod-name": "db-0"}, ports=(("pg", 5432, "TCP"),)),
        workload("DaemonSet", "kube-system", "agent", {"app": "agent"}),
        pod("kube-system", "agent-eeeee", None, owner=("DaemonSet", "agent", "uid-kube-system-agent"),
            labels={"app": "agent"}, host_network=True, host_ip="172.18.0.2", ports=(("metrics", 9100, "TCP"),)),
        workload("ReplicaSet", "shop", "legacy", {"app": "legacy"}),
        pod("shop", "legacy-fffff", "10.244.1.15", owner=("ReplicaSet", "legacy", "uid-shop-legacy"),
            labels={"app": "legacy"}),
        pod("shop", "debug", "10.244.1.16", labels={"run": "debug"}, ports=()),
        service("shop", "web", web, "10.96.0.20",
                [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"},
                 {"name": "admin", "port": 9090, "targetPort": 9091}]),
        network_policy("shop", "db-ingress", "db"),
    ]
    return items


def as_list(items: list[dict]) -> dict:
    return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items}


def to_yaml(items: list[dict]) -> str:
    return yaml.safe_dump(as_list(items), sort_keys=False)


def to_multidoc_yaml(items: list[dict]) -> str:
    return yaml.safe_dump_all(items, sort_keys=False)


def to_json(items: list[dict]) -> str:
    return json.dumps(as_list(items), indent=2)


# ------------------------------------------------------ Jobs and selectorless Services, as Kubernetes writes them


def job_labels(name: str, uid: str) -> dict[str, str]:
    """The labels the Job controller adds to a Job's pod template, in both spellings (Kubernetes 1.27+)."""
    return {"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": name,
            "controller-uid": uid, "job-name": name}


def job(ns: str, name: str, labels: dict, *, uid: str, owner: tuple[str, str, str] | None = None) -> dict:
    """A Job as the API server stores it (made by ``kubectl create job``, a Helm hook or a CronJob): its selector
    is its controller-uid alone, its template carries the user's labels plus ``job_labels``."""
    item = workload("Job", ns, name, labels, owner=owner, extra_labels=job_labels(name, uid))
    item["metadata"]["uid"] = uid
    item["spec"]["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    return item


def selectorless_service(ns: str, name: str, cluster_ip: str, ports: list[dict]) -> dict:
    """A Service without a selector (in front of something outside the cluster): its EndpointSlices say where
    its traffic lands."""
    item = service(ns, name, {}, cluster_ip, ports)
    del item["spec"]["selector"]
    return item
