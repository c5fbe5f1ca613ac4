"""The lists of a live sync over HTTP, through the real client: paging, retries, expired tokens, timeouts,
and what a failed list does (nothing is deleted) and says (which resource, why)."""

from __future__ import annotations

import json
import socket
from dataclasses import replace

import pytest

from flows.kube.api import Backoff
from flows.kube.resources import RESOURCES
from flows.kube.sync import sync_cluster
from flows.models import Namespace, Node, Pod, PodAddress, Service, Workload
from tests.sync.conftest import FAST
from tests.sync.fakeapi import HANG_UP, kubeconfig

pytestmark = pytest.mark.django_db

POD_COUNT = 18


def test_a_server_that_pages_shorter_than_the_limit_is_followed_to_the_last_token(live, server) -> None:
    server.page = 2  # the client asks for 5 a page; this server gives 2, with a continue token
    result = sync_cluster(live, options=FAST)

    assert result.ok, result.error
    pods = server.requests_to("pods")
    assert len(pods) == POD_COUNT // 2
    assert [r.query.get("limit") for r in pods] == ["5"] * len(pods)
    assert "continue" not in pods[0].query and all("continue" in r.query for r in pods[1:])
    assert result.kinds["Pod"].listed == POD_COUNT and result.kinds["Pod"].pages == POD_COUNT // 2
    assert Pod.objects.filter(cluster=live).count() == POD_COUNT
    assert result.kinds["Pod"].resource_version == "1000"


def test_every_resource_of_the_list_is_read_and_stored(live, server) -> None:
    result = sync_cluster(live, options=FAST)

    assert set(result.kinds) == {r.kind for r in RESOURCES}
    assert {r.path for r in server.requests} == {r.path for r in RESOURCES}
    assert set(Namespace.objects.values_list("name", flat=True)) == {"default", "kube-system", "ns-000", "ns-001"}
    assert Node.objects.get(name="node-001").addresses == ["192.168.0.3"]
    kinds = set(Workload.objects.values_list("kind", flat=True))
    assert kinds == {"Deployment", "ReplicaSet", "DaemonSet", "StatefulSet", "Job", "CronJob"}
    # Owner chains across kinds: Pod -> Job -> CronJob, Pod -> ReplicaSet -> Deployment.
    assert Pod.objects.get(name="report-29000000-q8w4z").workload.name == "report"
    assert Pod.objects.get(name="web-000-27vddfwxlv-gx87d", namespace__name="ns-000").workload.kind == "Deployment"
    # The selectorless default/kubernetes resolves through its EndpointSlice.
    assert list(Service.objects.get(name="kubernetes").endpoints.values_list("ip", "port")) == [("192.168.0.2", 6443)]


def test_a_500_in_the_middle_of_a_list_is_retried(live, server) -> None:
    server.fail("pods", 500, on_continue=True)
    result = sync_cluster(live, options=FAST)

    assert result.ok, result.error
    assert result.kinds["Pod"].retries == 1 and result.kinds["Pod"].listed == POD_COUNT
    continued = [r for r in server.requests_to("pods") if "continue" in r.query]
    assert continued[0].query == continued[1].query  # the same page asked again
    assert Pod.objects.filter(cluster=live).count() == POD_COUNT


def test_429_and_503_are_retried_too(live, server) -> None:
    server.fail("services", 429, headers={"Retry-After": "0"})
    server.fail("nodes", 503)
    result = sync_cluster(live, options=FAST)

    assert result.ok, result.error
    assert result.kinds["Service"].retries == 1 and result.kinds["Node"].retries == 1


def test_an_expired_continue_token_restarts_the_list(live, server) -> None:
    server.fail("pods", 410, on_continue=True, message="The provided continue parameter is too old")
    result = sync_cluster(live, options=FAST)

    assert result.ok, result.error
    assert result.kinds["Pod"].restarts == 1 and result.kinds["Pod"].listed == POD_COUNT
    first_pages = [r for r in server.requests_to("pods") if "continue" not in r.query]
    assert len(first_pages) == 2  # begun again from the start
    assert Pod.objects.filter(cluster=live).count() == POD_COUNT


