"""Classification of unresolved IPs: Internal, External, Aliased, Unknown, or the API server (design §2-3).

Every range is loaded once into in-memory longest-prefix tables; classifying is then a dictionary
lookup per prefix length, never a query per address.

An address behind a Service without a selector (an endpoint, or the Service's own ClusterIP when its
endpoints are unknown) also names that Service and all its addresses: a policy allowing it must allow
every one, since any may take the next connection. The API server's (``default/kubernetes``) is a
category of its own.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Q

from flows import apiserver, iputil
from flows.models import CIDRConfig, Cluster, IPAlias, Node, ObservedIP, ServiceAddress, ServiceEndpoint

INTERNAL, EXTERNAL, ALIASED, UNKNOWN, API_SERVER = "Internal", "External", "Aliased", "Unknown", "APIServer"
CATEGORIES = (INTERNAL, EXTERNAL, ALIASED, UNKNOWN, API_SERVER)
API_SERVICE = f"{apiserver.SERVICE_NAMESPACE}/{apiserver.SERVICE_NAME}"

# Private-use ranges: an address in one that no configuration explains is Unknown. Anything else outside
# the cluster is External (documentation ranges included, so that examples read naturally).
_PRIVATE = [ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16", "127.0.0.0/8",
    "fc00::/7", "fe80::/10", "::1/128",
)]

# Cilium's reserved identities that name cluster infrastructure rather than the outside world.
_INFRASTRUCTURE_IDENTITIES = {"host", "remote-node", "kube-apiserver", "health", "ingress"}


@dataclass(frozen=True, slots=True)
class IPInfo:
    ip: str
    category: str
    alias: str | None = None
    alias_cidr: str | None = None
    allowed: bool = False  # an admin marked the alias allowed: included in policies by default
    label: str = ""  # the label of the admin's CIDR configuration that matched
    identity: str = ""  # Cilium reserved identity seen for it (host, world, kube-apiserver, ...)
    dns_names: tuple[str, ...] = ()
    service: str = ""  # "namespace/name" of the selectorless Service it is an address of
    service_addresses: tuple[str, ...] = ()  # every known address of that Service, sorted


class IPClassifier:
    """Loads a cluster's ranges, aliases and node addresses once; classifies any number of IPs."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        scope = Q(cluster=cluster) | Q(cluster__isnull=True)
        self.aliases: iputil.RangeTable[IPAlias] = iputil.RangeTable()
        # A cluster-specific alias wins over a global one for the same range: load globals first.
        for alias in IPAlias.objects.filter(scope).order_by("-cluster_id"):
            self.aliases.add(alias.cidr, alias)
        self.configs: iputil.RangeTable[CIDRConfig] = iputil.RangeTable()
        for config in CIDRConfig.objects.filter(scope).order_by("-cluster_id"):
            self.configs.add(config.cidr, config)
        self.cluster_ranges: iputil.RangeTable[bool] = iputil.RangeTable()
        for net in cluster.cluster_networks():
            self.cluster_ranges.add(net, True)
        self.node_ips: set[str] = set()
        for addresses in Node.objects.filter(cluster=cluster).values_list("addresses", flat=True):
            self.node_ips.update(str(a) for a in addresses or ())
        # Addresses of Services without a selector: their endpoints, and their own ClusterIPs.
        selectorless = {"service__cluster": cluster, "service__selector": {}, "service__deleted_at__isnull": True}
        by_service: dict[str, set[str]] = defaultdict(set)
        self.service_of: dict[str, str] = {}
        for ip, namespace, name in ServiceEndpoint.objects.filter(**selectorless).values_list(
                "ip", "service__namespace__name", "service__name"):
            by_service[f"{namespace}/{name}"].add(ip)
            self.service_of[ip] = f"{namespace}/{name}"
        by_service[API_SERVICE] |= apiserver.fallback_addresses(cluster)
        for ip in by_service[API_SERVICE]:
            self.service_of[ip] = API_SERVICE
        for ip, namespace, name in ServiceAddress.objects.filter(**selectorless).values_list(
                "ip", "service__namespace__name", "service__name"):
            self.service_of.setdefault(ip, f"{namespace}/{name}")
        self.service_addresses = {svc: tuple(sorted(ips, key=iputil.ip_key)) for svc, ips in by_service.items()}

    def classify_many(self, ips: Iterable[str]) -> dict[str, IPInfo]:
        ips = set(ips)
        observed = {
            o.ip: o for o in ObservedIP.objects.filter(cluster=self.cluster, ip__in=ips)
        } if ips else {}
        return {ip: self.classify(ip, observed.get(ip)) for ip in ips}

    def classify(self, ip: str, observed: ObservedIP | None = None) -> IPInfo:
        info = self._category(ip, observed)
        service = self.service_of.get(ip, "")
        if not service:
            return info
        category = API_SERVER if service == API_SERVICE else info.category
        return IPInfo(info.ip, category, info.alias, info.alias_cidr, info.allowed, info.label, info.identity,
                      info.dns_names, service, self.service_addresses.get(service, ()))

    def _category(self, ip: str, observed: ObservedIP | None) -> IPInfo:
        identity = observed.identity if observed else ""
        names = tuple(observed.dns_names) if observed else ()
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return IPInfo(ip, UNKNOWN, identity=identity, dns_names=names)
        alias = self.aliases.lookup(address)
        config = self.configs.lookup(address)
        label = config.label if config else ""
        if alias is not None:
            return IPInfo(ip, ALIASED, alias.name, alias.cidr, alias.allowed, label, identity, names)
        if config is not None:
            return IPInfo(ip, config.category, label=label, identity=identity, dns_names=names)
        if self.cluster_ranges.lookup(address) or ip in self.node_ips or identity in _INFRASTRUCTURE_IDENTITIES:
            return IPInfo(ip, INTERNAL, identity=identity, dns_names=names)
        if any(address in net for net in _PRIVATE if net.version == address.version):
            return IPInfo(ip, UNKNOWN, identity=identity, dns_names=names)
        return IPInfo(ip, EXTERNAL, identity=identity, dns_names=names)
