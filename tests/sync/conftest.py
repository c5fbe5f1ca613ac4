"""Fixtures of the live-sync tests: a fake API server on 127.0.0.1, a kubeconfig for it, and fast options."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flows.kube.api import ApiOptions, Backoff, KubeApi, Target
from flows.models import Cluster
from tests.sync.fakeapi import FakeApi, kubeconfig

# Short timeouts and backoff delays of a millisecond or two: a retry costs nothing, a timeout little.
FAST = ApiOptions(page_size=5, timeout=0.5, connect_timeout=0.5,
                  backoff=Backoff(attempts=3, base_delay=0.001, max_delay=0.005), watch_timeout=5)


@pytest.fixture
def server() -> Iterator[FakeApi]:
    api = FakeApi().start()
    yield api
    api.stop()


@pytest.fixture
def config_file(tmp_path: Path, server: FakeApi) -> Path:
    return kubeconfig(tmp_path / "kubeconfig", server.url)


@pytest.fixture
def live(cluster: Cluster, config_file: Path) -> Cluster:
    """The test cluster, with API settings that lead to the fake server."""
    cluster.kubeconfig = str(config_file)
    cluster.save()
    return cluster


@pytest.fixture
def client(config_file: Path) -> Iterator[KubeApi]:
    with KubeApi.connect(Target(str(config_file)), FAST) as api:
        yield api
