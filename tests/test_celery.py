"""Aggregation through a real Celery worker and a real Redis broker, and the beat schedule."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from celery import Celery
from django.db import connection

from flows.models import Communication
from netsec.celery import app as netsec_app
from netsec.schedule import beat_schedule
from tests import factories as f
from tests.conftest import require_service

REPO = Path(__file__).resolve().parents[1]
REDIS_URL = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/15")


def _redis_available() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


def _database_url() -> str:
    """The URL of the test database this process uses, for the worker process."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    return f"postgres://{s['USER'] or 'postgres'}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def test_beat_schedule_names_registered_tasks():
    schedule = beat_schedule(aggregate_every=30)
    netsec_app.loader.import_default_modules()
    for entry in schedule.values():
        assert entry["task"] in netsec_app.tasks
    assert schedule["aggregate-flows"]["schedule"] == 30.0
    with pytest.raises(ValueError):
        beat_schedule(aggregate_every=0)


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_aggregation_runs_in_a_real_worker(cluster):
    if not _redis_available():
        require_service("Redis", f"no answer at {REDIS_URL}")
    a = f.workload(cluster, "shop", "Deployment", "a")
    b = f.workload(cluster, "shop", "Deployment", "b")
    f.pod(cluster, a, "a-1", "10.244.1.1")
    f.pod(cluster, b, "b-1", "10.244.1.2", ports=((8080, "TCP"),))
    f.flow(cluster, "10.244.1.1", 40000, "10.244.1.2", 8080)

    queue = f"netsec-test-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "REDIS_URL": REDIS_URL, "DATABASE_URL": _database_url()}
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "netsec", "worker", "--pool=solo", "-Q", queue,
         "--without-heartbeat", "--without-gossip", "--without-mingle", "--loglevel=WARNING"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        client = Celery(broker=REDIS_URL, backend=REDIS_URL)
        client.conf.task_serializer = client.conf.result_serializer = "json"
        result = client.send_task("flows.tasks.aggregate_flows", args=[cluster.id], queue=queue)
        summary = result.get(timeout=90)
    finally:
        worker.terminate()
        output = worker.communicate(timeout=30)[0].decode(errors="replace")
    assert summary == ["test: 1 new raw flows, 1 hour buckets rebuilt, 1 communications"], output
    row = Communication.objects.get()
    assert (row.src_workload, row.dst_workload, row.port, row.connections) == (a, b, 8080, 1)
