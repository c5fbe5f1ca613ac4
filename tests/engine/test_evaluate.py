"""networking.k8s.io/v1 semantics, one test per trap (issue 3, item 1)."""

from __future__ import annotations

import pytest

from policies.engine import Connection, Endpoint, Evaluator, LabelSelector, parse_policy
from tests.engine.helpers import World, netpol, ns, pod

NAMESPACES = [ns("shop", team="web"), ns("payments", team="money"), ns("ops")]
FRONTEND = pod("shop", "frontend", {"app": "frontend", "tier": "web"}, "10.0.1.1", [("http", 8080, "TCP")])
CART = pod("shop", "cart", {"app": "cart"}, "10.0.1.2", [("grpc", 7070, "TCP"), ("metrics", 9090, "UDP")])
PAYMENT = pod("payments", "payment", {"app": "payment"}, "10.0.2.1", [("grpc", 50051, "TCP")])
OPS = pod("ops", "probe", {"app": "frontend"}, "10.0.3.1")
PODS = [FRONTEND, CART, PAYMENT, OPS]


def world(*policies: dict) -> World:
    return World(NAMESPACES, PODS, policies)


# --- policyTypes --------------------------------------------------------------------------------------------


def test_policy_types_omitted_means_ingress_only_without_egress_rules() -> None:
    w = world(netpol("shop", podSelector={"matchLabels": {"app": "cart"}}))
    assert parse_policy(netpol("shop")).policy_types == ("Ingress",)
    assert w.sides("shop/frontend", "shop/cart", 7070) == ("not-isolated", "denied", False)
    assert w.sides("shop/cart", "payments/payment", 50051) == ("not-isolated", "not-isolated", True)


def test_policy_types_omitted_with_egress_rules_adds_egress() -> None:
    policy = netpol("shop", podSelector={"matchLabels": {"app": "cart"}}, egress=[{"ports": [{"port": 53}]}])
    assert parse_policy(policy).policy_types == ("Ingress", "Egress")
    w = world(policy)
    assert w.sides("shop/cart", "payments/payment", 50051)[0] == "denied"
    assert w.sides("shop/cart", "payments/payment", 53)[0] == "allowed"
    # Ingress is isolated too, although the policy has no ingress section.
    assert w.sides("shop/frontend", "shop/cart", 7070)[1] == "denied"


def test_bare_empty_egress_list_isolates_nothing() -> None:
    policy = netpol("shop", podSelector={"matchLabels": {"app": "cart"}}, egress=[])
    assert parse_policy(policy).policy_types == ("Ingress",)
    assert world(policy).sides("shop/cart", "payments/payment", 50051)[0] == "not-isolated"


def test_listed_type_without_rules_isolates_and_admits_nothing() -> None:
    w = world(netpol("shop", podSelector={}, policyTypes=["Ingress", "Egress"]))
    assert w.sides("shop/frontend", "shop/cart", 7070) == ("denied", "denied", False)
    assert w.sides("shop/cart", "203.0.113.9", 443) == ("denied", "not-isolated", False)


def test_rules_of_a_direction_not_in_policy_types_are_ignored() -> None:
    egress_only = netpol("shop", "egress-only", policyTypes=["Egress"], ingress=[{}], egress=[{}])
    deny_ingress = netpol("shop", "deny", policyTypes=["Ingress"])
    w = world(egress_only, deny_ingress)
    # The "ingress: [{}]" of an Egress-only policy does not admit anything.
    assert w.sides("payments/payment", "shop/cart", 7070)[1] == "denied"
    assert w.probe("payments/payment", "shop/cart", 7070).ingress.isolated_by == ("shop/deny",)

    ingress_only = netpol(
        "shop", policyTypes=["Ingress"], ingress=[{}], egress=[{"to": [{"ipBlock": {"cidr": "1.2.3.4/32"}}]}]
    )
    assert world(ingress_only).sides("shop/cart", "8.8.8.8", 53)[0] == "not-isolated"


def test_empty_policy_types_list_is_defaulted() -> None:
    assert parse_policy(netpol("shop", policyTypes=[])).policy_types == ("Ingress",)


# --- rules: peers, ports and their combination ----------------------------------------------------------------


