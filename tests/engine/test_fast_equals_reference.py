"""Property: the engine's indexed, memoised evaluation gives exactly the answers of the straightforward
reference (``tests/engine/reference.py``): every verdict, with the policies isolating and admitting, on
random clusters and policies that use every feature (all selector operators, empty and absent selectors,
namespaceSelector with and without podSelector, ipBlock with except over IPv4 and IPv6, named ports,
endPort ranges, policyTypes defaulting, dual-stack pods, bare IPs that are and are not pods). Full
connectivity (``policies.engine.connectivity``) gives the same answer as probing every pair.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies.engine import Connection, ContainerPort, Endpoint, Evaluator, Namespace, Pod, parse_policy
from policies.engine.connectivity import connectivity, transpose
from policies.engine.model import ProbeResult, SideVerdict, probe_result
from tests.engine.reference import Reference

KEYS = ("app", "tier", "team")
VALUES = ("a", "b", "c")
NAMESPACES = ("n1", "n2", "n3")
# Pods and policies crowd into n1 and n2, so that policies select pods and peers are in both namespaces.
POD_NAMESPACES = ("n1", "n1", "n2", "n2", "n3", "undeclared")
POLICY_NAMESPACES = ("n1", "n1", "n2", "n2", "n3")
PORT_NAMES = ("http", "dns", "grpc")
NUMBERS = (53, 80, 8080, 9090)
PROTOCOLS = ("TCP", "UDP", "SCTP")
PROBE_PORTS = (1, 53, 80, 8000, 8050, 8100, 8101, 8080, 9090)
EXTERNAL_IPS = ("192.0.2.5", "10.9.9.9", "2001:db8::5", "fd00::99")
CIDRS = (
    {"cidr": "10.0.0.0/8"},
    {"cidr": "10.0.0.0/16", "except": ["10.0.0.0/30", "10.0.0.8/29"]},
    {"cidr": "0.0.0.0/0", "except": ["10.0.1.0/24"]},
    {"cidr": "192.0.2.0/24"},
    {"cidr": "fd00::/64", "except": ["fd00::/126"]},
    {"cidr": "::/0"},
)

labels = st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), max_size=3)
requirement = st.one_of(
    st.fixed_dictionaries(
        {
            "key": st.sampled_from(KEYS),
            "operator": st.sampled_from(["In", "NotIn"]),
            "values": st.lists(st.sampled_from(VALUES), min_size=1, max_size=2, unique=True),
        }
    ),
    st.fixed_dictionaries({"key": st.sampled_from(KEYS), "operator": st.sampled_from(["Exists", "DoesNotExist"])}),
)
# Empty selectors are drawn often, so that policies isolate pods and peers admit some of them.
selector = st.one_of(
    st.just({}),
    st.fixed_dictionaries({"matchLabels": st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES[:2]),
                                                          min_size=1, max_size=1)}),
    st.fixed_dictionaries({"matchExpressions": st.lists(requirement, min_size=1, max_size=1)}),
    st.fixed_dictionaries({}, optional={"matchLabels": labels, "matchExpressions": st.lists(requirement, max_size=2)}),
)
labels_of_pods = st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES[:2]), max_size=3)
peer = st.one_of(
    st.fixed_dictionaries({"ipBlock": st.sampled_from(CIDRS)}),
    st.fixed_dictionaries({"podSelector": selector}),
    st.fixed_dictionaries({"namespaceSelector": selector}),
    st.fixed_dictionaries({"namespaceSelector": selector, "podSelector": selector}),
)
port_entry = st.one_of(
    st.fixed_dictionaries({"port": st.sampled_from(NUMBERS)}, optional={"protocol": st.sampled_from(PROTOCOLS)}),
    st.fixed_dictionaries({"port": st.sampled_from(PORT_NAMES)}, optional={"protocol": st.sampled_from(PROTOCOLS)}),
    st.fixed_dictionaries({"protocol": st.sampled_from(PROTOCOLS)}),
    st.fixed_dictionaries(
        {"port": st.just(8000), "endPort": st.sampled_from([8000, 8050, 8100])},
        optional={"protocol": st.sampled_from(PROTOCOLS)},
    ),
)


def rules(peers_field: str) -> st.SearchStrategy[list[Any]]:
    # An absent or empty list admits everything: drawn too, but less often than real ones.
    with_peers = st.fixed_dictionaries(
        {peers_field: st.lists(peer, min_size=1, max_size=3)},
        optional={"ports": st.lists(port_entry, min_size=1, max_size=3)},
    )
    with_ports = st.fixed_dictionaries(
        {"ports": st.lists(port_entry, min_size=1, max_size=3)}, optional={peers_field: st.lists(peer, max_size=3)}
    )
    rule = st.one_of(with_peers, with_peers, with_peers, with_ports, with_ports, st.sampled_from([None, {}]))
    return st.lists(rule, min_size=1, max_size=3)


@st.composite
def policies(draw: st.DrawFn, index: int) -> dict[str, Any]:
    spec: dict[str, Any] = {"podSelector": draw(selector)}
    types = draw(st.sampled_from([None, ["Ingress"], ["Egress"], ["Ingress", "Egress"], ["Egress", "Ingress"]]))
    if types is not None:
        spec["policyTypes"] = types
    if draw(st.integers(0, 3)):
        spec["ingress"] = draw(rules("from"))
    if draw(st.integers(0, 3)):
        spec["egress"] = draw(rules("to"))
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": f"p{index}", "namespace": draw(st.sampled_from(POLICY_NAMESPACES))},
        "spec": spec,
    }


@st.composite
def clusters(draw: st.DrawFn) -> tuple[list[Namespace], list[Pod], list[Any]]:
    namespaces = [
        Namespace(name, {"kubernetes.io/metadata.name": name, **draw(labels)})
        for name in NAMESPACES
        if draw(st.integers(0, 4))  # now and then a namespace is left undeclared: it has no labels
    ]
    pods = []
    for i in range(draw(st.integers(2, 7))):
        v4, v6 = f"10.0.{i % 2}.{i + 1}", f"fd00::{i + 1}"
        ips = draw(st.sampled_from([(), (v4,), (v6,), (v4, v6), (v6, v4)]))
        ports = tuple(
            ContainerPort(name, number, protocol)
            for name, number, protocol in draw(
                st.lists(
                    st.tuples(st.sampled_from((*PORT_NAMES, None)), st.sampled_from(NUMBERS),
                              st.sampled_from(PROTOCOLS)),
                    max_size=3,
                )
            )
        )
        pods.append(Pod(draw(st.sampled_from(POD_NAMESPACES)), f"pod{i}", draw(labels_of_pods), ips, ports))
    manifests = [draw(policies(i)) for i in range(draw(st.integers(1, 6)))]
    return namespaces, pods, manifests


def endpoints(pods: list[Pod]) -> list[Endpoint]:
    """Every pod; every pod at each of its addresses; its addresses as bare IPs; addresses of no pod."""
    out = [Endpoint.of_pod(pod) for pod in pods]
    out += [Endpoint.of_pod(pod, ip) for pod in pods if len(pod.ips) > 1 for ip in pod.ips]
    out += [Endpoint.of_ip(ip) for pod in pods[:2] for ip in pod.ips]
    out.append(Endpoint.of_pod(pods[0], EXTERNAL_IPS[1]))  # a pod seen at an address it does not list
    return out + [Endpoint.of_ip(ip) for ip in EXTERNAL_IPS]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data(), cluster=clusters())
def test_evaluator_equals_reference(data: st.DataObject, cluster: tuple[list[Namespace], list[Pod], list[Any]]) -> None:
    namespaces, pods, manifests = cluster
    parsed = [parse_policy(m) for m in manifests]
    evaluator = Evaluator(namespaces, pods, parsed)
    reference = Reference(namespaces, pods, parsed)
    for pod in pods:
        for direction in ("ingress", "egress"):
            assert list(evaluator.selecting(pod, direction)) == reference.selecting(pod, direction)
    ends = endpoints(pods)
    # Every pair of endpoints, on a few (port, protocol) pairs (all of them would be slow), mostly ones
    # that a pod's container port has, so that named ports come into play.
    declared = sorted({(cp.port, cp.protocol) for pod in pods for cp in pod.ports})
    any_column = st.tuples(st.sampled_from(PROBE_PORTS), st.sampled_from(PROTOCOLS))
    column = st.one_of(st.sampled_from(declared), st.sampled_from(declared), any_column) if declared else any_column
    columns = data.draw(st.lists(column, min_size=1, max_size=3, unique=True))
    for source in ends:
        for destination in ends:
            for port, protocol in columns:
                connection = Connection(source, destination, port, protocol)
                assert evaluator.evaluate(connection) == reference.evaluate(connection), connection


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(cluster=clusters())
def test_connectivity_equals_probing_every_pair(cluster: tuple[list[Namespace], list[Pod], list[Any]]) -> None:
    namespaces, pods, manifests = cluster
    parsed = [parse_policy(m) for m in manifests]
    columns = [(port, protocol) for port in PROBE_PORTS for protocol in PROTOCOLS]
    result = connectivity(namespaces, pods, parsed, columns)
    reference = Reference(namespaces, pods, parsed)
    for i, source in enumerate(pods):
        for j, destination in enumerate(pods):
            for column in columns:
                expected = reference.evaluate(Connection(Endpoint.of_pod(source), Endpoint.of_pod(destination),
                                                         *column)).allowed
                assert bool(result.destinations(i, column) >> j & 1) is expected, (source, destination, column)
    assert result.count(include_self=True) == sum(1 for _ in result.pairs(include_self=True))


@given(st.integers(0, 70).flatmap(lambda n: st.tuples(st.just(n), st.lists(st.integers(0, 2**n - 1), min_size=n,
                                                                             max_size=n))))
def test_transpose(matrix: tuple[int, list[int]]) -> None:
    n, rows = matrix
    columns = transpose(rows, n)
    assert all(columns[j] >> i & 1 == rows[i] >> j & 1 for i in range(n) for j in range(n))
    assert transpose(columns, n) == rows


def test_fast_probe_result_is_the_dataclass() -> None:
    connection = Connection(Endpoint.of_ip("10.0.0.1"), Endpoint.of_ip("10.0.0.2"), 80)
    egress, ingress = SideVerdict("allowed", ("a/p",), ("a/p",)), SideVerdict("not-isolated")
    fast, slow = probe_result(connection, egress, ingress), ProbeResult(connection, egress, ingress)
    assert fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
    assert fast.allowed and fast.egress is egress and fast.ingress is ingress
