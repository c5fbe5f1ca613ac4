"""Build tests/sync/data/*.json: what the Kubernetes API answers to the lists of flows/kube/resources.py.

Run ``python -m tests.sync.build_data`` from the repository root after changing it. The objects are the
kubectl dump tests/data/inventory.yaml (a copy of ../shared/examples) plus the kinds that dump lacks
(nodes, services, endpointslices, a DaemonSet, a StatefulSet, a CronJob with its Job), in the shape the
API gives them: one ``<Kind>List`` per resource, with ``metadata.resourceVersion``, and items without
``kind``/``apiVersion`` (a typed list leaves them out), each with its own resourceVersion.
"""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from flows.kube.resources import RESOURCES
from tests.inventory import builders as b

ROOT = Path(__file__).resolve().parent
DATA = ROOT / "data"
LIST_VERSION = "1000"


def _extra() -> list[dict[str, Any]]:
    """The kinds the dump has no example of, named like it (node-000, 10.0.x.y, 192.168.0.x)."""
    items: list[dict[str, Any]] = [
        b.namespace("default"),
        b.node("node-000", "192.168.0.2"),
        b.node("node-001", "192.168.0.3"),
    ]
    items += b.api_server(("192.168.0.2",))[1:-1]  # default/kubernetes and its EndpointSlice
    for ns in ("ns-000", "ns-001"):
        items.append(b.service(ns, "web-000", {"app": "web-000"}, f"10.96.{ns[-1]}.10",
                               [{"name": "http", "port": 80, "targetPort": 3000, "protocol": "TCP"}]))
    items.append(b.service("kube-system", "kube-dns", {"k8s-app": "kube-dns"}, "10.96.0.10",
                           [{"name": "dns", "port": 53, "protocol": "UDP"},
                            {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]))
    items.append(b.endpoint_slice("kube-system", "kube-dns", ["10.0.0.10", "10.0.0.11"],
                                  [{"name": "dns", "port": 53, "protocol": "UDP"}], suffix="x7k2p"))
    # A DaemonSet on the host network, one pod per node.
    items.append(b.workload("DaemonSet", "kube-system", "kube-proxy", {"k8s-app": "kube-proxy"}))
    for i, (node, ip) in enumerate((("node-000", "192.168.0.2"), ("node-001", "192.168.0.3"))):
        items.append(b.pod("kube-system", f"kube-proxy-{'ab'[i]}9x2m", ip, node_name=node, host_ip=ip,
                           host_network=True, ports=(), labels={"k8s-app": "kube-proxy"},
                           owner=("DaemonSet", "kube-proxy", "uid-kube-system-kube-proxy")))
    # A StatefulSet with one pod.
    items.append(b.workload("StatefulSet", "ns-001", "cache", {"app": "cache"}))
    items.append(b.pod("ns-001", "cache-0", "10.0.1.20", node_name="node-001", host_ip="192.168.0.3",
                       owner=("StatefulSet", "cache", "uid-ns-001-cache"), labels={"app": "cache"},
                       ports=(("redis", 6379, "TCP"),)))
    # A CronJob, one of its Jobs and that Job's finished pod.
    items.append(b.workload("CronJob", "ns-000", "report", {"app": "report"}))
    items.append(b.job("ns-000", "report-29000000", {"app": "report"}, uid="uid-ns-000-report-29000000",
                       owner=("CronJob", "report", "uid-ns-000-report")))
    items.append(b.pod("ns-000", "report-29000000-q8w4z", "10.0.1.21", node_name="node-000", phase="Succeeded",
                       owner=("Job", "report-29000000", "uid-ns-000-report-29000000"),
                       labels={"app": "report", **b.job_labels("report-29000000", "uid-ns-000-report-29000000")},
                       finished=b.T0 - timedelta(minutes=30), host_ip="192.168.0.2", ports=()))
    return items


def lists() -> dict[str, dict[str, Any]]:
    """File name -> the List the API answers for that resource."""
    dump = yaml.safe_load(b.SAMPLE.read_text())["items"]
    objects = [*dump, *_extra()]
    version = 100
    by_kind: dict[str, list[dict[str, Any]]] = {r.kind: [] for r in RESOURCES}
    for obj in objects:
        item = copy.deepcopy(obj)
        kind = item.pop("kind")
        item.pop("apiVersion", None)
        version += 1
        item["metadata"]["resourceVersion"] = str(version)
        by_kind[kind].append(item)
    result = {}
    for resource in RESOURCES:
        api_version = f"{resource.group}/{resource.version}" if resource.group else resource.version
        result[f"{resource.plural}.json"] = {
            "kind": f"{resource.kind}List", "apiVersion": api_version,
            "metadata": {"resourceVersion": LIST_VERSION}, "items": by_kind[resource.kind],
        }
    return result


def main() -> None:
    DATA.mkdir(exist_ok=True)
    for name, content in lists().items():
        (DATA / name).write_text(json.dumps(content, indent=1) + "\n")


if __name__ == "__main__":
    main()