def test_rule_without_from_admits_every_peer() -> None:
    w = world(netpol("shop", podSelector={"matchLabels": {"app": "cart"}}, ingress=[{"ports": [{"port": 7070}]}]))
    assert w.sides("payments/payment", "shop/cart", 7070)[1] == "allowed"
    assert w.sides("203.0.113.9", "shop/cart", 7070)[1] == "allowed"
    assert w.sides("203.0.113.9", "shop/cart", 7071)[1] == "denied"


def test_empty_from_list_admits_every_peer() -> None:
    w = world(netpol("shop", ingress=[{"from": [], "ports": [{"port": 7070}]}]))
    assert w.sides("203.0.113.9", "shop/cart", 7070)[1] == "allowed"


def test_rule_without_ports_admits_every_port_and_protocol() -> None:
    w = world(netpol("shop", ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "frontend"}}}]}]))
    for port, protocol in [(1, "TCP"), (7070, "TCP"), (53, "UDP"), (65535, "SCTP")]:
        assert w.sides("shop/frontend", "shop/cart", port, protocol)[1] == "allowed"
    assert w.sides("payments/payment", "shop/cart", 7070)[1] == "denied"


def test_empty_rule_admits_everything() -> None:
    w = world(netpol("shop", policyTypes=["Ingress", "Egress"], ingress=[{}], egress=[None]))
    assert w.sides("shop/cart", "203.0.113.9", 1) == ("allowed", "not-isolated", True)
    assert w.sides("203.0.113.9", "shop/cart", 9) == ("not-isolated", "allowed", True)


def test_peers_and_ports_within_a_rule_are_anded_entries_ored() -> None:
    w = world(
        netpol(
            "shop",
            podSelector={"matchLabels": {"app": "cart"}},
            ingress=[
                {
                    "from": [
                        {"podSelector": {"matchLabels": {"app": "frontend"}}},
                        {"ipBlock": {"cidr": "203.0.113.0/24"}},
                    ],
                    "ports": [{"port": 7070}, {"port": 9090, "protocol": "UDP"}],
                }
            ],
        )
    )
    assert w.sides("shop/frontend", "shop/cart", 7070)[1] == "allowed"
    assert w.sides("shop/frontend", "shop/cart", 9090, "UDP")[1] == "allowed"
    assert w.sides("203.0.113.7", "shop/cart", 7070)[1] == "allowed"
    # Right peer, wrong port; right port, wrong peer.
    assert w.sides("shop/frontend", "shop/cart", 9090)[1] == "denied"
    assert w.sides("payments/payment", "shop/cart", 7070)[1] == "denied"


def test_separate_rules_are_ored_without_crossing() -> None:
    w = world(
        netpol(
            "shop",
            podSelector={"matchLabels": {"app": "cart"}},
            ingress=[
                {"from": [{"podSelector": {"matchLabels": {"app": "frontend"}}}], "ports": [{"port": 7070}]},
                {"from": [{"ipBlock": {"cidr": "203.0.113.0/24"}}], "ports": [{"port": 9999}]},
            ],
        )
    )
    assert w.sides("shop/frontend", "shop/cart", 7070)[1] == "allowed"
    assert w.sides("203.0.113.1", "shop/cart", 9999)[1] == "allowed"
    # Peer of rule 1 with port of rule 2 is not admitted.
    assert w.sides("shop/frontend", "shop/cart", 9999)[1] == "denied"


# --- namespace and pod selectors ----------------------------------------------------------------------------


def test_namespace_and_pod_selector_in_one_peer_are_anded() -> None:
    peer = {"namespaceSelector": {"matchLabels": {"team": "web"}}, "podSelector": {"matchLabels": {"app": "frontend"}}}
    w = world(netpol("payments", ingress=[{"from": [peer]}]))
    assert w.sides("shop/frontend", "payments/payment", 50051)[1] == "allowed"
    assert w.sides("shop/cart", "payments/payment", 50051)[1] == "denied"  # right namespace, wrong pod
    assert w.sides("ops/probe", "payments/payment", 50051)[1] == "denied"  # right pod labels, wrong namespace


def test_namespace_and_pod_selector_in_two_peers_are_ored() -> None:
    peers = [
        {"namespaceSelector": {"matchLabels": {"team": "web"}}},
        {"podSelector": {"matchLabels": {"app": "payment"}}},
    ]
    w = world(netpol("payments", ingress=[{"from": peers}]))
    assert w.sides("shop/cart", "payments/payment", 50051)[1] == "allowed"  # any pod of team=web
    assert w.sides("ops/probe", "payments/payment", 50051)[1] == "denied"


