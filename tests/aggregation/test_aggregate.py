"""Aggregation rules of design §3, one test per trap named in issue 2, item 6."""

from __future__ import annotations

from datetime import timedelta

import pytest

from flows.aggregate import aggregate_cluster
from flows.models import Communication, ObservedIP
from tests import factories as f
from tests.factories import T0


def rows(cluster) -> list[tuple]:
    """Communications as comparable tuples: (src, dst, port, proto, connections, denied, node_local)."""
    def end(wl, ip):
        return f"{wl.kind}/{wl.name}" if wl else ip
    return sorted(
        (end(c.src_workload, c.src_ip), end(c.dst_workload, c.dst_ip), c.port, c.protocol, c.connections,
         c.denied, c.node_local)
        for c in Communication.objects.filter(cluster=cluster).select_related("src_workload", "dst_workload")
    )


@pytest.fixture
def shop(cluster):
    """frontend (2 pods) → cart (1 pod, port 8080), a cart Service on 80 → 8080 (named target)."""
    fe = f.workload(cluster, "shop", "Deployment", "frontend")
    cart = f.workload(cluster, "shop", "Deployment", "cart")
    f.pod(cluster, fe, "frontend-a", "10.244.1.10")
    f.pod(cluster, fe, "frontend-b", "10.244.1.11")
    f.pod(cluster, cart, "cart-a", "10.244.2.20", ports=(("http", 8080, "TCP"),), host_ip="172.18.0.3",
          node="node-2")
    f.service(cluster, "shop", "cart", {"app": "cart"}, "10.96.0.50", [(80, "TCP", "http")])
    return {"frontend": fe, "cart": cart}


def test_pods_of_one_owner_are_one_row(cluster, shop):
    f.flow(cluster, "10.244.1.10", 40000, "10.244.2.20", 8080)
    f.flow(cluster, "10.244.1.11", 40001, "10.244.2.20", 8080)
    aggregate_cluster(cluster)
    assert rows(cluster) == [("Deployment/frontend", "Deployment/cart", 8080, "TCP", 2, False, False)]


def test_reply_packets_are_never_a_connection(cluster, shop):
    f.flow(cluster, "10.244.2.20", 8080, "10.244.1.10", 40000, flags="ACK,SYN", is_reply=True)
    f.flow(cluster, "10.244.2.20", 8080, "10.244.1.10", 40000, flags="ACK,PSH", is_reply=True)
    aggregate_cluster(cluster)
    assert rows(cluster) == []


def test_unknown_direction_syn_ack_is_a_reply_of_the_other_side(cluster, shop):
    # is_reply absent: a SYN+ACK comes from the server, so the connection is frontend → cart.
    f.flow(cluster, "10.244.2.20", 8080, "10.244.1.10", 40000, flags="ACK,SYN", is_reply=None)
    aggregate_cluster(cluster)
    assert rows(cluster) == [("Deployment/frontend", "Deployment/cart", 8080, "TCP", 1, False, False)]


def test_long_lived_connection_without_syn_counts_from_listening_port(cluster, shop):
    # Only ACK/PSH packets, direction unknown, seen from the server's side: cart listens on 8080.
    f.flow(cluster, "10.244.2.20", 8080, "10.244.1.10", 1024, flags="ACK,PSH", is_reply=None)
    f.flow(cluster, "10.244.1.10", 1024, "10.244.2.20", 8080, flags="ACK", is_reply=None,
           time=T0 + timedelta(seconds=5))
    aggregate_cluster(cluster)
    # Port 1024 is lower than no listening port here; the declared container port decides.
    assert rows(cluster) == [("Deployment/frontend", "Deployment/cart", 8080, "TCP", 1, False, False)]


def test_unknown_direction_without_other_evidence_takes_the_lower_port_as_server(cluster, shop):
    f.flow(cluster, "10.244.1.10", 9000, "10.244.1.11", 52000, flags="ACK", is_reply=None)
    aggregate_cluster(cluster)
    assert rows(cluster) == [("Deployment/frontend", "Deployment/frontend", 9000, "TCP", 1, False, False)]


def test_connection_seen_at_both_ends_counts_once(cluster, shop):
    f.flow(cluster, "10.244.1.10", 40000, "10.244.2.20", 8080, direction="EGRESS", node="node-1")
    f.flow(cluster, "10.244.1.10", 40000, "10.244.2.20", 8080, direction="INGRESS", node="node-2")
    f.flow(cluster, "10.244.1.10", 40000, "10.244.2.20", 8080, flags="ACK,PSH", direction="EGRESS")
    aggregate_cluster(cluster)
    assert rows(cluster) == [("Deployment/frontend", "Deployment/cart", 8080, "TCP", 1, False, False)]


