"""What the live sync lists, in one place: the sync reads it, and so do the ClusterRole and its test."""

from __future__ import annotations

from typing import NamedTuple


class Resource(NamedTuple):
    group: str  # API group: "" is the core group
    version: str
    plural: str  # the resource name in URLs and RBAC rules
    kind: str  # the kind of its items, as the inventory parser names it

    @property
    def path(self) -> str:
        """The cluster-wide list path, e.g. /apis/apps/v1/deployments."""
        prefix = "/api/v1" if not self.group else f"/apis/{self.group}/{self.version}"
        return f"{prefix}/{self.plural}"


RESOURCES: tuple[Resource, ...] = (
    Resource("", "v1", "namespaces", "Namespace"),
    Resource("", "v1", "nodes", "Node"),
    Resource("", "v1", "pods", "Pod"),
    Resource("", "v1", "services", "Service"),
    Resource("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice"),
    Resource("apps", "v1", "deployments", "Deployment"),
    Resource("apps", "v1", "replicasets", "ReplicaSet"),
    Resource("apps", "v1", "daemonsets", "DaemonSet"),
    Resource("apps", "v1", "statefulsets", "StatefulSet"),
    Resource("batch", "v1", "jobs", "Job"),
    Resource("batch", "v1", "cronjobs", "CronJob"),
    Resource("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy"),
)
