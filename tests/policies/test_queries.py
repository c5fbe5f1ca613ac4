"""The service layer answers any one workload in a constant number of queries, whatever its peers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from flows.access import SYSTEM
from flows.aggregate import aggregate_cluster
from flows.models import Cluster, NetworkPolicy
from policies import engine, pages, services
from tests import factories as f
from tests.factories import T0

UNTIL = T0 + timedelta(hours=2)


def world(name: str, peers: int) -> engine.Scope:
    """api in shop, talked to by ``peers`` workloads (half in other namespaces), and talking to as many
    external addresses; a Service in front of it, an applied policy, a saved draft with a manual rule."""
    cluster = Cluster.objects.create(name=name, pod_cidrs="10.244.0.0/16")
    api = f.workload(cluster, "shop", "Deployment", "api")
    f.pod(cluster, api, "api-1", "10.244.0.2", ports=(("http", 8080, "TCP"),))
    f.workload(cluster, "kube-system", "Deployment", "coredns", labels={"k8s-app": "kube-dns"})
    for i in range(peers):
        ns = "shop" if i % 2 else f"team-{i % 5}"
        peer = f.workload(cluster, ns, "Deployment", f"client-{i}")
        ip = f"10.244.{1 + i // 250}.{1 + i % 250}"
        f.pod(cluster, peer, f"client-{i}-a", ip, ports=(("metrics", 9090, "TCP"),))
        f.flow(cluster, ip, 40000 + i, "10.244.0.2", 8080)
        f.flow(cluster, "10.244.0.2", 30000 + i, f"203.0.{113 + i // 250}.{1 + i % 250}", 443)
    f.service(cluster, "shop", "api", {"app": "api"}, "10.96.0.5", [(80, "TCP", "http")])
    NetworkPolicy.objects.create(cluster=cluster, namespace=f.namespace(cluster, "shop"), name="deny", spec={
        "podSelector": {}, "policyTypes": ["Ingress"]})
    aggregate_cluster(cluster)
    scope = services.resolve_scope(SYSTEM, name, "shop", "Deployment", "api")
    services.set_mode(SYSTEM, scope, "egress", "custom")
    services.add_manual_rule(SYSTEM, scope, "egress", "192.0.2.0/24", "443")
    return scope


def queries(call: Callable[[], object]) -> int:
    with CaptureQueriesContext(connection) as captured:
        call()
    return len(captured)


CALLS: dict[str, Callable[[engine.Scope], object]] = {
    "rows": lambda scope: services.rows(SYSTEM, scope, until=UNTIL),
    "generate": lambda scope: services.generate(SYSTEM, scope, until=UNTIL).yaml,
    "verdicts": lambda scope: services.verdicts(SYSTEM, scope, until=UNTIL),
    "resolve_scope": lambda scope: services.resolve_scope(SYSTEM, scope.cluster, "shop", "Deployment", "api"),
    "network_page": lambda scope: pages.network_page(SYSTEM, scope, since="24h", until=UNTIL),
}


@pytest.mark.django_db
@pytest.mark.parametrize("call", sorted(CALLS))
def test_the_number_of_queries_does_not_grow_with_the_peers(call: str) -> None:
    small, big = world("small", 10), world("big", 200)
    assert (len(services.rows(SYSTEM, small, until=UNTIL)), len(services.rows(SYSTEM, big, until=UNTIL))) == (20, 400)
    counts = (queries(lambda: CALLS[call](small)), queries(lambda: CALLS[call](big)))
    assert counts[0] == counts[1], f"{call}: {counts[0]} queries with 10 peers, {counts[1]} with 200"
    # The page gathers everything the network page shows (verdicts, draft, pickers, applied policies).
    assert counts[0] <= (40 if call == "network_page" else 25), f"{call} takes {counts[0]} queries"
