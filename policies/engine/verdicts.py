"""Per-row verdicts for the UI: would each communication of a workload pass, given the draft policy
plus the policies applied in the cluster? This is what colours the topology red or black.

Each workload is stood for by one representative pod (the labels its pods carry, its container ports,
its IPs when known); an address peer is judged by its observed address. Traffic from a pod's own node
is always allowed (Kubernetes lets kubelet probes through whatever the policies say).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from policies.engine.evaluate import Evaluator
from policies.engine.generate import GenerationWarning
from policies.engine.model import Connection, Endpoint, Namespace, Pod, Policy, SideVerdict
from policies.engine.parse import parse_policy
from policies.engine.rows import AddressPeer, CommunicationRow, Scope, WorkloadPeer

Side = Literal["egress", "ingress"]


_ALWAYS = SideVerdict("allowed")


@dataclass(frozen=True)
class RowVerdict:
    """What the draft, together with the policies applied in the cluster, does to one row."""

    row: CommunicationRow
    allowed: bool
    # The side(s) that refuse it: "egress" of the source and/or "ingress" of the destination.
    blocked_by: tuple[Side, ...]
    egress: SideVerdict
    ingress: SideVerdict
    warning: str = ""  # why the draft could not write an included row into the policy

    @property
    def always_allowed(self) -> bool:
        return self.row.node_local

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


def _workload_pod(owner: Scope | WorkloadPeer) -> Pod:
    # The name only has to be unique in the evaluator; kind/name cannot collide with a real pod name.
    return Pod(namespace=owner.namespace, name=f"{owner.kind}/{owner.name}", labels=owner.pod_labels,
               ips=owner.ips, ports=owner.ports)


def row_verdicts(
    scope: Scope,
    rows: Sequence[CommunicationRow],
    draft_policy: Policy | Mapping[str, Any] | None,
    applied: Iterable[Policy | Mapping[str, Any]],
    warnings: Iterable[GenerationWarning] = (),
) -> list[RowVerdict]:
    """A verdict per row, in row order; ``warnings`` of the draft's generation are attached to their rows.
    Raises ``PolicyError`` if a policy does not parse. Rows with an opaque peer cannot be judged: give
    the engine the real peers and hide them afterwards."""
    by_key = {w.row_key: w.message for w in warnings if w.row_key is not None}
    policies = effective_policies(draft_policy, applied)
    namespaces: dict[str, Mapping[str, str]] = {scope.namespace: scope.namespace_labels}
    scope_pod = _workload_pod(scope)
    pods: dict[tuple[str, str], Pod] = {scope_pod.key: scope_pod}
    for row in rows:
        peer = row.peer
        if isinstance(peer, WorkloadPeer):
            if peer.namespace_labels or peer.namespace not in namespaces:
                namespaces[peer.namespace] = peer.namespace_labels or namespaces.get(peer.namespace, {})
            pod = _workload_pod(peer)
            pods.setdefault(pod.key, pod)
    evaluator = Evaluator(
        namespaces=[Namespace(name, labels) for name, labels in namespaces.items()],
        pods=pods.values(),
        policies=policies,
    )

    verdicts: list[RowVerdict] = []
    scope_end = Endpoint.of_pod(scope_pod)
    for row in rows:
        if row.node_local:
            verdicts.append(RowVerdict(row, True, (), _ALWAYS, _ALWAYS))
            continue
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
                row=row,
                allowed=result.allowed,
                blocked_by=tuple(blocked),
                egress=result.egress,
                ingress=result.ingress,
                warning=by_key.get(row.key, ""),
            )
        )
    return verdicts


def _peer_endpoint(row: CommunicationRow, pods: Mapping[tuple[str, str], Pod]) -> Endpoint:
    peer = row.peer
    if isinstance(peer, WorkloadPeer):
        return Endpoint.of_pod(pods[(peer.namespace, f"{peer.kind}/{peer.name}")])
    if isinstance(peer, AddressPeer):
        return Endpoint.of_ip(peer.ip)
    raise TypeError(f"verdicts are judged on the real peers, not on {peer!r}")
