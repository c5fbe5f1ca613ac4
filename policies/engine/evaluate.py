"""Exact ``networking.k8s.io/v1`` evaluation of connections against a set of NetworkPolicies.

A pod is isolated for a direction when at least one policy in its namespace selects it and lists that
policy type; an isolated pod admits a connection only when some rule of some such policy admits the
peer and the port (policies are a union). A connection needs the source's egress AND the
destination's ingress. A bare IP that is no known pod has no policies.

Everything that does not depend on the probe is worked out once, so that a probe only walks the rules
of the few policies isolating its two pods, with set look-ups of small ints:

- each rule's ``ports`` list is interned to an int; per (port, protocol) the set of lists whose numeric
  entries admit it is worked out once (``PortIndex``), per pod the lists its named ports satisfy;
- each rule's peers list is interned to an int and filed under the selectors it names (``PeerIndex``);
  per namespace, the lists admitting every pod of it (namespaceSelector, empty selectors), and per
  (namespace, labels) the lists admitting such a pod by its podSelector, are worked out once;
  ipBlocks are integer masks;
- per pod (pods are immutable during a run): the policies isolating it per direction, found through an
  index of each namespace's policies by the labels their podSelectors require and shared by the pods
  of one namespace with the same labels;
- a side's verdict is interned per (policies isolating it, policies admitting), so equal verdicts are
  one object.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence

from policies.engine.model import (
    Connection,
    Direction,
    Endpoint,
    IPBlock,
    LabelSelector,
    Namespace,
    Peer,
    Pod,
    Policy,
    PortSpec,
    ProbeResult,
    Rule,
    SideVerdict,
    probe_result,
)
from policies.engine.selectors import SelectorIndex

# An address as (IP version, integer value): membership in a CIDR is then two integer operations.
Address = tuple[int, int]
PortKey = tuple[int, str]  # (port, protocol) of a connection

_NOT_ISOLATED = SideVerdict("not-isolated")
_NO_IDS: frozenset[int] = frozenset()
_NO_NAMED: dict[PortKey, frozenset[int]] = {}


def address_of(text: str) -> Address:
    """``(version, int)`` of an IP address text; ``ValueError`` when it is not one."""
    address = ipaddress.ip_address(text)
    return (address.version, int(address))


# ---------------------------------------------------------------------------------------------------------
# Ports
# ---------------------------------------------------------------------------------------------------------


class PortIndex:
    """Interns rules' ``ports`` lists; answers "which lists admit (port, protocol)" once per pair.

    A numeric entry admits by number; a named entry admits the port that the destination pod's container
    port of that name and protocol has (``named``), and nothing on a destination that lacks it.
    """

    _MEMO_LIMIT = 4096  # distinct (port, protocol) answers kept; a probe set over every port stays bounded

    def __init__(self) -> None:
        self._ids: dict[tuple[PortSpec, ...], int] = {}
        self._every: dict[str, set[int]] = {}  # protocol -> lists with an entry for every port of it
        self._singles: dict[PortKey, set[int]] = {}
        self._ranges: dict[str, list[tuple[int, int, int]]] = {}  # protocol -> (low, high, list id)
        self._names: dict[tuple[str, str], set[int]] = {}  # (name, protocol) -> list ids
        self.memo: dict[PortKey, frozenset[int]] = {}

    def intern(self, specs: tuple[PortSpec, ...]) -> int:
        pid = self._ids.get(specs)
        if pid is not None:
            return pid
        pid = self._ids[specs] = len(self._ids)
        self.memo.clear()
        for spec in specs:
            if spec.port is None:
                self._every.setdefault(spec.protocol, set()).add(pid)
            elif isinstance(spec.port, str):
                self._names.setdefault((spec.port, spec.protocol), set()).add(pid)
            elif spec.end_port is None or spec.end_port == spec.port:
                self._singles.setdefault((spec.port, spec.protocol), set()).add(pid)
            else:
                self._ranges.setdefault(spec.protocol, []).append((spec.port, spec.end_port, pid))
        return pid

    def by_number(self, key: PortKey) -> frozenset[int]:
        """The lists whose numeric entries admit ``key``."""
        hit = self.memo.get(key)
        if hit is None:
            port, protocol = key
            ids = set(self._every.get(protocol, ()))
            ids.update(self._singles.get(key, ()))
            ids.update(pid for low, high, pid in self._ranges.get(protocol, ()) if low <= port <= high)
            if len(self.memo) >= self._MEMO_LIMIT:
                self.memo.clear()  # in place: the evaluator holds this dict
            hit = self.memo[key] = frozenset(ids) if ids else _NO_IDS
        return hit

    def by_name(self, pod: Pod) -> dict[PortKey, frozenset[int]]:
        """Per (port, protocol) of ``pod``'s named container ports, the lists whose named entries admit it."""
        out: dict[PortKey, set[int]] = {}
        for cp in pod.ports:
            if cp.name:
                ids = self._names.get((cp.name, cp.protocol))
                if ids:
                    out.setdefault((cp.port, cp.protocol), set()).update(ids)
        return {key: frozenset(ids) for key, ids in out.items()} if out else _NO_NAMED


