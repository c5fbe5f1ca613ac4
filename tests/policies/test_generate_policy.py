"""Drafts, the service layer and generate_policy, on the database (both SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import kubernetes_validate
import pytest
import yaml
from django.core.management import CommandError, call_command

from flows.access import SYSTEM
from flows.aggregate import aggregate_cluster
from flows.models import IPAlias, NetworkPolicy
from policies import engine, services
from policies.models import DraftRevision
from tests import factories as f
from tests.factories import T0

UNTIL = (T0 + timedelta(hours=2)).isoformat()


def generate(*args: str) -> tuple[list[dict], str]:
    out, err = StringIO(), StringIO()
    call_command("generate_policy", *args, "--until", UNTIL, stdout=out, stderr=err)
    return [d for d in yaml.safe_load_all(out.getvalue()) if d], err.getvalue()


@pytest.fixture
def shop(cluster):
    f.namespace(cluster, "legacy", labels={})
    fe = f.workload(cluster, "shop", "Deployment", "frontend")
    api = f.workload(cluster, "shop", "Deployment", "api")
    db = f.workload(cluster, "data", "StatefulSet", "db")
    old = f.workload(cluster, "legacy", "Deployment", "sync")
    bare = f.workload(cluster, "shop", "Pod", "debug", labels={"pod-template-hash": "abc"})
    dns = f.workload(cluster, "kube-system", "Deployment", "coredns", labels={"k8s-app": "kube-dns"})
    f.pod(cluster, fe, "frontend-1", "10.244.1.1")
    f.pod(cluster, api, "api-1", "10.244.1.2", ports=(("http", 8080, "TCP"),))
    f.pod(cluster, db, "db-0", "10.244.1.3", ports=(("pg", 5432, "TCP"),))
    f.pod(cluster, old, "sync-1", "10.244.1.4")
    f.pod(cluster, bare, "debug", "10.244.1.5")
    f.pod(cluster, dns, "coredns-1", "10.244.0.10", ports=(("dns", 53, "UDP"),))
    f.flow(cluster, "10.244.1.1", 40000, "10.244.1.2", 8080)
    f.flow(cluster, "10.244.1.4", 40000, "10.244.1.2", 8080)
    f.flow(cluster, "10.244.1.2", 40001, "10.244.1.3", 5432)
    f.flow(cluster, "10.244.1.2", 40002, "10.244.1.3", 5432, verdict="DROPPED", time=T0 + timedelta(minutes=1))
    f.flow(cluster, "10.244.1.2", 40003, "203.0.113.5", 443)
    f.flow(cluster, "10.244.1.2", 40004, "198.51.100.7", 443)
    f.flow(cluster, "10.244.1.2", 40005, "10.244.0.10", 53, proto="UDP", flags="")
    f.flow(cluster, "10.244.1.5", 40006, "10.244.1.2", 8080)
    IPAlias.objects.create(name="partner", cidr="198.51.100.0/24", allowed=True)
    aggregate_cluster(cluster)
    return {"api": api}


def _validate(policy: dict) -> None:
    kubernetes_validate.validate(policy, "1.31", strict=True)


def test_default_draft_policy_for_a_workload(shop):
    policies, err = generate("--cluster", "test", "--namespace", "shop", "--kind", "Deployment", "--name", "api")
    assert len(policies) == 1
    policy = policies[0]
    _validate(policy)
    assert policy["metadata"]["name"] == "netsec-deployment-api"
    assert policy["spec"]["podSelector"] == {"matchLabels": {"app": "api"}}
    text = yaml.safe_dump(policy)
    # frontend allowed in; the unlabelled legacy namespace and the label-less debug pod are reported
    # and kept out.
    assert "frontend" in text and "debug" not in text and "sync" not in text
    assert "legacy" in err and "label" in err and "debug" in err
    # Egress: db (the dropped attempt does not re-open anything new), the allowed alias CIDR, DNS;
    # the plain external IP is excluded by default.
    assert "198.51.100.0/24" in text and "203.0.113.5" not in text
    assert "kube-dns" in text


def test_all_observed_includes_unresolved_ips(shop):
    policies, _ = generate("--cluster", "test", "--namespace", "shop", "--kind", "Deployment", "--name", "api",
                           "--all-observed")
    assert "203.0.113.5/32" in yaml.safe_dump(policies[0])


def test_draft_decisions_and_modes_change_the_output(shop):
    scope = services.resolve_scope(SYSTEM, "test", "shop", "Deployment", "api")
    rows = services.rows(SYSTEM, scope, "ingress", until=T0 + timedelta(hours=2))
    frontend_key = next(r.key for r in rows if getattr(r.peer, "name", "") == "frontend")
    services.set_row(SYSTEM, scope, frontend_key, False)
    services.set_mode(SYSTEM, scope, "egress", "block-all")
    services.add_manual_rule(SYSTEM, scope, "egress", "203.0.113.0/24", "443/tcp")
    policies, _ = generate("--cluster", "test", "--namespace", "shop", "--kind", "Deployment", "--name", "api")
    text = yaml.safe_dump(policies[0])
    assert "frontend" not in text
    # Block all keeps only DNS in egress, whatever rows and manual rules say.
    assert "198.51.100.0/24" not in text and "203.0.113.0/24" not in text and "kube-dns" in text
    services.set_mode(SYSTEM, scope, "egress", "custom")
    policies, _ = generate("--cluster", "test", "--namespace", "shop", "--kind", "Deployment", "--name", "api")
    assert "203.0.113.0/24" in yaml.safe_dump(policies[0])
    assert DraftRevision.objects.count() == 4
    with pytest.raises(ValueError, match="cidr"):
        services.add_manual_rule(SYSTEM, scope, "egress", "203.0.113.0/33")
    with pytest.raises(ValueError, match="ports"):
        services.add_manual_rule(SYSTEM, scope, "egress", "203.0.113.0/24", "http")


def test_all_skips_workloads_without_usable_labels(shop):
    policies, err = generate("--cluster", "test", "--namespace", "shop", "--all")
    names = [p["metadata"]["name"] for p in policies]
    assert names == ["netsec-deployment-api", "netsec-deployment-frontend"]
    assert "skipped Pod shop/debug" in err
    for policy in policies:
        _validate(policy)


def test_output_file_and_determinism(shop, tmp_path):
    target = tmp_path / "p.yaml"
    call_command("generate_policy", "--cluster", "test", "--namespace", "shop", "--all", "--until", UNTIL,
                 "-o", str(target), stdout=StringIO(), stderr=StringIO())
    first = target.read_text()
    call_command("generate_policy", "--cluster", "test", "--namespace", "shop", "--all", "--until", UNTIL,
                 "-o", str(target), stdout=StringIO(), stderr=StringIO())
    assert first == target.read_text() and first.startswith("---")


def test_bad_arguments_are_usage_errors(shop):
    with pytest.raises(CommandError, match="--kind and --name, or --all"):
        generate("--cluster", "test", "--namespace", "shop")
    with pytest.raises(CommandError, match="does not exist") as info:
        generate("--cluster", "nope", "--namespace", "shop", "--all")
    assert info.value.returncode == 1
    with pytest.raises(CommandError) as info:
        generate("--cluster", "test", "--namespace", "shop")
    assert info.value.returncode == 2


def test_verdicts_follow_the_applied_policies(shop, cluster):
    ns = f.namespace(cluster, "data")
    NetworkPolicy.objects.create(cluster=cluster, namespace=ns, name="deny-all", spec={
        "podSelector": {}, "policyTypes": ["Ingress"]}, manifest={
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "deny-all", "namespace": "data"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}})
    scope = services.resolve_scope(SYSTEM, "test", "shop", "Deployment", "api")
    until = T0 + timedelta(hours=2)
    # The applied deny-all alone (no draft policy) blocks the egress to db at db's ingress.
    rows = services.rows(SYSTEM, scope, until=until)
    judged = engine.row_verdicts(scope, rows, None, [NetworkPolicy.objects.get(name="deny-all").manifest])
    to_db = [v for v in judged if getattr(v.row.peer, "name", "") == "db"]
    assert to_db and all(not v.allowed and v.blocked_by == ("ingress",) for v in to_db)

    # The service-level verdicts add the draft: excluded rows turn red, the unlabelled namespace too.
    partner = next(r.key for r in services.rows(SYSTEM, scope, "egress", until=until)
                   if getattr(r.peer, "alias", None) == "partner")
    services.set_row(SYSTEM, scope, partner, False)
    rows = services.verdicts(SYSTEM, scope, until=until).verdicts
    by_peer = {(r.row.direction, getattr(r.row.peer, "name", None) or r.row.peer.ip, r.row.port): r for r in rows}
    assert by_peer[("ingress", "frontend", 8080)].allowed
    legacy = by_peer[("ingress", "sync", 8080)]
    assert not legacy.allowed and legacy.blocked_by == ("ingress",) and "legacy" in legacy.warning
    assert not by_peer[("egress", "198.51.100.7", 443)].allowed
    assert by_peer[("egress", "db", 5432)].policies == ("data/deny-all",)


def test_an_applied_policy_the_engine_cannot_read_is_named_and_the_others_still_judge(shop, cluster):
    ns = f.namespace(cluster, "data")
    broken = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
              "metadata": {"name": "future", "namespace": "data"},
              "spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{"from": [{"nodeSelector": {}}]}]}}
    NetworkPolicy.objects.create(cluster=cluster, namespace=ns, name="future", spec=broken["spec"], manifest=broken)
    deny = {**broken, "metadata": {"name": "deny-all", "namespace": "data"},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}
    NetworkPolicy.objects.create(cluster=cluster, namespace=ns, name="deny-all", spec=deny["spec"], manifest=deny)
    scope = services.resolve_scope(SYSTEM, "test", "shop", "Deployment", "api")
    result = services.verdicts(SYSTEM, scope, until=T0 + timedelta(hours=2))
    assert result.unreadable == ("policy data/future: spec.ingress[0].from[0].nodeSelector: unknown field",)
    to_db = [v for v in result.verdicts if getattr(v.row.peer, "name", "") == "db"]
    assert to_db and all(v.policies == ("data/deny-all",) and not v.allowed for v in to_db)
