"""`make bench`: throughput and server-time figures, printed, never asserted.

Runs the pipeline benchmark once per database in a child process (settings are read at start-up), and
the pure engine benchmark in this process. PostgreSQL is left out, with a note, when it is not running.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"


def _hubble_line(record) -> bytes:
    """A FlowRecord as `hubble observe -o jsonpb` prints it (the fields our parser reads)."""
    def endpoint(e):
        out = {"namespace": e.namespace, "pod_name": e.pod, "labels": [f"reserved:{e.reserved}"] if e.reserved else []}
        if e.workload_name:
            out["workloads"] = [{"name": e.workload_name, "kind": e.workload_kind}]
        return out
    proto = record.protocol
    l4 = {"source_port": record.source.port, "destination_port": record.destination.port}
    if record.tcp_flags:
        l4["flags"] = {flag: True for flag in record.tcp_flags}
    flow = {
        "time": record.time.isoformat().replace("+00:00", "Z"), "uuid": record.event_id, "verdict": record.verdict,
        "IP": {"source": record.source.ip, "destination": record.destination.ip, "ipVersion": "IPv4"},
        "l4": {proto: l4}, "source": endpoint(record.source), "destination": endpoint(record.destination),
        "Type": "L3_L4", "node_name": record.node_name, "traffic_direction": record.traffic_direction,
        "is_reply": record.is_reply, "destination_names": list(record.destination_names),
    }
    return orjson.dumps({"flow": flow, "node_name": record.node_name, "time": flow["time"]})


def pipeline(days: int, copies: int) -> None:
    """Inside a child process whose DATABASE_URL is set: parse, store and aggregate demo traffic."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "netsec.settings")
    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from flows import demo
    from flows.aggregate import aggregate_cluster
    from flows.ingest.inventory import Snapshot, parse_object
    from flows.models import Cluster, Communication
    from flows.store.inventory import apply_snapshot
    from flows.store.raw_flows import ingest_lines

    call_command("flush", interactive=False, verbosity=0)
    anchor = datetime(2026, 11, 1, tzinfo=UTC)
    cluster = Cluster.objects.create(name="bench", pod_cidrs=demo.POD_CIDR, service_cidrs=demo.SERVICE_CIDR)
    items, pods = demo.build("bench", anchor)
    apply_snapshot(cluster, Snapshot.of(o for o in map(parse_object, items) if o), observed_at=anchor, full=True)
    lines: list[bytes] = []
    for copy in range(copies):
        lines.extend(_hubble_line(r) for r in demo.flows(f"bench{copy}", anchor, pods, days=days))
    n = len(lines)
    started = time.perf_counter()
    summary = ingest_lines(cluster, lines, "hubble")
    ingest_s = time.perf_counter() - started
    started = time.perf_counter()
    result = aggregate_cluster(cluster)
    aggregate_s = time.perf_counter() - started
    started = time.perf_counter()
    aggregate_cluster(cluster)
    noop_s = time.perf_counter() - started
    print(f"  {connection.vendor:10}  {n:>9,} hubble lines  parse+store {n / ingest_s:>9,.0f} lines/s "
          f"({ingest_s:.1f} s, {summary.stored:,} stored)  aggregate {n / aggregate_s:>9,.0f} flows/s "
          f"({aggregate_s:.1f} s, {len(result.buckets)} buckets, {Communication.objects.count():,} rows)  "
          f"idle re-run {noop_s * 1000:.0f} ms", flush=True)
    print(orjson.dumps({"vendor": connection.vendor, "ingest": n / ingest_s, "aggregate": n / aggregate_s}).decode())


WEB_TARGET_MS = 200.0


