"""What the pages keep between requests (``policies.memo`` under ``flows.versions``): a second view of the
same data is served from what was kept, and every kind of change shows on the next view at once — new
flows, an inventory import, retention, a draft change, an alias, a CIDR configuration, a cluster's
settings — and what one user may not see never reaches them through what another user's view kept.
"""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from flows import versions
from flows.access import SYSTEM
from flows.ingest.inventory import read_sources
from flows.models import Cluster
from flows.retention import RetentionPolicy, apply_retention
from flows.store.inventory import apply_snapshot
from policies import memo, services
from tests import factories as f
from tests.inventory import builders as b
from tests.policies import test_views
from tests.policies.test_views import API, FRONTEND_ROW, HTMX, OUTSIDE_IP, World, connect, html, pod_owner, signed_in

# The world of the views' tests, and its users.
world, viewer, editor, admin, shop_editor = (test_views.world, test_views.viewer, test_views.editor,
                                             test_views.admin, test_views.shop_editor)

EGRESS = {**HTMX, "HX-Target": "panel-egress"}
INGRESS = {**HTMX, "HX-Target": "panel-ingress"}


def _fragment(client: Any, headers: dict[str, str] = EGRESS) -> str:
    """A table fragment, its CSRF tokens (new in every answer, kept or not) blanked out."""
    response = client.get(API + "?tab=" + headers["HX-Target"].removeprefix("panel-"), headers=headers)
    assert response.status_code == 200
    return re.sub(r'name="csrfmiddlewaretoken" value="\w+"', 'name="csrfmiddlewaretoken"', html(response))


def _signed_in_with_csrf(user: Any) -> Any:
    """A client that holds a CSRF cookie, as a browser does once it has loaded the page."""
    client = signed_in(user)
    assert client.get(API).status_code == 200
    return client


def test_a_second_view_of_unchanged_data_is_served_from_what_was_kept(world: World, viewer: Any) -> None:
    client = _signed_in_with_csrf(viewer)
    with CaptureQueriesContext(connection) as first:
        shown = _fragment(client)
    with CaptureQueriesContext(connection) as second:
        again = _fragment(client)
    assert again == shown
    # The session, the scope, the version and the draft: nothing of the communications is read again.
    assert len(second) < len(first) and not any("flows_communication" in q["sql"] for q in second.captured_queries)
    whole = client.get(API).content.decode()  # the page, kept since the client first loaded it
    with CaptureQueriesContext(connection) as page_again:
        again = client.get(API).content.decode()
    assert not any("flows_communication" in q["sql"] for q in page_again.captured_queries)
    versions.bump([world.cluster.pk])  # new data: the page is made again
    with CaptureQueriesContext(connection) as page_made:
        client.get(API)
    # Kept: the session and user, the scope, the version, the draft; made: every part of the page.
    assert len(page_again) * 3 < len(page_made)
    token = re.compile(r"[A-Za-z0-9]{64}")  # a CSRF token: new in every answer
    assert token.sub("T", again) == token.sub("T", whole) and "netsecCsrfTokenSlot" not in again
    with CaptureQueriesContext(connection) as topology:
        client.get(API + "topology.json")
    with CaptureQueriesContext(connection) as topology_again:
        client.get(API + "topology.json")
    assert len(topology_again) < len(topology)


def test_new_flows_show_on_the_next_view(world: World, viewer: Any) -> None:
    client = _signed_in_with_csrf(viewer)
    assert "billing" not in _fragment(client)
    assert "billing" not in client.get(API + "topology.json").content.decode()
    pod_owner(world.cluster, "shop", "Deployment", "billing", "10.244.1.9")
    before = versions.current(world.cluster.pk)
    connect(world.cluster, ("10.244.1.2", "10.244.1.9", 9000))  # aggregated: the version moves on
    assert versions.current(world.cluster.pk) != before
    assert "billing" in _fragment(client)
    assert "billing" in client.get(API + "topology.json").content.decode()


def test_a_draft_change_shows_on_the_next_view(world: World, editor: Any) -> None:
    client = _signed_in_with_csrf(editor)
    kept_yaml, kept_fragment = client.get(API + "policy.yaml").content.decode(), _fragment(client, INGRESS)
    assert "frontend" in kept_yaml and kept_fragment == _fragment(client, INGRESS)
    services.set_row(SYSTEM, world.api, FRONTEND_ROW, False)
    assert "frontend" not in client.get(API + "policy.yaml").content.decode()
    assert _fragment(client, INGRESS) != kept_fragment


@pytest.mark.parametrize("scope", ["this cluster", "every cluster"])
def test_an_alias_and_a_cidr_configuration_show_on_the_next_view(world: World, admin: Any, scope: str) -> None:
    client = _signed_in_with_csrf(admin)
    cluster = "test" if scope == "this cluster" else None
    assert "partner" not in _fragment(client)
    alias = services.set_alias(admin, OUTSIDE_IP, "partner", cluster=cluster)
    assert "partner" in _fragment(client)
    services.remove_alias(admin, alias.pk)
    assert "partner" not in _fragment(client)
    config = services.set_cidr_config(admin, "203.0.113.0/24", "Internal", cluster=cluster, label="lab")
    assert "Internal" in _fragment(client).split(OUTSIDE_IP, 1)[1][:2000]
    services.remove_cidr_config(admin, config.pk)
    assert "Internal" not in _fragment(client).split(OUTSIDE_IP, 1)[1][:2000]


