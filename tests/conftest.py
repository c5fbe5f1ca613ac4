"""Shared fixtures. The suite runs twice: on SQLite (embedded) and on PostgreSQL (production)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

IN_CI = os.environ.get("CI") == "true"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test of one database's own mechanics (``postgres``: day partitions; ``sqlite``: batched deletes) is
    left out of the run on the other database, where it does not apply, rather than skipped: that run says
    how many it left out, and a skip in the suite always means something that should have run did not."""
    from django.conf import settings

    vendor = "sqlite" if "sqlite" in settings.DATABASES["default"]["ENGINE"] else "postgres"
    other = "postgres" if vendor == "sqlite" else "sqlite"
    kept = [item for item in items if item.get_closest_marker(other) is None]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if item.get_closest_marker(other) is not None])
        items[:] = kept


def require_service(name: str, reason: str) -> None:
    """A missing service skips locally, but is a failure in CI, where every service must run."""
    if IN_CI:
        pytest.fail(f"{name} is required in CI: {reason}")
    pytest.skip(f"{name} not available here: {reason}")


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    """The cache (local memory, one per process) holds the API's throttle counts and what the pages kept
    (with the copies a process holds itself): each test starts afresh."""
    from django.core.cache import cache

    from policies import memo

    cache.clear()
    memo.forget_local()
    yield
    cache.clear()
    memo.forget_local()


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    """Hashing a password the production way takes a third of a second: tests make many users."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def cluster(db):
    from flows.models import Cluster

    return Cluster.objects.create(
        name="test", pod_cidrs="10.244.0.0/16", service_cidrs="10.96.0.0/12", node_cidrs="172.18.0.0/24"
    )
