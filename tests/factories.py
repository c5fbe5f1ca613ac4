"""Small builders of inventory rows and raw flows for tests that exercise the database directly."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from flows.models import (
    Cluster,
    ContainerPort,
    Namespace,
    Node,
    Pod,
    PodAddress,
    RawFlow,
    Service,
    ServiceAddress,
    ServiceEndpoint,
    ServicePort,
    Workload,
)

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
_ids = itertools.count(1)


def namespace(cluster: Cluster, name: str, labels: dict | None = None) -> Namespace:
    ns, _ = Namespace.objects.get_or_create(
        cluster=cluster, name=name,
        defaults={"labels": {"kubernetes.io/metadata.name": name} if labels is None else labels},
    )
    return ns


def workload(cluster: Cluster, ns: str, kind: str, name: str, labels: dict | None = None,
             parent: Workload | None = None) -> Workload:
    labels = labels if labels is not None else {"app": name}
    return Workload.objects.create(
        cluster=cluster, namespace=namespace(cluster, ns), kind=kind, name=name, parent=parent,
        selector={"matchLabels": labels}, template_labels=labels, uid=f"uid-{next(_ids)}",
    )


def pod(cluster: Cluster, wl: Workload, name: str, ip: str | None, *, ports: tuple = (),
        since: datetime = T0 - timedelta(days=30), until: datetime | None = None, node: str = "node-1",
        host_ip: str = "172.18.0.2", host_network: bool = False) -> Pod:
    p = Pod.objects.create(
        cluster=cluster, namespace=wl.namespace, name=name, uid=f"uid-{next(_ids)}", labels=wl.template_labels,
        workload=wl, node_name=node, host_ip=host_ip, host_network=host_network,
    )
    for port in ports:
        port_name, number, proto = port if len(port) == 3 else ("", *port)
        ContainerPort.objects.create(pod=p, name=port_name, port=number, protocol=proto)
    if ip and not host_network:
        PodAddress.objects.create(cluster=cluster, pod=p, ip=ip, valid_from=since, valid_to=until)
    Node.objects.get_or_create(cluster=cluster, name=node, defaults={"addresses": [host_ip]})
    return p


def service(cluster: Cluster, ns: str, name: str, selector: dict, cluster_ip: str,
            ports: list[tuple[int, str, int | str]]) -> Service:
    svc = Service.objects.create(
        cluster=cluster, namespace=namespace(cluster, ns), name=name, selector=selector
    )
    ServiceAddress.objects.create(cluster=cluster, service=svc, ip=cluster_ip)
    for port, proto, target in ports:
        ServicePort.objects.create(
            service=svc, port=port, protocol=proto,
            target_port=target if isinstance(target, int) else None,
            target_port_name=target if isinstance(target, str) else "",
        )
    return svc


def endpoint(svc: Service, ip: str, port: int | None, name: str = "", proto: str = "TCP") -> ServiceEndpoint:
    return ServiceEndpoint.objects.create(service=svc, ip=ip, port=port, protocol=proto, name=name)


def api_server(cluster: Cluster, *addresses: str) -> Service:
    """``default/kubernetes`` on 10.96.0.1:443 (no selector), with an endpoint on 6443 per address."""
    svc = service(cluster, "default", "kubernetes", {}, "10.96.0.1", [(443, "TCP", 6443)])
    ServicePort.objects.filter(service=svc).update(name="https")
    for ip in addresses:
        endpoint(svc, ip, 6443, "https")
    return svc


def flow(cluster: Cluster, src: str, sport: int, dst: str, dport: int, *, proto: str = "TCP",
         time: datetime = T0, flags: str = "SYN", is_reply: bool | None = False, verdict: str = "FORWARDED",
         direction: str = "EGRESS", node: str = "node-1", **extra) -> RawFlow:
    return RawFlow.objects.create(
        cluster=cluster, fingerprint=f"f{next(_ids)}", time=time, protocol=proto, src_ip=src, src_port=sport,
        dst_ip=dst, dst_port=dport, tcp_flags=flags, is_reply=is_reply, verdict=verdict,
        traffic_direction=direction, node_name=node, **extra,
    )
