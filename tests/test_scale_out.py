"""Scale-out (issue 10, item 3): two real Celery workers on one backlog never double count nor miss a flow.

Two worker processes (``--pool=solo``: concurrency 1 each) read a private queue on the Redis at 127.0.0.1:6379
and write this test's PostgreSQL database. Three clusters get six hours of raw flows through ``import_flows``
(netsec JSON lines), in four batches per cluster: the events of one connection (the client's egress SYN, the
server's ingress SYN, the SYN+ACK reply) are scattered over the batches, so a later batch lands in hour buckets
an earlier task already built. Between the imports, and while the workers run, many ``aggregate_flows`` tasks
are queued at once: several per cluster back to back (two workers take them together and race for the
cluster's lock), with and without ``rebuild_seconds``, and the sweep without a cluster that queues the others.
Once the queue has drained, the communications must be exactly those of one in-process aggregation of the same
raw flows, row for row (a double count is an extra row or a larger count; a lost batch a smaller one), their
connections must add up to the connections generated, and both workers must have rebuilt buckets.

PostgreSQL only (the ``postgres`` marker leaves it out of the SQLite run): it is the production database, and
the one where two workers really write at the same time. A missing Redis skips locally and fails in CI.
"""

from __future__ import annotations

import io
import os
import random
import re
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import pytest
from celery import Celery
from celery.result import AsyncResult
from django.core.management import call_command
from django.utils import timezone

from flows.aggregate import aggregate_cluster
from flows.models import AggregationState, Cluster, Communication, ObservedIP, RawFlow
from flows.tasks import aggregate_flows
from tests import factories as f
from tests.test_celery import REDIS_URL, Processes, _database_url, _redis_available, require_service

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

CLUSTERS = ("scale-a", "scale-b", "scale-c")
HOURS = 6  # of raw flows, ending a few minutes ago
CONNECTIONS_PER_HOUR = 100  # per cluster
BATCHES = 4  # imports per cluster: the first before the workers start, the others while they run
LATE = 8  # then one event in LATE arrives late: an import per hour, each followed by plain runs only
WORKERS = ("scale-1", "scale-2")
# The runs of one round, for each cluster: plain runs, and rebuilds of all the hours and of the last 90 minutes.
REBUILDS = ({"rebuild_seconds": (HOURS + 2) * 3600}, {}, {"rebuild_seconds": 90 * 60}, {})
DRAIN_TIMEOUT = 75  # seconds; a busy cluster's task comes back 10 s later (flows.tasks.BUSY_COUNTDOWN)


# ------------------------------------------------------------------------------------------------ inventory


def _inventory(cluster: Cluster, k: int, *, service: bool) -> dict[str, list[str]]:
    """frontend (2 pods) → api (2 pods, 8080) → db (5432); frontend → cart (7070), through its Service (80 → 7070)
    when ``service``. Returns each workload's pod addresses; ``k`` keeps the clusters' addresses apart."""
    since = timezone.now() - timedelta(days=2)
    pods = {"frontend": (None, 2), "api": (8080, 2), "db": (5432, 1), "cart": (7070, 1)}
    addresses: dict[str, list[str]] = {}
    for n, (name, (port, replicas)) in enumerate(pods.items()):
        wl = f.workload(cluster, "shop", "Deployment", name)
        addresses[name] = []
        for r in range(replicas):
            ip = f"10.244.{k}.{10 * (n + 1) + r}"
            f.pod(cluster, wl, f"{name}-{r}", ip, ports=((port, "TCP"),) if port else (), since=since,
                  node=f"node-{r}", host_ip=f"172.18.{k}.{r + 2}")
            addresses[name].append(ip)
    if service:
        f.service(cluster, "shop", "cart", {"app": "cart"}, f"10.96.{k}.50", [(80, "TCP", 7070)])
    return addresses


# ------------------------------------------------------------------------------------------------ raw flows


