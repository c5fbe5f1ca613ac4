"""Soft-deleted inventory under retention: it goes once nothing needs it, never a row that a remaining one
points at, and never taking a communication with it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.db.models import Model

from flows.models import (
    Communication,
    Namespace,
    NamespaceGrant,
    NetworkPolicy,
    Node,
    Pod,
    PodAddress,
    Service,
    ServiceAddress,
    ServicePort,
    Workload,
)
from flows.retention import RetentionPolicy, apply_retention
from policies.models import Draft
from tests import factories as f
from tests.factories import T0

pytestmark = pytest.mark.django_db

POLICY = RetentionPolicy(raw_flows_days=7, hourly_days=90, daily_days=400, batch=2)
NOW = T0 + timedelta(days=10)  # raw flows before 2026-11-23 go: what only resolved them may go too
LONG_AGO = T0 - timedelta(days=30)
RECENTLY = NOW - timedelta(days=1)


def _delete(obj: Model, when=LONG_AGO) -> None:  # type: ignore[no-untyped-def]
    type(obj).objects.filter(pk=obj.pk).update(deleted_at=when)


def _exists(obj: Model) -> bool:
    return type(obj)._base_manager.filter(pk=obj.pk).exists()


@pytest.fixture
def inventory(cluster):
    shop = f.namespace(cluster, "shop")
    talker = f.workload(cluster, "shop", "Deployment", "talker")  # deleted, but a communication names it
    gone = f.workload(cluster, "shop", "Deployment", "gone")  # deleted, nothing names it
    deploy = f.workload(cluster, "shop", "Deployment", "web")  # deleted with its ReplicaSet: a chain
    replicas = f.workload(cluster, "shop", "ReplicaSet", "web-5d4f", parent=deploy)
    live = f.workload(cluster, "shop", "Deployment", "live")
    gone_pod = f.pod(cluster, gone, "gone-1", "10.244.1.1", since=LONG_AGO, until=LONG_AGO + timedelta(days=1))
    late_pod = f.pod(cluster, talker, "talker-1", "10.244.1.2", since=LONG_AGO, until=RECENTLY)
    live_pod = f.pod(cluster, live, "live-1", "10.244.1.3", since=T0)
    reused = PodAddress.objects.create(cluster=cluster, pod=live_pod, ip="10.244.1.9", valid_from=LONG_AGO,
                                       valid_to=LONG_AGO + timedelta(hours=1))
    service = f.service(cluster, "shop", "old-api", {"app": "gone"}, "10.96.0.77", [(80, "TCP", 8080)])
    policy = NetworkPolicy.objects.create(cluster=cluster, namespace=shop, name="old-policy")
    old_ns = f.namespace(cluster, "old")
    drafted = f.namespace(cluster, "drafted")
    Draft.objects.create(namespace=drafted, scope_kind="Deployment", scope_name="x")
    granted = f.namespace(cluster, "granted")
    grant = NamespaceGrant.objects.create(group=Group.objects.create(name="ops"), role="viewer")
    grant.namespaces.add(granted)
    holding = f.namespace(cluster, "holding")
    held = Workload.objects.create(cluster=cluster, namespace=holding, kind="Deployment", name="held")
    Communication.objects.create(cluster=cluster, bucket=T0, src_workload=talker, dst_workload=held, port=80,
                                 protocol="TCP", connections=3, first_seen=T0, last_seen=T0, sealed=True)
    Communication.objects.create(cluster=cluster, bucket=T0, src_ip="10.0.0.1", dst_workload=talker, port=80,
                                 protocol="TCP", connections=1, first_seen=T0, last_seen=T0, sealed=True)
    old_node = Node.objects.create(cluster=cluster, name="old-node", addresses=["172.18.0.9"])
    late_node = Node.objects.create(cluster=cluster, name="late-node", addresses=["172.18.0.8"])
    for obj in (talker, gone, deploy, replicas, gone_pod, service, policy, old_ns, drafted, granted, holding, held,
                old_node):
        _delete(obj)
    _delete(late_pod, RECENTLY - timedelta(days=2))
    _delete(late_node, T0 + timedelta(days=1))  # gone before the raw flows' cutoff, not before the communications
    return locals()


def test_what_nothing_needs_goes_and_the_rest_stays(cluster, inventory) -> None:
    inv = inventory
    communications = sorted(Communication.objects.values_list("id", "connections"))
    result = apply_retention(NOW, policy=POLICY)
    assert sorted(Communication.objects.values_list("id", "connections")) == communications
    for name in ("gone", "deploy", "replicas", "gone_pod", "reused", "service", "policy", "old_ns", "old_node"):
        assert not _exists(inv[name]), name
    for name in ("talker", "held", "holding", "shop", "live", "live_pod", "late_pod", "drafted", "granted",
                 "late_node"):
        assert _exists(inv[name]), name
    assert PodAddress.objects.filter(pod=inv["late_pod"]).exists()  # its address closed after the cutoff
    assert PodAddress.objects.filter(pod=inv["live_pod"]).count() == 1
    assert not ServiceAddress.objects.filter(ip="10.96.0.77").exists()
    assert not ServicePort.objects.filter(service_id=inv["service"].id).exists()
    assert result.inventory == {"pod addresses": 2, "pods": 1, "network policies": 1, "services": 1, "workloads": 3,
                                "nodes": 1, "namespaces": 1}
    assert sum(apply_retention(NOW, policy=POLICY).inventory.values()) == 0


def test_dry_run_leaves_the_inventory_alone(cluster, inventory) -> None:
    counts = {m: m._base_manager.count() for m in (Namespace, Workload, Pod, PodAddress, Service, Node)}
    dry = apply_retention(NOW, policy=POLICY, dry_run=True)
    assert dry.inventory["pods"] == 0  # its address is still there until the run deletes it: a first pass only
    assert dry.inventory["pod addresses"] == 2
    assert {m: m._base_manager.count() for m in counts} == counts


def test_a_live_object_is_never_pruned(cluster, inventory) -> None:
    Workload.objects.filter(pk=inventory["gone"].pk).update(deleted_at=None)
    apply_retention(NOW, policy=POLICY)
    assert _exists(inventory["gone"])