def test_pod_selector_alone_means_the_policy_namespace() -> None:
    w = world(netpol("payments", ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "frontend"}}}]}]))
    # shop/frontend and ops/probe both carry app=frontend, but neither is in "payments".
    assert w.sides("shop/frontend", "payments/payment", 50051)[1] == "denied"
    assert w.sides("ops/probe", "payments/payment", 50051)[1] == "denied"
    w2 = world(netpol("shop", ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "frontend"}}}]}]))
    assert w2.sides("shop/frontend", "shop/cart", 7070)[1] == "allowed"
    assert w2.sides("ops/probe", "shop/cart", 7070)[1] == "denied"


def test_empty_pod_selector_peer_means_every_pod_of_the_policy_namespace() -> None:
    w = world(netpol("shop", ingress=[{"from": [{"podSelector": {}}]}]))
    assert w.sides("shop/frontend", "shop/cart", 7070)[1] == "allowed"
    assert w.sides("payments/payment", "shop/cart", 7070)[1] == "denied"


def test_empty_namespace_selector_means_every_namespace() -> None:
    w = world(netpol("shop", ingress=[{"from": [{"namespaceSelector": {}}]}]))
    assert w.sides("payments/payment", "shop/cart", 7070)[1] == "allowed"
    assert w.sides("ops/probe", "shop/cart", 7070)[1] == "allowed"
    # ...but only pods: a bare IP is not in any namespace.
    assert w.sides("203.0.113.9", "shop/cart", 7070)[1] == "denied"


def test_namespace_selector_against_namespace_labels() -> None:
    w = world(netpol("shop", ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"team": "money"}}}]}]))
    assert w.sides("payments/payment", "shop/cart", 7070)[1] == "allowed"
    assert w.sides("ops/probe", "shop/cart", 7070)[1] == "denied"


def test_pod_in_an_undeclared_namespace_has_no_namespace_labels() -> None:
    stray = pod("ghost", "x", {"app": "frontend"}, "10.9.9.9")
    w = World(NAMESPACES, [*PODS, stray], [netpol("shop", ingress=[{"from": [{"namespaceSelector": {}}]}])])
    assert w.sides("ghost/x", "shop/cart", 7070)[1] == "allowed"  # {} matches a namespace without labels
    w2 = World(
        NAMESPACES,
        [*PODS, stray],
        [netpol("shop", ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"team": "web"}}}]}])],
    )
    assert w2.sides("ghost/x", "shop/cart", 7070)[1] == "denied"


@pytest.mark.parametrize(
    ("expression", "frontend", "cart"),
    [
        ({"key": "tier", "operator": "In", "values": ["web", "api"]}, True, False),
        ({"key": "tier", "operator": "NotIn", "values": ["web"]}, False, True),  # cart lacks "tier"
        ({"key": "tier", "operator": "Exists"}, True, False),
        ({"key": "tier", "operator": "DoesNotExist"}, False, True),  # cart lacks "tier"
    ],
)
def test_match_expressions_operators(expression: dict, frontend: bool, cart: bool) -> None:
    w = world(
        netpol(
            "payments",
            ingress=[{"from": [{"namespaceSelector": {}, "podSelector": {"matchExpressions": [expression]}}]}],
        )
    )
    assert (w.sides("shop/frontend", "payments/payment", 1)[1] == "allowed") is frontend
    assert (w.sides("shop/cart", "payments/payment", 1)[1] == "allowed") is cart