def test_connection_seen_only_at_destination_counts(cluster, shop):
    f.flow(cluster, "10.244.1.10", 40000, "10.244.2.20", 8080, direction="INGRESS", node="node-2")
    aggregate_cluster(cluster)
    assert rows(cluster) == [("Deployment/frontend", "Deployment/cart", 8080, "TCP", 1, False, False)]


def test_both_ends_in_separate_batches_still_count_once(cluster, shop):
    f.flow(cluster, "10.244.1.10", 40000, "10.244.2.20", 8080, direction="EGRESS")
    aggregate_cluster(cluster)
    f.flow(cluster, "10.244.1.10", 40000, "10.244.2.20", 8080, direction="INGRESS", node="node-2",
           time=T0 + timedelta(milliseconds=3))
    aggregate_cluster(cluster)
    assert rows(cluster) == [("Deployment/frontend", "Deployment/cart", 8080, "TCP", 1, False, False)]


def test_ip_moved_between_pods_is_attributed_on_each_side_of_the_move(cluster, shop):
    moved_at = T0 + timedelta(minutes=30)
    old = f.workload(cluster, "shop", "Deployment", "old")
    new = f.workload(cluster, "shop", "StatefulSet", "new")
    f.pod(cluster, old, "old-a", "10.244.3.3", since=T0 - timedelta(days=1), until=moved_at)
    f.pod(cluster, new, "new-0", "10.244.3.3", since=moved_at)
    f.flow(cluster, "10.244.3.3", 41000, "10.244.2.20", 8080, time=moved_at - timedelta(minutes=1))
    f.flow(cluster, "10.244.3.3", 41001, "10.244.2.20", 8080, time=moved_at + timedelta(minutes=1))
    aggregate_cluster(cluster)
    assert rows(cluster) == [
        ("Deployment/old", "Deployment/cart", 8080, "TCP", 1, False, False),
        ("StatefulSet/new", "Deployment/cart", 8080, "TCP", 1, False, False),
    ]


def test_hubble_metadata_resolves_an_address_the_history_lacks(cluster, shop):
    f.flow(cluster, "10.244.9.9", 40000, "10.244.2.20", 8080, src_namespace="shop", src_pod="",
           src_workload_kind="Deployment", src_workload_name="frontend")
    f.flow(cluster, "10.244.9.8", 40000, "10.244.2.20", 8080, src_namespace="shop", src_pod="ghost",
           src_workload_kind="Deployment", src_workload_name="ghost")
    aggregate_cluster(cluster)
    # The second names a workload the inventory does not know: not consistent, stays an IP.
    assert rows(cluster) == [
        ("10.244.9.8", "Deployment/cart", 8080, "TCP", 1, False, False),
        ("Deployment/frontend", "Deployment/cart", 8080, "TCP", 1, False, False),
    ]


def test_cluster_ip_resolves_to_backends_and_target_port(cluster, shop):
    f.flow(cluster, "10.244.1.10", 40000, "10.96.0.50", 80)
    # The same connection after translation, seen at the destination: still one connection.
    f.flow(cluster, "10.244.1.10", 40000, "10.244.2.20", 8080, direction="INGRESS", node="node-2")
    aggregate_cluster(cluster)
    assert rows(cluster) == [("Deployment/frontend", "Deployment/cart", 8080, "TCP", 1, False, False)]


def test_the_api_server_is_its_endpoint_address_and_target_port_never_the_cluster_ip(cluster, shop):
    f.api_server(cluster, "172.18.0.3", "172.18.0.2")  # an HA control plane
    f.flow(cluster, "10.244.1.10", 40000, "10.96.0.1", 443)
    # Seen directly (Cilium's socket load balancing shows the backend): the same address and port.
    f.flow(cluster, "10.244.1.11", 40001, "172.18.0.3", 6443)
    aggregate_cluster(cluster)
    # Which endpoint took the ClusterIP connection is unknown: it lands on the lowest address. Every address
    # of the API server is allowed together when a policy is written, so this loses nothing.
    assert rows(cluster) == [("Deployment/frontend", "172.18.0.2", 6443, "TCP", 1, False, False),
                             ("Deployment/frontend", "172.18.0.3", 6443, "TCP", 1, False, False)]


def test_without_endpoints_the_api_server_is_found_by_its_static_pods_then_by_hubble(cluster, shop):
    svc = f.api_server(cluster)
    apiserver_wl = f.workload(cluster, "kube-system", "Pod", "kube-apiserver-cp-1",
                              labels={"component": "kube-apiserver", "tier": "control-plane"})
    f.pod(cluster, apiserver_wl, "kube-apiserver-cp-1", None, host_network=True, host_ip="172.18.0.5")
    f.flow(cluster, "10.244.1.10", 40000, "10.96.0.1", 443)
    aggregate_cluster(cluster)
    assert rows(cluster) == [("Deployment/frontend", "172.18.0.5", 6443, "TCP", 1, False, False)]

    # Neither endpoints nor static pods (a managed control plane): Hubble's reserved:kube-apiserver identity.
    apiserver_wl.pods.all().delete()
    f.flow(cluster, "10.244.1.11", 40001, "10.20.0.9", 443, dst_reserved="kube-apiserver")
    aggregate_cluster(cluster)
    f.flow(cluster, "10.244.1.11", 40002, "10.96.0.1", 443, time=T0 + timedelta(hours=1))
    aggregate_cluster(cluster)
    assert ("Deployment/frontend", "10.20.0.9", 6443, "TCP", 1, False, False) in rows(cluster)
    assert svc.service_ports.get().target_port == 6443


