"""Live operation through real processes: gunicorn serving the API, a Celery worker and Celery beat on the
Redis at 127.0.0.1:6379, all against this test's database. Also the beat schedule and the per-cluster locks.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from celery.schedules import crontab
from django.core.management import call_command
from django.db import connection
from django.test import Client, override_settings
from django.utils import timezone

from flows.locks import exclusive, held
from netsec.celery import app as netsec_app
from netsec.schedule import ScheduleError, beat_schedule
from policies import services
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


@pytest.fixture
def redis_url() -> str:
    if not _redis_available():
        require_service("Redis", f"no answer at {REDIS_URL}")
    return REDIS_URL


def _database_url() -> str:
    """The URL of the test database this process uses, for the other processes."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    return f"postgres://{s['USER'] or 'postgres'}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


# ------------------------------------------------------------------------------------------------ schedule


def test_beat_schedule_defaults_name_registered_tasks():
    schedule = beat_schedule({})
    netsec_app.loader.import_default_modules()
    assert {name: entry["task"] in netsec_app.tasks for name, entry in schedule.items()} == {
        "aggregate-flows": True, "sync-clusters": True, "apply-retention": True}
    assert schedule["aggregate-flows"]["schedule"] == 60.0
    assert schedule["sync-clusters"]["schedule"] == 300.0
    assert schedule["apply-retention"]["schedule"] == crontab(hour="3", minute="30")


def test_beat_schedule_comes_from_the_environment():
    schedule = beat_schedule({"NETSEC_AGGREGATE_EVERY": "15", "NETSEC_SYNC_EVERY": "120",
                              "NETSEC_RETENTION_AT": "23:05"})
    assert schedule["aggregate-flows"]["schedule"] == 15.0
    assert schedule["aggregate-flows"]["options"] == {"expires": 15.0}
    assert schedule["sync-clusters"]["schedule"] == 120.0
    assert schedule["apply-retention"]["schedule"] == crontab(hour="23", minute="5")


@pytest.mark.parametrize(("name", "value", "says"), [
    ("NETSEC_AGGREGATE_EVERY", "0", "positive"),
    ("NETSEC_AGGREGATE_EVERY", "1m", "whole number of seconds"),
    ("NETSEC_SYNC_EVERY", "-5", "positive"),
    ("NETSEC_RETENTION_AT", "25:00", "HH:MM"),
    ("NETSEC_RETENTION_AT", "3pm", "HH:MM"),
])
def test_a_bad_schedule_variable_is_named(name: str, value: str, says: str):
    with pytest.raises(ScheduleError, match=f"{name}={value!r}.*{says}"):
        beat_schedule({name: value})


# ------------------------------------------------------------------------------------------------- locks


@pytest.mark.redis
def test_a_lock_in_redis_is_held_once_and_expires(redis_url: str):
    name = f"test:{uuid.uuid4().hex}"
    with override_settings(REDIS_URL=redis_url):
        with exclusive(name, ttl=30) as first:
            assert first and held(name)
            with exclusive(name, ttl=30) as second:
                assert not second  # a second worker for the same cluster does not run
        assert not held(name)  # released by its holder
        # A worker that dies holding the lock blocks the next run only until it expires.
        import redis

        lock = redis.Redis.from_url(redis_url).lock(f"netsec:lock:{name}", timeout=1)
        assert lock.acquire(blocking=False)  # ... and then the process is gone
        with exclusive(name, ttl=30) as blocked:
            assert not blocked
        time.sleep(1.2)
        with exclusive(name, ttl=30) as later:
            assert later


def test_a_lock_without_redis_is_the_process_cache():
    with exclusive("in-process", ttl=30) as first, exclusive("in-process", ttl=30) as second:
        assert (first, second) == (True, False)
    with exclusive("in-process", ttl=30) as again:
        assert again


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_busy_cluster_is_skipped_by_the_sync_task(redis_url: str, cluster):
    from flows.tasks import sync_cluster

    cluster.kubeconfig = "/nowhere/kubeconfig"
    cluster.save()
    with override_settings(REDIS_URL=redis_url), exclusive(f"sync:{cluster.id}", ttl=30):
        assert sync_cluster.run(cluster.id) == "test: skipped, a sync is running"
    cluster.refresh_from_db()
    assert cluster.last_sync_attempt is None  # nothing was tried


