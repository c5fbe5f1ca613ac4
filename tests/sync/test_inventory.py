"""What successive live syncs do to the inventory, and what they record on the cluster."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from flows.kube.sync import sync_cluster
from flows.models import Namespace, NetworkPolicy, Node, Pod, PodAddress, Service, Workload
from tests.sync.conftest import FAST

pytestmark = pytest.mark.django_db


def sync(cluster):
    result = sync_cluster(cluster, options=FAST)
    assert result.ok, result.error
    return result


def test_a_second_sync_of_the_same_cluster_changes_nothing(live, server) -> None:
    sync(live)
    with CaptureQueriesContext(connection) as queries:
        result = sync(live)
    assert not result.stats.changed
    assert not any(q["sql"].startswith(("UPDATE", "INSERT", "DELETE")) and "flows_cluster" not in q["sql"]
                   for q in queries.captured_queries)


def test_an_object_deleted_between_two_syncs_is_soft_deleted_and_its_address_closed(live, server) -> None:
    sync(live)
    server.remove("pods", "web-000-27vddfwxlv-gx87d")
    server.remove("services", "web-000")  # the one in ns-000 comes first
    server.remove("nodes", "node-001")
    result = sync(live)

    pod = Pod.objects.get(name="web-000-27vddfwxlv-gx87d")
    assert pod.deleted_at == result.observed_at
    address = PodAddress.objects.get(pod=pod)
    assert (address.ip, address.valid_to) == ("10.0.1.1", result.observed_at)
    assert Service.objects.get(namespace__name="ns-000", name="web-000").deleted_at == result.observed_at
    assert Service.objects.get(namespace__name="ns-001", name="web-000").deleted_at is None
    # The node still appears through its pods' hostIPs, so its row stays (with the addresses they tell).
    assert Node.objects.get(name="node-001").deleted_at is None
    assert result.stats["Pod"].deleted == 1 and result.stats["Service"].deleted == 1
    assert live.last_sync_summary["import"]["kinds"]["Pod"]["deleted"] == 1


def test_a_namespace_that_is_gone_takes_its_objects_with_it(live, server) -> None:
    sync(live)
    # As the API shows it once a namespace is deleted: neither it nor anything in it is listed.
    for plural in ("namespaces", "pods", "services", "deployments", "replicasets", "statefulsets",
                   "networkpolicies"):
        items = server.items(plural)
        items[:] = [i for i in items if "ns-001" not in (i["metadata"].get("namespace"), i["metadata"]["name"])]
    result = sync(live)

    when = result.observed_at
    assert Namespace.objects.get(name="ns-001").deleted_at == when
    assert set(Pod.objects.filter(namespace__name="ns-001").values_list("deleted_at", flat=True)) == {when}
    assert set(Workload.objects.filter(namespace__name="ns-001").values_list("deleted_at", flat=True)) == {when}
    assert set(NetworkPolicy.objects.filter(namespace__name="ns-001").values_list("deleted_at", flat=True)) == {when}
    assert not PodAddress.objects.filter(pod__namespace__name="ns-001", valid_to__isnull=True).exists()
    # The other namespaces are untouched.
    assert not Pod.objects.filter(deleted_at__isnull=False).exclude(namespace__name="ns-001").exists()


def test_an_object_back_in_the_list_is_undeleted(live, server) -> None:
    sync(live)
    pod = server.remove("pods", "cache-0")
    sync(live)
    assert Pod.objects.get(name="cache-0").deleted_at is not None
    server.items("pods").append(pod)
    sync(live)
    assert Pod.objects.get(name="cache-0").deleted_at is None


def test_the_attempt_is_recorded_on_the_cluster(live, server) -> None:
    assert live.last_sync is None
    result = sync(live)

    live.refresh_from_db()
    assert live.last_sync is not None and live.last_sync == live.last_sync_attempt
    assert live.last_sync_error == ""
    assert live.last_sync_duration == pytest.approx(result.duration) and live.last_sync_duration > 0
    summary = live.last_sync_summary
    assert summary["ok"] is True and summary["full"] is True and summary["api"] == server.url
    assert summary["kinds"]["Pod"] == {"listed": 18, "pages": 4, "retries": 0, "restarts": 0, "unreadable": 0,
                                       "error": "", "resource_version": "1000", "skipped": False}
    assert summary["import"]["kinds"]["Pod"] == {"created": 18, "updated": 0, "deleted": 0, "unchanged": 0}
    assert summary["import"]["addresses_opened"] == result.stats.addresses_opened > 0
    assert str(result).startswith("test: synced 54 objects of 12 kinds in ")

    # A failure next: the error and the attempt are recorded, the last success stays.
    succeeded = live.last_sync
    server.fail("pods", 500, times=-1)
    failed = sync_cluster(live, options=FAST)
    live.refresh_from_db()
    assert live.last_sync == succeeded and live.last_sync_attempt > succeeded
    assert live.last_sync_error == failed.error and "Pod: 500 Internal Server Error" in failed.error
    assert live.last_sync_summary["ok"] is False
    assert str(failed).startswith("test: sync failed for Pod in ")

    # And a success clears the error.
    server.faults.clear()
    sync(live)
    live.refresh_from_db()
    assert live.last_sync_error == "" and live.last_sync == live.last_sync_attempt
