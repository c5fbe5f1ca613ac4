"""Per-row verdicts for the UI: would each communication of a workload pass, given the draft policy
plus the policies applied in the cluster? This is what colours the topology red or black.

Each workload is stood for by one representative pod (its template labels, container ports, an IP
when known); an IP peer is that address; a CIDR peer is judged by its first address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from policies.engine.evaluate import Evaluator
from policies.engine.generate import CIDRPeer, CommunicationRow, IPPeer, Scope, WorkloadPeer
from policies.engine.model import Connection, Endpoint, Namespace, Pod, Policy, SideVerdict
from policies.engine.parse import parse_policy

Side = Literal["egress", "ingress"]


@dataclass(frozen=True)
class RowVerdict:
    row_index: int
    row: CommunicationRow
    allowed: bool
    # The side(s) that refuse it: "egress" of the source and/or "ingress" of the destination.
    blocked_by: tuple[Side, ...]
    egress: SideVerdict
    ingress: SideVerdict

    @property
    def policies(self) -> tuple[str, ...]:
        """For a blocked row, the isolating policies of the refusing side(s); else those that admit it."""
        if self.blocked_by:
            keys: list[str] = []
            for side in self.blocked_by:
                keys.extend(getattr(self, side).isolated_by)
            return tuple(dict.fromkeys(keys))
        return tuple(dict.fromkeys(self.egress.admitted_by + self.ingress.admitted_by))


def _as_policy(item: Policy | Mapping[str, Any]) -> Policy:
    return item if isinstance(item, Policy) else parse_policy(item)


def effective_policies(
    draft_policy: Policy | Mapping[str, Any] | None,
    applied: Iterable[Policy | Mapping[str, Any]],
) -> list[Policy]:
    """The applied policies with the draft in place of an applied policy of the same namespace/name."""
    policies = [_as_policy(p) for p in applied]
    if draft_policy is None:
        return policies
    draft = _as_policy(draft_policy)
    return [p for p in policies if p.key != draft.key] + [draft]


def _workload_pod(namespace: str, kind: str, name: str, peer: Scope | WorkloadPeer) -> Pod:
    labels = peer.template_labels if peer.template_labels is not None else peer.pod_labels
    # The name only has to be unique in the evaluator; kind/name cannot collide with a real pod name.
    return Pod(namespace=namespace, name=f"{kind}/{name}", labels=labels, ips=peer.ips, ports=peer.ports)


def row_verdicts(
    scope: Scope,
    rows: Sequence[CommunicationRow],
    draft_policy: Policy | Mapping[str, Any] | None,
    applied: Iterable[Policy | Mapping[str, Any]],
) -> list[RowVerdict]:
    """A verdict per row, in row order. Raises ``PolicyError`` if a policy does not parse."""
    policies = effective_policies(draft_policy, applied)
    namespaces: dict[str, Mapping[str, str]] = {scope.namespace: scope.namespace_labels}
    scope_pod = _workload_pod(scope.namespace, scope.kind, scope.name, scope)
    pods: dict[tuple[str, str], Pod] = {scope_pod.key: scope_pod}
    for row in rows:
        peer = row.peer
        if isinstance(peer, WorkloadPeer):
            if peer.namespace_labels or peer.namespace not in namespaces:
                namespaces[peer.namespace] = peer.namespace_labels or namespaces.get(peer.namespace, {})
            pod = _workload_pod(peer.namespace, peer.kind, peer.name, peer)
            pods.setdefault(pod.key, pod)
    evaluator = Evaluator(
        namespaces=[Namespace(name, labels) for name, labels in namespaces.items()],
        pods=pods.values(),
        policies=policies,
    )

    verdicts: list[RowVerdict] = []
    scope_end = Endpoint.of_pod(scope_pod)
    for index, row in enumerate(rows):
        peer_end = _peer_endpoint(row, pods)
        source, destination = (peer_end, scope_end) if row.direction == "ingress" else (scope_end, peer_end)
        # A portless protocol (ICMP) is admitted only by rules without ports; port 0 matches no port entry.
        result = evaluator.evaluate(Connection(source, destination, row.port or 0, row.protocol))
        blocked: list[Side] = []
        if not result.egress.allows:
            blocked.append("egress")
        if not result.ingress.allows:
            blocked.append("ingress")
        verdicts.append(
            RowVerdict(
                row_index=index,
                row=row,
                allowed=result.allowed,
                blocked_by=tuple(blocked),
                egress=result.egress,
                ingress=result.ingress,
            )
        )
    return verdicts


def _peer_endpoint(row: CommunicationRow, pods: Mapping[tuple[str, str], Pod]) -> Endpoint:
    peer = row.peer
    if isinstance(peer, WorkloadPeer):
        return Endpoint.of_pod(pods[(peer.namespace, f"{peer.kind}/{peer.name}")])
    if isinstance(peer, IPPeer):
        return Endpoint.of_ip(peer.ip)
    assert isinstance(peer, CIDRPeer)
    return Endpoint.of_ip(str(ipaddress.ip_network(peer.cidr, strict=False).network_address))
