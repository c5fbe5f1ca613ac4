"""Generation from communications + draft (design §4, issue 3 item 3)."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import kubernetes_validate
import pytest
import yaml

from policies.engine import (
    AddressPeer,
    CommunicationRow,
    DNSTarget,
    Draft,
    GenerationError,
    GenerationRequest,
    GenerationResult,
    LabelSelector,
    ManualRule,
    PortRange,
    Requirement,
    Scope,
    WorkloadPeer,
    generate_policies,
    generate_policy,
    parse_policy,
    policy_name,
    to_yaml,
)

SCOPE = Scope(
    "prod",
    "shop",
    "Deployment",
    "frontend",
    pod_labels={"app": "frontend", "pod-template-hash": "7d9f"},
    namespace_labels={"kubernetes.io/metadata.name": "shop"},
)
GATEWAY = WorkloadPeer("shop", "Deployment", "gateway", {"app": "gateway"})
CART = WorkloadPeer("shop", "Deployment", "cart", {"app": "cart", "pod-template-hash": "5c4b"})
PAYMENT = WorkloadPeer(
    "payments", "StatefulSet", "payment", {"app": "payment"}, {"kubernetes.io/metadata.name": "payments"}
)
LEGACY = WorkloadPeer("legacy", "Deployment", "old", {"app": "old"}, {"team": "legacy"})
DNS_PEER = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
}
DNS_RULE = {"to": [DNS_PEER], "ports": [{"port": 53, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]}


def generate(*rows: CommunicationRow, scope: Scope = SCOPE, **kw: Any) -> GenerationResult:
    draft = kw.pop("draft", Draft())
    result = generate_policy(GenerationRequest(scope, tuple(rows), draft, **kw))
    # Every generated policy validates against the schema and parses back in our own engine.
    kubernetes_validate.validate(result.policy, "1.31", strict=True)
    parse_policy(result.policy)
    return result


def ingress(peer: Any, port: int, protocol: str = "TCP", included: bool = True) -> CommunicationRow:
    return CommunicationRow("ingress", peer, port, protocol, included)


def egress(peer: Any, port: int, protocol: str = "TCP", included: bool = True) -> CommunicationRow:
    return CommunicationRow("egress", peer, port, protocol, included)


# --- metadata and naming -------------------------------------------------------------------------------------


def test_metadata_name_labels_and_window_annotations() -> None:
    start = datetime(2026, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    result = generate(window_start=start, window_end=datetime(2026, 1, 2, 10, 30))
    assert result.policy["apiVersion"] == "networking.k8s.io/v1"
    assert result.policy["kind"] == "NetworkPolicy"
    assert result.policy["metadata"] == {
        "name": "netsec-deployment-frontend",
        "namespace": "shop",
        "labels": {"app.kubernetes.io/managed-by": "netsec"},
        "annotations": {
            "netsec/observed-from": "2026-01-01T10:00:00Z",
            "netsec/observed-to": "2026-01-02T10:30:00Z",
            "netsec/scope": "prod/shop/Deployment/frontend",
        },
    }


def test_policy_name_is_a_dns_label_and_long_names_get_a_stable_hash() -> None:
    assert policy_name("StatefulSet", "db") == "netsec-statefulset-db"
    assert policy_name("Pod", "Weird_Name.v2") == "netsec-pod-weird-name-v2"
    long_a = policy_name("Deployment", "a" * 80)
    long_b = policy_name("Deployment", "a" * 81)
    for name in (long_a, long_b):
        assert len(name) <= 63
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name)
    assert long_a != long_b
    assert long_a == policy_name("Deployment", "a" * 80)
    assert len(policy_name("Deployment", "x" * 45)) == 63  # exactly at the limit: untouched
    assert policy_name("Deployment", "x" * 45).endswith("x")


# --- pod selector of the scope -------------------------------------------------------------------------------


def test_scope_selector_drops_controller_labels() -> None:
    scope = Scope(
        "c",
        "batch",
        "CronJob",
        "report",
        pod_labels={
            "app": "report",
            "controller-uid": "u",
            "batch.kubernetes.io/controller-uid": "u",
            "job-name": "report-123",
            "batch.kubernetes.io/job-name": "report-123",
            "pod-template-hash": "h",
            "controller-revision-hash": "r",
            "statefulset.kubernetes.io/pod-name": "x-0",
            "apps.kubernetes.io/pod-index": "0",
        },
    )
    assert generate(scope=scope).policy["spec"]["podSelector"] == {"matchLabels": {"app": "report"}}


def test_scope_selector_is_the_controllers_own_when_made_of_user_labels() -> None:
    own = LabelSelector((("app", "api"),), (Requirement("tier", "In", ("a", "b")),))
    scope = Scope("c", "shop", "Deployment", "api", pod_labels={"app": "api", "tier": "a", "version": "7"},
                  own_selector=own)
    assert generate(scope=scope).policy["spec"]["podSelector"] == {
        "matchLabels": {"app": "api"},
        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}],
    }
    # A selector naming a controller-made label (a Job's controller-uid) is not used: the template's labels are.
    job = Scope("c", "batch", "Job", "db-migrate", pod_labels={"app": "db-migrate", "controller-uid": "u1"},
                own_selector=LabelSelector((("batch.kubernetes.io/controller-uid", "u1"),)))
    assert generate(scope=job).policy["spec"]["podSelector"] == {"matchLabels": {"app": "db-migrate"}}


def test_service_scope_selects_its_selector() -> None:
    own = LabelSelector((("app", "cart"), ("component", "api")))
    scope = Scope("c", "shop", "Service", "cart", pod_labels={"app": "cart", "component": "api", "v": "2"},
                  own_selector=own)
    result = generate(scope=scope)
    assert result.name == "netsec-service-cart"
    assert result.policy["spec"]["podSelector"] == {"matchLabels": {"app": "cart", "component": "api"}}


def test_scope_without_usable_label_is_an_error() -> None:
    scope = Scope("c", "batch", "CronJob", "nightly", pod_labels={"job-name": "nightly-123", "controller-uid": "u"})
    with pytest.raises(GenerationError, match=r"CronJob batch/nightly has no usable label .*controller-uid, job-name"):
        generate_policy(GenerationRequest(scope))
    with pytest.raises(GenerationError, match="Pod shop/bare has no usable label"):
        generate_policy(GenerationRequest(Scope("c", "shop", "Pod", "bare")))


# --- peers -------------------------------------------------------------------------------------------------


def test_same_namespace_peer_by_pod_selector_without_controller_labels() -> None:
    spec = generate(egress(CART, 7070), dns=None).policy["spec"]
    assert spec["egress"] == [
        {"to": [{"podSelector": {"matchLabels": {"app": "cart"}}}], "ports": [{"port": 7070, "protocol": "TCP"}]}
    ]


def test_other_namespace_peer_by_namespace_and_pod_selector_in_one_peer() -> None:
    spec = generate(ingress(PAYMENT, 8080)).policy["spec"]
    assert spec["ingress"] == [
        {
            "from": [
                {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "payments"}},
                    "podSelector": {"matchLabels": {"app": "payment"}},
                }
            ],
            "ports": [{"port": 8080, "protocol": "TCP"}],
        }
    ]


def test_namespace_without_name_label_uses_the_chosen_label() -> None:
    result = generate(ingress(LEGACY, 8080), draft=Draft(namespace_labels={"legacy": ("team", "legacy")}))
    assert result.warnings == ()
    assert result.policy["spec"]["ingress"][0]["from"] == [
        {"namespaceSelector": {"matchLabels": {"team": "legacy"}}, "podSelector": {"matchLabels": {"app": "old"}}}
    ]


def test_namespace_without_usable_label_warns_and_leaves_the_row_out() -> None:
    result = generate(ingress(GATEWAY, 8080), ingress(LEGACY, 8080))
    assert [(w.code, w.namespace, w.row_index) for w in result.warnings] == [("namespace-unlabelled", "legacy", 1)]
    assert "you need to assign labels to namespace legacy" in result.warnings[0].message
    assert result.omitted_rows == (1,)
    assert result.policy["spec"]["ingress"] == [
        {"from": [{"podSelector": {"matchLabels": {"app": "gateway"}}}], "ports": [{"port": 8080, "protocol": "TCP"}]}
    ]


def test_peer_without_usable_label_warns() -> None:
    job = WorkloadPeer("shop", "CronJob", "nightly", {"job-name": "nightly-123"})
    result = generate(ingress(job, 80))
    assert [w.code for w in result.warnings] == ["peer-unlabelled"]
    assert "ingress" not in result.policy["spec"]  # nothing left: ingress isolated, admits nothing


def test_ip_and_cidr_peers_as_ip_blocks() -> None:
    spec = generate(
        egress(AddressPeer("203.0.113.9"), 443),
        egress(AddressPeer("2001:db8::1"), 443),
        egress(AddressPeer("198.51.100.7", cidrs=("198.51.100.7/24",)), 443),
        dns=None,
    ).policy["spec"]
    assert spec["egress"] == [
        {
            "to": [
                {"ipBlock": {"cidr": "198.51.100.0/24"}},
                {"ipBlock": {"cidr": "2001:db8::1/128"}},
                {"ipBlock": {"cidr": "203.0.113.9/32"}},
            ],
            "ports": [{"port": 443, "protocol": "TCP"}],
        }
    ]


def test_invalid_ip_peer_warns() -> None:
    result = generate(egress(AddressPeer("not-an-ip"), 443), dns=None)
    assert [w.code for w in result.warnings] == ["invalid-peer"]


def test_unsupported_protocol_warns() -> None:
    result = generate(CommunicationRow("egress", AddressPeer("203.0.113.9"), None, "ICMP"), dns=None)
    assert [w.code for w in result.warnings] == ["unsupported-protocol"]
    assert result.omitted_rows == (0,)


# --- rules -------------------------------------------------------------------------------------------------


def test_rules_sharing_a_port_set_are_merged_and_ports_sorted() -> None:
    spec = generate(
        ingress(GATEWAY, 8443),
        ingress(GATEWAY, 8080),
        ingress(PAYMENT, 8080),
        ingress(PAYMENT, 8443),
        ingress(CART, 8080),
        ingress(CART, 53, "UDP"),
        ingress(CART, 53, "TCP"),
    ).policy["spec"]
    assert spec["ingress"] == [
        {
            "from": [
                {"podSelector": {"matchLabels": {"app": "cart"}}},
            ],
            "ports": [
                {"port": 53, "protocol": "TCP"},
                {"port": 53, "protocol": "UDP"},
                {"port": 8080, "protocol": "TCP"},
            ],
        },
        {
            "from": [
                {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "payments"}},
                    "podSelector": {"matchLabels": {"app": "payment"}},
                },
                {"podSelector": {"matchLabels": {"app": "gateway"}}},
            ],
            "ports": [{"port": 8080, "protocol": "TCP"}, {"port": 8443, "protocol": "TCP"}],
        },
    ]


def test_excluded_rows_stay_out_and_duplicate_included_row_wins() -> None:
    spec = generate(
        ingress(GATEWAY, 8080), ingress(GATEWAY, 8080, included=False), ingress(CART, 9000, included=False)
    ).policy["spec"]
    assert spec["ingress"] == [
        {"from": [{"podSelector": {"matchLabels": {"app": "gateway"}}}], "ports": [{"port": 8080, "protocol": "TCP"}]}
    ]


def test_output_is_deterministic_whatever_the_input_order() -> None:
    rows = [
        ingress(GATEWAY, 8080),
        ingress(PAYMENT, 8443),
        ingress(LEGACY, 1),
        egress(CART, 7070),
        egress(CART, 7071, "UDP"),
        egress(AddressPeer("203.0.113.9"), 443),
        egress(AddressPeer("203.0.113.10"), 443),
        egress(AddressPeer("10.1.2.3", cidrs=("10.0.0.0/8",)), 5432),
        egress(PAYMENT, 7070, included=False),
    ]
    manual = (
        ManualRule("egress", "192.0.2.0/24", (PortRange(22), PortRange(80, "TCP", 90))),
        ManualRule("ingress", "10.1.0.0/16"),
    )
    texts = set()
    rng = random.Random(7)
    for _ in range(20):
        rng.shuffle(rows)
        draft = Draft(manual_rules=tuple(rng.sample(manual, len(manual))))
        texts.add(to_yaml([generate(*rows, draft=draft).policy]))
    assert len(texts) == 1


# --- modes, manual rules, DNS --------------------------------------------------------------------------------


def test_block_all_lists_the_type_with_no_rules_and_keeps_dns_for_egress() -> None:
    draft = Draft(
        ingress_mode="block-all", egress_mode="block-all", manual_rules=(ManualRule("ingress", "10.0.0.0/8"),)
    )
    spec = generate(ingress(GATEWAY, 8080), egress(CART, 7070), draft=draft).policy["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in spec
    assert spec["egress"] == [DNS_RULE]
    spec_no_dns = generate(draft=draft, dns=None).policy["spec"]
    assert "egress" not in spec_no_dns


def test_allow_namespace_is_an_empty_pod_selector_peer() -> None:
    draft = Draft(ingress_mode="allow-namespace", egress_mode="allow-namespace")
    spec = generate(ingress(PAYMENT, 8080), egress(PAYMENT, 7070), draft=draft).policy["spec"]
    assert spec["ingress"] == [{"from": [{"podSelector": {}}]}]
    assert spec["egress"] == [{"to": [{"podSelector": {}}]}, DNS_RULE]


def test_allow_all_is_one_empty_rule_and_needs_no_dns() -> None:
    draft = Draft(ingress_mode="allow-all", egress_mode="allow-all")
    spec = generate(ingress(GATEWAY, 8080), draft=draft).policy["spec"]
    assert spec["ingress"] == [{}]
    assert spec["egress"] == [{}]
    assert spec["policyTypes"] == ["Ingress", "Egress"]


def test_dns_rule_whenever_egress_is_restricted_and_merged_with_observed_dns() -> None:
    coredns = WorkloadPeer(
        "kube-system", "Deployment", "coredns", {"k8s-app": "kube-dns"}, {"kubernetes.io/metadata.name": "kube-system"}
    )
    spec = generate(egress(coredns, 53, "UDP")).policy["spec"]
    assert spec["egress"] == [DNS_RULE]
    custom_dns = DNSTarget("dns", {"app": "coredns"})
    spec = generate(dns=custom_dns).policy["spec"]
    assert spec["egress"][0]["to"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "dns"}},
            "podSelector": {"matchLabels": {"app": "coredns"}},
        }
    ]


def test_manual_rules_as_ip_blocks_with_or_without_ports() -> None:
    draft = Draft(
        manual_rules=(
            ManualRule("egress", "192.0.2.0/24", (PortRange(443), PortRange(8000, "UDP", 8100))),
            ManualRule("ingress", "10.1.2.3/16"),
            ManualRule("egress", "not-a-cidr"),
        )
    )
    result = generate(draft=draft, dns=None)
    assert result.policy["spec"]["ingress"] == [{"from": [{"ipBlock": {"cidr": "10.1.0.0/16"}}]}]
    assert result.policy["spec"]["egress"] == [
        {
            "to": [{"ipBlock": {"cidr": "192.0.2.0/24"}}],
            "ports": [{"port": 443, "protocol": "TCP"}, {"port": 8000, "endPort": 8100, "protocol": "UDP"}],
        }
    ]
    assert [w.code for w in result.warnings] == ["invalid-peer"]


def test_unknown_mode_is_an_error() -> None:
    with pytest.raises(GenerationError, match="unknown ingress mode 'open'"):
        generate_policy(GenerationRequest(SCOPE, draft=Draft(ingress_mode="open")))  # type: ignore[arg-type]


# --- many scopes and YAML ------------------------------------------------------------------------------------


def test_generate_policies_reports_failures_and_generates_the_rest() -> None:
    bad = Scope("c", "shop", "CronJob", "once", pod_labels={"job-name": "once-1"})
    other = Scope("c", "shop", "Deployment", "api", pod_labels={"app": "api"})
    results, failures = generate_policies([GenerationRequest(SCOPE), GenerationRequest(bad), GenerationRequest(other)])
    assert [r.name for r in results] == ["netsec-deployment-api", "netsec-deployment-frontend"]
    assert [(s.name, "no usable label" in str(e)) for s, e in failures] == [("once", True)]


def test_to_yaml_is_multi_document_and_round_trips() -> None:
    first = generate(ingress(GATEWAY, 8080)).policy
    cart = Scope("c", "shop", "Service", "cart", own_selector=LabelSelector((("app", "cart"),)))
    second = generate(scope=cart).policy
    text = to_yaml([first, second])
    assert text.startswith("---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n")
    assert text.count("\n---\n") == 1
    assert list(yaml.safe_load_all(text)) == [first, second]
    assert to_yaml([]) == ""


def test_yaml_is_written_by_libyaml_here_and_reads_like_kubectl_output() -> None:
    from policies.engine.yamlout import DUMPER

    assert DUMPER is yaml.CSafeDumper  # the fast emitter is installed on every supported platform
    text = to_yaml([generate(ingress(GATEWAY, 8080)).policy])
    # Lists sit at their key's indentation, as `kubectl get -o yaml` prints them.
    assert "\n  policyTypes:\n  - Ingress\n  - Egress\n" in text


def test_window_naive_datetimes_are_taken_as_utc() -> None:
    result = generate(window_start=datetime(2026, 3, 1), window_end=datetime(2026, 3, 2, tzinfo=UTC))
    annotations = result.policy["metadata"]["annotations"]
    assert annotations["netsec/observed-from"] == "2026-03-01T00:00:00Z"
    assert annotations["netsec/observed-to"] == "2026-03-02T00:00:00Z"


def test_observed_dns_lookups_merge_into_the_dns_rule() -> None:
    from policies.engine import CommunicationRow, GenerationRequest, Scope, WorkloadPeer, generate_policy

    coredns = WorkloadPeer("kube-system", "Deployment", "coredns",
                           pod_labels={"app.kubernetes.io/name": "coredns", "k8s-app": "kube-dns"},
                           namespace_labels={"kubernetes.io/metadata.name": "kube-system"})
    scope = Scope("c", "shop", "Deployment", "web", pod_labels={"app": "web"},
                  namespace_labels={"kubernetes.io/metadata.name": "shop"})
    rows = (CommunicationRow("egress", coredns, 53, "UDP"), CommunicationRow("egress", coredns, 9153, "TCP"))
    egress = generate_policy(GenerationRequest(scope, rows)).policy["spec"]["egress"]
    assert len(egress) == 2  # the DNS rule, and the metrics port of coredns; no second rule for 53/UDP
    assert [r["ports"] for r in egress] == [[{"port": 53, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}],
                                            [{"port": 9153, "protocol": "TCP"}]]