def test_match_labels_and_match_expressions_are_anded() -> None:
    selector = {"matchLabels": {"app": "frontend"}, "matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}
    w = world(netpol("payments", ingress=[{"from": [{"namespaceSelector": {}, "podSelector": selector}]}]))
    assert w.sides("ops/probe", "payments/payment", 1)[1] == "allowed"  # app=frontend, no tier
    assert w.sides("shop/frontend", "payments/payment", 1)[1] == "denied"  # app=frontend, has tier
    assert w.sides("shop/cart", "payments/payment", 1)[1] == "denied"


def test_policy_pod_selector_with_expressions_selects_pods() -> None:
    w = world(
        netpol("shop", podSelector={"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["web"]}]})
    )
    assert w.sides("payments/payment", "shop/cart", 1)[1] == "denied"  # cart has no tier -> selected
    assert w.sides("payments/payment", "shop/frontend", 8080)[1] == "not-isolated"


# --- ports ------------------------------------------------------------------------------------------------


def test_protocol_defaults_to_tcp() -> None:
    w = world(netpol("shop", ingress=[{"ports": [{"port": 7070}]}]))
    assert w.sides("shop/frontend", "shop/cart", 7070, "TCP")[1] == "allowed"
    assert w.sides("shop/frontend", "shop/cart", 7070, "UDP")[1] == "denied"
    assert w.sides("shop/frontend", "shop/cart", 7070, "SCTP")[1] == "denied"


def test_udp_and_sctp_are_distinct() -> None:
    w = world(netpol("shop", ingress=[{"ports": [{"port": 5000, "protocol": "UDP"}, {"protocol": "SCTP"}]}]))
    assert w.sides("shop/frontend", "shop/cart", 5000, "UDP")[1] == "allowed"
    assert w.sides("shop/frontend", "shop/cart", 5000, "TCP")[1] == "denied"
    assert w.sides("shop/frontend", "shop/cart", 1234, "SCTP")[1] == "allowed"  # protocol without port: all ports
    assert w.sides("shop/frontend", "shop/cart", 1234, "UDP")[1] == "denied"


def test_end_port_range_is_inclusive() -> None:
    w = world(netpol("shop", ingress=[{"ports": [{"port": 8000, "endPort": 8010}]}]))
    assert [w.sides("shop/frontend", "shop/cart", p)[1] for p in (7999, 8000, 8005, 8010, 8011)] == [
        "denied",
        "allowed",
        "allowed",
        "allowed",
        "denied",
    ]
    assert w.sides("shop/frontend", "shop/cart", 8005, "UDP")[1] == "denied"


def test_named_port_resolves_against_destination_pod_for_ingress() -> None:
    w = world(netpol("shop", ingress=[{"ports": [{"port": "grpc"}]}]))
    assert w.sides("shop/frontend", "shop/cart", 7070)[1] == "allowed"  # cart's grpc is 7070
    assert w.sides("shop/frontend", "shop/cart", 50051)[1] == "denied"  # another pod's grpc number
    # frontend has no port named grpc: nothing matches.
    assert w.sides("shop/cart", "shop/frontend", 8080)[1] == "denied"


def test_named_port_resolves_against_destination_pod_for_egress() -> None:
    w = world(
        netpol(
            "shop",
            podSelector={"matchLabels": {"app": "cart"}},
            policyTypes=["Egress"],
            egress=[{"ports": [{"port": "grpc"}]}],
        )
    )
    # Resolved on the destination (payment: grpc=50051), not on the source (cart: grpc=7070).
    assert w.sides("shop/cart", "payments/payment", 50051)[0] == "allowed"
    assert w.sides("shop/cart", "payments/payment", 7070)[0] == "denied"
    # A bare IP has no named ports.
    assert w.sides("shop/cart", "203.0.113.9", 50051)[0] == "denied"


def test_named_port_matches_name_and_protocol_both() -> None:
    w = world(
        netpol("shop", ingress=[{"ports": [{"port": "metrics"}]}]),  # protocol defaults to TCP
        netpol("payments", ingress=[{"ports": [{"port": "grpc", "protocol": "UDP"}]}]),
    )
    # cart's "metrics" is UDP 9090: a TCP named-port rule matches neither TCP nor UDP 9090.
    assert w.sides("shop/frontend", "shop/cart", 9090, "UDP")[1] == "denied"
    assert w.sides("shop/frontend", "shop/cart", 9090, "TCP")[1] == "denied"
    # payment's "grpc" is TCP: a UDP rule for it matches nothing.
    assert w.sides("shop/frontend", "payments/payment", 50051, "UDP")[1] == "denied"
    assert w.sides("shop/frontend", "payments/payment", 50051, "TCP")[1] == "denied"
    w2 = world(netpol("shop", ingress=[{"ports": [{"port": "metrics", "protocol": "UDP"}]}]))
    assert w2.sides("shop/frontend", "shop/cart", 9090, "UDP")[1] == "allowed"


def test_missing_named_port_matches_nothing() -> None:
    w = world(netpol("shop", ingress=[{"ports": [{"port": "nope"}]}]))
    assert w.sides("shop/frontend", "shop/cart", 7070)[1] == "denied"


# --- ipBlock ----------------------------------------------------------------------------------------------


def test_ip_block_with_except() -> None:
    block = {"ipBlock": {"cidr": "203.0.113.0/24", "except": ["203.0.113.128/25", "203.0.113.7/32"]}}
    w = world(netpol("shop", ingress=[{"from": [block]}]))
    assert w.sides("203.0.113.1", "shop/cart", 1)[1] == "allowed"
    assert w.sides("203.0.113.7", "shop/cart", 1)[1] == "denied"
    assert w.sides("203.0.113.200", "shop/cart", 1)[1] == "denied"
    assert w.sides("198.51.100.1", "shop/cart", 1)[1] == "denied"


def test_ip_block_matches_pod_ips_too() -> None:
    w = world(
        netpol(
            "shop",
            podSelector={"matchLabels": {"app": "cart"}},
            ingress=[{"from": [{"ipBlock": {"cidr": "10.0.2.0/24"}}]}],
        )
    )
    assert w.sides("payments/payment", "shop/cart", 7070)[1] == "allowed"  # 10.0.2.1
    assert w.sides("shop/frontend", "shop/cart", 7070)[1] == "denied"  # 10.0.1.1
    egress = netpol(
        "shop",
        podSelector={"matchLabels": {"app": "cart"}},
        policyTypes=["Egress"],
        egress=[{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}],
    )
    assert world(egress).sides("shop/cart", "payments/payment", 50051)[0] == "allowed"


def test_pod_without_ip_is_not_matched_by_ip_blocks() -> None:
    pending = pod("payments", "pending", {"app": "payment"})
    w = World(NAMESPACES, [*PODS, pending], [netpol("shop", ingress=[{"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}])])
    assert w.sides("payments/pending", "shop/cart", 7070)[1] == "denied"


def test_ipv6_blocks_and_ipv4_zero_does_not_cover_ipv6() -> None:
    w = world(netpol("shop", ingress=[{"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]))
    assert w.sides("203.0.113.9", "shop/cart", 1)[1] == "allowed"
    assert w.sides("2001:db8::1", "shop/cart", 1)[1] == "denied"
    w6 = world(
        netpol("shop", ingress=[{"from": [{"ipBlock": {"cidr": "2001:db8::/32", "except": ["2001:db8:bad::/48"]}}]}])
    )
    assert w6.sides("2001:db8::1", "shop/cart", 1)[1] == "allowed"
    assert w6.sides("2001:db8:bad::1", "shop/cart", 1)[1] == "denied"
    assert w6.sides("203.0.113.9", "shop/cart", 1)[1] == "denied"
    all6 = world(netpol("shop", ingress=[{"from": [{"ipBlock": {"cidr": "::/0"}}]}]))
    assert all6.sides("2001:db8::1", "shop/cart", 1)[1] == "allowed"


def test_dual_stack_pod_uses_the_address_of_the_peer_family() -> None:
    dual = pod("payments", "dual", {"app": "x"}, "10.0.2.9", ips=("fd00::9",))
    v6_server = pod("shop", "v6", {"app": "v6"}, ips=("fd00::1",))
    policy = netpol(
        "shop", podSelector={"matchLabels": {"app": "v6"}}, ingress=[{"from": [{"ipBlock": {"cidr": "fd00::/64"}}]}]
    )
    w = World(NAMESPACES, [*PODS, dual, v6_server], [policy])
    assert w.sides("payments/dual", "shop/v6", 80)[1] == "allowed"


def test_selectors_never_match_a_non_pod_ip() -> None:
    w = world(netpol("shop", ingress=[{"from": [{"namespaceSelector": {}, "podSelector": {}}, {"podSelector": {}}]}]))
    assert w.sides("203.0.113.9", "shop/cart", 7070)[1] == "denied"
    assert w.sides("shop/frontend", "shop/cart", 7070)[1] == "allowed"


# --- policy sets and connections ----------------------------------------------------------------------------


def test_policies_are_a_union() -> None:
    a = netpol(
        "shop",
        "from-frontend",
        podSelector={"matchLabels": {"app": "cart"}},
        ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "frontend"}}}]}],
    )
    b = netpol(
        "shop",
        "from-payments",
        podSelector={"matchLabels": {"app": "cart"}},
        ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"team": "money"}}}]}],
    )
    w = world(a, b)
    frontend = w.probe("shop/frontend", "shop/cart", 7070)
    assert frontend.ingress.status == "allowed"
    assert frontend.ingress.admitted_by == ("shop/from-frontend",)
    assert frontend.ingress.isolated_by == ("shop/from-frontend", "shop/from-payments")
    assert w.sides("payments/payment", "shop/cart", 7070)[1] == "allowed"
    denied = w.probe("ops/probe", "shop/cart", 7070)
    assert denied.ingress.status == "denied"
    assert denied.ingress.policies == ("shop/from-frontend", "shop/from-payments")