def _endpoint(ip: str, port: int, workload: str | None = None, pod: str | None = None) -> dict:
    end: dict = {"ip": ip, "port": port}
    if workload:
        end |= {"namespace": "shop", "pod": pod, "workload": {"kind": "Deployment", "name": workload}}
    return end


def _backlog(name: str, k: int, addresses: dict[str, list[str]], start: datetime, rng: random.Random, *,
             service: bool) -> tuple[list[list[bytes]], dict[datetime, list[bytes]], int]:
    """``BATCHES`` lists of netsec JSON lines for one cluster, late lines per hour bucket, and how many
    connections they hold.

    Each connection has a client port of its own; its events go to batches at random, so the egress SYN,
    the ingress SYN and the reply of one connection often arrive in different imports. One event in
    ``1 / LATE`` arrives late, with the other late events of its hour only.
    """
    batches: list[list[bytes]] = [[] for _ in range(BATCHES)]
    late: dict[datetime, list[bytes]] = defaultdict(list)
    kinds = [  # (client, server or address, port, reached through, dropped)
        ("frontend", "api", 8080, None, False),
        ("api", "db", 5432, None, False),
        ("frontend", "cart", 80, f"10.96.{k}.50", False) if service  # the ClusterIP; the server sees 7070
        else ("frontend", "cart", 7070, None, False),
        ("api", "203.0.113.7", 443, None, False),  # outside the cluster: stays an address
        ("frontend", "db", 5432, None, True),  # denied in the cluster
    ]
    span = HOURS * 3600
    connections = HOURS * CONNECTIONS_PER_HOUR
    for n in range(connections):
        client, server, port, via, dropped = rng.choice(kinds)
        when = start + timedelta(seconds=rng.uniform(0, span), microseconds=n)
        c = rng.randrange(len(addresses[client]))
        c_ip, c_port = addresses[client][c], 20000 + n
        src = _endpoint(c_ip, c_port, client, f"{client}-{c}")
        internal = server in addresses
        s = rng.randrange(len(addresses[server])) if internal else 0
        s_ip = via or (addresses[server][s] if internal else server)
        dst = _endpoint(s_ip, port, server if internal and not via else None, f"{server}-{s}")
        base = {"protocol": "TCP", "source": src, "destination": dst}
        events = [base | {"time": when.isoformat(), "tcp_flags": ["SYN"], "is_reply": False, "direction": "egress",
                          "node": f"node-{c}", "verdict": "DROPPED" if dropped else "FORWARDED"}]
        if internal and not via and not dropped:
            # The same SYN seen at the server's end (counts once), and the server's reply (never a connection).
            later = when + timedelta(microseconds=300)
            events.append(base | {"time": later.isoformat(), "tcp_flags": ["SYN"], "is_reply": False,
                                  "direction": "ingress", "node": f"node-{s}"})
            events.append({"protocol": "TCP", "source": dst, "destination": src, "tcp_flags": ["SYN", "ACK"],
                           "is_reply": True, "direction": "egress", "node": f"node-{s}",
                           "time": (later + timedelta(microseconds=200)).isoformat()})
        for i, event in enumerate(events):
            event["id"] = f"{name}-{n}-{i}"
            line = orjson.dumps(event) + b"\n"
            if rng.randrange(LATE) == 0:
                late[when.replace(minute=0, second=0, microsecond=0)].append(line)
            else:
                batches[rng.randrange(BATCHES)].append(line)
    return batches, late, connections


def _import(name: str, lines: list[bytes], tmp: Path, batch: int) -> None:
    path = tmp / f"{name}-{batch}.jsonl"
    path.write_bytes(b"".join(lines))
    out = io.StringIO()
    call_command("import_flows", str(path), cluster=name, fmt="netsec", stdout=out, stderr=out)
    assert f"{len(lines)} flows stored, 0 duplicates" in out.getvalue(), out.getvalue()


# ---------------------------------------------------------------------------------------------- the result


