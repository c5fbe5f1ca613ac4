"""Least-privilege NetworkPolicy generation from a workload's communications and its draft (design §4).

Inputs are the dataclasses below (the ORM adapter fills them); the output is one NetworkPolicy dict
per scope plus warnings about rows that could not be expressed. Output is deterministic: the same
input in any order gives the same dict, so the YAML is byte-identical.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from policies.engine.model import PROTOCOLS, Direction, GenerationError, frozen_labels
from policies.engine.rows import AddressPeer, CommunicationRow, OpaquePeer, Scope, WorkloadPeer

Mode = Literal["custom", "block-all", "allow-namespace", "allow-all"]
MODES: tuple[Mode, ...] = ("custom", "block-all", "allow-namespace", "allow-all")
MODE_LABELS: dict[str, str] = {
    "custom": "Custom selection",
    "block-all": "Block all",
    "allow-namespace": "Allow all inside namespace",
    "allow-all": "Allow all",
}

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "netsec"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
ANNOTATION_SCOPE = "netsec/scope"
ANNOTATION_OBSERVED_FROM = "netsec/observed-from"
ANNOTATION_OBSERVED_TO = "netsec/observed-to"

# ---------------------------------------------------------------------------------------------------------
# Inputs (scopes, peers and rows are in rows.py)
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PortRange:
    port: int
    protocol: str = "TCP"
    end_port: int | None = None

    def __str__(self) -> str:
        return f"{self.port}{f'-{self.end_port}' if self.end_port else ''}/{self.protocol}"


_PORT = re.compile(r"^\s*(\d+)(?:\s*-\s*(\d+))?\s*(?:/\s*(TCP|UDP|SCTP))?\s*$", re.IGNORECASE)


def parse_ports(text: str) -> tuple[PortRange, ...]:
    """'443/TCP, 8000-8100/tcp, 53/UDP' → port ranges (TCP when no protocol is given); empty text is every
    port. ValueError names the part that is wrong."""
    ranges = []
    for part in (p.strip() for p in (text or "").split(",")):
        if not part:
            continue
        match = _PORT.match(part)
        if not match:
            raise ValueError(f"ports: {part!r} is not PORT[-END][/TCP|UDP|SCTP], e.g. 443/TCP or 8000-8100")
        start, end, protocol = int(match.group(1)), match.group(2), (match.group(3) or "TCP").upper()
        end_port = int(end) if end else None
        if not 1 <= start <= 65535 or (end_port is not None and not start < end_port <= 65535):
            raise ValueError(f"ports: {part!r} is out of range 1-65535 or the end is not after the start")
        ranges.append(PortRange(start, protocol, end_port))
    return tuple(ranges)


@dataclass(frozen=True)
class ManualRule:
    """A rule the user added by hand: a CIDR with optional ports (none = every port)."""

    direction: Direction
    cidr: str
    ports: tuple[PortRange, ...] = ()


@dataclass(frozen=True)
class DNSTarget:
    """The cluster DNS pods, reached on 53/UDP and 53/TCP whenever egress is restricted."""

    namespace: str = "kube-system"
    pod_labels: Mapping[str, str] = field(default_factory=lambda: {"k8s-app": "kube-dns"}, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pod_labels", frozen_labels(self.pod_labels))


@dataclass(frozen=True)
class Draft:
    """The user's decisions for one scope. ``namespace_labels`` maps a peer namespace that lacks
    ``kubernetes.io/metadata.name`` to the (key, value) label the user chose to select it by."""

    ingress_mode: Mode = "custom"
    egress_mode: Mode = "custom"
    manual_rules: tuple[ManualRule, ...] = ()
    namespace_labels: Mapping[str, tuple[str, str]] = field(default_factory=dict, hash=False)

    def mode(self, direction: Direction) -> Mode:
        return self.ingress_mode if direction == "ingress" else self.egress_mode


@dataclass(frozen=True)
class GenerationRequest:
    scope: Scope
    rows: tuple[CommunicationRow, ...] = ()
    draft: Draft = field(default_factory=Draft)
    dns: DNSTarget | None = field(default_factory=DNSTarget)
    window_start: datetime | None = None
    window_end: datetime | None = None


# ---------------------------------------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------------------------------------

WarningCode = Literal[
    "namespace-unlabelled", "peer-unlabelled", "unsupported-protocol", "invalid-peer", "unknown-addresses",
    "peer-hidden",
]


@dataclass(frozen=True)
class GenerationWarning:
    code: WarningCode
    message: str
    row_index: int | None = None
    row_key: str | None = None
    namespace: str | None = None


@dataclass(frozen=True)
class GenerationResult:
    scope: Scope
    policy: dict[str, Any]
    warnings: tuple[GenerationWarning, ...] = ()
    # Indexes (into the request's rows) of included rows that the policy could not express.
    omitted_rows: tuple[int, ...] = ()

    @property
    def name(self) -> str:
        return str(self.policy["metadata"]["name"])


# ---------------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------------

_NAME_LIMIT = 63


def policy_name(kind: str, name: str) -> str:
    """``netsec-<kind>-<name>`` as a DNS-1123 label; too long -> truncated plus a stable short hash."""
    raw = f"netsec-{kind.lower()}-{name.lower()}"
    clean = re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9-]+", "-", raw)).strip("-")
    if len(clean) <= _NAME_LIMIT:
        return clean
    # The hash is of the raw text, so two long names that truncate alike still differ.
    digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
    return f"{clean[: _NAME_LIMIT - 9].rstrip('-')}-{digest}"


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _timestamp(moment: datetime) -> str:
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


# A port set: "ALL" (no ports field) or a frozenset of (protocol, port, end_port or 0).
_ALL = "ALL"
_PortKey = tuple[str, int, int]
_PortSet = frozenset[_PortKey] | str


def _union(a: _PortSet | None, b: _PortSet) -> _PortSet:
    if a is None:
        return b
    if a == _ALL or b == _ALL:
        return _ALL
    assert isinstance(a, frozenset) and isinstance(b, frozenset)
    return a | b


def _port_sort_key(key: _PortKey) -> tuple[int, int, str]:
    protocol, port, end = key
    return (port, end, protocol)


def _ports_list(ports: frozenset[_PortKey]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for protocol, port, end in sorted(ports, key=_port_sort_key):
        entry: dict[str, Any] = {"port": port}
        if end:
            entry["endPort"] = end
        entry["protocol"] = protocol
        out.append(entry)
    return out


class _DirectionRules:
    """Accumulates peer -> port set for one direction, then merges peers that share a port set."""

    def __init__(self) -> None:
        self._peers: dict[str, tuple[dict[str, Any], _PortSet]] = {}

    def add(self, peer: dict[str, Any], ports: _PortSet) -> None:
        key = _canonical(peer)
        previous = self._peers.get(key)
        self._peers[key] = (peer, _union(previous[1] if previous else None, ports))

    def rules(self, peers_field: str) -> list[dict[str, Any]]:
        groups: dict[_PortSet, list[str]] = defaultdict(list)
        for key, (_peer, ports) in self._peers.items():
            groups[ports].append(key)

        def group_order(ports: _PortSet) -> tuple[int, list[tuple[int, int, str]]]:
            if ports == _ALL:
                return (0, [])
            assert isinstance(ports, frozenset)
            return (1, sorted(_port_sort_key(p) for p in ports))

        out: list[dict[str, Any]] = []
        for ports in sorted(groups, key=group_order):
            rule: dict[str, Any] = {peers_field: [self._peers[k][0] for k in sorted(groups[ports])]}
            if ports != _ALL:
                assert isinstance(ports, frozenset)
                rule["ports"] = _ports_list(ports)
            out.append(rule)
        return out


# ---------------------------------------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------------------------------------


def covered_by_dns_rule(dns: DNSTarget | None, row: CommunicationRow) -> bool:
    """An observed lookup to the cluster DNS pods needs no rule of its own: the DNS rule, written whenever
    egress is restricted, admits it."""
    peer = row.peer
    if dns is None or row.direction != "egress" or not isinstance(peer, WorkloadPeer):
        return False
    if peer.namespace != dns.namespace or row.port != 53 or row.protocol not in ("UDP", "TCP"):
        return False
    return all(peer.pod_labels.get(k) == v for k, v in dns.pod_labels.items())


class _Generator:
    def __init__(self, request: GenerationRequest) -> None:
        self.request = request
        self.scope = request.scope
        self.warnings: list[GenerationWarning] = []
        self.omitted: set[int] = set()

    def warn(self, code: WarningCode, message: str, index: int | None, row: CommunicationRow | None, **kw: Any) -> None:
        self.warnings.append(GenerationWarning(code, message, row_index=index, row_key=row.key if row else None, **kw))
        if index is not None and row is not None and row.included:
            self.omitted.add(index)

    def pod_selector(self) -> dict[str, Any]:
        if self.scope.selector.is_empty:
            raise GenerationError(
                f"{self.scope} has no usable label to select its pods ({self.scope.selector_problem}); "
                "no policy generated"
            )
        return self.scope.selector.to_dict()

    def peers_for_row(self, index: int, row: CommunicationRow) -> list[dict[str, Any]]:
        """The ``from``/``to`` entries that allow the row's peer (none, with a warning, when it cannot be)."""
        peer = row.peer
        if isinstance(peer, AddressPeer):
            return self.address_peers(index, row, peer)
        if isinstance(peer, OpaquePeer):
            self.warn("peer-hidden", "a peer in a namespace you may not see is left out of this policy; someone "
                      "who may see it has to generate the policy that is applied", index, row)
            return []
        if peer.selector.is_empty:
            self.warn("peer-unlabelled", f"{peer} has no usable label to select its pods", index, row)
            return []
        pods = peer.selector.to_dict()
        if peer.namespace == self.scope.namespace:
            return [{"podSelector": pods}]
        ns_selector = self.namespace_selector(peer.namespace, peer.namespace_labels)
        if ns_selector is None:
            self.warn(
                "namespace-unlabelled",
                f"you need to assign labels to namespace {peer.namespace} (or choose one of its labels) "
                f"to allow {peer}",
                index,
                row,
                namespace=peer.namespace,
            )
            return []
        # One peer with both selectors: pods with these labels IN that namespace (AND, not OR).
        return [{"namespaceSelector": {"matchLabels": ns_selector}, "podSelector": pods}]

    def address_peers(self, index: int, row: CommunicationRow, peer: AddressPeer) -> list[dict[str, Any]]:
        if peer.service and not peer.cidrs:
            self.warn("unknown-addresses", f"{peer} are unknown, so it cannot be allowed: import the cluster's "
                      "EndpointSlices (kubectl get endpointslices -A)", index, row)
            return []
        blocks = []
        for text in peer.cidrs or (peer.ip,):
            try:
                network = ipaddress.ip_network(text.strip(), strict=False)
            except ValueError:
                self.warn("invalid-peer", f"not an IP address or CIDR: {text!r}", index, row)
                return []
            blocks.append({"ipBlock": {"cidr": str(network)}})
        return blocks

    def namespace_selector(self, namespace: str, labels: Mapping[str, str]) -> dict[str, str] | None:
        if labels.get(NAMESPACE_NAME_LABEL) == namespace:
            return {NAMESPACE_NAME_LABEL: namespace}
        chosen = self.request.draft.namespace_labels.get(namespace)
        if chosen:
            return {chosen[0]: chosen[1]}
        return None

    def manual_rule(self, manual: ManualRule) -> tuple[dict[str, Any], _PortSet] | None:
        """A manual CIDR rule as (ipBlock peer, port set); a malformed one is warned about and skipped."""
        try:
            network = ipaddress.ip_network(manual.cidr.strip(), strict=False)
        except ValueError:
            self.warn("invalid-peer", f"manual {manual.direction} rule: not a CIDR: {manual.cidr!r}", None, None)
            return None
        for p in manual.ports:
            end = p.end_port if p.end_port is not None else p.port
            if p.protocol not in PROTOCOLS or not 1 <= p.port <= end <= 65535:
                self.warn(
                    "unsupported-protocol",
                    f"manual {manual.direction} rule {network}: {p.protocol} port {p.port}"
                    f"{f'-{p.end_port}' if p.end_port else ''} cannot be expressed",
                    None,
                    None,
                )
                return None
        ports: _PortSet = (
            frozenset(
                (p.protocol, p.port, p.end_port if p.end_port and p.end_port != p.port else 0) for p in manual.ports
            )
            if manual.ports
            else _ALL
        )
        return {"ipBlock": {"cidr": str(network)}}, ports

    def direction_rules(
        self, direction: Direction, indexed_rows: Sequence[tuple[int, CommunicationRow]]
    ) -> list[dict[str, Any]]:
        """The rules for one direction (an empty list isolates it and admits nothing)."""
        mode = self.request.draft.mode(direction)
        peers_field = "from" if direction == "ingress" else "to"
        if mode == "allow-all":
            return [{}]
        acc = _DirectionRules()
        if mode == "custom":
            for index, row in indexed_rows:
                if not row.included or row.node_local:  # the pod's own node is always allowed: no rule
                    continue
                if row.protocol not in PROTOCOLS or row.port is None or not 1 <= row.port <= 65535:
                    self.warn(
                        "unsupported-protocol",
                        f"{row.protocol} port {row.port} cannot be expressed in a NetworkPolicy",
                        index,
                        row,
                    )
                    continue
                if covered_by_dns_rule(self.request.dns, row):
                    continue
                for peer in self.peers_for_row(index, row):
                    acc.add(peer, frozenset({(row.protocol, row.port, 0)}))
        elif mode == "allow-namespace":
            acc.add({"podSelector": {}}, _ALL)
        if mode != "block-all":
            for manual in self.request.draft.manual_rules:
                if manual.direction != direction:
                    continue
                rule = self.manual_rule(manual)
                if rule is not None:
                    acc.add(*rule)
        if direction == "egress" and self.request.dns is not None:
            dns = self.request.dns
            acc.add(
                {
                    "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: dns.namespace}},
                    "podSelector": {"matchLabels": dict(sorted(dns.pod_labels.items()))},
                },
                frozenset({("UDP", 53, 0), ("TCP", 53, 0)}),
            )
        return acc.rules(peers_field)

    def run(self) -> GenerationResult:
        scope = self.scope
        for direction in ("ingress", "egress"):
            if self.request.draft.mode(direction) not in MODES:
                raise GenerationError(f"{scope}: unknown {direction} mode {self.request.draft.mode(direction)!r}")
        pod_selector = self.pod_selector()
        by_direction: dict[str, list[tuple[int, CommunicationRow]]] = defaultdict(list)
        for index, row in enumerate(self.request.rows):
            by_direction[row.direction].append((index, row))
        ingress = self.direction_rules("ingress", by_direction["ingress"])
        egress = self.direction_rules("egress", by_direction["egress"])

        annotations = {ANNOTATION_SCOPE: f"{scope.cluster}/{scope.namespace}/{scope.kind}/{scope.name}"}
        if self.request.window_start is not None:
            annotations[ANNOTATION_OBSERVED_FROM] = _timestamp(self.request.window_start)
        if self.request.window_end is not None:
            annotations[ANNOTATION_OBSERVED_TO] = _timestamp(self.request.window_end)
        spec: dict[str, Any] = {"podSelector": pod_selector, "policyTypes": ["Ingress", "Egress"]}
        # A direction with no rules stays listed in policyTypes: that is what isolates it (block all).
        if ingress:
            spec["ingress"] = ingress
        if egress:
            spec["egress"] = egress
        policy = {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {
                "name": policy_name(scope.kind, scope.name),
                "namespace": scope.namespace,
                "labels": {MANAGED_BY_LABEL: MANAGED_BY},
                "annotations": dict(sorted(annotations.items())),
            },
            "spec": spec,
        }
        # Warnings are reported in a stable order whatever the order of the rows.
        warnings = sorted(
            self.warnings,
            key=lambda w: (
                w.code,
                w.namespace or "",
                w.message,
                w.row_index if w.row_index is not None else -1,
            ),
        )
        return GenerationResult(
            scope=scope, policy=policy, warnings=tuple(warnings), omitted_rows=tuple(sorted(self.omitted))
        )


def generate_policy(request: GenerationRequest) -> GenerationResult:
    """One NetworkPolicy for the request's scope; ``GenerationError`` when none can be made."""
    return _Generator(request).run()


def generate_policies(
    requests: Iterable[GenerationRequest],
) -> tuple[list[GenerationResult], list[tuple[Scope, GenerationError]]]:
    """Generate for many scopes; a scope that fails is reported and the others still generated."""
    results: list[GenerationResult] = []
    failures: list[tuple[Scope, GenerationError]] = []
    for request in requests:
        try:
            results.append(generate_policy(request))
        except GenerationError as exc:
            failures.append((request.scope, exc))
    results.sort(key=lambda r: (r.policy["metadata"]["namespace"], r.name))
    return results, failures