def test_a_list_whose_token_expires_every_time_gives_up(live, server) -> None:
    server.fail("pods", 410, on_continue=True, times=-1, message="too old")
    result = sync_cluster(live, options=FAST)

    assert result.failed["Pod"].endswith("(the continue token expired 4 times)")
    assert result.kinds["Pod"].restarts == FAST.list_restarts


def test_a_request_that_times_out_is_retried(live, server) -> None:
    server.fail("services", None, delay=FAST.timeout + 0.3)  # answers, but too late
    result = sync_cluster(live, options=FAST)

    assert result.ok, result.error
    assert result.kinds["Service"].retries == 1
    assert len(server.requests_to("services")) == 2
    assert Service.objects.filter(cluster=live).count() == 4


def test_a_timeout_that_lasts_is_recorded_as_such(live, server) -> None:
    options = replace(FAST, timeout=0.2, backoff=Backoff(attempts=2, base_delay=0.001, max_delay=0.001))
    server.fail("services", None, delay=0.4, times=-1)
    result = sync_cluster(live, options=options)

    assert not result.ok
    assert result.kinds["Service"].error == "GET /api/v1/services?limit=5: timed out after 0.2s (after 2 attempts)"
    assert "Service" in live.last_sync_error and "timed out after 0.2s" in live.last_sync_error


def _baseline(live) -> None:
    assert sync_cluster(live, options=FAST).ok


def test_a_kind_that_keeps_failing_deletes_nothing_and_upserts_the_rest(live, server) -> None:
    _baseline(live)
    first_sync = live.last_sync
    gone = server.remove("pods", "web-000-27vddfwxlv-gx87d")
    server.remove("namespaces", "ns-001")
    added = {**gone, "metadata": {**gone["metadata"], "name": "web-000-27vddfwxlv-zzzzz", "uid": "new-uid"},
             "status": {**gone["status"], "podIP": "10.0.1.50", "podIPs": [{"ip": "10.0.1.50"}]}}
    server.items("pods").append(added)
    server.fail("daemonsets", 500, times=-1, message="etcdserver: request timed out")
    server.requests.clear()

    result = sync_cluster(live, options=FAST)

    assert not result.ok and not result.full
    assert list(result.failed) == ["DaemonSet"]
    assert len(server.requests_to("daemonsets")) == FAST.backoff.attempts
    # Nothing deleted: neither the pod nor the namespace missing from the lists, nor anything else.
    assert not Pod.objects.filter(cluster=live, deleted_at__isnull=False).exists()
    assert not Namespace.objects.filter(cluster=live, deleted_at__isnull=False).exists()
    assert not PodAddress.objects.filter(cluster=live, valid_to__isnull=False).exclude(
        pod__name="report-29000000-q8w4z").exists()
    # The other kinds were upserted.
    assert Pod.objects.get(name="web-000-27vddfwxlv-zzzzz").addresses.get().ip == "10.0.1.50"
    # Recorded: the failed kind, the status and the server's reason; the last success stays as it was.
    live.refresh_from_db()
    assert live.last_sync == first_sync
    assert live.last_sync_attempt > first_sync
    assert "DaemonSet" in live.last_sync_error
    assert "500 Internal Server Error on GET /apis/apps/v1/daemonsets?limit=5 (etcdserver: request timed out) " \
           "(after 3 attempts)" in live.last_sync_error
    assert "nothing was deleted" in live.last_sync_error
    assert live.last_sync_summary["failed"] == {"DaemonSet": result.kinds["DaemonSet"].error}
    assert live.last_sync_summary["full"] is False