def _communications() -> list[tuple]:
    """Every communication of the clusters, as comparable tuples (repeats kept: a double count shows)."""
    def end(wl, ip):  # type: ignore[no-untyped-def]
        return f"{wl.kind}/{wl.name}" if wl else ip
    return sorted(
        (c.cluster.name, c.bucket, c.granularity, end(c.src_workload, c.src_ip), end(c.dst_workload, c.dst_ip),
         c.port, c.protocol, c.denied, c.node_local, c.connections, c.first_seen, c.last_seen)
        for c in Communication.objects.select_related("cluster", "src_workload", "dst_workload")
    )


# ------------------------------------------------------------------------------------------------ processes


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[tuple[Processes, Celery]]:
    """Two Celery workers on a private queue, and a Celery client that queues tasks there."""
    if not _redis_available():
        require_service("Redis", f"no answer at {REDIS_URL}")
    queue = f"netsec-scale-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ, "REDIS_URL": REDIS_URL, "DATABASE_URL": _database_url(), "NETSEC_CELERY_QUEUE": queue,
        "DEBUG": "0", "SECRET_KEY": "test-" + uuid.uuid4().hex, "ALLOWED_HOSTS": "127.0.0.1",
        "NETSEC_TEST_TMP": str(tmp_path),
    }
    running = Processes(env)
    # The test process runs Celery eagerly (no REDIS_URL in its settings): this client sends to the workers.
    client = Celery("netsec-scale-test", broker=REDIS_URL, backend=REDIS_URL, set_as_current=False)
    client.conf.update(task_default_queue=queue, task_serializer="json", result_serializer="json",
                       accept_content=["json"], broker_connection_retry_on_startup=True)
    try:
        yield running, client
    finally:
        running.stop()
        import redis

        redis.Redis.from_url(REDIS_URL).delete(queue)
        client.close()


def _log(processes: Processes, name: str) -> str:
    return (Path(processes.env["NETSEC_TEST_TMP"]) / f"{name}.log").read_text(errors="replace")


def _settled(results: list[AsyncResult]) -> bool:
    """Whether every run is done or waits for its retry (its cluster's lock was busy), and so is every run
    that a sweep among them queued."""
    def running(r: AsyncResult) -> bool:
        return not r.ready() and r.state != "RETRY"
    # The runs a sweep queued are known once it has finished.
    return not any(running(r) or (r.ready() and any(map(running, r.children or ()))) for r in results)


def _wait(what: str, check, processes: Processes, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}\n{processes.output()}")


# -------------------------------------------------------------------------------------------------- the test


