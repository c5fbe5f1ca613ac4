"""The two things the live sync added to the inventory's write path: a snapshot that speaks for every
namespace, and pods reported deleted (a watch) outside a full snapshot."""

from __future__ import annotations

from datetime import timedelta

import pytest

from flows.ingest.inventory import NamespaceObj, PodObj, Snapshot, parse_bytes
from flows.models import Namespace, Pod, PodAddress, Workload
from flows.store.inventory import apply_snapshot
from tests.inventory import builders as b

pytestmark = pytest.mark.django_db

T0, T1 = b.T0, b.T0 + timedelta(hours=1)


def objects(items: list[dict]) -> list:
    return parse_bytes(b.to_json(items).encode(), "test")[0]


def shop_without_namespace(name: str) -> list[dict]:
    return [i for i in b.shop() if name not in (i["metadata"].get("namespace"), i["metadata"]["name"])]


def test_a_dump_without_a_namespace_deletes_nothing_in_it(cluster) -> None:
    apply_snapshot(cluster, Snapshot.of(objects(b.shop())), observed_at=T0, full=True)
    apply_snapshot(cluster, Snapshot.of(objects(shop_without_namespace("kube-system"))), observed_at=T1, full=True)

    # As import_inventory always did: kube-system is not named by the dump, so it says nothing about it.
    assert Pod.objects.get(name="agent-eeeee").deleted_at is None
    assert Namespace.objects.get(name="kube-system").deleted_at == T1  # the namespace kind was listed


def test_a_snapshot_of_every_namespace_deletes_the_objects_of_those_gone(cluster) -> None:
    apply_snapshot(cluster, Snapshot.of(objects(b.shop())), observed_at=T0, full=True)
    snapshot = Snapshot.of(objects(shop_without_namespace("kube-system")), all_namespaces=True,
                           kinds=["Namespace", "Node", "Pod", "Service", "Deployment", "ReplicaSet", "DaemonSet",
                                  "StatefulSet", "Job", "CronJob", "NetworkPolicy", "EndpointSlice"])
    stats = apply_snapshot(cluster, snapshot, observed_at=T1, full=True)

    assert Pod.objects.get(name="agent-eeeee").deleted_at == T1
    assert Workload.objects.get(name="agent").deleted_at == T1
    assert stats["Pod"].deleted == 1 and stats["DaemonSet"].deleted == 1
    assert not Pod.objects.filter(namespace__name="shop", deleted_at__isnull=False).exists()


def test_every_namespace_means_nothing_without_full(cluster) -> None:
    apply_snapshot(cluster, Snapshot.of(objects(b.shop())), observed_at=T0, full=True)
    snapshot = Snapshot.of(objects(shop_without_namespace("kube-system")), all_namespaces=True)
    assert not apply_snapshot(cluster, snapshot, observed_at=T1, full=False).changed


def _pod(name: str) -> PodObj:
    return next(o for o in objects(b.shop()) if isinstance(o, PodObj) and o.name == name)


def test_a_pod_reported_deleted_is_soft_deleted_and_its_address_closed(cluster) -> None:
    apply_snapshot(cluster, Snapshot.of(objects(b.shop())), observed_at=T0, full=True)
    stats = apply_snapshot(cluster, Snapshot.of([], deleted=[_pod("web-5d9f8-aaaaa")]), observed_at=T1, full=False)

    pod = Pod.objects.get(name="web-5d9f8-aaaaa")
    assert pod.deleted_at == T1
    assert PodAddress.objects.get(pod=pod).valid_to == T1
    assert stats["Pod"].deleted == 1 and stats.addresses_closed == 1
    # Its owner stays, and so does every other pod.
    assert Workload.objects.get(name="web-5d9f8").deleted_at is None
    assert Pod.objects.filter(deleted_at__isnull=False).count() == 1


def test_a_bare_pod_reported_deleted_takes_its_workload_along(cluster) -> None:
    apply_snapshot(cluster, Snapshot.of(objects(b.shop())), observed_at=T0, full=True)
    apply_snapshot(cluster, Snapshot.of([], deleted=[_pod("debug")]), observed_at=T1, full=False)

    assert Workload.objects.get(kind="Pod", name="debug").deleted_at == T1
    assert Workload.objects.filter(deleted_at__isnull=False).count() == 1


def test_a_pod_reported_deleted_that_is_also_listed_stays(cluster) -> None:
    apply_snapshot(cluster, Snapshot.of(objects(b.shop())), observed_at=T0, full=True)
    pod = _pod("db-0")
    assert not apply_snapshot(cluster, Snapshot.of([pod], deleted=[pod]), observed_at=T1, full=False).changed
    assert Pod.objects.get(name="db-0").deleted_at is None


def test_a_deleted_pod_of_another_uid_leaves_the_new_one_alone(cluster) -> None:
    apply_snapshot(cluster, Snapshot.of(objects(b.shop())), observed_at=T0, full=True)
    old = PodObj(name="db-0", namespace="shop", uid="an-older-db-0")  # the pod before it was made again
    apply_snapshot(cluster, Snapshot.of([], deleted=[old]), observed_at=T1, full=False)
    assert Pod.objects.get(name="db-0").deleted_at is None


def test_only_pods_can_be_reported_deleted() -> None:
    with pytest.raises(TypeError, match="only pods can be reported deleted, not Namespace 'shop'"):
        Snapshot.of([], deleted=[NamespaceObj(name="shop")])  # type: ignore[list-item]
