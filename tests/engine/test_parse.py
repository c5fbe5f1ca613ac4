"""Manifest parsing: defaults resolved, invalid input rejected with the policy and field named."""

from __future__ import annotations

from typing import Any

import pytest

from policies.engine import LabelSelector, PolicyError, Requirement, parse_policy
from policies.engine.model import IPBlock, Peer, PortSpec, Rule
from tests.engine.helpers import netpol


def test_parses_the_example_policy() -> None:
    policy = parse_policy(
        netpol(
            "shop",
            "cart-ingress",
            podSelector={"matchLabels": {"app": "cart"}},
            policyTypes=["Ingress"],
            ingress=[
                {
                    "from": [{"podSelector": {"matchLabels": {"app": "frontend"}}}],
                    "ports": [{"port": "grpc", "protocol": "TCP"}],
                }
            ],
        )
    )
    assert policy.key == "shop/cart-ingress"
    assert policy.pod_selector == LabelSelector(match_labels=(("app", "cart"),))
    assert policy.ingress == (
        Rule(
            peers=(Peer(pod_selector=LabelSelector(match_labels=(("app", "frontend"),))),),
            ports=(PortSpec("TCP", "grpc"),),
        ),
    )


def test_defaults_protocol_namespace_and_keeps_empty_selectors_distinct_from_absent() -> None:
    manifest = {
        "metadata": {"name": "x"},
        "spec": {"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {}}], "ports": [{"port": 80}]}]},
    }
    policy = parse_policy(manifest)
    assert policy.namespace == "default"
    rule = policy.ingress[0]
    assert rule.ports == (PortSpec("TCP", 80),)
    assert rule.peers == (Peer(pod_selector=None, namespace_selector=LabelSelector()),)


def test_selector_order_does_not_matter() -> None:
    a = parse_policy(
        netpol(
            "n",
            podSelector={
                "matchExpressions": [
                    {"key": "b", "operator": "In", "values": ["2", "1"]},
                    {"key": "a", "operator": "Exists"},
                ]
            },
        )
    )
    b = parse_policy(
        netpol(
            "n",
            podSelector={
                "matchExpressions": [
                    {"key": "a", "operator": "Exists"},
                    {"key": "b", "operator": "In", "values": ["1", "2"]},
                ]
            },
        )
    )
    assert a.pod_selector == b.pod_selector
    assert a.pod_selector.match_expressions[1] == Requirement("b", "In", ("1", "2"))


def test_ip_block_host_bits_are_tolerated_and_normalised() -> None:
    policy = parse_policy(
        netpol("n", ingress=[{"from": [{"ipBlock": {"cidr": "10.1.2.3/8", "except": ["10.1.0.0/16"]}}]}])
    )
    assert policy.ingress[0].peers[0].ip_block == IPBlock("10.0.0.0/8", ("10.1.0.0/16",))


def test_end_port_range() -> None:
    policy = parse_policy(netpol("n", egress=[{"ports": [{"port": 8000, "endPort": 9000, "protocol": "UDP"}]}]))
    assert policy.egress[0].ports == (PortSpec("UDP", 8000, 9000),)


def _error(spec_or_manifest: dict[str, Any]) -> str:
    manifest = (
        spec_or_manifest if "metadata" in spec_or_manifest else netpol("shop", "cart-ingress", **spec_or_manifest)
    )
    with pytest.raises(PolicyError) as info:
        parse_policy(manifest)
    return str(info.value)


def test_error_names_policy_and_field_path() -> None:
    peers = [{"podSelector": {}}, {"ipBlock": {"cidr": "10.0.0.0/33"}}]
    assert _error({"ingress": [{"from": peers}]}) == (
        "policy shop/cart-ingress: spec.ingress[0].from[1].ipBlock.cidr: not a CIDR: '10.0.0.0/33'"
    )


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"policyTypes": ["Ingress", "Sideways"]}, "spec.policyTypes[1]: must be Ingress or Egress, got 'Sideways'"),
        ({"policyTypes": "Ingress"}, "spec.policyTypes: expected a list"),
        ({"policyTypes": ["Egress", "Egress"]}, "spec.policyTypes[1]: duplicate Egress"),
        ({"ingress": {"from": []}}, "spec.ingress: expected a list of rules"),
        ({"ingress": [{"form": []}]}, "spec.ingress[0].form: unknown field"),
        ({"egress": [{"to": [{}]}]}, "spec.egress[0].to[0]: must specify podSelector, namespaceSelector or ipBlock"),
        (
            {"egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]}]},
            "spec.egress[0].to[0]: ipBlock cannot be combined with podSelector or namespaceSelector",
        ),
        ({"egress": [{"to": [{"ipBlock": {}}]}]}, "spec.egress[0].to[0].ipBlock.cidr: required"),
        (
            {"egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.1"}}]}]},
            "spec.egress[0].to[0].ipBlock.cidr: not a CIDR: '10.0.0.1'",
        ),
        (
            {"egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["11.0.0.0/16"]}}]}]},
            "spec.egress[0].to[0].ipBlock.except[0]: must be a strict subset of 10.0.0.0/8: '11.0.0.0/16'",
        ),
        (
            {"egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.0.0.0/8"]}}]}]},
            "spec.egress[0].to[0].ipBlock.except[0]: must be a strict subset of 10.0.0.0/8: '10.0.0.0/8'",
        ),
        (
            {"ingress": [{"ports": [{"port": 0}]}]},
            "spec.ingress[0].ports[0].port: must be a port number 1-65535, got 0",
        ),
        (
            {"ingress": [{"ports": [{"port": 70000}]}]},
            "spec.ingress[0].ports[0].port: must be a port number 1-65535, got 70000",
        ),
        (
            {"ingress": [{"ports": [{"port": "Bad_Name"}]}]},
            "spec.ingress[0].ports[0].port: not a port number or a valid port name: 'Bad_Name'",
        ),
        (
            {"ingress": [{"ports": [{"port": "8080"}]}]},
            "spec.ingress[0].ports[0].port: not a port number or a valid port name: '8080'",
        ),
        (
            {"ingress": [{"ports": [{"port": 80, "protocol": "ICMP"}]}]},
            "spec.ingress[0].ports[0].protocol: must be one of TCP, UDP, SCTP, got 'ICMP'",
        ),
        (
            {"ingress": [{"ports": [{"port": 80, "protocol": "tcp"}]}]},
            "spec.ingress[0].ports[0].protocol: must be one of TCP, UDP, SCTP, got 'tcp'",
        ),
        (
            {"ingress": [{"ports": [{"port": 90, "endPort": 80}]}]},
            "spec.ingress[0].ports[0].endPort: must be >= port (90), got 80",
        ),
        (
            {"ingress": [{"ports": [{"port": "http", "endPort": 80}]}]},
            "spec.ingress[0].ports[0].endPort: not allowed with a named port",
        ),
        ({"ingress": [{"ports": [{"endPort": 80}]}]}, "spec.ingress[0].ports[0].endPort: requires port"),
        ({"podSelector": {"matchLabel": {"a": "b"}}}, "spec.podSelector.matchLabel: unknown field"),
        (
            {"podSelector": {"matchLabels": {"a": 1}}},
            "spec.podSelector.matchLabels.a: label value must be a string, got 1",
        ),
        (
            {"podSelector": {"matchLabels": {"bad key!": "x"}}},
            "spec.podSelector.matchLabels.bad key!: invalid label key: 'bad key!'",
        ),
        (
            {"podSelector": {"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["x"]}]}},
            "spec.podSelector.matchExpressions[0].operator: "
            "must be one of In, NotIn, Exists, DoesNotExist, got 'Equals'",
        ),
        (
            {"podSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}},
            "spec.podSelector.matchExpressions[0].values: must be non-empty for operator In",
        ),
        (
            {"podSelector": {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}},
            "spec.podSelector.matchExpressions[0].values: must be empty for operator Exists",
        ),
        ({"podSelektor": {}}, "spec.podSelektor: unknown field"),
    ],
)
def test_invalid_specs(spec: dict[str, Any], expected: str) -> None:
    assert _error(spec) == f"policy shop/cart-ingress: {expected}"


def test_missing_pod_selector() -> None:
    manifest = {"metadata": {"name": "p", "namespace": "shop"}, "spec": {"ingress": []}}
    assert _error(manifest) == "policy shop/p: spec.podSelector: required (use {} to select every pod of the namespace)"


def test_invalid_envelope() -> None:
    assert (
        _error({"metadata": {"namespace": "shop"}, "spec": {"podSelector": {}}})
        == "policy shop/<unnamed>: metadata.name: required"
    )
    assert (
        _error({"metadata": {"name": "p", "namespace": "Shop!"}, "spec": {}})
        == "policy Shop!/p: metadata.namespace: not a namespace name: 'Shop!'"
    )
    assert (
        _error({"kind": "Service", "metadata": {"name": "p"}, "spec": {}})
        == "policy default/p: kind: expected NetworkPolicy, got 'Service'"
    )
    assert (
        _error({"apiVersion": "extensions/v1beta1", "metadata": {"name": "p"}, "spec": {}})
        == "policy default/p: apiVersion: expected networking.k8s.io/v1, got 'extensions/v1beta1'"
    )
    assert _error({"metadata": {"name": "p"}, "spec": []}) == "policy default/p: spec: required mapping"
    with pytest.raises(PolicyError, match=r"^policy <unnamed>: expected a NetworkPolicy mapping, got list$"):
        parse_policy([])