def test_a_service_without_selector_leads_to_its_endpoints(cluster, shop):
    billing = f.service(cluster, "shop", "billing-db", {}, "10.96.0.30", [(5432, "TCP", 5432)])
    f.endpoint(billing, "192.168.10.6", 5432)
    f.endpoint(billing, "192.168.10.5", 5432)
    # Endpoints kept by hand that point at a pod: the pod's workload, by its address.
    by_hand = f.service(cluster, "shop", "cart-direct", {}, "10.96.0.31", [(81, "TCP", 81)])
    f.endpoint(by_hand, "10.244.2.20", 8080)
    f.flow(cluster, "10.244.1.10", 40000, "10.96.0.30", 5432)
    f.flow(cluster, "10.244.1.10", 40001, "10.96.0.31", 81)
    aggregate_cluster(cluster)
    assert rows(cluster) == [("Deployment/frontend", "192.168.10.5", 5432, "TCP", 1, False, False),
                             ("Deployment/frontend", "Deployment/cart", 8080, "TCP", 1, False, False)]


def test_dropped_connection_is_an_attempt_even_if_client_side_forwarded(cluster, shop):
    f.flow(cluster, "10.244.1.10", 40000, "10.244.2.20", 8080, direction="EGRESS", verdict="FORWARDED")
    f.flow(cluster, "10.244.1.10", 40000, "10.244.2.20", 8080, direction="INGRESS", verdict="DROPPED",
           node="node-2")
    f.flow(cluster, "10.244.1.11", 40002, "10.244.2.20", 8080, direction="EGRESS", verdict="FORWARDED")
    aggregate_cluster(cluster)
    assert rows(cluster) == [
        ("Deployment/frontend", "Deployment/cart", 8080, "TCP", 1, False, False),
        ("Deployment/frontend", "Deployment/cart", 8080, "TCP", 1, True, False),
    ]


def test_traffic_from_the_pods_own_node_is_node_local(cluster, shop):
    f.flow(cluster, "172.18.0.3", 50000, "10.244.2.20", 8080, src_reserved="host", direction="INGRESS")
    f.flow(cluster, "172.18.0.9", 50000, "10.244.2.20", 8080, src_reserved="remote-node", direction="INGRESS")
    aggregate_cluster(cluster)
    assert rows(cluster) == [
        ("172.18.0.3", "Deployment/cart", 8080, "TCP", 1, False, True),
        ("172.18.0.9", "Deployment/cart", 8080, "TCP", 1, False, False),
    ]


def test_unresolved_ips_keep_dns_names_and_identity(cluster, shop):
    f.flow(cluster, "10.244.1.10", 40000, "203.0.113.7", 443, dst_reserved="world", dst_names=["api.stripe.com"])
    aggregate_cluster(cluster)
    assert rows(cluster) == [("Deployment/frontend", "203.0.113.7", 443, "TCP", 1, False, False)]
    observed = ObservedIP.objects.get(cluster=cluster, ip="203.0.113.7")
    assert (observed.identity, observed.dns_names) == ("world", ["api.stripe.com"])


def test_udp_dns_query_and_unknown_direction_response(cluster, shop):
    dns = f.workload(cluster, "kube-system", "Deployment", "coredns", labels={"k8s-app": "kube-dns"})
    f.pod(cluster, dns, "coredns-a", "10.244.0.5", ports=(("dns", 53, "UDP"),))
    f.flow(cluster, "10.244.1.10", 38496, "10.244.0.5", 53, proto="UDP", flags="", is_reply=None)
    f.flow(cluster, "10.244.0.5", 53, "10.244.1.10", 38496, proto="UDP", flags="", is_reply=None)
    aggregate_cluster(cluster)
    assert rows(cluster) == [("Deployment/frontend", "Deployment/coredns", 53, "UDP", 1, False, False)]