def test_two_workers_on_one_backlog_count_every_connection_once(workers, tmp_path: Path):
    processes, client = workers
    rng = random.Random(10)
    start = timezone.now() - timedelta(hours=HOURS, minutes=5)
    clusters: list[Cluster] = []
    backlogs: dict[str, list[list[bytes]]] = {}
    late: dict[str, dict[datetime, list[bytes]]] = {}
    generated: dict[str, int] = {}
    for k, name in enumerate(CLUSTERS, start=1):
        cluster = Cluster.objects.create(name=name, pod_cidrs=f"10.244.{k}.0/24", service_cidrs=f"10.96.{k}.0/24",
                                         node_cidrs=f"172.18.{k}.0/24")
        clusters.append(cluster)
        # The first cluster has no Service: nothing else (such as rewriting its service backends) keeps two
        # runs for it apart but the locks. Its runs come first in each round, taken by both workers at once.
        service = name != CLUSTERS[0]
        addresses = _inventory(cluster, k, service=service)
        backlogs[name], late[name], generated[name] = _backlog(name, k, addresses, start, rng, service=service)
        _import(name, backlogs[name][0], tmp_path, 0)

    for worker in WORKERS:
        processes.start(worker, sys.executable, "-m", "celery", "-A", "netsec", "worker", "--pool=solo",
                        "-n", f"{worker}@%h", "-Q", processes.env["NETSEC_CELERY_QUEUE"], "--without-heartbeat",
                        "--without-gossip", "--without-mingle", "--loglevel=INFO")
    for worker in WORKERS:
        _wait(f"worker {worker} to start", lambda w=worker: " ready." in _log(processes, w), processes, 30)

    sent: list[AsyncResult] = []

    def queue_round(runs: tuple[dict, ...]) -> None:
        """``runs`` for one cluster back to back (the two workers take them together), then the next cluster's,
        then the sweep of beat, which queues one more for each cluster with flows not aggregated yet."""
        for cluster in clusters:
            for kwargs in runs:
                sent.append(client.send_task(aggregate_flows.name, args=[cluster.id], kwargs=kwargs))
        sent.append(client.send_task(aggregate_flows.name))

    queue_round(REBUILDS)
    for batch in range(1, BATCHES):
        for name in CLUSTERS:  # lands while the workers aggregate the earlier batches
            _import(name, backlogs[name][batch], tmp_path, batch)
        queue_round(REBUILDS)
    # Then the late events, an hour at a time, each hour followed by plain runs only, once the runs before have
    # settled (done, or waiting for their retry: a cluster whose lock was busy). A rebuild (or any run that finds
    # later flows of the same hour) rebuilds a whole bucket, and so would heal a double count that two runs at
    # once made in it before: each late hour is the last run of its bucket, where a double count would stay.
    for n, hour in enumerate(sorted({h for by_hour in late.values() for h in by_hour})):
        _wait("the runs queued so far to settle", lambda: _settled(sent), processes, DRAIN_TIMEOUT)
        for name in CLUSTERS:
            _import(name, late[name].get(hour, []), tmp_path, BATCHES + n)
        queue_round(({}, {}))

    def drained() -> bool:
        # A sweep's children are known once it is done (the result backend keeps them).
        return all(r.ready() for r in sent) and all(c.ready() for r in sent for c in (r.children or ()))

    _wait("the queue to drain", drained, processes, DRAIN_TIMEOUT)
    everything = [*sent, *(child for r in sent for child in (r.children or ()))]
    failed = [(r.id, r.state, r.result) for r in everything if r.state != "SUCCESS"]
    assert not failed, f"{failed}\n{processes.output()}"
    import redis

    assert redis.Redis.from_url(REDIS_URL).llen(processes.env["NETSEC_CELERY_QUEUE"]) == 0
    for r in everything:
        r.forget()

    logs = {w: _log(processes, w) for w in WORKERS}
    contended = sum(log.count("Retry in") for log in logs.values())
    by_workers = _communications()
    lines = [*(b for batches in backlogs.values() for b in batches), *(b for v in late.values() for b in v.values())]
    assert RawFlow.objects.count() == sum(map(len, lines))
    assert {s.cluster.name: s.last_raw_flow_id for s in AggregationState.objects.select_related("cluster")} == {
        c.name: RawFlow.objects.filter(cluster=c).order_by("-id").values_list("id", flat=True)[0] for c in clusters}

    # The same raw flows, aggregated once, in this process, from nothing.
    Communication.objects.all().delete()
    ObservedIP.objects.all().delete()
    AggregationState.objects.all().delete()
    for cluster in clusters:
        aggregate_cluster(cluster)
    once = _communications()

    totals = Counter()
    for row in once:
        totals[row[0]] += row[9]
    assert dict(totals) == generated  # the reference itself misses nothing and counts nothing twice
    extra, missing = Counter(by_workers) - Counter(once), Counter(once) - Counter(by_workers)
    assert by_workers == once, (
        f"two workers made {len(by_workers)} rows, one run {len(once)}; lock contentions: {contended}\n"
        f"only from the workers: {sorted(extra.elements())[:10]}\nonly from one run: {sorted(missing.elements())[:10]}")

    # Both workers aggregated: each rebuilt hour buckets at least once.
    pattern = re.compile(r"aggregate_flows\[[^\]]+\] succeeded in [\d.]+s: \['[^']+: \d+ new raw flows, ([1-9]\d*) "
                         r"hour buckets rebuilt")
    assert all(pattern.search(log) for log in logs.values()), processes.output()
