"""Row verdicts for the UI: draft + applied policies decide red or black per communication."""

from __future__ import annotations

from policies.engine import (
    AddressPeer,
    CommunicationRow,
    ContainerPort,
    GenerationRequest,
    LabelSelector,
    Scope,
    WorkloadPeer,
    generate_policy,
    row_verdicts,
)
from tests.engine.helpers import netpol

SCOPE = Scope(
    "prod",
    "shop",
    "Deployment",
    "frontend",
    pod_labels={"app": "frontend", "version": "v2"},
    namespace_labels={"kubernetes.io/metadata.name": "shop"},
    own_selector=LabelSelector((("app", "frontend"),)),
    ports=(ContainerPort("http", 8080),),
)
GATEWAY = WorkloadPeer("shop", "Deployment", "gateway", {"app": "gateway"})
PAYMENT = WorkloadPeer(
    "payments", "StatefulSet", "payment", {"app": "payment"}, {"kubernetes.io/metadata.name": "payments"}
)
LEGACY = WorkloadPeer("legacy", "Deployment", "old", {"app": "old"}, {})


def rows() -> list[CommunicationRow]:
    return [
        CommunicationRow("ingress", GATEWAY, 8080),
        CommunicationRow("ingress", LEGACY, 8080),  # namespace has no usable label: left out
        CommunicationRow("egress", PAYMENT, 7070),
        CommunicationRow("egress", AddressPeer("203.0.113.9"), 443, included=False),
        CommunicationRow("egress", AddressPeer("192.0.2.7", cidrs=("192.0.2.0/24",)), 443),
    ]


def test_no_policies_everything_allowed_and_not_isolated() -> None:
    verdicts = row_verdicts(SCOPE, rows(), None, [])
    assert [v.allowed for v in verdicts] == [True] * 5
    assert all(v.egress.status == v.ingress.status == "not-isolated" for v in verdicts)
    assert [v.row for v in verdicts] == rows()  # in row order


def test_a_row_has_one_identity_and_the_flags_that_split_rows_are_part_of_it() -> None:
    keys = [r.key for r in rows()]
    assert keys == [
        "ingress:Deployment/shop/gateway:8080/TCP",
        "ingress:Deployment/legacy/old:8080/TCP",
        "egress:StatefulSet/payments/payment:7070/TCP",
        "egress:ip/203.0.113.9:443/TCP",
        "egress:ip/192.0.2.7:443/TCP",
    ]
    worked = CommunicationRow("egress", PAYMENT, 7070)
    denied = CommunicationRow("egress", PAYMENT, 7070, denied_in_cluster=True)
    probe = CommunicationRow("ingress", AddressPeer("172.18.0.2"), 8080, node_local=True)
    assert len({worked.key, denied.key}) == 2 and denied.key.endswith(":denied")
    assert probe.key == "ingress:ip/172.18.0.2:8080/TCP:node-local"
    # The addresses of one selectorless Service are one peer, whichever address a row saw.
    api = AddressPeer("172.18.0.2", "APIServer", cidrs=("172.18.0.2/32", "172.18.0.3/32"), service="default/kubernetes")
    assert CommunicationRow("egress", api, 6443).key == "egress:service/default/kubernetes:6443/TCP"


def test_traffic_from_the_pods_own_node_is_always_allowed_whatever_the_policies() -> None:
    deny_all = netpol("shop", "deny-all", policyTypes=["Ingress", "Egress"])
    probe = CommunicationRow("ingress", AddressPeer("172.18.0.2"), 8080, node_local=True)
    (verdict,) = row_verdicts(SCOPE, [probe], None, [deny_all])
    assert verdict.allowed and verdict.always_allowed and verdict.blocked_by == ()


def test_warnings_of_the_draft_are_attached_to_their_rows() -> None:
    result = generate_policy(GenerationRequest(SCOPE, tuple(rows())))
    verdicts = row_verdicts(SCOPE, rows(), result.policy, [], result.warnings)
    assert "you need to assign labels to namespace legacy" in verdicts[1].warning
    assert [bool(v.warning) for v in verdicts] == [False, True, False, False, False]