def test_an_inventory_import_and_a_cluster_setting_move_the_version(world: World) -> None:
    cluster = world.cluster
    first = versions.current(cluster.pk)
    apply_snapshot(cluster, read_sources([b.SAMPLE]), observed_at=timezone.now(), full=False)
    second = versions.current(cluster.pk)
    assert second != first
    apply_snapshot(cluster, read_sources([b.SAMPLE]), observed_at=timezone.now(), full=False)
    assert versions.current(cluster.pk) == second  # nothing changed: what was kept still holds
    cluster.dns_namespace = "dns"
    cluster.save()
    assert versions.current(cluster.pk) != second
    other = Cluster.objects.get(name="zeta")
    zeta = versions.current(other.pk)
    f.flow(cluster, "10.244.1.1", 1, "10.244.1.2", 8080)
    assert versions.current(other.pk) == zeta  # one cluster's changes leave the other's kept views alone


def test_retention_moves_the_version_when_it_rolls_hours_up(world: World) -> None:
    before = versions.current(world.cluster.pk)
    later = timezone.now() + timedelta(days=3)
    result = apply_retention(later, policy=RetentionPolicy(raw_flows_days=1, hourly_days=1, daily_days=30))
    assert result.rolled_up, result
    assert versions.current(world.cluster.pk) != before


def test_what_one_user_may_not_see_never_reaches_them_through_another_users_view(
        world: World, admin: Any, shop_editor: Any) -> None:
    everyone = _signed_in_with_csrf(admin)
    assert "archiver" in _fragment(everyone, INGRESS)
    limited = _signed_in_with_csrf(shop_editor)
    shown = _fragment(limited, INGRESS)
    assert "archiver" not in shown and "legacy" not in shown
    for path in ("topology.json", "policy.yaml"):
        assert "ledger" in everyone.get(API + path).content.decode()
        assert "ledger" not in limited.get(API + path).content.decode()


def test_a_kept_fragment_carries_a_csrf_token_the_change_is_accepted_with(world: World, editor: Any) -> None:
    client = signed_in(editor, enforce_csrf_checks=True)
    assert client.get(API).status_code == 200
    path = API + "?tab=ingress"
    client.get(path, headers=INGRESS)
    served = html(client.get(path, headers=INGRESS))  # from what was kept
    assert "netsecCsrfTokenSlot" not in served
    token = re.search(r'name="csrfmiddlewaretoken" value="(\w+)"', served).group(1)
    response = client.post(API + "rows", {"key": FRONTEND_ROW, "csrfmiddlewaretoken": token}, headers=HTMX)
    assert response.status_code == 200
    assert not {r.key: r for r in services.rows(SYSTEM, world.api)}[FRONTEND_ROW].included


# --------------------------------------------------------------------------------- made once, made again


@pytest.fixture
def one_version(monkeypatch: pytest.MonkeyPatch) -> None:
    """``memo`` without the database: a cluster whose version never moves (threads share no test database)."""
    monkeypatch.setattr(versions, "current", lambda cluster_id: 7)


def test_what_is_missing_is_made_once_while_the_others_wait_for_it(one_version: None) -> None:
    made: list[int] = []

    def compute() -> str:
        made.append(1)
        time.sleep(0.3)
        return "page"

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: memo.kept(1, "test", ("a",), compute), range(4)))
    assert answers == ["page"] * 4 and len(made) == 1


def test_an_old_result_is_made_again_by_one_request_while_the_others_are_served_it(
        one_version: None, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(memo.time, "time", lambda: clock[0])
    made: list[str] = []

    def compute() -> str:
        made.append(f"made at {clock[0]:.0f}")
        return made[-1]

    assert memo.kept(1, "test", ("b",), compute, max_age=60) == "made at 1000"
    clock[0] += 30
    assert memo.kept(1, "test", ("b",), compute, max_age=60) == "made at 1000"  # fresh
    clock[0] += 31
    # Another request is making it again: this one is served what there is, at once.
    key = memo.key_of(1, "test", ("b",))
    assert cache.add(f"{key}:making", 1)
    assert memo.kept(1, "test", ("b",), compute, max_age=60) == "made at 1000"
    cache.delete(f"{key}:making")
    assert memo.kept(1, "test", ("b",), compute, max_age=60) == "made at 1061"
    assert memo.kept(1, "test", ("b",), compute) == "made at 1061"  # no max_age: never too old
    assert len(made) == 2


def test_a_role_taken_away_shows_on_the_next_view(world: World, editor: Any) -> None:
    from django.contrib.auth.models import Group

    client = _signed_in_with_csrf(editor)
    assert 'hx-post="/network/test/shop/Deployment/api/rows"' in _fragment(client, INGRESS)
    editor.groups.set([Group.objects.get(name="Viewers")])
    assert 'hx-post="/network/test/shop/Deployment/api/rows"' not in _fragment(client, INGRESS)
