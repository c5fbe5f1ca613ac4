"""Shared fixtures. The suite runs twice: on SQLite (embedded) and on PostgreSQL (production)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

IN_CI = os.environ.get("CI") == "true"


def require_service(name: str, reason: str) -> None:
    """A missing service skips locally, but is a failure in CI, where every service must run."""
    if IN_CI:
        pytest.fail(f"{name} is required in CI: {reason}")
    pytest.skip(f"{name} not available here: {reason}")


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    """The cache (local memory, one per process) holds the API's throttle counts: each test starts afresh."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


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