# ---------------------------------------------------------------------------------------------------------
# Peers
# ---------------------------------------------------------------------------------------------------------


class Block:
    """An ipBlock as integers: ``contains`` is a mask and compare per CIDR."""

    __slots__ = ("excepted", "mask", "network", "version")

    def __init__(self, block: IPBlock) -> None:
        self.version, self.network, self.mask = _cidr(block.network)
        self.excepted = tuple(_cidr(net)[1:] for net in block.excepted)

    def contains(self, address: Address) -> bool:
        # Membership across families is simply False, so 0.0.0.0/0 never covers an IPv6 address.
        version, value = address
        if version != self.version or value & self.mask != self.network:
            return False
        return not any(value & mask == network for network, mask in self.excepted)


def _cidr(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> tuple[int, int, int]:
    return network.version, int(network.network_address), int(network.netmask)


def admits_address(blocks: Sequence[Block], address: Address | None) -> bool:
    # ipBlock is by address, whoever holds it (a pod's IP included).
    return address is not None and any(block.contains(address) for block in blocks)


class Selectors:
    """Interns distinct selectors to small ints; ``matching`` finds the ids matching a label map."""

    def __init__(self) -> None:
        self._ids: dict[LabelSelector, int] = {}
        self._index: SelectorIndex[int] | None = None

    def intern(self, selector: LabelSelector) -> int:
        sid = self._ids.get(selector)
        if sid is None:
            sid = self._ids[selector] = len(self._ids)
            self._index = None
        return sid

    def matching(self, labels: Mapping[str, str]) -> frozenset[int]:
        if self._index is None:
            self._index = SelectorIndex((sid, selector) for selector, sid in self._ids.items())
        return frozenset(self._index.matching(labels)) or _NO_IDS


class PeerIndex:
    """Interns rules' non-empty peer lists; files each under the selectors it names.

    An absent namespaceSelector means the policy's own namespace; an empty selector matches everything
    (the empty namespaceSelector every namespace, declared or not); selectors only ever match pods.
    What admits a pod is split in two: ``namespace_part`` (lists admitting every pod of a namespace) and
    ``pod_part`` (lists admitting it by a podSelector), so that the big part is shared per namespace.
    """

    def __init__(self) -> None:
        self.pod_selectors = Selectors()
        self.ns_selectors = Selectors()
        self.count = 0
        self._everywhere: set[int] = set()  # namespaceSelector {} (and podSelector {} or none)
        self._own_all: dict[str, set[int]] = {}  # podSelector {} alone, by policy namespace
        self._in_namespaces: dict[int, set[int]] = {}  # namespaceSelector alone
        self._own_pods: dict[tuple[str, int], set[int]] = {}  # podSelector alone
        self._pods_anywhere: dict[int, set[int]] = {}  # namespaceSelector {} and a podSelector
        self._pairs: dict[int, dict[int, set[int]]] = {}  # pod sid -> ns sid -> lists: both selectors
        self.blocks: list[tuple[Block, ...]] = []

    def intern(self, namespace: str, peers: Sequence[Peer]) -> int:
        """A new id for the ``from``/``to`` list of a rule of a policy of ``namespace``."""
        lid = self.count
        self.count += 1
        blocks: list[Block] = []
        for peer in peers:
            if peer.ip_block is not None:
                blocks.append(Block(peer.ip_block))
                continue
            pods = peer.pod_selector
            pod_sid = -1 if pods is None or pods.is_empty else self.pod_selectors.intern(pods)
            spaces = peer.namespace_selector
            if spaces is None:
                if pod_sid < 0:
                    self._own_all.setdefault(namespace, set()).add(lid)
                else:
                    self._own_pods.setdefault((namespace, pod_sid), set()).add(lid)
            elif spaces.is_empty:
                if pod_sid < 0:
                    self._everywhere.add(lid)
                else:
                    self._pods_anywhere.setdefault(pod_sid, set()).add(lid)
            else:
                ns_sid = self.ns_selectors.intern(spaces)
                if pod_sid < 0:
                    self._in_namespaces.setdefault(ns_sid, set()).add(lid)
                else:
                    self._pairs.setdefault(pod_sid, {}).setdefault(ns_sid, set()).add(lid)
        self.blocks.append(tuple(blocks))
        return lid

    def namespace_part(self, namespace: str, ns_sids: frozenset[int]) -> frozenset[int]:
        ids = set(self._everywhere)
        ids.update(self._own_all.get(namespace, ()))
        for ns_sid in ns_sids:
            ids.update(self._in_namespaces.get(ns_sid, ()))
        return frozenset(ids) or _NO_IDS

    def pod_part(self, namespace: str, ns_sids: frozenset[int], pod_sids: frozenset[int]) -> frozenset[int]:
        ids: set[int] = set()
        for pod_sid in pod_sids:
            ids.update(self._own_pods.get((namespace, pod_sid), ()))
            ids.update(self._pods_anywhere.get(pod_sid, ()))
            by_ns = self._pairs.get(pod_sid)
            if by_ns:
                for ns_sid in ns_sids:
                    ids.update(by_ns.get(ns_sid, ()))
        return frozenset(ids) or _NO_IDS


# ---------------------------------------------------------------------------------------------------------
# Policies per pod
# ---------------------------------------------------------------------------------------------------------

# (ports list id or -1 for every port, peers list id or -1 for every peer, the list's ipBlocks)
CompiledRule = tuple[int, int, tuple[Block, ...]]


class Plan:
    """The policies isolating one set of pods for one direction, with their compiled rules."""

    __slots__ = ("keys", "policies", "rules", "verdicts")

    def __init__(self, selected: Sequence[tuple[Policy, tuple[CompiledRule, ...]]]) -> None:
        self.policies = tuple(policy for policy, _ in selected)
        self.keys = tuple(policy.key for policy in self.policies)
        # A policy admitting the probe sets its bit in the mask the verdict is interned by; its rules are
        # flattened, each with its policy's bit, so one loop walks them all.
        self.rules = tuple((1 << i, *rule) for i, (_, rules) in enumerate(selected) for rule in rules)
        self.verdicts: dict[int, SideVerdict] = {}

    def verdict(self, mask: int) -> SideVerdict:
        verdict = self.verdicts.get(mask)
        if verdict is None:
            admitted = tuple(key for i, key in enumerate(self.keys) if mask >> i & 1)
            verdict = SideVerdict("allowed" if mask else "denied", isolated_by=self.keys, admitted_by=admitted)
            self.verdicts[mask] = verdict
        return verdict


class LabelClass:
    """What the pods of one namespace with one label set share."""

    __slots__ = ("egress", "ingress", "peers")

    def __init__(self, ingress: Plan | None, egress: Plan | None, peers: frozenset[int]) -> None:
        self.ingress = ingress
        self.egress = egress
        self.peers = peers  # peer lists admitting such a pod by a podSelector


class PodInfo:
    """What the evaluator knows of one pod, worked out once."""

    __slots__ = ("address", "egress", "ingress", "named", "namespace_peers", "pod", "pod_peers")

    def __init__(
        self, pod: Pod, label_class: LabelClass, namespace_peers: frozenset[int], named: dict[PortKey, frozenset[int]],
        address: Address | None,
    ) -> None:
        self.pod = pod
        self.ingress = label_class.ingress
        self.egress = label_class.egress
        self.pod_peers = label_class.peers
        self.namespace_peers = namespace_peers  # peer lists admitting every pod of its namespace
        self.named = named  # (port, protocol) of a named container port -> ports lists admitting it
        self.address = address  # its only address; None when it has none, or several (chosen per probe)

    def plan(self, direction: Direction) -> Plan | None:
        return self.ingress if direction == "ingress" else self.egress

    def admitted_by(self, peers: int) -> bool:
        """Whether the peers list ``peers`` admits this pod by selectors (ipBlocks aside)."""
        return peers in self.namespace_peers or peers in self.pod_peers


class Evaluator:
    """Evaluates connections over one cluster state and one set of policies (both fixed at creation)."""

    def __init__(
        self,
        namespaces: Iterable[Namespace] = (),
        pods: Iterable[Pod] = (),
        policies: Iterable[Policy] = (),
    ) -> None:
        self._namespaces: dict[str, Namespace] = {ns.name: ns for ns in namespaces}
        self._pods_by_ip: dict[Address, Pod] = {}
        # Parsing address text dominates otherwise; pods and peers repeat, so parse each text once.
        self._addresses: dict[str, Address] = {}
        pod_list = list(pods)
        for pod in pod_list:
            self.add_pod(pod)
        self.policies: tuple[Policy, ...] = tuple(policies)

        self.ports = PortIndex()
        self._port_memo = self.ports.memo  # read directly per probe; by_number fills it
        self.peers = PeerIndex()
        # Per namespace and direction: the isolating policies, indexed by the labels their podSelectors need.
        grouped: dict[tuple[str, Direction], list[tuple[Policy, tuple[CompiledRule, ...]]]] = {}
        for policy in self.policies:
            for direction in ("ingress", "egress"):
                if policy.isolates(direction):
                    rules = tuple(self._compile(policy.namespace, rule) for rule in policy.rules(direction))
                    grouped.setdefault((policy.namespace, direction), []).append((policy, rules))
        self._policy_index: dict[tuple[str, Direction], SelectorIndex[tuple[Policy, tuple[CompiledRule, ...]]]] = {
            key: SelectorIndex((entry, entry[0].pod_selector) for entry in entries) for key, entries in grouped.items()
        }
        self._classes: dict[tuple[str, frozenset[tuple[str, str]]], LabelClass] = {}
        self._namespace_parts: dict[str, tuple[frozenset[int], frozenset[int]]] = {}
        self._infos: dict[int, PodInfo] = {}
        for pod in pod_list:
            self.info(pod)

    # --- cluster state ------------------------------------------------------------------------------

    def add_pod(self, pod: Pod) -> None:
        for ip in pod.ips:
            self._pods_by_ip[self.address(ip)] = pod

    # --- index --------------------------------------------------------------------------------------

    def _compile(self, namespace: str, rule: Rule) -> CompiledRule:
        ports = self.ports.intern(rule.ports) if rule.ports else -1
        if not rule.peers:
            return (ports, -1, ())
        peers = self.peers.intern(namespace, rule.peers)
        return (ports, peers, self.peers.blocks[peers])

    def _namespace_part(self, namespace: str) -> tuple[frozenset[int], frozenset[int]]:
        """(namespaceSelectors matching ``namespace``, peer lists admitting every pod of it)."""
        part = self._namespace_parts.get(namespace)
        if part is None:
            declared = self._namespaces.get(namespace)
            ns_sids = self.peers.ns_selectors.matching(declared.labels if declared is not None else {})
            part = self._namespace_parts[namespace] = (ns_sids, self.peers.namespace_part(namespace, ns_sids))
        return part

    def _label_class(self, pod: Pod) -> LabelClass:
        key = (pod.namespace, pod.label_set)
        label_class = self._classes.get(key)
        if label_class is None:
            plans: list[Plan | None] = []
            for direction in ("ingress", "egress"):
                # Only the pod's own namespace's policies can select it.
                index = self._policy_index.get((pod.namespace, direction))
                selected = index.matching(pod.labels) if index is not None else []
                plans.append(Plan(selected) if selected else None)
            ns_sids = self._namespace_part(pod.namespace)[0]
            pod_sids = self.peers.pod_selectors.matching(pod.labels)
            peers = self.peers.pod_part(pod.namespace, ns_sids, pod_sids)
            label_class = self._classes[key] = LabelClass(plans[0], plans[1], peers)
        return label_class

    def info(self, pod: Pod) -> PodInfo:
        """What is known of ``pod`` (worked out on first sight)."""
        # Keyed by identity (hashing a Pod hashes its ports); the entry holds the pod, so the id stays its.
        info = self._infos.get(id(pod))
        if info is None or info.pod is not pod:
            address = self.address(pod.ips[0]) if len(pod.ips) == 1 else None
            info = PodInfo(
                pod, self._label_class(pod), self._namespace_part(pod.namespace)[1], self.ports.by_name(pod), address
            )
            self._infos[id(pod)] = info
        return info

    def selecting(self, pod: Pod, direction: Direction) -> tuple[Policy, ...]:
        plan = self.info(pod).plan(direction)
        return plan.policies if plan is not None else ()

    # --- evaluation ---------------------------------------------------------------------------------

    def address(self, text: str) -> Address:
        """``(version, int)`` of an address text, parsed once."""
        address = self._addresses.get(text)
        if address is None:
            address = self._addresses[text] = address_of(text)
        return address

    def endpoint_address(self, endpoint: Endpoint, other: Endpoint) -> Address | None:
        """The address an endpoint uses: its own IP if given; for a pod, of the other side's family when
        known (dual-stack), else its first."""
        if endpoint.ip is not None:
            return self.address(endpoint.ip)
        pod = endpoint.pod
        assert pod is not None
        if not pod.ips:
            return None
        first = self.address(pod.ips[0])
        if len(pod.ips) == 1:
            return first
        other_ip = other.ip if other.ip is not None else (other.pod.ips[0] if other.pod and other.pod.ips else None)
        if other_ip is not None:
            wanted = self.address(other_ip)[0]
            for ip in pod.ips:
                address = self.address(ip)
                if address[0] == wanted:
                    return address
        return first

    def _endpoint_info(self, endpoint: Endpoint) -> PodInfo | None:
        pod = endpoint.pod
        if pod is None:
            # An IP that belongs to a known pod is that pod; any other IP has no policies.
            pod = self._pods_by_ip.get(self.address(endpoint.ip))  # type: ignore[arg-type]
            if pod is None:
                return None
        return self.info(pod)

    def evaluate(self, connection: Connection) -> ProbeResult:
        source_end = connection.source
        destination_end = connection.destination
        infos = self._infos
        # _endpoint_info inlined for the common case: both ends given as pods already seen (a bare IP has
        # no pod: nothing is filed under id(None), so it takes the slow path too).
        pod = source_end.pod
        source = infos.get(id(pod))
        if source is None or source.pod is not pod:
            source = self._endpoint_info(source_end)
        pod = destination_end.pod
        destination = infos.get(id(pod))
        if destination is None or destination.pod is not pod:
            destination = self._endpoint_info(destination_end)

        egress_plan = source.egress if source is not None else None
        ingress_plan = destination.ingress if destination is not None else None
        if egress_plan is None and ingress_plan is None:
            return probe_result(connection, _NOT_ISOLATED, _NOT_ISOLATED)
        key = (connection.port, connection.protocol)
        numbered = self._port_memo.get(key)
        if numbered is None:
            numbered = self.ports.by_number(key)
        # Named ports resolve against the destination pod, for egress too.
        named = destination.named.get(key, _NO_IDS) if destination is not None else _NO_IDS
        # The two sides below are one loop written twice (a call per side costs as much as the loop).
        if egress_plan is None:
            egress = _NOT_ISOLATED
        else:
            if destination is not None:
                namespace_peers, pod_peers = destination.namespace_peers, destination.pod_peers
            else:
                namespace_peers = pod_peers = _NO_IDS
            mask = 0
            for bit, ports, peers, blocks in egress_plan.rules:
                # Ports and peers are ANDed within a rule; entries of each list are ORed; empty lists match all.
                if mask & bit or (ports >= 0 and ports not in numbered and ports not in named):
                    continue
                if (
                    peers < 0
                    or peers in namespace_peers
                    or peers in pod_peers
                    or (blocks and self._blocks_admit(blocks, destination, destination_end, source_end))
                ):
                    mask |= bit
            egress = egress_plan.verdicts.get(mask) or egress_plan.verdict(mask)
        if ingress_plan is None:
            ingress = _NOT_ISOLATED
        else:
            if source is not None:
                namespace_peers, pod_peers = source.namespace_peers, source.pod_peers
            else:
                namespace_peers = pod_peers = _NO_IDS
            mask = 0
            for bit, ports, peers, blocks in ingress_plan.rules:
                if mask & bit or (ports >= 0 and ports not in numbered and ports not in named):
                    continue
                if (
                    peers < 0
                    or peers in namespace_peers
                    or peers in pod_peers
                    or (blocks and self._blocks_admit(blocks, source, source_end, destination_end))
                ):
                    mask |= bit
            ingress = ingress_plan.verdicts.get(mask) or ingress_plan.verdict(mask)
        return probe_result(connection, egress, ingress)

    def _blocks_admit(
        self, blocks: tuple[Block, ...], remote: PodInfo | None, remote_end: Endpoint, other_end: Endpoint
    ) -> bool:
        # A pod's only address, unless the endpoint names the address it uses.
        address = remote.address if remote is not None and remote_end.ip is None else None
        if address is None:
            address = self.endpoint_address(remote_end, other_end)
        return admits_address(blocks, address)