def web(runs: int) -> None:
    """Inside a child process whose DATABASE_URL is set: server time of the pages on the demo data."""
    import statistics
    import warnings

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "netsec.settings")
    django.setup()
    warnings.filterwarnings("ignore", "No directory at")  # WhiteNoise: the bench serves no static files
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    call_command("flush", interactive=False, verbosity=0)
    call_command("demo", stdout=open(os.devnull, "w"))  # noqa: SIM115 - the demo's report is not wanted here
    admin = get_user_model().objects.create_superuser("bench", password="x")
    client = Client()
    client.force_login(admin)
    base = "/network/prod/shop/Deployment/checkout/"
    requests = [
        ("landing page", "get", "/", {}),
        ("network page, 24 h", "get", base, {}),
        ("network page, 7 d", "get", base + "?since=7d", {}),
        ("egress table fragment", "get", base + "?since=7d&tab=egress", {"HTTP_HX_REQUEST": "true",
                                                                          "HTTP_HX_TARGET": "panel-egress"}),
        ("topology JSON", "get", base + "topology.json?since=7d", {}),
        ("policy YAML", "get", base + "policy.yaml?since=7d", {}),
        ("namespace YAML (9 policies)", "get", "/network/prod/shop/policies.yaml?since=7d", {}),
        ("row toggle (every changed part)", "post", base + "rows",
         {"data": {"key": "egress:Deployment/shop/cart:7070/TCP", "since": "7d"}, "HTTP_HX_REQUEST": "true"}),
    ]
    print(f"  {connection.vendor}:")
    for label, method, url, extra in requests:
        extra = {"HTTP_HOST": "localhost", **extra}
        data = extra.pop("data", None)
        timings = []
        for _ in range(runs):
            started = time.perf_counter()
            response = getattr(client, method)(url, data, **extra) if data else getattr(client, method)(url, **extra)
            timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (label, response.status_code)
        median = statistics.median(timings)
        verdict = "met" if median < WEB_TARGET_MS else "MISSED"
        print(f"    {label:34} median {median:6.0f} ms  (best {min(timings):4.0f}, worst {max(timings):4.0f})  "
              f"{median / WEB_TARGET_MS:4.2f} of the {WEB_TARGET_MS:.0f} ms target: {verdict}", flush=True)


def _postgres_database() -> str | None:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = 'netsec_bench'").fetchone()
            if not exists:
                conn.execute("CREATE DATABASE netsec_bench")
        return "postgres://postgres@127.0.0.1:5432/netsec_bench"
    except Exception as exc:  # noqa: BLE001 - any failure means: no PostgreSQL here
        print(f"  postgresql  left out: {exc}".splitlines()[0])
        return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pipeline", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--web", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--runs", type=int, default=7, help="requests per page for the medians")
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--copies", type=int, default=3, help="copies of the demo week (about 80k lines each)")
    args = parser.parse_args()
    if args.pipeline:
        pipeline(args.days, args.copies)
        return
    if args.web:
        web(args.runs)
        return
    print("pipeline: demo traffic as Hubble jsonpb → raw flows → communications")
    targets = [f"sqlite:///{REPO / '.bench.sqlite3'}"]
    pg = _postgres_database()
    if pg:
        targets.append(pg)
    figures: dict[str, dict] = {}
    for url in targets:
        env = {**os.environ, "DATABASE_URL": url}
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=REPO, env=env, check=True)
        done = subprocess.run([sys.executable, "-m", "tests.bench", "--pipeline", "--days", str(args.days),
                               "--copies", str(args.copies)], cwd=REPO, env=env, check=True, capture_output=True,
                              text=True)
        *shown, last = done.stdout.rstrip().splitlines()
        print("\n".join(shown))
        result = orjson.loads(last)
        figures[result["vendor"]] = result
    if len(figures) == 2:
        pg, lite = figures["postgresql"], figures["sqlite"]
        print(f"  ratios postgresql/sqlite: parse+store {pg['ingest'] / lite['ingest']:.2f}, "
              f"aggregate {pg['aggregate'] / lite['aggregate']:.2f}")
    for vendor, f in figures.items():
        print(f"  ratio aggregate/ingest on {vendor}: {f['aggregate'] / f['ingest']:.1f}")
    print(f"web: server time on the demo data (median of {args.runs} requests each)")
    for url in targets:
        env = {**os.environ, "DATABASE_URL": url, "DEBUG": ""}
        subprocess.run([sys.executable, "-m", "tests.bench", "--web", "--runs", str(args.runs)], cwd=REPO, env=env,
                       check=True)
    try:
        from policies.engine import bench as engine_bench
    except ImportError:
        return
    print("engine:")
    engine_bench.run()


if __name__ == "__main__":
    main()
