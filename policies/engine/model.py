"""Typed, immutable values the engine works on: cluster objects, parsed policies, connections, verdicts.

Everything here is plain data. Labels are stored as read-only mappings (so a frozen object cannot be
changed behind the caches' back) and are left out of hashing, because a dict cannot be hashed and the
identity of a pod or namespace is its name.
"""

from __future__ import annotations

import copyreg
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

Direction = Literal["ingress", "egress"]
DIRECTIONS: tuple[Direction, ...] = ("ingress", "egress")
PolicyType = Literal["Ingress", "Egress"]
POLICY_TYPE: dict[Direction, PolicyType] = {"ingress": "Ingress", "egress": "Egress"}
PROTOCOLS: tuple[str, ...] = ("TCP", "UDP", "SCTP")
SideStatus = Literal["allowed", "denied", "not-isolated"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class EngineError(ValueError):
    """Base of every error the engine reports about its input."""


class PolicyError(EngineError):
    """A NetworkPolicy manifest that does not parse; the message names the policy and the field path."""

    def __init__(self, policy: str, path: str, message: str) -> None:
        self.policy = policy
        self.path = path
        super().__init__(f"policy {policy}: {path}: {message}" if path else f"policy {policy}: {message}")


class CaseError(EngineError):
    """A malformed probe case; the message starts with the field path (``probes[2].port``)."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


class GenerationError(EngineError):
    """No policy can be generated for a scope (for instance, its pods have no usable label)."""


def frozen_labels(labels: Mapping[str, str] | None) -> Mapping[str, str]:
    """A read-only copy, so a value held by a frozen dataclass (and by caches keyed on it) cannot change."""
    return MappingProxyType(dict(labels or {}))


def _pickle_frozen(labels: MappingProxyType) -> tuple:
    return frozen_labels, (dict(labels),)


# Engine values pickle (a cache keeps them between requests): read-only mappings as read-only copies.
copyreg.pickle(MappingProxyType, _pickle_frozen)


# ---------------------------------------------------------------------------------------------------------
# Cluster objects
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ContainerPort:
    """A port a container declares; named ports in policies resolve against these."""

    name: str | None
    port: int
    protocol: str = "TCP"


@dataclass(frozen=True)
class Namespace:
    name: str
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)
    label_set: frozenset[tuple[str, str]] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", frozen_labels(self.labels))
        object.__setattr__(self, "label_set", frozenset(self.labels.items()))


@dataclass(frozen=True)
class Pod:
    namespace: str
    name: str
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)
    ips: tuple[str, ...] = ()
    ports: tuple[ContainerPort, ...] = ()
    # Precomputed once: the label set is the key of the selector-match cache (frozenset caches its hash).
    label_set: frozenset[tuple[str, str]] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", frozen_labels(self.labels))
        object.__setattr__(self, "label_set", frozenset(self.labels.items()))

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


# ---------------------------------------------------------------------------------------------------------
# Parsed NetworkPolicy
# ---------------------------------------------------------------------------------------------------------

OPERATORS: tuple[str, ...] = ("In", "NotIn", "Exists", "DoesNotExist")


@dataclass(frozen=True)
class Requirement:
    """One ``matchExpressions`` entry; values are kept sorted so equal selectors compare equal."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.operator == "In":
            return labels.get(self.key) in self.values
        if self.operator == "NotIn":
            # A pod without the key is "not in" the set: Kubernetes' own selector semantics.
            return self.key not in labels or labels[self.key] not in self.values
        if self.operator == "Exists":
            return self.key in labels
        return self.key not in labels  # DoesNotExist

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"key": self.key, "operator": self.operator}
        if self.values:
            out["values"] = list(self.values)
        return out


@dataclass(frozen=True)
class LabelSelector:
    """``matchLabels`` AND every ``matchExpressions`` requirement; the empty selector matches everything."""

    match_labels: tuple[tuple[str, str], ...] = ()
    match_expressions: tuple[Requirement, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.match_labels and not self.match_expressions

    def matches(self, labels: Mapping[str, str]) -> bool:
        for key, value in self.match_labels:
            if labels.get(key) != value:
                return False
        return all(req.matches(labels) for req in self.match_expressions)

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {}
        if self.match_labels:
            out["matchLabels"] = dict(self.match_labels)
        if self.match_expressions:
            out["matchExpressions"] = [req.to_dict() for req in self.match_expressions]
        return out


@dataclass(frozen=True)
class IPBlock:
    cidr: str
    except_: tuple[str, ...] = ()
    network: IPNetwork = field(init=False, repr=False, compare=False, hash=False)
    excepted: tuple[IPNetwork, ...] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "network", ipaddress.ip_network(self.cidr, strict=False))
        object.__setattr__(self, "excepted", tuple(ipaddress.ip_network(c, strict=False) for c in self.except_))

    def contains(self, address: IPAddress) -> bool:
        # Membership across families is simply False, so 0.0.0.0/0 never covers an IPv6 address.
        if address not in self.network:
            return False
        return not any(address in net for net in self.excepted)


