"""Property: a generated policy, evaluated by our own engine over the communications it came from,
allows every included row and denies every excluded one (per the draft's modes), validates against
the Kubernetes schema, and is byte-identical whatever the order of its input rows.

Clusters are drawn so that every peer is identifiable (a unique ``app`` label per workload, disjoint
address ranges for IPs, CIDRs and manual rules); rows to the DNS pods are ignored because the DNS
rule admits them whatever the draft says.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import kubernetes_validate
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies.engine import (
    AddressPeer,
    CommunicationRow,
    Connection,
    ContainerPort,
    Draft,
    Endpoint,
    Evaluator,
    GenerationRequest,
    LabelSelector,
    ManualRule,
    Namespace,
    Pod,
    PortRange,
    Scope,
    WorkloadPeer,
    generate_policy,
    parse_policy,
    to_yaml,
)
from policies.engine.generate import MODES, NAMESPACE_NAME_LABEL

DNS_NAMESPACE = "kube-system"
CHOSEN_KEY = "netsec.test/ns"
PORTS = (53, 80, 443, 5432, 8080)
PROTOCOLS = ("TCP", "UDP", "SCTP")
# Custom rows are the interesting mode; the general rules are drawn too, less often.
modes = st.sampled_from(["custom", "custom", "custom", *MODES[1:]])
CIDRS = tuple(str(net) for net in ipaddress.ip_network("198.51.100.0/24").subnets(new_prefix=28))


@dataclass(frozen=True)
class Workload:
    peer: WorkloadPeer
    pods: tuple[Pod, ...]


@dataclass(frozen=True)
class World:
    namespaces: tuple[Namespace, ...]
    workloads: tuple[Workload, ...]
    dns: Workload
    scope_workload: Workload
    scope: Scope
    rows: tuple[CommunicationRow, ...]
    draft: Draft


@st.composite
def worlds(draw: st.DrawFn) -> World:
    ns_names = draw(st.lists(st.sampled_from(["alpha", "beta", "gamma", "delta"]), min_size=1, max_size=4, unique=True))
    namespaces: dict[str, Namespace] = {DNS_NAMESPACE: Namespace(DNS_NAMESPACE, {NAMESPACE_NAME_LABEL: DNS_NAMESPACE})}
    chosen: dict[str, tuple[str, str]] = {}
    for name in ns_names:
        if draw(st.booleans()) or draw(st.booleans()):
            labels = {NAMESPACE_NAME_LABEL: name, "team": draw(st.sampled_from(["a", "b"]))}
        else:
            # An old cluster's namespace without the name label; the user may have chosen a label for it.
            labels = {CHOSEN_KEY: name}
            if draw(st.booleans()):
                chosen[name] = (CHOSEN_KEY, name)
        namespaces[name] = Namespace(name, labels)

    pod_counter = iter(range(1, 10_000))
    workloads: list[Workload] = []
    for i in range(draw(st.integers(1, 6))):
        namespace = draw(st.sampled_from(ns_names))
        # The controller's own selector; with a controller-made label in it, it must not be used.
        selector = {} if draw(st.integers(0, 9)) == 0 else {"app": f"w{i}"}
        if draw(st.booleans()):
            selector["pod-template-hash"] = f"h{i}"
        # The labels its pods carry; a workload without an app label has no usable one at all.
        template = {**selector, "version": draw(st.sampled_from(["v1", "v2"]))} if "app" in selector else dict(selector)
        container_ports = tuple(
            ContainerPort(f"p{port}", port, draw(st.sampled_from(PROTOCOLS)))
            for port in draw(st.lists(st.sampled_from(PORTS), max_size=2, unique=True))
        )
        pods = tuple(
            Pod(namespace, f"w{i}-{j}", template, (f"10.244.{i}.{next(pod_counter)}",), container_ports)
            for j in range(draw(st.integers(1, 2)))
        )
        own = LabelSelector(tuple(sorted(selector.items()))) if selector else None
        peer = WorkloadPeer(namespace, "Deployment", f"w{i}", template, namespaces[namespace].labels, own)
        workloads.append(Workload(peer, pods))
    dns_pod = Pod(DNS_NAMESPACE, "coredns-0", {"k8s-app": "kube-dns"}, ("10.96.0.10",))
    dns = Workload(
        WorkloadPeer(DNS_NAMESPACE, "Deployment", "coredns", {"k8s-app": "kube-dns"}, namespaces[DNS_NAMESPACE].labels),
        (dns_pod,),
    )

    usable = [w for w in workloads if not w.peer.selector.is_empty]
    if not usable:
        workloads[0] = Workload(
            WorkloadPeer(
                workloads[0].peer.namespace, "Deployment", "w0", {"app": "w0"}, workloads[0].peer.namespace_labels
            ),
            tuple(Pod(p.namespace, p.name, {"app": "w0"}, p.ips, p.ports) for p in workloads[0].pods),
        )
        usable = [workloads[0]]
    scope_workload = draw(st.sampled_from(usable))
    sp = scope_workload.peer
    scope = Scope("test", sp.namespace, sp.kind, sp.name, sp.pod_labels, sp.namespace_labels, sp.own_selector)

    workload_peers = st.sampled_from([w.peer for w in [*workloads, dns]])
    # Weighted towards workloads: their selectors are where generation can go wrong.
    peers = st.one_of(
        workload_peers,
        workload_peers,
        workload_peers,
        workload_peers,
        st.builds(AddressPeer, st.integers(1, 60).map(lambda n: f"203.0.113.{n}")),
        st.builds(AddressPeer, st.integers(1, 60).map(lambda n: f"2001:db8::{n:x}")),
        st.sampled_from(CIDRS).map(lambda c: AddressPeer(str(ipaddress.ip_network(c)[1]), cidrs=(c,))),
    )
    raw_rows = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["ingress", "egress"]),
                peers,
                st.sampled_from(PORTS),
                st.sampled_from(PROTOCOLS),
                st.booleans(),
            ),
            max_size=20,
        )
    )
    rows: list[CommunicationRow] = []
    seen: set[tuple[str, object, int, str]] = set()
    for direction, peer, port, protocol, included in raw_rows:
        # One decision per (direction, peer, port, protocol), as the communications table has.
        key = (direction, peer, port, protocol)
        if key not in seen:
            seen.add(key)
            rows.append(CommunicationRow(direction, peer, port, protocol, included))

    manual = tuple(
        ManualRule(
            direction,
            f"192.0.2.{16 * block}/28",
            tuple(PortRange(p) for p in ports),
        )
        for direction, block, ports in draw(
            st.lists(
                st.tuples(
                    st.sampled_from(["ingress", "egress"]),
                    st.integers(0, 15),
                    st.lists(st.sampled_from(PORTS), max_size=2),
                ),
                max_size=2,
            )
        )
    )
    draft = Draft(
        ingress_mode=draw(modes),
        egress_mode=draw(modes),
        manual_rules=manual,
        namespace_labels=chosen,
    )
    return World(tuple(namespaces.values()), tuple(workloads), dns, scope_workload, scope, tuple(rows), draft)


def expressible(world: World, row: CommunicationRow) -> bool:
    """Whether an included row can be written into the policy (else it is warned about and left out)."""
    peer = row.peer
    if not isinstance(peer, WorkloadPeer):
        return True
    if peer.selector.is_empty:
        return False
    return (
        peer.namespace == world.scope.namespace
        or peer.namespace_labels.get(NAMESPACE_NAME_LABEL) == peer.namespace
        or peer.namespace in world.draft.namespace_labels
    )


def expected_allowed(world: World, direction: str, peer: object, port: int, protocol: str) -> bool:
    mode = world.draft.mode(direction)  # type: ignore[arg-type]
    if mode == "allow-all":
        return True
    if mode == "block-all":
        return False
    if mode == "allow-namespace":
        return isinstance(peer, WorkloadPeer) and peer.namespace == world.scope.namespace
    return any(
        row.included and expressible(world, row)
        for row in world.rows
        if (row.direction, row.peer, row.port, row.protocol) == (direction, peer, port, protocol)
    )


def endpoints(world: World, peer: object) -> list[Endpoint]:
    if isinstance(peer, WorkloadPeer):
        workload = next(w for w in (*world.workloads, world.dns) if w.peer == peer)
        return [Endpoint.of_pod(p) for p in workload.pods]
    assert isinstance(peer, AddressPeer)
    if not peer.cidrs:
        return [Endpoint.of_ip(peer.ip)]
    network = ipaddress.ip_network(peer.cidrs[0])
    return [Endpoint.of_ip(str(network.network_address)), Endpoint.of_ip(str(network.broadcast_address))]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds(), st.randoms(use_true_random=False))
def test_generated_policy_round_trips(world: World, rng: object) -> None:
    result = generate_policy(GenerationRequest(world.scope, world.rows, world.draft))
    kubernetes_validate.validate(result.policy, "1.31", strict=True)

    shuffled = list(world.rows)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    again = generate_policy(GenerationRequest(world.scope, tuple(shuffled), world.draft))
    assert to_yaml([again.policy]) == to_yaml([result.policy])
    # libyaml's emitter (used where installed) writes what PyYAML's Python emitter writes, to the byte; and
    # our own writer what both write.
    assert to_yaml([result.policy], dumper=yaml.SafeDumper) == to_yaml([result.policy], dumper=yaml.CSafeDumper)
    assert to_yaml([result.policy]) == to_yaml([result.policy], dumper=yaml.CSafeDumper)

    assert result.omitted_rows == tuple(
        i
        for i, row in enumerate(world.rows)
        if row.included and world.draft.mode(row.direction) == "custom" and not expressible(world, row)
    )

    pods = [p for w in (*world.workloads, world.dns) for p in w.pods]
    evaluator = Evaluator(world.namespaces, pods, [parse_policy(result.policy)])
    scope_pod = Endpoint.of_pod(world.scope_workload.pods[0])
    # Every row, and beyond the rows every workload and a never-seen address on every port: least
    # privilege means exactly the included rows pass (per the modes), nothing else.
    never_seen = AddressPeer("203.0.113.250")
    seen = [*(w.peer for w in world.workloads), *(row.peer for row in world.rows)]
    candidates = list(dict.fromkeys([*seen, never_seen]))
    for direction in ("ingress", "egress"):
        for peer in candidates:
            if direction == "egress" and peer == world.dns.peer:
                continue  # the DNS rule admits these whatever the rows say
            for port in PORTS:
                for protocol in PROTOCOLS:
                    expected = expected_allowed(world, direction, peer, port, protocol)
                    for peer_end in endpoints(world, peer):
                        if direction == "ingress":
                            verdict = evaluator.evaluate(Connection(peer_end, scope_pod, port, protocol)).ingress
                        else:
                            verdict = evaluator.evaluate(Connection(scope_pod, peer_end, port, protocol)).egress
                        assert verdict.status != "not-isolated"  # the scope is always isolated both ways
                        assert verdict.allows is expected, (direction, peer, port, protocol, peer_end, result.policy)