# --------------------------------------------------------------------------------------- real processes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Processes:
    """Child processes of one test, stopped (and their output kept for the failure message) at the end."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.running: list[tuple[str, subprocess.Popen, io.BufferedRandom]] = []

    def start(self, name: str, *args: str) -> subprocess.Popen:
        log = open(Path(self.env["NETSEC_TEST_TMP"]) / f"{name}.log", "w+b")  # noqa: SIM115 - closed in stop()
        process = subprocess.Popen(args, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.running.append((name, process, log))
        return process

    def output(self) -> str:
        parts = []
        for name, _, log in self.running:
            log.flush()
            log.seek(0)
            parts.append(f"--- {name}\n{log.read().decode(errors='replace')[-4000:]}")
        return "\n".join(parts)

    def stop(self) -> None:
        for _, process, log in self.running:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
            log.close()


@pytest.fixture
def processes(redis_url: str, tmp_path: Path) -> Iterator[Processes]:
    queue = f"netsec-test-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ, "REDIS_URL": redis_url, "DATABASE_URL": _database_url(), "NETSEC_CELERY_QUEUE": queue,
        # Production settings, on plain HTTP on loopback.
        "DEBUG": "0", "SECRET_KEY": "test-" + uuid.uuid4().hex, "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0", "SECURE_COOKIES": "0", "NETSEC_TEST_TMP": str(tmp_path),
        # Beat sweeps every second here; the sync of clusters waits an hour (none has API settings anyway).
        "NETSEC_AGGREGATE_EVERY": "1", "NETSEC_SYNC_EVERY": "3600",
    }
    running = Processes(env)
    yield running
    running.stop()


def _wait_for(what: str, check: Callable[[], object], processes: Processes, timeout: float = 90) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.3)
    pytest.fail(f"timed out waiting for {what}\n{processes.output()}")


def _rows(name: str) -> list[dict]:
    out = io.StringIO()
    call_command("show_communications", cluster="test", namespace="shop", kind="Deployment", name=name,
                 direction="ingress", since="2h", format="json", stdout=out)
    return json.loads(out.getvalue())["rows"]


def _netsec_line(src: str, dst: str, port: int, when) -> bytes:  # type: ignore[no-untyped-def]
    return orjson.dumps({"time": when.isoformat(), "protocol": "TCP", "tcp_flags": ["SYN"],
                         "source": {"ip": src, "port": 40000}, "destination": {"ip": dst, "port": port}}) + b"\n"


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_batch_posted_to_the_api_is_aggregated_by_the_worker_and_beat_catches_up(processes: Processes, cluster):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    a = f.workload(cluster, "shop", "Deployment", "a")
    b = f.workload(cluster, "shop", "Deployment", "b")
    c = f.workload(cluster, "shop", "Deployment", "c")
    f.pod(cluster, a, "a-1", "10.244.1.1")
    f.pod(cluster, b, "b-1", "10.244.1.2", ports=((8080, "TCP"),))
    f.pod(cluster, c, "c-1", "10.244.1.3", ports=((9090, "TCP"),))
    admin = get_user_model().objects.create_user("ops")
    admin.groups.add(Group.objects.get_or_create(name="Admins")[0])
    token = services.create_token(admin, "exporter").secret
    port = _free_port()

    processes.start("worker", sys.executable, "-m", "celery", "-A", "netsec", "worker", "--pool=solo",
                    "-Q", processes.env["NETSEC_CELERY_QUEUE"], "--without-heartbeat", "--without-gossip",
                    "--without-mingle", "--loglevel=INFO")
    processes.start("web", sys.executable, "-m", "gunicorn", "netsec.wsgi", "-b", f"127.0.0.1:{port}",
                    "-w", "1", "--log-level", "warning")

    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    _wait_for("gunicorn to be ready", ready, processes)

    # 1. A batch through the ingestion API: queued, aggregated by the worker, seen by show_communications.
    when = timezone.now() - timedelta(minutes=10)
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/clusters/test/flows?format=netsec",
        data=_netsec_line("10.244.1.1", "10.244.1.2", 8080, when), method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson",
                 "Idempotency-Key": "batch-1"})
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.loads(response.read())
    assert (answer["stored"], answer["aggregation"]) == (1, "queued"), answer
    rows = _wait_for("the worker to aggregate the posted batch", lambda: _rows("b"), processes)
    assert [(r["peer"]["name"], r["port"], r["connections"]) for r in rows] == [("a", 8080, 1)]  # type: ignore[union-attr]

    # 2. Flows that arrive without a task of their own (an import): beat's sweep queues their aggregation.
    processes.start("beat", sys.executable, "-m", "celery", "-A", "netsec", "beat", "--loglevel=INFO",
                    "-s", str(Path(processes.env["NETSEC_TEST_TMP"]) / "celerybeat-schedule"))
    f.flow(cluster, "10.244.1.1", 40001, "10.244.1.3", 9090, time=when)
    rows = _wait_for("beat to have the worker aggregate the imported flow", lambda: _rows("c"), processes)
    assert [(r["peer"]["name"], r["port"], r["connections"]) for r in rows] == [("a", 9090, 1)]  # type: ignore[union-attr]

    # The status page, as an admin sees it: the worker answers, the queue is drained, no backlog.
    client = Client()
    client.force_login(admin)
    with override_settings(REDIS_URL=processes.env["REDIS_URL"],
                           CELERY_TASK_DEFAULT_QUEUE=processes.env["NETSEC_CELERY_QUEUE"]):
        # A solo worker answers a ping between tasks, and beat keeps it busy every second: ask a few times.
        def answered() -> object:
            queue = services.operations_status(admin)[1]
            return queue if queue.workers else None

        queue = _wait_for("the worker to answer a ping", answered, processes, timeout=30)
        page = client.get("/status/").content.decode()
    assert queue.mode == "redis" and queue.problem == "" and queue.depth is not None, processes.output()  # type: ignore[attr-defined]
    assert 'data-cluster="test"' in page and "Waiting tasks" in page