@dataclass(frozen=True)
class Peer:
    """One ``from``/``to`` entry. A ``None`` selector is an absent field, unlike an empty one."""

    pod_selector: LabelSelector | None = None
    namespace_selector: LabelSelector | None = None
    ip_block: IPBlock | None = None


@dataclass(frozen=True)
class PortSpec:
    """One ``ports`` entry: ``port`` None = every port of the protocol; a str is a named port."""

    protocol: str = "TCP"
    port: int | str | None = None
    end_port: int | None = None


@dataclass(frozen=True)
class Rule:
    """An ingress or egress rule. Empty ``peers`` admits every peer, empty ``ports`` every port."""

    peers: tuple[Peer, ...] = ()
    ports: tuple[PortSpec, ...] = ()


@dataclass(frozen=True)
class Policy:
    name: str
    namespace: str
    pod_selector: LabelSelector
    policy_types: tuple[PolicyType, ...]
    ingress: tuple[Rule, ...] = ()
    egress: tuple[Rule, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def isolates(self, direction: Direction) -> bool:
        return POLICY_TYPE[direction] in self.policy_types

    def selects(self, namespace: str, labels: Mapping[str, str]) -> bool:
        """Whether the policy applies to a pod of that namespace with these labels."""
        return namespace == self.namespace and self.pod_selector.matches(labels)

    def rules(self, direction: Direction) -> tuple[Rule, ...]:
        # Rules of a direction that policyTypes leaves out are ignored, as the API specifies.
        if not self.isolates(direction):
            return ()
        return self.ingress if direction == "ingress" else self.egress


# ---------------------------------------------------------------------------------------------------------
# Connections and verdicts
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """A pod (optionally with the address it uses) or a bare IP."""

    pod: Pod | None = None
    ip: str | None = None

    def __post_init__(self) -> None:
        if self.pod is None and self.ip is None:
            raise ValueError("an endpoint is a pod or an IP")

    @classmethod
    def of_pod(cls, pod: Pod, ip: str | None = None) -> Endpoint:
        return cls(pod=pod, ip=ip)

    @classmethod
    def of_ip(cls, ip: str) -> Endpoint:
        return cls(ip=str(ipaddress.ip_address(ip)))

    def __str__(self) -> str:
        return str(self.pod) if self.pod is not None else str(self.ip)


@dataclass(frozen=True)
class Connection:
    """A connection from ``source`` (the initiator) to ``destination`` on a destination port."""

    source: Endpoint
    destination: Endpoint
    port: int
    protocol: str = "TCP"


@dataclass(frozen=True)
class SideVerdict:
    """What one side decides. ``isolated_by``: every policy selecting the pod for this direction;
    ``admitted_by``: those of them with a rule admitting the connection."""

    status: SideStatus
    isolated_by: tuple[str, ...] = ()
    admitted_by: tuple[str, ...] = ()
    # Whether this side lets the connection through (not "denied"): worked out once, read per probe.
    allows: bool = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "allows", self.status != "denied")

    @property
    def policies(self) -> tuple[str, ...]:
        """The policies to show: who admitted it, or (for a denial) who isolated the pod."""
        return self.admitted_by if self.status == "allowed" else self.isolated_by


@dataclass(frozen=True)
class ProbeResult:
    connection: Connection
    egress: SideVerdict
    ingress: SideVerdict

    @property
    def allowed(self) -> bool:
        return self.egress.allows and self.ingress.allows


_new = object.__new__


def probe_result(connection: Connection, egress: SideVerdict, ingress: SideVerdict) -> ProbeResult:
    """``ProbeResult(connection, egress, ingress)``, equal to it, built without the frozen dataclass's
    per-field ``object.__setattr__`` calls (a tenth of a probe's time otherwise). It fills the instance
    dict directly, so ProbeResult must stay a plain (not slotted) dataclass without ``__post_init__``."""
    result = _new(ProbeResult)
    fields = result.__dict__
    fields["connection"] = connection
    fields["egress"] = egress
    fields["ingress"] = ingress
    return result