def test_401_is_not_retried_and_says_the_credentials_were_refused(live, server, tmp_path) -> None:
    live.kubeconfig = str(kubeconfig(tmp_path / "wrong", server.url, token="expired"))
    result = sync_cluster(live, options=FAST)

    assert not result.ok
    assert len(server.requests) == 1  # one refusal says it for every resource
    assert result.kinds["Namespace"].error.startswith(
        "401 Unauthorized on GET /api/v1/namespaces?limit=5: the API server refused the credentials")
    assert result.kinds["Pod"].skipped and result.kinds["Pod"].error.startswith("not listed")
    assert live.last_sync_error.startswith(f"listing {', '.join(result.kinds)} from {server.url} failed "
                                           "(Namespace: 401 Unauthorized on GET /api/v1/namespaces?limit=5: ")
    assert "; not tried, as they would fail the same way: Node, Pod, Service," in live.last_sync_error


def test_403_is_not_retried_and_names_the_missing_permission(live, server) -> None:
    message = 'nodes is forbidden: User "system:serviceaccount:netsec:sync" cannot list resource "nodes" in API ' \
              'group "" at the cluster scope'
    server.fail("nodes", 403, times=-1, message=message)
    server.fail("networkpolicies", 403, times=-1, message="forbidden")
    result = sync_cluster(live, options=FAST)

    assert not result.ok
    assert len(server.requests_to("nodes")) == 1
    assert result.kinds["Node"].error == (
        f'403 Forbidden on GET /api/v1/nodes?limit=5: missing permission to list nodes (API group "" (core)) at the '
        f"cluster scope; grant the verb 'list' on 'nodes' in the ClusterRole of the sync's account ({message})")
    assert "list networkpolicies (API group networking.k8s.io)" in result.kinds["NetworkPolicy"].error
    assert set(result.failed) == {"Node", "NetworkPolicy"}
    assert Pod.objects.filter(cluster=live).count() == POD_COUNT  # the others were read


def test_a_refused_connection_is_retried_then_reported_once(live, tmp_path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    live.kubeconfig = str(kubeconfig(tmp_path / "closed", f"http://127.0.0.1:{port}"))
    result = sync_cluster(live, options=FAST)

    assert not result.ok
    error = result.kinds["Namespace"].error
    assert error == f"GET /api/v1/namespaces?limit=5: cannot connect to http://127.0.0.1:{port}: connection " \
                    "refused (after 3 attempts)"
    assert result.kinds["Namespace"].retries == 2
    assert all(s.error.startswith("not listed") for k, s in result.kinds.items() if k != "Namespace")
    assert not Namespace.objects.exists()


def test_an_item_that_cannot_be_read_fails_its_kind_and_deletes_nothing(live, server) -> None:
    _baseline(live)
    server.remove("pods", "web-000-27vddfwxlv-gx87d")
    server.items("services")[0]["spec"]["clusterIPs"] = ["not-an-ip"]
    result = sync_cluster(live, options=FAST)

    assert not result.ok and list(result.failed) == ["Service"]
    assert result.kinds["Service"].unreadable == 1
    assert result.failed["Service"] == ("1 of 4 items could not be read: Service default/kubernetes: "
                                        "spec.clusterIPs[0]: not an IP address: 'not-an-ip'")
    assert not Pod.objects.filter(deleted_at__isnull=False).exists()


def test_an_answer_that_is_not_a_list_is_not_taken_for_an_empty_one(live, server) -> None:
    _baseline(live)
    server.lists["/api/v1/pods"] = {"kind": "Status", "metadata": {}}  # a 200 without items
    result = sync_cluster(live, options=FAST)

    assert not result.ok
    assert result.failed["Pod"] == "GET /api/v1/pods?limit=5: the answer is not a Kubernetes list (it has no items)"
    assert not Pod.objects.filter(deleted_at__isnull=False).exists()


def test_a_connection_that_breaks_off_is_retried_and_said_plainly(live, server) -> None:
    server.fail("pods", HANG_UP, times=-1)
    result = sync_cluster(live, options=FAST)

    assert result.failed["Pod"] == (f"GET /api/v1/pods?limit=5: the connection to {server.url} broke off: Remote end "
                                    "closed connection without response (after 3 attempts)")


def test_the_recorded_lists_are_those_the_builder_makes_from_the_dump() -> None:
    from tests.sync.build_data import DATA, lists

    for name, content in lists().items():
        assert json.loads((DATA / name).read_text()) == content, f"run python -m tests.sync.build_data ({name})"