def test_running_twice_changes_nothing_and_is_incremental(cluster, shop):
    f.flow(cluster, "10.244.1.10", 40000, "10.244.2.20", 8080)
    first = aggregate_cluster(cluster)
    snapshot = list(Communication.objects.values())
    second = aggregate_cluster(cluster)
    assert (first.raw_flows, second.raw_flows, second.buckets) == (1, 0, [])
    assert list(Communication.objects.values()) == snapshot
    f.flow(cluster, "10.244.1.11", 40000, "10.244.2.20", 8080, time=T0 + timedelta(hours=3))
    third = aggregate_cluster(cluster)
    assert third.buckets == [T0 + timedelta(hours=3)]
    assert Communication.objects.get(bucket=T0).pk == snapshot[0]["id"]


def test_rebuild_reresolves_after_inventory_arrives(cluster):
    f.flow(cluster, "10.244.5.5", 40000, "10.244.6.6", 8080)
    aggregate_cluster(cluster)
    assert rows(cluster) == [("10.244.5.5", "10.244.6.6", 8080, "TCP", 1, False, False)]
    a = f.workload(cluster, "shop", "Deployment", "a")
    b = f.workload(cluster, "shop", "Deployment", "b")
    f.pod(cluster, a, "a-1", "10.244.5.5")
    f.pod(cluster, b, "b-1", "10.244.6.6")
    aggregate_cluster(cluster, rebuild_since=T0 - timedelta(days=1))
    assert rows(cluster) == [("Deployment/a", "Deployment/b", 8080, "TCP", 1, False, False)]


def test_hour_buckets_and_times(cluster, shop):
    f.flow(cluster, "10.244.1.10", 40000, "10.244.2.20", 8080, time=T0 + timedelta(minutes=5))
    f.flow(cluster, "10.244.1.10", 40001, "10.244.2.20", 8080, time=T0 + timedelta(minutes=50))
    f.flow(cluster, "10.244.1.10", 40002, "10.244.2.20", 8080, time=T0 + timedelta(minutes=70))
    aggregate_cluster(cluster)
    got = list(Communication.objects.order_by("bucket").values_list("bucket", "connections", "first_seen",
                                                                      "last_seen"))
    assert got == [
        (T0, 2, T0 + timedelta(minutes=5), T0 + timedelta(minutes=50)),
        (T0 + timedelta(hours=1), 1, T0 + timedelta(minutes=70), T0 + timedelta(minutes=70)),
    ]


def test_dns_answers_name_addresses_connected_to_later(cluster, shop):
    dns = f.workload(cluster, "kube-system", "Deployment", "coredns", labels={"k8s-app": "kube-dns"})
    f.pod(cluster, dns, "coredns-a", "10.244.0.5", ports=(("dns", 53, "UDP"),))
    f.flow(cluster, "10.244.0.5", 53, "10.244.1.10", 38000, proto="UDP", flags="", is_reply=True,
           dns_query="api.stripe.com", dns_ips=["203.0.113.10", "203.0.113.11"])
    aggregate_cluster(cluster)
    f.flow(cluster, "10.244.1.10", 40000, "203.0.113.10", 443, time=T0 + timedelta(hours=2))
    aggregate_cluster(cluster)
    assert ObservedIP.objects.get(cluster=cluster, ip="203.0.113.10").dns_names == ["api.stripe.com"]


def test_hubble_pod_name_wins_over_a_stale_address_history(cluster, shop):
    # cart-a still holds 10.244.2.20 in the history (no newer dump yet), but Hubble saw the address on a
    # pod of a new workload: the history is stale there.
    f.workload(cluster, "shop", "Deployment", "newcomer")
    f.flow(cluster, "10.244.1.10", 40000, "10.244.2.20", 8080, dst_namespace="shop", dst_pod="newcomer-x1",
           dst_workload_kind="Deployment", dst_workload_name="newcomer")
    # Where Hubble names the pod the history names too, or names nothing, the history decides.
    f.flow(cluster, "10.244.1.10", 40001, "10.244.2.20", 8080, dst_namespace="shop", dst_pod="cart-a")
    f.flow(cluster, "10.244.1.10", 40002, "10.244.2.20", 8080)
    aggregate_cluster(cluster)
    assert rows(cluster) == [
        ("Deployment/frontend", "Deployment/cart", 8080, "TCP", 2, False, False),
        ("Deployment/frontend", "Deployment/newcomer", 8080, "TCP", 1, False, False),
    ]


def test_a_reused_cluster_ip_belongs_to_the_live_service(cluster, shop):
    from django.utils import timezone

    old = f.service(cluster, "shop", "old", {"app": "frontend"}, "10.96.0.60", [(80, "TCP", 8080)])
    old.deleted_at = timezone.now()
    old.save()
    f.service(cluster, "shop", "cart2", {"app": "cart"}, "10.96.0.60", [(80, "TCP", 8080)])
    f.flow(cluster, "10.244.1.10", 40000, "10.96.0.60", 80)
    aggregate_cluster(cluster)
    assert rows(cluster) == [("Deployment/frontend", "Deployment/cart", 8080, "TCP", 1, False, False)]