def test_draft_policy_colours_rows_it_leaves_out() -> None:
    draft = generate_policy(GenerationRequest(SCOPE, tuple(rows()))).policy
    verdicts = row_verdicts(SCOPE, rows(), draft, [])
    summary = [(v.allowed, v.blocked_by, v.policies) for v in verdicts]
    name = "shop/netsec-deployment-frontend"
    assert summary == [
        (True, (), (name,)),
        (False, ("ingress",), (name,)),  # the unlabelled namespace row shows red
        (True, (), (name,)),
        (False, ("egress",), (name,)),  # excluded IP
        (True, (), (name,)),
    ]


def test_draft_replaces_the_applied_policy_of_the_same_name() -> None:
    applied_old = netpol(
        "shop",
        "netsec-deployment-frontend",
        podSelector={"matchLabels": {"app": "frontend"}},
        policyTypes=["Ingress", "Egress"],
    )
    draft = generate_policy(GenerationRequest(SCOPE, tuple(rows()))).policy
    assert row_verdicts(SCOPE, rows()[:1], None, [applied_old])[0].allowed is False
    assert row_verdicts(SCOPE, rows()[:1], draft, [applied_old])[0].allowed is True


def test_applied_policies_on_the_peer_side_block_with_their_name() -> None:
    # payments isolates its pods' ingress: our egress row to it is blocked on the destination's side.
    deny_payments = netpol("payments", "default-deny", policyTypes=["Ingress"])
    # gateway's egress is restricted to port 9999: our ingress row from it is blocked on the source's side.
    gateway_egress = netpol(
        "shop",
        "gateway-out",
        podSelector={"matchLabels": {"app": "gateway"}},
        policyTypes=["Egress"],
        egress=[{"ports": [{"port": 9999}]}],
    )
    verdicts = row_verdicts(SCOPE, rows(), None, [deny_payments, gateway_egress])
    assert (verdicts[0].allowed, verdicts[0].blocked_by, verdicts[0].policies) == (
        False,
        ("egress",),
        ("shop/gateway-out",),
    )
    assert (verdicts[2].allowed, verdicts[2].blocked_by, verdicts[2].policies) == (
        False,
        ("ingress",),
        ("payments/default-deny",),
    )
    assert verdicts[3].allowed  # nothing isolates an outside IP or our egress


def test_applied_policy_selecting_template_labels_and_named_ports() -> None:
    # The scope's pods carry version=v2 (a template label, not in the selector) and a port named http.
    policy = netpol(
        "shop", "v2-only", podSelector={"matchLabels": {"version": "v2"}}, ingress=[{"ports": [{"port": "http"}]}]
    )
    verdicts = row_verdicts(
        SCOPE, [CommunicationRow("ingress", GATEWAY, 8080), CommunicationRow("ingress", GATEWAY, 8081)], None, [policy]
    )
    assert [(v.allowed, v.ingress.status) for v in verdicts] == [(True, "allowed"), (False, "denied")]


def test_both_sides_blocking() -> None:
    deny_all = netpol("shop", "deny-all", policyTypes=["Ingress", "Egress"])
    verdict = row_verdicts(SCOPE, [CommunicationRow("egress", GATEWAY, 8080)], None, [deny_all])[0]
    assert verdict.blocked_by == ("egress", "ingress")
    assert verdict.policies == ("shop/deny-all",)


def test_portless_protocol_is_admitted_only_by_rules_without_ports() -> None:
    icmp = [CommunicationRow("ingress", GATEWAY, None, "ICMP")]
    any_port = netpol("shop", "any", podSelector={}, ingress=[{"from": [{"podSelector": {}}]}])
    some_port = netpol(
        "shop", "some", podSelector={}, ingress=[{"from": [{"podSelector": {}}], "ports": [{"port": 8080}]}]
    )
    assert row_verdicts(SCOPE, icmp, None, [any_port])[0].allowed is True
    assert row_verdicts(SCOPE, icmp, None, [some_port])[0].allowed is False
