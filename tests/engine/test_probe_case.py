"""The probe-case format: parsing into engine types, and errors that name the field."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from policies.engine import CaseError, load_case, run_case

CASE: dict[str, Any] = {
    "namespaces": [
        {"name": "shop", "labels": {"kubernetes.io/metadata.name": "shop"}},
        {"name": "payments", "labels": {"kubernetes.io/metadata.name": "payments"}},
    ],
    "pods": [
        {"namespace": "shop", "name": "frontend", "labels": {"app": "frontend"}, "ip": "10.244.1.10"},
        {
            "namespace": "shop",
            "name": "cart",
            "labels": {"app": "cart"},
            "ips": ["10.244.1.11", "fd00::11"],
            "ports": [
                {"name": "grpc", "containerPort": 7070, "protocol": "TCP"},
                {"name": "dns", "containerPort": 53, "protocol": "UDP"},
            ],
        },
        {"namespace": "payments", "name": "payment", "labels": {"app": "payment"}, "ip": "10.244.2.20"},
    ],
    "policies": [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "cart-ingress", "namespace": "shop"},
            "spec": {
                "podSelector": {"matchLabels": {"app": "cart"}},
                "ingress": [
                    {"from": [{"podSelector": {"matchLabels": {"app": "frontend"}}}], "ports": [{"port": "grpc"}]}
                ],
            },
        }
    ],
    "probes": [
        {"from": "shop/frontend", "to": "shop/cart", "port": 7070},
        {"from": "payments/payment", "to": "10.244.1.11", "port": 7070, "protocol": "TCP"},
        {"from": "shop/cart", "to": "2001:db8::1", "port": 53, "protocol": "UDP"},
    ],
}


def test_runs_probes_in_order_with_the_documented_shape() -> None:
    assert run_case(load_case(CASE)) == {
        "results": [
            {
                "from": "shop/frontend",
                "to": "shop/cart",
                "port": 7070,
                "protocol": "TCP",
                "allowed": True,
                "egress": "not-isolated",
                "ingress": "allowed",
            },
            {
                "from": "payments/payment",
                "to": "10.244.1.11",
                "port": 7070,
                "protocol": "TCP",
                "allowed": False,
                "egress": "not-isolated",
                "ingress": "denied",
            },
            {
                "from": "shop/cart",
                "to": "2001:db8::1",
                "port": 53,
                "protocol": "UDP",
                "allowed": True,
                "egress": "not-isolated",
                "ingress": "not-isolated",
            },
        ]
    }


def test_named_ports_and_ips_parsed() -> None:
    case = load_case(CASE)
    cart = case.pods[1]
    assert cart.ips == ("10.244.1.11", "fd00::11")
    assert [(p.name, p.port, p.protocol) for p in cart.ports] == [("grpc", 7070, "TCP"), ("dns", 53, "UDP")]


def test_empty_case_is_no_results() -> None:
    assert run_case(load_case({})) == {"results": []}


def broken(path: list[Any], value: Any) -> dict[str, Any]:
    case = copy.deepcopy(CASE)
    target: Any = case
    for step in path[:-1]:
        target = target[step]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return case


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ([], "a probe case is a mapping with namespaces, pods, policies and probes, got list"),
        ({"probe": []}, "probe: unknown field"),
        (broken(["probes", 2, "port"], "53"), "probes[2].port: must be a port number 1-65535, got '53'"),
        (broken(["probes", 0, "port"], KeyError), "probes[0].port: required"),
        (broken(["probes", 1, "protocol"], "ICMP"), "probes[1].protocol: must be one of TCP, UDP, SCTP, got 'ICMP'"),
        (broken(["probes", 1, "from"], "payments/nope"), "probes[1].from: unknown pod 'payments/nope'"),
        (broken(["probes", 1, "to"], "10.0.0.300"), "probes[1].to: not an IP address: '10.0.0.300'"),
        (broken(["probes", 1, "to"], 42), "probes[1].to: expected 'namespace/pod' or an IP address, got 42"),
        (broken(["probes"], {"a": 1}), "probes: expected a list, got dict"),
        (
            broken(["pods", 0, "namespace"], "nowhere"),
            "pods[0].namespace: unknown namespace 'nowhere' (declare it under namespaces)",
        ),
        (broken(["pods", 0, "ip"], "banana"), "pods[0].ip: not an IP address: 'banana'"),
        (broken(["pods", 2, "ip"], "10.244.1.10"), "pods[2].ip: 10.244.1.10 already belongs to pod shop/frontend"),
        (broken(["pods", 1, "name"], "frontend"), "pods[1].name: duplicate pod shop/frontend"),
        (
            broken(["pods", 1, "ports", 0, "containerPort"], 0),
            "pods[1].ports[0].containerPort: must be a port number 1-65535, got 0",
        ),
        (broken(["pods", 0, "labels"], {"app": 3}), "pods[0].labels.app: label value must be a string, got 3"),
        (broken(["namespaces", 1, "name"], "shop"), "namespaces[1].name: duplicate namespace 'shop'"),
        (
            broken(["policies", 0, "spec", "ingress", 0, "from", 0], {"ipBlock": {"cidr": "10.0.0.0/33"}}),
            "policies[0]: policy shop/cart-ingress: spec.ingress[0].from[0].ipBlock.cidr: not a CIDR: '10.0.0.0/33'",
        ),
        (
            {**CASE, "policies": [CASE["policies"][0], CASE["policies"][0]]},
            "policies[1].metadata.name: duplicate policy shop/cart-ingress (also policies[0])",
        ),
    ],
)
def test_malformed_case_names_the_field(case: Any, message: str) -> None:
    with pytest.raises(CaseError) as info:
        load_case(case)
    assert str(info.value) == message
