"""apply_snapshot: owner chains, address history, soft-delete, idempotence, efficiency."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from flows.ingest.inventory import Snapshot, parse_bytes, read_sources
from flows.models import (
    ContainerPort,
    Namespace,
    NetworkPolicy,
    Node,
    Pod,
    PodAddress,
    Service,
    ServiceAddress,
    ServiceEndpoint,
    ServicePort,
    Workload,
)
from flows.store import inventory as store
from flows.store.inventory import apply_snapshot
from tests.inventory import builders as b

T0 = b.T0
T1 = T0 + timedelta(hours=1)
T2 = T0 + timedelta(hours=2)
T3 = T0 + timedelta(hours=3)
INVENTORY_MODELS = (Namespace, Node, Workload, Service, ServiceAddress, ServicePort, ServiceEndpoint, Pod,
                    ContainerPort, PodAddress, NetworkPolicy)


def snap(items: list[dict], **kwargs) -> Snapshot:
    objects, ignored = parse_bytes(b.to_json(items).encode(), "test")
    return Snapshot.of(objects, ignored=ignored, **kwargs)


def apply(cluster, items: list[dict], at: datetime = T0, *, full: bool = True) -> store.ImportStats:
    return apply_snapshot(cluster, snap(items), observed_at=at, full=full)


def all_rows() -> dict[str, list[dict]]:
    return {m.__name__: sorted(m.objects.values(), key=lambda r: r["id"]) for m in INVENTORY_MODELS}


def item(items: list[dict], name: str) -> dict:
    return next(i for i in items if i["metadata"]["name"] == name)


def owner_of(name: str) -> tuple[str, str]:
    wl = Pod.objects.get(name=name).workload
    assert wl is not None
    return wl.kind, wl.name


def addresses(pod_name: str) -> list[tuple[str, datetime, datetime | None]]:
    return list(PodAddress.objects.filter(pod__name=pod_name).order_by("valid_from", "id")
                .values_list("ip", "valid_from", "valid_to"))


# --------------------------------------------------------------------------------------------- owner chains


def test_every_owner_chain_rolls_pods_up_to_the_top_level_owner(cluster) -> None:
    stats = apply(cluster, b.shop())
    assert owner_of("web-5d9f8-aaaaa") == ("Deployment", "web")
    assert owner_of("report-29000000-ccccc") == ("CronJob", "report")
    assert owner_of("migrate-ddddd") == ("Job", "migrate")  # a Job with no CronJob is top-level
    assert owner_of("db-0") == ("StatefulSet", "db")
    assert owner_of("agent-eeeee") == ("DaemonSet", "agent")
    assert owner_of("legacy-fffff") == ("ReplicaSet", "legacy")  # orphan ReplicaSet
    assert owner_of("debug") == ("Pod", "debug")  # bare pod

    rs = Workload.objects.get(kind="ReplicaSet", name="web-5d9f8")
    job = Workload.objects.get(kind="Job", name="report-29000000")
    assert (rs.parent.kind, rs.parent.name) == ("Deployment", "web")  # type: ignore[union-attr]
    assert (job.parent.kind, job.parent.name) == ("CronJob", "report")  # type: ignore[union-attr]
    assert Workload.objects.get(name="legacy").parent is None

    web = Workload.objects.get(kind="Deployment", name="web")
    assert web.selector == {"matchLabels": {"app": "web"}} and web.template_labels == {"app": "web"}
    assert web.uid == "uid-shop-web" and web.created_at == T0 - timedelta(days=1)
    cron = Workload.objects.get(kind="CronJob")
    assert cron.selector == {} and cron.template_labels == {"app": "report"}  # a CronJob has no selector
    bare = Workload.objects.get(kind="Pod")
    assert bare.selector == {} and bare.template_labels == {"run": "debug"}  # a bare pod is its own template

    assert stats["Deployment"].created == 1 and stats["ReplicaSet"].created == 2 and stats[store.BARE_POD].created == 1
    assert stats["Pod"].created == 8 and not stats.placeholders


def test_pods_rows_ports_and_nodes(cluster) -> None:
    apply(cluster, b.shop())
    db = Pod.objects.get(name="db-0")
    assert db.labels == {"app": "db", "statefulset.kubernetes.io/pod-name": "db-0"}
    assert (db.node_name, db.host_ip, db.host_network, db.uid) == ("node-1", "172.18.0.2", False, "uid-shop-db-0")
    assert list(db.container_ports.values_list("name", "port", "protocol")) == [("pg", 5432, "TCP")]
    assert addresses("db-0") == [("10.244.1.14", T0 - timedelta(hours=1), None)]
    assert list(Node.objects.values_list("name", "addresses")) == [("node-1", ["172.18.0.2"])]
    assert Namespace.objects.get(name="shop").labels == {"kubernetes.io/metadata.name": "shop", "team": "shop"}


def test_host_network_pods_get_no_address_and_their_host_ip_is_a_node_address(cluster) -> None:
    items = b.shop() + [b.pod("kube-system", "proxy", "172.18.0.9", node_name="node-2", host_ip="172.18.0.9",
                              host_network=True)]
    apply(cluster, items)
    agent = Pod.objects.get(name="agent-eeeee")
    assert agent.host_network and agent.host_ip == "172.18.0.2" and not agent.addresses.exists()
    assert not Pod.objects.get(name="proxy").addresses.exists()
    # node-2 has no Node object: it is known from its pod, with the pod's host IP.
    assert Node.objects.get(name="node-2").addresses == ["172.18.0.9"]


def test_services(cluster) -> None:
    apply(cluster, b.shop())
    svc = Service.objects.get(name="web")
    assert svc.selector == {"app": "web"} and svc.service_type == "ClusterIP"
    assert list(svc.addresses.values_list("ip", "cluster_id")) == [("10.96.0.20", cluster.pk)]
    assert sorted(svc.service_ports.values_list("name", "port", "protocol", "target_port", "target_port_name")) == [
        ("admin", 9090, "TCP", 9091, ""), ("http", 80, "TCP", None, "http")]


def endpoints_of(name: str) -> list[tuple[str, int | None, str, str]]:
    return sorted(ServiceEndpoint.objects.filter(service__name=name).values_list("ip", "port", "protocol", "name"))


def test_a_service_without_selector_keeps_its_endpoints_and_slices_win_over_endpoints(cluster) -> None:
    items = [*b.shop(), *b.api_server(("172.18.0.2", "172.18.0.3"))]
    # Legacy Endpoints that disagree with the slices (a stale mirror): the slices are the truth.
    items[-1]["subsets"][0]["addresses"].append({"ip": "172.18.0.9"})
    external = b.service("shop", "billing-db", {}, "10.96.0.30", [{"name": "pg", "port": 5432}])
    del external["spec"]["selector"]
    items += [external, b.endpoints("shop", "billing-db", ["192.168.10.5"], [{"name": "pg", "port": 5432}],
                                    not_ready=["192.168.10.6"])]
    # The pods of a Service with a selector say where its traffic lands: its slices are not kept.
    items.append(b.endpoint_slice("shop", "web", ["10.244.1.10"], [{"name": "http", "port": 8080}]))
    apply(cluster, items)
    assert endpoints_of("kubernetes") == [("172.18.0.2", 6443, "TCP", "https"), ("172.18.0.3", 6443, "TCP", "https")]
    assert endpoints_of("billing-db") == [("192.168.10.5", 5432, "TCP", "pg"), ("192.168.10.6", 5432, "TCP", "pg")]
    assert endpoints_of("web") == []
    assert apply(cluster, items, T1).changed is False  # idempotent

    # A control-plane node replaced: the Service counts as updated, its old endpoint goes.
    moved = [*b.shop(), *b.api_server(("172.18.0.2", "172.18.0.4")), external]
    stats = apply(cluster, moved, T2)
    assert endpoints_of("kubernetes") == [("172.18.0.2", 6443, "TCP", "https"), ("172.18.0.4", 6443, "TCP", "https")]
    # billing-db is still there but has no endpoints in a full dump that lists endpoints: none left.
    assert endpoints_of("billing-db") == []
    assert stats["Service"].updated == 2
    # A deleted Service keeps its endpoints, as it keeps its addresses: old flows still resolve.
    apply(cluster, [*b.shop(), *b.api_server(("172.18.0.2", "172.18.0.4"))[:1]], T3)
    assert endpoints_of("kubernetes") == [("172.18.0.2", 6443, "TCP", "https"), ("172.18.0.4", 6443, "TCP", "https")]


def test_endpoints_change_only_with_a_dump_that_lists_them(cluster) -> None:
    apply(cluster, [*b.shop(), *b.api_server(("172.18.0.2",))])
    # An older kubectl command without endpointslices: the endpoints stay as they were.
    apply(cluster, [*b.shop(), *b.api_server(with_endpoints=False)], T1)
    assert endpoints_of("kubernetes") == [("172.18.0.2", 6443, "TCP", "https")]
    # A partial dump with a slice of another Service changes nothing for kubernetes either.
    apply(cluster, [b.endpoint_slice("default", "other", ["10.0.0.1"], [])], T2, full=False)
    assert endpoints_of("kubernetes") == [("172.18.0.2", 6443, "TCP", "https")]


def test_endpoints_of_a_service_missing_from_the_inventory_are_counted_and_left_out(cluster) -> None:
    stats = apply(cluster, [b.namespace("shop"), b.endpoint_slice("shop", "ghost", ["10.0.0.1"], [])])
    assert ServiceEndpoint.objects.count() == 0
    assert stats.ignored == {"endpoints of a Service not in the inventory": 1}
    assert any("endpoints of a Service not in the inventory 1" in line for line in stats.summary_lines())


def test_placeholders_are_flagged_until_the_owner_arrives(cluster) -> None:
    pod = b.pod("shop", "web-5d9f8-aaaaa", "10.244.1.10", owner=("ReplicaSet", "web-5d9f8", "rs-uid"),
                labels={"app": "web", "pod-template-hash": "5d9f8"})
    apply(cluster, [b.namespace("shop"), pod])
    assert Workload.objects.get(name="web-5d9f8").placeholder
    rs = b.workload("ReplicaSet", "shop", "web-5d9f8", {"app": "web"}, extra_labels={"pod-template-hash": "5d9f8"})
    apply(cluster, [b.namespace("shop"), pod, rs], T1)
    assert not Workload.objects.get(name="web-5d9f8").placeholder
    assert not Workload.objects.filter(placeholder=True).exists()


def test_network_policies_are_stored_with_spec_and_clean_manifest(cluster) -> None:
    apply(cluster, b.shop())
    policy = NetworkPolicy.objects.get(name="db-ingress")
    assert policy.namespace.name == "shop"
    assert policy.spec["podSelector"] == {"matchLabels": {"app": "db"}}
    assert policy.manifest["metadata"] == {
        "name": "db-ingress", "namespace": "shop", "annotations": {"owner": "team-a"}}
    assert policy.manifest["spec"] == policy.spec and "status" not in policy.manifest


def test_the_shared_example_inventory(cluster) -> None:
    stats = apply_snapshot(cluster, read_sources([b.SAMPLE]), observed_at=T0, full=True)
    assert Pod.objects.count() == 14 and PodAddress.objects.filter(valid_to=None).count() == 14
    assert NetworkPolicy.objects.count() == 6 and Namespace.objects.count() == 3
    assert {p.workload.kind for p in Pod.objects.select_related("workload")} == {"Deployment"}  # type: ignore[union-attr]
    assert owner_of("coredns-5d78c9869d-br9w2") == ("Deployment", "coredns")
    assert Workload.objects.filter(kind="ReplicaSet", parent__isnull=False).count() == 7
    assert sorted(Node.objects.values_list("name", "addresses")) == [
        ("node-000", ["192.168.0.2"]), ("node-001", ["192.168.0.3"])]
    assert not stats.placeholders
    before = all_rows()
    again = apply_snapshot(cluster, read_sources([b.SAMPLE]), observed_at=T1, full=True)
    assert all_rows() == before and not again.changed


# ---------------------------------------------------------------------------------------------- idempotence


def test_reimporting_the_same_dump_changes_no_row_and_writes_nothing(cluster) -> None:
    items = b.shop()
    apply(cluster, items)
    before = all_rows()
    with CaptureQueriesContext(connection) as queries:
        stats = apply(cluster, items, T1)
    assert all_rows() == before
    writes = [q["sql"] for q in queries.captured_queries
              if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))]
    assert writes == []
    assert not stats.changed
    assert stats["Pod"].unchanged == 8 and stats["Deployment"].unchanged == 1


def test_a_changed_object_is_updated_in_place(cluster) -> None:
    items = b.shop()
    apply(cluster, items)
    pod_id = Pod.objects.get(name="db-0").pk
    item(items, "db-0")["metadata"]["labels"]["tier"] = "data"
    item(items, "db-0")["spec"]["containers"][0]["ports"] = [{"name": "pg", "containerPort": 5433}]
    stats = apply(cluster, items, T1)
    db = Pod.objects.get(name="db-0")
    assert db.pk == pod_id and db.labels["tier"] == "data"
    assert list(db.container_ports.values_list("port", flat=True)) == [5433]
    assert stats["Pod"].updated == 1 and stats["Pod"].unchanged == 7


def test_a_changed_port_alone_counts_the_pod_as_updated(cluster) -> None:
    items = b.shop()
    apply(cluster, items)
    item(items, "db-0")["spec"]["containers"][0]["ports"][0]["name"] = "postgres"
    stats = apply(cluster, items, T1)
    assert stats["Pod"].updated == 1
    assert ContainerPort.objects.get(pod__name="db-0").name == "postgres"


# ---------------------------------------------------------------------------------------------- soft-delete


def test_objects_missing_from_a_newer_full_dump_are_soft_deleted_and_their_addresses_closed(cluster) -> None:
    items = b.shop() + [b.namespace("empty"), b.service("shop", "db", {"app": "db"}, "10.96.0.21", [{"port": 5432}])]
    apply(cluster, items)
    dropped = ("web-5d9f8-bbbbb", "web", "empty", "debug", "migrate", "migrate-ddddd")
    newer = [i for i in items if i["metadata"]["name"] not in dropped]
    stats = apply(cluster, newer, T2)

    assert Pod.objects.get(name="web-5d9f8-bbbbb").deleted_at == T2
    assert addresses("web-5d9f8-bbbbb") == [("10.244.1.11", T0 - timedelta(hours=1), T2)]
    assert addresses("migrate-ddddd") == [("10.244.1.13", T0 - timedelta(hours=1), T2)]
    assert Service.objects.get(name="web").deleted_at == T2
    assert Workload.objects.get(kind="Job", name="migrate").deleted_at == T2
    assert Workload.objects.get(kind="Pod", name="debug").deleted_at == T2
    assert Namespace.objects.get(name="empty").deleted_at == T2
    # Rows stay for old flows, with the addresses and ports of the deleted service.
    assert ServiceAddress.objects.filter(service__name="web").exists()
    assert ServicePort.objects.filter(service__name="web").count() == 2
    assert Pod.objects.live().count() == 5 and Pod.objects.count() == 8
    assert addresses("web-5d9f8-aaaaa") == [("10.244.1.10", T0 - timedelta(hours=1), None)]
    assert (stats["Pod"].deleted, stats["Service"].deleted, stats["Namespace"].deleted) == (3, 1, 1)
    assert (stats["Job"].deleted, stats[store.BARE_POD].deleted, stats["Deployment"].deleted) == (1, 1, 0)
    # The only Deployment is missing, so the kind is absent: left alone (its ReplicaSet still names it).
    assert Workload.objects.get(kind="Deployment", name="web").deleted_at is None
    assert Workload.objects.get(kind="ReplicaSet", name="web-5d9f8").deleted_at is None
    # Soft-deleting again is not a change.
    again = apply(cluster, newer, T3)
    assert not again.changed and Pod.objects.get(name="web-5d9f8-bbbbb").deleted_at == T2


def test_a_reappearing_object_is_undeleted_and_its_address_reopened(cluster) -> None:
    items = b.shop()
    apply(cluster, items)
    apply(cluster, [i for i in items if i["metadata"]["name"] != "db-0"], T1)
    assert Pod.objects.get(name="db-0").deleted_at == T1
    stats = apply(cluster, items, T2)
    assert Pod.objects.get(name="db-0").deleted_at is None
    # The gap between the two dumps is not claimed: the new interval starts where the old one ended.
    assert addresses("db-0") == [("10.244.1.14", T0 - timedelta(hours=1), T1), ("10.244.1.14", T1, None)]
    assert stats["Pod"].updated == 1


def test_kinds_absent_from_the_dump_are_left_alone(cluster) -> None:
    items = b.shop()
    apply(cluster, items)
    pods_only = [i for i in items if i["kind"] == "Pod"]
    stats = apply(cluster, pods_only, T1)
    assert not Service.objects.filter(deleted_at__isnull=False).exists()
    assert not Workload.objects.exclude(kind="Pod").filter(deleted_at__isnull=False).exists()
    assert not NetworkPolicy.objects.filter(deleted_at__isnull=False).exists()
    assert not Namespace.objects.filter(deleted_at__isnull=False).exists()
    assert not stats.changed
    assert owner_of("web-5d9f8-aaaaa") == ("Deployment", "web")  # chains resolve through stored rows


def test_partial_import_deletes_nothing(cluster) -> None:
    items = b.shop()
    apply(cluster, items)
    apply(cluster, items[:3] + [b.pod("shop", "new", "10.244.1.99")], T1, full=False)
    assert not Pod.objects.filter(deleted_at__isnull=False).exists()
    assert PodAddress.objects.filter(valid_to__isnull=False).count() == 0
    assert Pod.objects.count() == 9


def test_a_dump_listing_no_pods_of_a_namespace_keeps_the_namespace_of_live_objects(cluster) -> None:
    items = b.shop()
    apply(cluster, items)
    # kube-system's Namespace object is missing, but pods in it are listed: it cannot be gone.
    apply(cluster, [i for i in items if not (i["kind"] == "Namespace" and i["metadata"]["name"] == "kube-system")], T1)
    assert Namespace.objects.get(name="kube-system").deleted_at is None


# ------------------------------------------------------------------------------------------ address history


def test_an_ip_moved_to_another_pod_is_closed_at_the_new_pods_start(cluster) -> None:
    apply(cluster, [b.namespace("shop"), b.pod("shop", "old", "10.244.1.50", start=T0 - timedelta(days=1))])
    apply(cluster, [b.namespace("shop"), b.pod("shop", "new", "10.244.1.50", start=T1)], T2)
    assert addresses("old") == [("10.244.1.50", T0 - timedelta(days=1), T1)]  # not T2: the move was at T1
    assert addresses("new") == [("10.244.1.50", T1, None)]
    assert Pod.objects.get(name="old").deleted_at == T2


def test_an_ip_moved_is_closed_even_by_a_partial_dump(cluster) -> None:
    apply(cluster, [b.namespace("shop"), b.pod("shop", "old", "10.244.1.50", start=T0 - timedelta(days=1))])
    apply(cluster, [b.pod("shop", "new", "10.244.1.50", start=T1)], T2, full=False)
    assert Pod.objects.get(name="old").deleted_at is None
    assert addresses("old") == [("10.244.1.50", T0 - timedelta(days=1), T1)]
    assert addresses("new") == [("10.244.1.50", T1, None)]


def test_an_interval_closed_at_an_observation_is_cut_back_to_the_better_known_move(cluster) -> None:
    apply(cluster, [b.namespace("shop"), b.pod("shop", "old", "10.244.1.50", start=T0 - timedelta(days=1))])
    apply(cluster, [b.namespace("shop")], T2)  # old is gone: closed at T2, the best guess then
    apply(cluster, [b.namespace("shop"), b.pod("shop", "new", "10.244.1.50", start=T1)], T3)
    assert addresses("old") == [("10.244.1.50", T0 - timedelta(days=1), T1)]
    assert addresses("new") == [("10.244.1.50", T1, None)]


def test_a_finished_pod_releases_its_ip_at_its_end(cluster) -> None:
    job = b.pod("shop", "job-1", "10.244.1.60", phase="Succeeded", start=T0 - timedelta(hours=3),
                finished=T0 - timedelta(hours=2))
    web = b.pod("shop", "web-1", "10.244.1.60", start=T0 - timedelta(hours=1))
    apply(cluster, [b.namespace("shop"), job, web])
    assert addresses("job-1") == [("10.244.1.60", T0 - timedelta(hours=3), T0 - timedelta(hours=2))]
    assert addresses("web-1") == [("10.244.1.60", T0 - timedelta(hours=1), None)]
    before = all_rows()
    apply(cluster, [b.namespace("shop"), job, web], T1)
    assert all_rows() == before


def test_a_running_pod_that_finishes_is_closed_at_its_finish_time(cluster) -> None:
    apply(cluster, [b.namespace("shop"), b.pod("shop", "job-1", "10.244.1.61")])
    done = b.pod("shop", "job-1", "10.244.1.61", phase="Succeeded", finished=T1)
    apply(cluster, [b.namespace("shop"), done], T2)
    assert addresses("job-1") == [("10.244.1.61", T0 - timedelta(hours=1), T1)]


def test_a_recreated_pod_with_the_same_name_is_a_new_row(cluster) -> None:
    apply(cluster, [b.namespace("shop"), b.pod("shop", "db-0", "10.244.1.70", uid="a", start=T0 - timedelta(days=1))])
    apply(cluster, [b.namespace("shop"), b.pod("shop", "db-0", "10.244.1.71", uid="b", start=T1)], T2)
    old, new = Pod.objects.filter(name="db-0").order_by("uid")
    assert old.deleted_at == T2 and new.deleted_at is None
    assert list(old.addresses.values_list("valid_to", flat=True)) == [T2]
    assert list(new.addresses.values_list("ip", "valid_from", "valid_to")) == [("10.244.1.71", T1, None)]


def test_a_pod_whose_ip_changed(cluster) -> None:
    apply(cluster, [b.namespace("shop"), b.pod("shop", "p", "10.244.1.80")])
    apply(cluster, [b.namespace("shop"), b.pod("shop", "p", "10.244.1.81")], T2)
    assert addresses("p") == [("10.244.1.80", T0 - timedelta(hours=1), T2), ("10.244.1.81", T2, None)]


def test_two_running_pods_listing_one_ip_the_later_one_holds_it(cluster) -> None:
    early = b.pod("shop", "early", "10.244.1.85", start=T0 - timedelta(hours=5))
    late = b.pod("shop", "late", "10.244.1.85", start=T0 - timedelta(hours=2))
    apply(cluster, [b.namespace("shop"), early, late])
    assert addresses("early") == []
    assert addresses("late") == [("10.244.1.85", T0 - timedelta(hours=2), None)]
    before = all_rows()
    apply(cluster, [b.namespace("shop"), late, early], T1)
    assert all_rows() == before


def test_dual_stack_pod_has_both_addresses(cluster) -> None:
    item = b.pod("shop", "p", "10.244.1.86")
    item["status"]["podIPs"].append({"ip": "fd00:10:244::56"})
    apply(cluster, [item])
    assert {ip for ip, _, to in addresses("p") if to is None} == {"10.244.1.86", "fd00:10:244::56"}


def test_node_addresses_from_pods_then_from_the_node_object(cluster) -> None:
    apply(cluster, [b.pod("shop", "p", "10.244.1.87", node_name="n1", host_ip="172.18.0.7")])
    apply(cluster, [b.pod("shop", "q", "10.244.1.88", node_name="n1", host_ip="172.18.0.8")], T1, full=False)
    assert Node.objects.get(name="n1").addresses == ["172.18.0.7", "172.18.0.8"]  # nothing says one is gone
    apply(cluster, [b.node("n1", "172.18.0.8"), b.pod("shop", "q", "10.244.1.88", node_name="n1",
                                                      host_ip="172.18.0.8")], T2)
    node = Node.objects.get(name="n1")
    assert node.addresses == ["172.18.0.8"] and node.labels == {"kubernetes.io/hostname": "n1"}


def test_start_time_falls_back_to_creation_then_observation(cluster) -> None:
    no_start = b.pod("shop", "a", "10.244.1.90", start=None)
    bare = b.pod("shop", "b", "10.244.1.91", start=None)
    del bare["metadata"]["creationTimestamp"]
    apply(cluster, [b.namespace("shop"), no_start, bare])
    assert addresses("a")[0][1] == T0 - timedelta(days=1)
    assert addresses("b")[0][1] == T0


# ---------------------------------------------------------------------------------------- missing owners


def test_a_missing_replicaset_becomes_a_placeholder_under_its_deployment(cluster) -> None:
    items = [b.namespace("shop"), b.workload("Deployment", "shop", "web", {"app": "web"}),
             b.pod("shop", "web-5d9f8-aaaaa", "10.244.1.10", owner=("ReplicaSet", "web-5d9f8", "rs-uid"),
                   labels={"app": "web", "pod-template-hash": "5d9f8"})]
    stats = apply(cluster, items)
    assert owner_of("web-5d9f8-aaaaa") == ("Deployment", "web")
    rs = Workload.objects.get(kind="ReplicaSet")
    assert rs.uid == "rs-uid" and rs.parent is not None and rs.parent.name == "web" and rs.selector == {}
    assert stats.placeholders == ["ReplicaSet shop/web-5d9f8 (owner of Pod shop/web-5d9f8-aaaaa)"]
    # A later dump with the ReplicaSet fills the same row in.
    rs_item = b.workload("ReplicaSet", "shop", "web-5d9f8", {"app": "web"}, extra_labels={"pod-template-hash": "5d9f8"},
                         owner=("Deployment", "web", "uid-shop-web"))
    full = [*items, rs_item]
    apply(cluster, full, T1)
    rs.refresh_from_db()
    assert Workload.objects.filter(kind="ReplicaSet").count() == 1 and rs.selector["matchLabels"]["app"] == "web"


def test_a_missing_owner_with_nothing_known_above_it_is_a_top_level_placeholder(cluster) -> None:
    items = [b.namespace("shop"),
             b.pod("shop", "x-abc-1", "10.244.1.10", owner=("ReplicaSet", "x-abc", "u1"), labels={"app": "x"}),
             b.pod("shop", "nightly-29000000-q", "10.244.1.11", owner=("Job", "nightly-29000000", "u2")),
             b.workload("CronJob", "shop", "hourly", {"app": "h"}),
             b.pod("shop", "hourly-29000060-q", "10.244.1.12", owner=("Job", "hourly-29000060", "u3"))]
    apply(cluster, items)
    assert owner_of("x-abc-1") == ("ReplicaSet", "x-abc")
    assert owner_of("nightly-29000000-q") == ("Job", "nightly-29000000")
    assert owner_of("hourly-29000060-q") == ("CronJob", "hourly")  # <cronjob>-<digits>, CronJob known


def test_a_missing_deployment_above_a_listed_replicaset_is_a_placeholder(cluster) -> None:
    items = [b.namespace("shop"),
             b.workload("ReplicaSet", "shop", "api-7c", {"app": "api"}, owner=("Deployment", "api", "dep-uid")),
             b.pod("shop", "api-7c-1", "10.244.1.10", owner=("ReplicaSet", "api-7c", "uid-shop-api-7c"))]
    stats = apply(cluster, items)
    assert owner_of("api-7c-1") == ("Deployment", "api")
    assert Workload.objects.get(kind="Deployment").uid == "dep-uid"
    assert stats.placeholders == ["Deployment shop/api (owner of ReplicaSet shop/api-7c)"]


def test_owner_reference_resolves_by_uid_first(cluster) -> None:
    # The reference's name is stale (a hand-edited dump), its uid names the ReplicaSet for certain.
    items = [b.namespace("shop"), b.workload("ReplicaSet", "shop", "real", {"app": "a"}),
             b.pod("shop", "p", "10.244.1.10", owner=("ReplicaSet", "stale-name", "uid-shop-real"))]
    stats = apply(cluster, items)
    assert owner_of("p") == ("ReplicaSet", "real") and not stats.placeholders


def test_a_pod_owned_by_a_non_workload_kind_is_a_bare_pod(cluster) -> None:
    mirror = b.pod("kube-system", "kube-apiserver-node-1", "172.18.0.2", owner=("Node", "node-1", "n1"),
                   labels={"component": "kube-apiserver", "tier": "control-plane"})
    apply(cluster, [mirror])
    assert owner_of("kube-apiserver-node-1") == ("Pod", "kube-apiserver-node-1")
    assert Namespace.objects.get(name="kube-system").labels == {}  # known only from its pod


# ---------------------------------------------------------------------------------------- transaction, scale


def test_a_failure_half_way_writes_nothing(cluster, monkeypatch) -> None:
    def boom(self, namespaces) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(store._Applier, "apply_network_policies", boom)
    with pytest.raises(RuntimeError):
        apply(cluster, b.shop())
    assert all(not rows for rows in all_rows().values())


def test_naive_observation_time_is_refused(cluster) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        apply_snapshot(cluster, [], observed_at=datetime(2026, 1, 1), full=True)


def _big_dump(pods: int, *, deployments: int = 100) -> list[dict]:
    items = [b.namespace(f"ns-{n}") for n in range(10)] + [b.node(f"node-{n}", f"172.18.0.{n + 2}") for n in range(20)]
    per = pods // deployments
    for d in range(deployments):
        ns, name = f"ns-{d % 10}", f"app-{d}"
        labels = {"app": name}
        items.append(b.workload("Deployment", ns, name, labels))
        items.append(b.workload("ReplicaSet", ns, f"{name}-h{d}", labels, extra_labels={"pod-template-hash": f"h{d}"},
                                owner=("Deployment", name, f"uid-{ns}-{name}")))
        items.append(b.service(ns, name, labels, f"10.96.{d // 200}.{d % 200 + 10}",
                               [{"name": "http", "port": 80, "targetPort": "http"}]))
        for i in range(per):
            n = d * per + i
            items.append(b.pod(ns, f"{name}-h{d}-{i}", f"10.244.{n // 250}.{n % 250 + 1}",
                               owner=("ReplicaSet", f"{name}-h{d}", f"uid-{ns}-{name}-h{d}"),
                               labels={**labels, "pod-template-hash": f"h{d}"}, node_name=f"node-{n % 20}",
                               host_ip=f"172.18.0.{n % 20 + 2}"))
    return items


def test_a_5000_pod_dump_imports_with_a_bounded_number_of_queries(cluster) -> None:
    # How fast it is, `make bench` measures; here, that the work is done in bulk statements.
    snapshot = snap(_big_dump(5000))
    with CaptureQueriesContext(connection) as first:
        apply_snapshot(cluster, snapshot, observed_at=T0, full=True)
    assert Pod.objects.count() == 5000 and PodAddress.objects.count() == 5000
    with CaptureQueriesContext(connection) as second:
        stats = apply_snapshot(cluster, snapshot, observed_at=T1, full=True)
    assert not stats.changed
    # Bulk statements: the count grows with rows per batch (on SQLite, 999 parameters / columns per row),
    # never with one query per object.
    assert len(first.captured_queries) < 200, len(first.captured_queries)
    assert len(second.captured_queries) < 40, len(second.captured_queries)


def test_a_dump_of_one_namespace_deletes_nothing_in_the_others(cluster) -> None:
    apply(cluster, [b.pod("shop", "web-1", "10.244.1.1"), b.pod("data", "db-1", "10.244.1.2")])
    # A newer dump of "shop" alone, without web-1: shop's pod goes, data's stays.
    apply(cluster, [b.pod("shop", "web-2", "10.244.1.3")], T0 + timedelta(hours=1))
    live = set(Pod.objects.live().values_list("namespace__name", "name"))
    assert live == {("data", "db-1"), ("shop", "web-2")}
