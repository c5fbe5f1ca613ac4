"""Where the Kubernetes API server answers (design §2).

Pods reach it through the ``default/kubernetes`` Service (ClusterIP, port 443), a Service without a
selector; NetworkPolicy sees the translated packet, so what a policy must allow is the API server's own
addresses and port (6443 on kubeadm and kind). They are known, best first, from:

1. the endpoints of ``default/kubernetes`` (EndpointSlices or legacy Endpoints in the inventory);
2. the kube-apiserver static pods (``component=kube-apiserver`` in kube-system, on the host network):
   their node addresses, on the Service's target port;
3. addresses that Hubble reported with the ``reserved:kube-apiserver`` identity.

Every address any source names is the API server's: an HA control plane has several, and a policy must
allow all of them, since the next connection may land on any.
"""

from __future__ import annotations

from flows.iputil import ip_key
from flows.models import Cluster, ObservedIP, Pod, ServiceEndpoint

SERVICE_NAMESPACE, SERVICE_NAME = "default", "kubernetes"
STATIC_POD_NAMESPACE = "kube-system"
STATIC_POD_LABELS = {"component": "kube-apiserver"}
IDENTITY = "kube-apiserver"


def endpoint_addresses(cluster: Cluster) -> set[str]:
    """Addresses of the endpoints of ``default/kubernetes``."""
    return set(
        ServiceEndpoint.objects.filter(
            service__cluster=cluster, service__namespace__name=SERVICE_NAMESPACE, service__name=SERVICE_NAME,
            service__deleted_at__isnull=True,
        ).values_list("ip", flat=True)
    )


def fallback_addresses(cluster: Cluster) -> set[str]:
    """Addresses known without the endpoints: the static pods' nodes and Hubble's identity."""
    # kube-system holds few pods: matching their labels here works alike on SQLite and PostgreSQL.
    pods = Pod.objects.live().filter(cluster=cluster, namespace__name=STATIC_POD_NAMESPACE).exclude(host_ip="")
    hosts = {pod.host_ip for pod in pods.only("labels", "host_ip")
             if all(pod.labels.get(k) == v for k, v in STATIC_POD_LABELS.items())}
    identified = ObservedIP.objects.filter(cluster=cluster, identity=IDENTITY).values_list("ip", flat=True)
    return hosts | set(identified)


def addresses(cluster: Cluster) -> tuple[str, ...]:
    """Every address the API server is known to answer on, sorted."""
    return tuple(sorted(endpoint_addresses(cluster) | fallback_addresses(cluster), key=ip_key))