def test_policy_in_another_namespace_never_selects_your_pods() -> None:
    w = world(netpol("payments", podSelector={}, policyTypes=["Ingress", "Egress"]))
    assert w.sides("shop/frontend", "shop/cart", 7070) == ("not-isolated", "not-isolated", True)
    assert w.sides("shop/frontend", "payments/payment", 50051) == ("not-isolated", "denied", False)


def test_connection_needs_source_egress_and_destination_ingress() -> None:
    deny_egress = netpol(
        "shop", "deny-egress", podSelector={"matchLabels": {"app": "frontend"}}, policyTypes=["Egress"]
    )
    allow_ingress = netpol("shop", "allow-ingress", podSelector={"matchLabels": {"app": "cart"}}, ingress=[{}])
    w = world(deny_egress, allow_ingress)
    assert w.sides("shop/frontend", "shop/cart", 7070) == ("denied", "allowed", False)
    deny_ingress = netpol("payments", podSelector={}, policyTypes=["Ingress"])
    allow_egress = netpol("shop", podSelector={}, policyTypes=["Egress"], egress=[{}])
    assert world(deny_ingress, allow_egress).sides("shop/cart", "payments/payment", 50051) == (
        "allowed",
        "denied",
        False,
    )


def test_isolated_pod_whose_rules_admit_is_allowed_not_not_isolated() -> None:
    w = world(netpol("shop", podSelector={"matchLabels": {"app": "cart"}}, ingress=[{}]))
    result = w.probe("shop/frontend", "shop/cart", 7070)
    assert result.ingress.status == "allowed"
    assert result.ingress.policies == ("shop/p",)
    assert result.egress.status == "not-isolated"
    assert result.allowed


