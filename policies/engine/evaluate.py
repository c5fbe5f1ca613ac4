"""Exact ``networking.k8s.io/v1`` evaluation of connections against a set of NetworkPolicies.

A pod is isolated for a direction when at least one policy in its namespace selects it and lists that
policy type; an isolated pod admits a connection only when some rule of some such policy admits the
peer and the port (policies are a union). A connection needs the source's egress AND the
destination's ingress. A bare IP that is no known pod has no policies.

Indexing: policies are grouped per namespace, "policies selecting pod P for direction D" is cached per
pod, and selector matches are memoised per (selector, label set), so a probe never scans every policy.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from policies.engine.model import (
    Connection,
    Direction,
    Endpoint,
    IPAddress,
    Namespace,
    Peer,
    Pod,
    Policy,
    PortSpec,
    ProbeResult,
    SideVerdict,
)
from policies.engine.selectors import SelectorCache

_NO_LABELS: frozenset[tuple[str, str]] = frozenset()


@dataclass(frozen=True)
class _CompiledPeer:
    """A peer with its selectors interned; -1 stands for an absent selector."""

    peer: Peer
    pod_sid: int
    ns_sid: int


@dataclass(frozen=True)
class _CompiledRule:
    peers: tuple[_CompiledPeer, ...]
    ports: tuple[PortSpec, ...]


@dataclass(frozen=True)
class _CompiledPolicy:
    policy: Policy
    selector_id: int
    ingress: tuple[_CompiledRule, ...]
    egress: tuple[_CompiledRule, ...]

    def rules(self, direction: Direction) -> tuple[_CompiledRule, ...]:
        return self.ingress if direction == "ingress" else self.egress


@dataclass(frozen=True)
class _Resolved:
    """An endpoint with its pod (if any) and the address it uses on this connection."""

    pod: Pod | None
    address: IPAddress | None


class Evaluator:
    """Evaluates connections over one cluster state and one set of policies (both fixed at creation)."""

    def __init__(
        self,
        namespaces: Iterable[Namespace] = (),
        pods: Iterable[Pod] = (),
        policies: Iterable[Policy] = (),
    ) -> None:
        self._selectors = SelectorCache()
        self._namespaces: dict[str, Namespace] = {ns.name: ns for ns in namespaces}
        self._pods_by_ip: dict[IPAddress, Pod] = {}
        for pod in pods:
            self.add_pod(pod)
        self._by_namespace: dict[str, list[_CompiledPolicy]] = defaultdict(list)
        self.policies: tuple[Policy, ...] = tuple(policies)
        for policy in self.policies:
            self._by_namespace[policy.namespace].append(self._compile(policy))
        self._selecting: dict[tuple[tuple[str, str], Direction], tuple[_CompiledPolicy, ...]] = {}
        # Parsing address text dominates a probe otherwise; pods and peers repeat, so parse each once.
        self._addresses: dict[str, IPAddress] = {}

    # --- cluster state ------------------------------------------------------------------------------

    def add_pod(self, pod: Pod) -> None:
        for ip in pod.ips:
            self._pods_by_ip[ipaddress.ip_address(ip)] = pod

    # --- index --------------------------------------------------------------------------------------

    def _compile(self, policy: Policy) -> _CompiledPolicy:
        def rules(direction: Direction) -> tuple[_CompiledRule, ...]:
            return tuple(
                _CompiledRule(
                    peers=tuple(
                        _CompiledPeer(
                            peer=peer,
                            pod_sid=-1 if peer.pod_selector is None else self._selectors.intern(peer.pod_selector),
                            ns_sid=(
                                -1
                                if peer.namespace_selector is None
                                else self._selectors.intern(peer.namespace_selector)
                            ),
                        )
                        for peer in rule.peers
                    ),
                    ports=rule.ports,
                )
                for rule in policy.rules(direction)
            )

        return _CompiledPolicy(
            policy=policy,
            selector_id=self._selectors.intern(policy.pod_selector),
            ingress=rules("ingress"),
            egress=rules("egress"),
        )

    def _selecting_policies(self, pod: Pod, direction: Direction) -> tuple[_CompiledPolicy, ...]:
        """Policies that isolate ``pod`` for ``direction``; only its own namespace's policies can."""
        key = (pod.key, direction)
        cached = self._selecting.get(key)
        if cached is None:
            cached = tuple(
                compiled
                for compiled in self._by_namespace.get(pod.namespace, ())
                if compiled.policy.isolates(direction) and self._selectors.matches(compiled.selector_id, pod.label_set)
            )
            self._selecting[key] = cached
        return cached

    def selecting(self, pod: Pod, direction: Direction) -> tuple[Policy, ...]:
        return tuple(c.policy for c in self._selecting_policies(pod, direction))

    # --- evaluation ---------------------------------------------------------------------------------

    def _address(self, text: str) -> IPAddress:
        address = self._addresses.get(text)
        if address is None:
            address = self._addresses[text] = ipaddress.ip_address(text)
        return address

    def _pod_address(self, pod: Pod, other: Endpoint) -> IPAddress | None:
        """The address a pod uses: of the other side's family when known (dual-stack), else its first."""
        if not pod.ips:
            return None
        first = self._address(pod.ips[0])
        if len(pod.ips) == 1:
            return first
        other_ip = other.ip if other.ip is not None else (other.pod.ips[0] if other.pod and other.pod.ips else None)
        if other_ip is not None:
            wanted = self._address(other_ip).version
            for ip in pod.ips:
                if self._address(ip).version == wanted:
                    return self._address(ip)
        return first

    def _resolve(self, endpoint: Endpoint, other: Endpoint) -> _Resolved:
        if endpoint.pod is not None:
            pod = endpoint.pod
            if endpoint.ip is not None:
                return _Resolved(pod, self._address(endpoint.ip))
            return _Resolved(pod, self._pod_address(pod, other))
        assert endpoint.ip is not None
        address = self._address(endpoint.ip)
        # An IP that belongs to a known pod is that pod; any other IP has no policies.
        return _Resolved(self._pods_by_ip.get(address), address)

    def evaluate(self, connection: Connection) -> ProbeResult:
        source = self._resolve(connection.source, connection.destination)
        destination = self._resolve(connection.destination, connection.source)
        egress = self._side(source.pod, "egress", remote=destination, target=destination.pod, connection=connection)
        ingress = self._side(destination.pod, "ingress", remote=source, target=destination.pod, connection=connection)
        return ProbeResult(connection=connection, egress=egress, ingress=ingress)

    def _side(
        self,
        pod: Pod | None,
        direction: Direction,
        *,
        remote: _Resolved,
        target: Pod | None,
        connection: Connection,
    ) -> SideVerdict:
        if pod is None:
            return SideVerdict("not-isolated")
        selecting = self._selecting_policies(pod, direction)
        if not selecting:
            return SideVerdict("not-isolated")
        admitted = tuple(
            compiled.policy.key
            for compiled in selecting
            if any(
                self._rule_admits(rule, compiled.policy.namespace, remote, target, connection)
                for rule in compiled.rules(direction)
            )
        )
        return SideVerdict(
            "allowed" if admitted else "denied",
            isolated_by=tuple(c.policy.key for c in selecting),
            admitted_by=admitted,
        )

    def _rule_admits(
        self,
        rule: _CompiledRule,
        policy_namespace: str,
        remote: _Resolved,
        target: Pod | None,
        connection: Connection,
    ) -> bool:
        # Ports and peers are ANDed within a rule; entries of each list are ORed; empty lists match all.
        if rule.ports and not any(
            _port_matches(spec, target, connection.port, connection.protocol) for spec in rule.ports
        ):
            return False
        if not rule.peers:
            return True
        return any(self._peer_matches(peer, policy_namespace, remote) for peer in rule.peers)

    def _peer_matches(self, peer: _CompiledPeer, policy_namespace: str, remote: _Resolved) -> bool:
        block = peer.peer.ip_block
        if block is not None:
            # ipBlock is by address, whoever holds it (a pod's IP included).
            return remote.address is not None and block.contains(remote.address)
        pod = remote.pod
        if pod is None:
            return False  # selectors only ever match pods
        if peer.ns_sid < 0:
            # podSelector alone: pods of the policy's own namespace.
            if pod.namespace != policy_namespace:
                return False
        else:
            namespace = self._namespaces.get(pod.namespace)
            ns_labels = namespace.label_set if namespace is not None else _NO_LABELS
            if not self._selectors.matches(peer.ns_sid, ns_labels):
                return False
        # namespaceSelector alone: every pod of the matching namespaces; both fields: AND.
        return peer.pod_sid < 0 or self._selectors.matches(peer.pod_sid, pod.label_set)


def _port_matches(spec: PortSpec, target: Pod | None, port: int, protocol: str) -> bool:
    if spec.protocol != protocol:
        return False
    if spec.port is None:
        return True
    if isinstance(spec.port, int):
        end = spec.end_port if spec.end_port is not None else spec.port
        return spec.port <= port <= end
    # A named port means the destination pod's container port of that name AND protocol (for egress
    # too); a destination that lacks it, or is not a pod, matches nothing.
    if target is None:
        return False
    return any(cp.name == spec.port and cp.protocol == protocol and cp.port == port for cp in target.ports)
