"""Scopes, peers and communication rows: the one row type, from aggregated communications to verdicts.

A row is what a user sees in the ingress or egress table of a workload and decides on: a peer, a port,
and what was observed over the span. The adapter makes rows from the database; the draft decides
``included``; generation writes the included ones into the policy; verdicts say what the draft plus
the applied policies do to each. ``CommunicationRow.key`` is a row's identity everywhere (draft
decisions, warnings, verdicts, the page): two rows never share it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from policies.engine.labels import no_selector_reason, stable_selector
from policies.engine.model import ContainerPort, Direction, LabelSelector, frozen_labels


class _PodOwner:
    """What a Scope and a WorkloadPeer share: how their pods are selected, and how they print.

    ``pod_labels`` are the labels the pods carry (the pod template's, or the labels the known pods share);
    ``own_selector`` is the controller's own selector (a Service's for a Service scope), None when there
    is none. ``selector`` is derived from both by the one rule of ``labels.stable_selector``.
    """

    kind: str
    namespace: str
    name: str
    pod_labels: Mapping[str, str]
    own_selector: LabelSelector | None
    namespace_labels: Mapping[str, str]
    selector: LabelSelector

    def __post_init__(self) -> None:
        object.__setattr__(self, "pod_labels", frozen_labels(self.pod_labels))
        object.__setattr__(self, "namespace_labels", frozen_labels(self.namespace_labels))
        object.__setattr__(self, "selector", stable_selector(self.kind, self.name, self.own_selector, self.pod_labels))

    @property
    def selector_problem(self) -> str:
        """Why no selector could be made ('' when there is one)."""
        return "" if not self.selector.is_empty else no_selector_reason(self.kind, self.pod_labels, self.own_selector)

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


@dataclass(frozen=True)
class Scope(_PodOwner):
    """What a policy protects: a workload, or a Service's backends.

    ``ports`` and ``ips`` describe its pods (named ports resolve against them in verdicts). The ids are
    the caller's handles on its records (the database's), carried along and never read by the engine.
    """

    cluster: str
    namespace: str
    kind: str
    name: str
    pod_labels: Mapping[str, str] = field(default_factory=dict, hash=False)
    namespace_labels: Mapping[str, str] = field(default_factory=dict, hash=False)
    own_selector: LabelSelector | None = None
    ports: tuple[ContainerPort, ...] = ()
    ips: tuple[str, ...] = ()
    cluster_id: int | None = field(default=None, compare=False)
    namespace_id: int | None = field(default=None, compare=False)
    workload_ids: tuple[int, ...] = field(default=(), compare=False)
    selector: LabelSelector = field(init=False, repr=False, compare=False)

    def as_json(self) -> dict[str, str]:
        return {"cluster": self.cluster, "namespace": self.namespace, "kind": self.kind, "name": self.name}


@dataclass(frozen=True)
class WorkloadPeer(_PodOwner):
    """A peer that is a pod owner: selected by its namespace and its stable selector."""

    namespace: str
    kind: str
    name: str
    pod_labels: Mapping[str, str] = field(default_factory=dict, hash=False)
    namespace_labels: Mapping[str, str] = field(default_factory=dict, hash=False)
    own_selector: LabelSelector | None = None
    ports: tuple[ContainerPort, ...] = ()
    ips: tuple[str, ...] = ()
    selector: LabelSelector = field(init=False, repr=False, compare=False)

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"

    def as_json(self) -> dict[str, object]:
        return {"kind": self.kind, "namespace": self.namespace, "name": self.name}


@dataclass(frozen=True)
class AddressPeer:
    """An endpoint without Kubernetes metadata: an unresolved IP, or the addresses behind a Service
    without a selector (the Kubernetes API server behind ``default/kubernetes``, an external database).

    ``cidrs`` are what a rule allowing it writes as ipBlocks: the alias's range, or every address of the
    Service (any of them may take the next connection); empty, the address itself. ``service`` is that
    Service, ``namespace/name``; a Service peer whose addresses are unknown has no ``cidrs`` and cannot be
    written. ``ip`` is the address observed (for a Service, the lowest), which verdicts judge.
    """

    ip: str
    category: str = ""  # as the data layer classifies it (Internal, External, Aliased, Unknown, APIServer)
    alias: str | None = None
    cidrs: tuple[str, ...] = ()
    dns_names: tuple[str, ...] = ()
    service: str = ""
    allowed: bool = False  # an admin allowed its alias: included by default

    @property
    def key(self) -> str:
        return f"service/{self.service}" if self.service else f"ip/{self.ip}"

    def as_json(self) -> dict[str, object]:
        """The unresolved-IP peer of the command-line JSON contract (design §6), plus the addresses a
        Service peer stands for."""
        out: dict[str, object] = {"ip": self.ip, "category": self.category, "alias": self.alias,
                                  "dns_names": list(self.dns_names)}
        if self.service:
            out["service"] = self.service
            out["addresses"] = [cidr.split("/")[0] for cidr in self.cidrs]
        return out

    def __str__(self) -> str:
        return f"the addresses of Service {self.service}" if self.service else self.ip


@dataclass(frozen=True)
class OpaquePeer:
    """A workload in a namespace the acting user may not see (design §9): no name, no labels. ``token``
    tells such peers apart without saying who they are."""

    token: str

    @property
    def key(self) -> str:
        return f"other/{self.token}"

    def as_json(self) -> dict[str, object]:
        return {"other_namespace": True, "token": self.token}

    def __str__(self) -> str:
        return "a workload in another namespace"


RowPeer = WorkloadPeer | AddressPeer | OpaquePeer


@dataclass(frozen=True)
class CommunicationRow:
    """One observed (peer, port, protocol) of a scope in one direction, and the draft's decision.

    For ingress the peer is the source, for egress the destination. Attempts denied in the cluster and
    traffic from the pod's own node are rows of their own beside the connections that worked.
    """

    direction: Direction
    peer: RowPeer
    port: int | None  # None for a protocol without ports (ICMP): observed, but not expressible
    protocol: str = "TCP"
    included: bool = True
    denied_in_cluster: bool = False
    node_local: bool = False  # from the destination pod's own node (kubelet probes): always allowed
    connections: int = 0
    first_seen: datetime | None = field(default=None, compare=False)
    last_seen: datetime | None = field(default=None, compare=False)
    # Connections per equal slice of the span, oldest first (at most 48): when over the span it happened.
    activity: Sequence[int] = field(default=(), compare=False)

    @property
    def key(self) -> str:
        """``direction:peer:port/protocol`` and the flags that split rows (``:denied``, ``:node-local``)."""
        port = "any" if self.port is None else self.port
        flags = (":denied" if self.denied_in_cluster else "") + (":node-local" if self.node_local else "")
        return f"{self.direction}:{self.peer.key}:{port}/{self.protocol}{flags}"

    def as_json(self) -> dict[str, object]:
        """A row of ``show_communications --format json`` (design §6), plus ``always_allowed``."""
        return {
            "peer": self.peer.as_json(),
            "port": self.port,
            "protocol": self.protocol,
            "connections": self.connections,
            "first_seen": self.first_seen.isoformat() if self.first_seen else None,
            "last_seen": self.last_seen.isoformat() if self.last_seen else None,
            "denied_in_cluster": self.denied_in_cluster,
            "included": self.included,
            "always_allowed": self.node_local,
        }


# direction:peer:port/protocol[:denied][:node-local]; an IPv6 peer has colons of its own, hence the anchors.
_ROW_KEY = re.compile(
    r"^(?P<direction>ingress|egress):(?P<peer>.+)(?P<tail>:(?:\d+|any)/\w+(?::denied)?(?::node-local)?)$"
)


def split_row_key(key: str) -> tuple[str, str, str] | None:
    """(direction, peer key, ':port/protocol' and flags) of a ``CommunicationRow.key``; None if it is not one."""
    match = _ROW_KEY.match(key)
    return (match["direction"], match["peer"], match["tail"]) if match else None


def peer_namespace(peer_key: str) -> str | None:
    """The namespace a peer key names (a workload's ``Kind/namespace/name``, a Service's
    ``service/namespace/name``); None for an address or an opaque peer."""
    parts = peer_key.split("/")
    if len(parts) != 3 or parts[0] in ("ip", "other"):
        return None
    return parts[1]
