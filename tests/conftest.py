"""Shared fixtures. The suite runs twice: on SQLite (embedded) and on PostgreSQL (production)."""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI") == "true"


def require_service(name: str, reason: str) -> None:
    """A missing service skips locally, but is a failure in CI, where every service must run."""
    if IN_CI:
        pytest.fail(f"{name} is required in CI: {reason}")
    pytest.skip(f"{name} not available here: {reason}")


@pytest.fixture
def cluster(db):
    from flows.models import Cluster

    return Cluster.objects.create(
        name="test", pod_cidrs="10.244.0.0/16", service_cidrs="10.96.0.0/12", node_cidrs="172.18.0.0/24"
    )
