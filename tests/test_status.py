"""The admins' status page: per cluster how the last sync went and what aggregation has not seen yet."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from django.utils import timezone

from flows.aggregate import aggregate_cluster
from flows.models import Cluster
from tests import factories as f


def _client(*groups: str) -> Client:
    user = get_user_model().objects.get_or_create(username="-".join(groups) or "nobody")[0]
    user.groups.add(*(Group.objects.get(name=g) for g in groups))
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_status_shows_a_failed_sync_and_the_backlog(cluster):
    a = f.workload(cluster, "shop", "Deployment", "a")
    f.pod(cluster, a, "a-1", "10.244.1.1")
    f.flow(cluster, "10.244.1.1", 40000, "10.244.1.2", 8080)
    aggregate_cluster(cluster)
    for port in (1, 2, 3):
        f.flow(cluster, "10.244.1.1", 40000 + port, "10.244.1.2", 8080)  # not aggregated yet
    cluster.kubeconfig, cluster.context = "/etc/netsec/kubeconfig", "prod"
    cluster.last_sync = timezone.now() - timedelta(hours=2)
    cluster.last_sync_attempt, cluster.last_sync_duration = timezone.now(), 4.25
    cluster.last_sync_error = "pods: 403 Forbidden: list pods at the cluster scope is not allowed"
    cluster.save()
    Cluster.objects.create(name="dumps-only")

    page = _client("Admins").get("/status/")
    text = page.content.decode()
    assert page.status_code == 200
    assert "/etc/netsec/kubeconfig (context prod)" in text and "2 h ago" in text and "4.3 s" in text
    assert "403 Forbidden: list pods" in text and "3 raw flows" in text
    assert "none: fed by dumps" in text  # the other cluster
    assert "In-process" in text  # no broker in the embedded default


@pytest.mark.django_db
def test_status_is_for_admins_only(cluster):
    response = _client("Editors").get("/status/")
    assert response.status_code == 403
    assert "needs the Admin role" in response.content.decode()
    assert 'href="/status/"' not in _client("Editors").get("/").content.decode()  # nor is it in the menu
    assert 'href="/status/"' in _client("Admins").get("/").content.decode()


@pytest.mark.django_db
def test_a_failed_aggregation_is_kept_and_shown_until_a_run_succeeds(cluster, monkeypatch):
    from flows import tasks
    from flows.models import AggregationState

    def broken(*args, **kwargs):  # a fault injected where no real one can be made on demand
        raise TypeError("the aggregation SQL met a column it did not expect")

    monkeypatch.setattr(tasks, "aggregate_cluster", broken)
    with pytest.raises(TypeError):  # in-process tasks raise (CELERY_TASK_EAGER_PROPAGATES)
        tasks.aggregate_flows.apply(args=[cluster.id])
    assert AggregationState.objects.get(cluster=cluster).last_error.startswith("TypeError: the aggregation SQL")
    assert "the aggregation SQL met a column" in _client("Admins").get("/status/").content.decode()

    monkeypatch.undo()
    f.flow(cluster, "10.244.1.1", 40000, "10.244.1.2", 8080)
    assert tasks.aggregate_flows.apply(args=[cluster.id]).successful()
    assert AggregationState.objects.get(cluster=cluster).last_error == ""