def test_ip_without_pod_has_no_policies() -> None:
    w = world(netpol("shop", podSelector={}, policyTypes=["Ingress", "Egress"]))
    assert w.sides("203.0.113.9", "198.51.100.1", 80) == ("not-isolated", "not-isolated", True)


def test_ip_that_belongs_to_a_pod_is_that_pod() -> None:
    w = world(netpol("shop", podSelector={"matchLabels": {"app": "cart"}}, policyTypes=["Ingress"]))
    assert w.sides("203.0.113.9", "10.0.1.2", 7070) == ("not-isolated", "denied", False)


# --- indexing -------------------------------------------------------------------------------------------------


def test_evaluation_does_not_rescan_policies(monkeypatch: pytest.MonkeyPatch) -> None:
    policies = [netpol(f"other{i}", f"p{i}", podSelector={"matchLabels": {"app": f"a{i}"}}) for i in range(200)]
    policies.append(
        netpol("shop", "cart", podSelector={"matchLabels": {"app": "cart"}}, ingress=[{"from": [{"podSelector": {}}]}])
    )
    evaluator = Evaluator(NAMESPACES, PODS, [parse_policy(p) for p in policies])
    calls = 0
    original = LabelSelector.matches

    def counting(self: LabelSelector, labels: dict) -> bool:
        nonlocal calls
        calls += 1
        return original(self, labels)

    monkeypatch.setattr(LabelSelector, "matches", counting)
    connection = Connection(Endpoint.of_pod(FRONTEND), Endpoint.of_pod(CART), 7070)
    for _ in range(1000):
        assert evaluator.evaluate(connection).allowed
    # Only shop's policy is ever looked at, and each (selector, labels) pair is matched once.
    assert calls <= 4
