"""The watch of pods between two full lists: events through the one write path, 410 Gone, retries."""

from __future__ import annotations

import copy
import time
from dataclasses import replace
from datetime import timedelta

import pytest
from django.utils import timezone

from flows.aggregate import aggregate_cluster
from flows.kube.sync import sync_and_watch, sync_cluster, watch_pods
from flows.models import Communication, Pod, PodAddress, Workload
from tests import factories as f
from tests.sync.conftest import FAST
from tests.sync.fakeapi import event, expired

pytestmark = pytest.mark.django_db

WATCH_FOR = 0.4  # seconds a watch runs after its scripted events: all of them have arrived by then


def listed(live):
    result = sync_cluster(live, options=FAST)
    assert result.ok, result.error
    return result


def watch(live, client, version: str = "1000", seconds: float = WATCH_FOR):
    return watch_pods(live, version, api=client, until=time.monotonic() + seconds)


def pod_item(server, name: str) -> dict:
    return copy.deepcopy(next(i for i in server.items("pods") if i["metadata"]["name"] == name))


def new_pod(server, name: str, ip: str, *, like: str = "web-000-27vddfwxlv-gx87d") -> dict:
    item = pod_item(server, like)
    item["metadata"] |= {"name": name, "uid": f"uid-{name}"}
    item["status"] |= {"podIP": ip, "podIPs": [{"ip": ip}],
                       "startTime": (timezone.now() - timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ")}
    return item


def test_a_pod_deleted_by_a_watch_event_is_soft_deleted_and_its_address_closed(live, server, client) -> None:
    listed(live)
    gone = pod_item(server, "web-000-27vddfwxlv-gx87d")
    server.watches = [[event("DELETED", gone, "1001")]]
    before = timezone.now()
    result = watch(live, client)

    assert result.events == {"DELETED": 1} and result.pods.deleted == 1 and result.addresses_closed == 1
    assert result.resource_version == "1001" and not result.expired and result.failure is None
    pod = Pod.objects.get(name="web-000-27vddfwxlv-gx87d")
    assert pod.deleted_at is not None and pod.deleted_at >= before
    assert PodAddress.objects.get(pod=pod).valid_to == pod.deleted_at
    # Nothing else was touched.
    assert Pod.objects.filter(deleted_at__isnull=False).count() == 1
    request = server.requests_to("pods", watch=True)[0]
    assert request.query | {"timeoutSeconds": "-"} == {"watch": "true", "resourceVersion": "1000",
                                                       "allowWatchBookmarks": "true", "timeoutSeconds": "-"}


def test_a_pod_added_by_the_watch_resolves_its_new_ip(live, server, client) -> None:
    listed(live)
    server.watches = [[
        event("ADDED", new_pod(server, "web-000-27vddfwxlv-n3wp0", "10.0.1.77"), "1001"),
        {"type": "BOOKMARK", "object": {"kind": "Pod", "apiVersion": "v1", "metadata": {"resourceVersion": "1005"}}},
    ]]
    result = watch(live, client)

    assert result.events == {"ADDED": 1, "BOOKMARK": 1} and result.pods.created == 1
    assert result.resource_version == "1005"
    address = PodAddress.objects.get(ip="10.0.1.77")
    assert address.pod.name == "web-000-27vddfwxlv-n3wp0" and address.valid_to is None
    # A flow from that address now belongs to the Deployment.
    f.flow(live, "10.0.1.77", 40000, "10.0.1.5", 5432, time=timezone.now())
    aggregate_cluster(live)
    communication = Communication.objects.get(cluster=live, port=5432)
    assert communication.src_workload == Workload.objects.get(namespace__name="ns-000", kind="Deployment",
                                                              name="web-000")


def test_a_bare_pod_deleted_by_the_watch_takes_its_workload_along(live, server, client) -> None:
    debug = new_pod(server, "debug", "10.0.1.88")
    del debug["metadata"]["ownerReferences"]
    server.items("pods").append(debug)
    listed(live)
    assert Workload.objects.get(kind="Pod", name="debug").deleted_at is None
    server.watches = [[event("DELETED", debug, "1001")]]
    watch(live, client)

    assert Workload.objects.get(kind="Pod", name="debug").deleted_at is not None
    assert Pod.objects.get(name="debug").deleted_at is not None


def test_events_of_one_pod_that_arrive_together_end_in_its_last_state(live, server, client) -> None:
    listed(live)
    pending = new_pod(server, "web-000-27vddfwxlv-pend1", "10.0.1.90")
    del pending["status"]["podIP"], pending["status"]["podIPs"]
    running = new_pod(server, "web-000-27vddfwxlv-pend1", "10.0.1.90")
    server.watches = [[event("ADDED", pending, "1001"), event("MODIFIED", running, "1002")]]
    result = watch(live, client)

    assert result.events == {"ADDED": 1, "MODIFIED": 1}
    assert PodAddress.objects.get(pod__name="web-000-27vddfwxlv-pend1").ip == "10.0.1.90"


def test_a_410_error_event_makes_a_fresh_list_then_the_watch_goes_on(live, server, client) -> None:
    server.watches = [
        [lambda: server.set_version("pods", "2000"), expired()],
        [event("ADDED", new_pod(server, "web-000-27vddfwxlv-after", "10.0.1.91"), "2001")],
    ]
    reports = []
    ok = sync_and_watch(live, api=client, seconds=1.0, report=reports.append)

    assert ok
    assert len(server.requests_to("pods")) == 2 * 4  # two full lists of four pages
    watches = server.requests_to("pods", watch=True)
    assert [w.query["resourceVersion"] for w in watches[:2]] == ["1000", "2000"]
    assert reports[1].expired and "resourceVersion expired (410 Gone): listing again" in str(reports[1])
    assert PodAddress.objects.get(ip="10.0.1.91").pod.name == "web-000-27vddfwxlv-after"


def test_a_watch_refused_with_410_lists_again(live, server, client) -> None:
    server.watches = [410, [event("DELETED", pod_item(server, "cache-0"), "1001")]]
    assert sync_and_watch(live, api=client, seconds=1.0)

    assert len(server.requests_to("namespaces")) == 2
    assert Pod.objects.get(name="cache-0").deleted_at is not None


def test_a_watch_that_fails_is_retried_from_the_last_version(live, server, client) -> None:
    listed(live)
    server.watches = [[event("DELETED", pod_item(server, "cache-0"), "1001"),
                       {"type": "ERROR", "object": {"kind": "Status", "code": 500, "message": "internal error"}}],
                      503,
                      [event("DELETED", pod_item(server, "db-002-65fxz57stq-rz77b"), "1002")]]
    result = watch(live, client, seconds=0.8)

    assert result.retries == 2 and result.failure is None and result.connections == 2
    versions = [w.query["resourceVersion"] for w in server.requests_to("pods", watch=True)]
    assert versions[:3] == ["1000", "1001", "1001"]
    assert Pod.objects.filter(deleted_at__isnull=False).count() == 2


def test_a_watch_that_the_server_ends_is_opened_again(live, server, client) -> None:
    listed(live)
    client.options = replace(client.options, watch_timeout=1)
    result = watch(live, client, seconds=1.5)

    assert result.connections == 2 and result.failure is None
    assert [w.query["timeoutSeconds"] for w in server.requests_to("pods", watch=True)] == ["1", "1"]


def test_a_watch_without_permission_stops(live, server, client) -> None:
    server.watches = [403]
    reports = []
    assert not sync_and_watch(live, api=client, seconds=1.0, report=reports.append)

    failure = reports[-1].failure
    assert failure.status == 403 and "missing permission to watch pods" in failure.message
    assert len(server.requests_to("pods", watch=True)) == 1


def test_a_watch_that_keeps_failing_gives_up_after_its_attempts(live, server, client) -> None:
    error = {"type": "ERROR", "object": {"kind": "Status", "code": 500, "message": "etcd is down"}}
    server.watches = [[error]] * FAST.backoff.attempts
    result = watch(live, client, seconds=2)

    assert result.failure is not None and result.failure.retriable
    assert result.failure.message == "watch of pods: error 500 in the stream: etcd is down (after 3 attempts)"
    assert len(server.requests_to("pods", watch=True)) == FAST.backoff.attempts

