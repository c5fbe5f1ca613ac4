"""A straightforward NetworkPolicy evaluator, written from the API reference and nothing else: no index,
no cache, every policy looked at for every probe. The engine's fast path must give the same answers.

- A pod is isolated for a direction iff some policy of its namespace selects it (podSelector) and lists
  that direction in policyTypes; a non-isolated side allows everything.
- An isolated side allows a connection iff some rule of some isolating policy admits it: the rule's
  ports list is empty or one entry matches (protocol, and number / range / the destination pod's
  container port of that name and protocol), AND its peers list is empty or one peer matches.
- A peer: ipBlock by the remote address (CIDR minus except); otherwise the remote must be a pod, in the
  policy's namespace when namespaceSelector is absent or in a namespace the selector matches (an
  undeclared namespace has no labels), with labels the podSelector matches when present.
- A connection is allowed iff the source's egress and the destination's ingress allow it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping

from policies.engine import Connection, Endpoint, Namespace, Pod, Policy, ProbeResult, SideVerdict
from policies.engine.model import LabelSelector, Peer, PortSpec

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def selector_matches(selector: LabelSelector, labels: Mapping[str, str]) -> bool:
    for key, value in selector.match_labels:
        if labels.get(key) != value:
            return False
    for req in selector.match_expressions:
        present = req.key in labels
        if req.operator == "In" and not (present and labels[req.key] in req.values):
            return False
        if req.operator == "NotIn" and present and labels[req.key] in req.values:
            return False
        if req.operator == "Exists" and not present:
            return False
        if req.operator == "DoesNotExist" and present:
            return False
    return True


class Reference:
    def __init__(self, namespaces: Iterable[Namespace], pods: Iterable[Pod], policies: Iterable[Policy]) -> None:
        self.namespace_labels = {ns.name: dict(ns.labels) for ns in namespaces}
        self.pods = list(pods)
        self.policies = list(policies)

    def pod_at(self, address: Address) -> Pod | None:
        owner = None
        for pod in self.pods:  # the last pod holding the address, as Evaluator.add_pod registers them
            if any(ipaddress.ip_address(ip) == address for ip in pod.ips):
                owner = pod
        return owner

    def resolve(self, end: Endpoint, other: Endpoint) -> tuple[Pod | None, Address | None]:
        if end.pod is None:
            address = ipaddress.ip_address(end.ip)
            return self.pod_at(address), address
        if end.ip is not None:
            return end.pod, ipaddress.ip_address(end.ip)
        ips = [ipaddress.ip_address(ip) for ip in end.pod.ips]
        if not ips:
            return end.pod, None
        other_ip = other.ip or (other.pod.ips[0] if other.pod is not None and other.pod.ips else None)
        if other_ip is not None:
            # A dual-stack pod talks to a peer in the peer's family.
            for ip in ips:
                if ip.version == ipaddress.ip_address(other_ip).version:
                    return end.pod, ip
        return end.pod, ips[0]

    def selecting(self, pod: Pod, direction: str) -> list[Policy]:
        wanted = "Ingress" if direction == "ingress" else "Egress"
        return [
            p
            for p in self.policies
            if p.namespace == pod.namespace
            and wanted in p.policy_types
            and selector_matches(p.pod_selector, pod.labels)
        ]

    def port_matches(self, spec: PortSpec, destination: Pod | None, port: int, protocol: str) -> bool:
        if spec.protocol != protocol:
            return False
        if spec.port is None:
            return True
        if isinstance(spec.port, int):
            return spec.port <= port <= (spec.end_port or spec.port)
        return destination is not None and any(
            cp.name == spec.port and cp.protocol == protocol and cp.port == port for cp in destination.ports
        )

    def peer_matches(self, peer: Peer, policy: Policy, remote: Pod | None, address: Address | None) -> bool:
        if peer.ip_block is not None:
            if address is None:
                return False
            network = ipaddress.ip_network(peer.ip_block.cidr)
            if address.version != network.version or address not in network:
                return False
            return not any(address in ipaddress.ip_network(c) for c in peer.ip_block.except_)
        if remote is None:
            return False
        if peer.namespace_selector is None:
            if remote.namespace != policy.namespace:
                return False
        elif not selector_matches(peer.namespace_selector, self.namespace_labels.get(remote.namespace, {})):
            return False
        return peer.pod_selector is None or selector_matches(peer.pod_selector, remote.labels)

    def side(
        self, pod: Pod | None, direction: str, remote: Pod | None, address: Address | None,
        destination: Pod | None, connection: Connection,
    ) -> SideVerdict:
        if pod is None:
            return SideVerdict("not-isolated")
        isolating = self.selecting(pod, direction)
        if not isolating:
            return SideVerdict("not-isolated")
        admitted = []
        for policy in isolating:
            rules = policy.ingress if direction == "ingress" else policy.egress
            for rule in rules:
                ports_ok = not rule.ports or any(
                    self.port_matches(s, destination, connection.port, connection.protocol) for s in rule.ports
                )
                peers_ok = not rule.peers or any(self.peer_matches(p, policy, remote, address) for p in rule.peers)
                if ports_ok and peers_ok:
                    admitted.append(policy.key)
                    break
        return SideVerdict(
            "allowed" if admitted else "denied",
            isolated_by=tuple(p.key for p in isolating),
            admitted_by=tuple(admitted),
        )

    def evaluate(self, connection: Connection) -> ProbeResult:
        source, source_address = self.resolve(connection.source, connection.destination)
        destination, destination_address = self.resolve(connection.destination, connection.source)
        return ProbeResult(
            connection,
            egress=self.side(source, "egress", destination, destination_address, destination, connection),
            ingress=self.side(destination, "ingress", source, source_address, destination, connection),
        )
