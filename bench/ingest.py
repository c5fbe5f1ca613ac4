"""The ingest + aggregate benchmark: ``python -m bench.ingest [--flows 1000000] [--runs 3] [--workers N] [--quick]``.

Figures are printed, with their ratios against the peer and the floor and the targets met or not; nothing is
asserted. The machine is shared and has two cores: the figures of one run are noisy, look at the medians of
several (``--runs 3``) before believing a difference of less than 20 %.

What is measured, all on the same generated file (``bench.synth``: a cluster of 20 namespaces x 10 workloads x 3
replicas, ``--flows`` Hubble jsonpb lines over 4 hours), each run on a fresh database (PostgreSQL: a copy of a
migrated template holding the cluster and its inventory; SQLite: a copy of such a file):

* ``pg``: ``manage.py import_flows --format hubble`` then ``manage.py aggregate_flows`` on PostgreSQL (database
  ``netsec_bench``), two timed subprocesses, once with one importing process and once with ``--workers N``
  (``--workers``, default the machine's cores; the faster of the two is the figure judged against the targets);
  wall time (Django's start-up included) and the peak RSS of each
  (``os.wait4``);
* ``sqlite``: the same on SQLite;
* ``http``: the same file through ``POST /api/v1/clusters/<c>/flows`` of gunicorn (2 workers) on loopback against
  PostgreSQL: gzipped batches (``--batch`` lines, compressed beforehand, not timed) with Idempotency-Keys and a
  Bearer token from ``--clients`` threads. Aggregation is queued (``REDIS_URL`` set to a private Redis queue that no
  worker reads) and ``aggregate_flows`` runs after the last answer: the figure is the time until everything is
  stored and aggregated. ``--http-inline`` also measures the other setting (``REDIS_URL`` unset: each request
  aggregates before it answers);
* ``peer``: ``hubble-audit2policy`` 0.18.5 (PyPI), in its own venv under ``.bench/venvs/audit2policy``, on the same
  file, ``--no-enrich --single-file``: the whole run, reading to YAML written;
* ``floor``: the 5-tuples and time of the same file parsed with orjson (time, source and destination address and
  port, protocol) into a TSV file, then sent with one ``COPY`` into an UNLOGGED table without indexes. The figure
  *includes* the parse (the least any importer of this file does); the COPY alone is printed beside it;
* ``memory``: ``import_flows`` (and ``aggregate_flows``) on the first quarter of the file, against the whole file:
  peak RSS of both and their ratio (target: flat);
* ``incremental``: a 5,000-pod cluster (50 x 20 x 5) whose raw flows and communications hold 1 day, then 7 days of
  history, and on top of it one minute's batch at 10,000 flows/s (600,000 lines): ``import_flows`` +
  ``aggregate_flows``, at both history sizes, then one second's batch (10,000 lines) into the hour of the last
  minute (aggregation rebuilds whole hours: its cost follows what the hour holds, not the batch). The history is
  made at a lower density than the minute (``--history-density`` flows per hour, 20,000 by default): one hour of
  synthetic traffic goes through ``import_flows`` and ``aggregate_flows``, then its raw flows and communications
  are copied in SQL into every other hour of the history (new fingerprints, shifted times), the watermark is moved
  past them and the tables are ANALYZEd;
* ``profile`` (only with ``--profile``, needs ``py-spy`` in the venv): ``import_flows`` and ``aggregate_flows`` under
  ``py-spy record --idle``, the time of every SQL statement of one aggregation and ``EXPLAIN (ANALYZE, BUFFERS)`` of
  its largest bucket statement; the reports go to ``.bench/profile/``.

``--quick``: 40,000 lines, one run, a 250-pod incremental cluster with a 12,000-line minute; under two minutes.
Scratch files (generated data, the peer's venv, SQLite files, reports) live in ``.bench/``; the figures of each
run are also written to ``.bench/results/ingest-<time>.json``.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import itertools
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import synth

REPO = Path(__file__).resolve().parents[1]
SCRATCH = REPO / ".bench"
DATA = SCRATCH / "data"
PEER_VENV = SCRATCH / "venvs" / "audit2policy"
PEER = "hubble-audit2policy==0.18.5"
PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
PG_URL = "postgres://postgres@127.0.0.1:5432/{}"
DB, BASE, INCREMENTAL = "netsec_bench", "netsec_bench_base", "netsec_bench_inc"
REDIS_BENCH_URL = "redis://127.0.0.1:6379/12"
CLUSTER = "bench"
PY = sys.executable
MANAGE = str(REPO / "manage.py")

# Targets, as the performance issue states them.
PEER_SPEEDUP_TARGET = 2.0  # ingest + aggregate at least this many times faster than hubble-audit2policy
FLOOR_TARGET = 3.0  # at most this many times the bare COPY floor
FLAT_TARGET = 1.25  # peak RSS at 4x the input at most this many times the RSS at 1x
HISTORY_TARGET = 1.25  # a minute's cost on 7 days of history at most this many times its cost on 1 day


class BenchError(RuntimeError):
    """A step of the benchmark failed; the message says which and shows the end of its output."""


# ------------------------------------------------------------------------------------------------ processes


@dataclass
class Timing:
    seconds: float
    rss_mb: float
    output: str = ""
    cpu_s: float = 0.0  # user + system CPU of the command and of the processes it waited for (its --workers)


def child_env(database_url: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of a measured process: production settings (no DEBUG, whose query log costs time and
    memory), plain HTTP on loopback, no Celery broker unless asked, throttles out of the way."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DEBUG", "DATABASE_URL")}
    env.update({"SECURE_SSL_REDIRECT": "0", "SECURE_HSTS_SECONDS": "0", "SECRET_KEY": "netsec-bench-not-secret",
                "NETSEC_INGEST_RATE": "100000/minute", "NETSEC_API_RATE": "100000/minute",
                "PYTHONDONTWRITEBYTECODE": "1", "LOG_LEVEL": "WARNING"})
    if database_url:
        env["DATABASE_URL"] = database_url
    env.update(extra)
    return env


# Forks and execs the command, waits for it and writes its peak RSS (KB) to argv[1]. A process's ru_maxrss counts
# the image it was forked from until it execs: forked from this harness it would read the harness's size, forked
# from this launcher (python -S, a few MB) it reads the command's own.
_LAUNCHER = """import os, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(f"{usage.ru_maxrss} {usage.ru_utime + usage.ru_stime}")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def timed(cmd: list[str], env: dict[str, str], *, check: bool = True) -> Timing:
    """Run a command to its end: wall time (launch included), peak RSS of the command's process, its output."""
    rss_file = SCRATCH / f"rss-{os.getpid()}.txt"
    rss_file.unlink(missing_ok=True)
    started = time.perf_counter()
    done = subprocess.run([PY, "-S", "-c", _LAUNCHER, str(rss_file), *cmd], cwd=REPO, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - started
    output = done.stdout.decode(errors="replace")
    if check and done.returncode != 0:
        tail = "\n".join(output.splitlines()[-25:])
        raise BenchError(f"{' '.join(cmd[:4])} ... exited {done.returncode}:\n{tail}")
    rss_kb, cpu_s = rss_file.read_text().split() if rss_file.exists() else (0, 0)
    rss_file.unlink(missing_ok=True)
    return Timing(seconds, int(rss_kb) / 1024, output, float(cpu_s))


_TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int, *, children: bool = False) -> float:
    """CPU seconds (user + system) of a live process, with those of its reaped children when asked; 0 if gone."""
    try:
        # The command name may hold spaces: the fields are counted from its closing parenthesis.
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return (utime + stime + (cutime + cstime if children else 0)) / _TICK


def pg_cpu() -> float | None:
    """CPU seconds used so far by the local PostgreSQL server: its live processes, plus what the postmaster
    counts of the backends it reaped (each connection's backend exits with it). None when no server runs here."""
    total, found = 0.0, False
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name, parent = stat[stat.index("(") + 1:stat.rindex(")")], int(stat.rpartition(")")[2].split()[1])
        if name != "postgres":
            continue
        found = True
        try:
            postmaster = Path(f"/proc/{parent}/comm").read_text().strip() != "postgres"
        except OSError:
            postmaster = True
        total += proc_cpu(int(entry.name), children=postmaster)
    return total if found else None


def pg_wal_lsn() -> str:
    return pg_query("postgres", "SELECT pg_current_wal_lsn()::text")[0][0]


def pg_wal_bytes(since: str) -> int:
    return int(pg_query("postgres", f"SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '{since}')")[0][0])


def raw_flow_bytes(name: str) -> tuple[int, int, int]:
    """(rows, heap bytes, index bytes) of the raw flow table's day partitions in database ``name``."""
    return pg_query(name, """
        SELECT (SELECT count(*) FROM flows_rawflow),
               COALESCE(sum(pg_table_size(i.inhrelid)), 0), COALESCE(sum(pg_indexes_size(i.inhrelid)), 0)
          FROM pg_inherits i WHERE i.inhparent = 'flows_rawflow'::regclass""")[0]


def manage(*args: str, env: dict[str, str]) -> Timing:
    return timed([PY, MANAGE, *args], env)


# ------------------------------------------------------------------------------------------------ databases


def pg_admin(*statements: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as conn:
        for statement in statements:
            conn.execute(statement)


def pg_available() -> str:
    """'' when PostgreSQL answers, else why not."""
    try:
        pg_admin("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means: no PostgreSQL here
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return ""


def schema_stamp() -> tuple[tuple[str, int], ...]:
    """The migration files as they are now: a template made under another set is out of date (the working tree
    changes under a long run when others edit it)."""
    files = sorted(p for app in ("flows", "policies", "netsec") for p in (REPO / app / "migrations").glob("*.py"))
    return tuple((str(p), p.stat().st_mtime_ns) for p in files)


def pg_fresh(name: str, template: str | None = None) -> str:
    """Drop and create database ``name`` (a copy of ``template``); its URL."""
    tpl = f" TEMPLATE {template}" if template else ""
    pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", f"CREATE DATABASE {name}{tpl}")
    return PG_URL.format(name)


def pg_drop(*names: str) -> None:
    pg_admin(*(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)" for name in names))


def pg_query(name: str, sql: str) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={name}", autocommit=True) as conn:
        return conn.execute(sql).fetchall()


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def sqlite_copy(source: Path, target: Path) -> str:
    for suffix in ("", "-wal", "-shm", ".test"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(source, target)
    return sqlite_url(target)


def sqlite_checkpoint(path: Path) -> None:
    """Fold the WAL into the file, so that a copy of the file alone is the whole database."""
    import sqlite3

    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


# --------------------------------------------------------------------------------------------- the datasets


@dataclass
class Dataset:
    """Generated files of one shape (cached in .bench/data/<key>/ while the shape and synth's VERSION hold)."""

    shape: synth.Shape
    directory: Path
    summary: dict[str, Any]

    @property
    def flows(self) -> Path:
        return self.directory / "flows.jsonl"

    @property
    def inventory(self) -> Path:
        return self.directory / "inventory.json"

    @property
    def observed_at(self) -> str:
        return self.shape.end.isoformat()


def dataset(shape: synth.Shape, say: Callable[[str], None]) -> Dataset:
    directory = DATA / shape.key()
    marker = directory / "summary.json"
    if marker.exists() and (directory / "flows.jsonl").exists():
        return Dataset(shape, directory, json.loads(marker.read_text()))
    say(f"generating {shape.flows:,} lines ({shape.app_pods:,} application pods) into {directory} ...")
    summary = synth.generate(shape, directory)
    say("  " + summary.text())
    data = {k: v for k, v in asdict(summary).items() if k != "shape"} | {"text": summary.text()}
    marker.write_text(json.dumps(data))
    return Dataset(shape, directory, data)


def head(source: Path, lines: int) -> Path:
    """The first ``lines`` lines of a file, as a file beside it (cached)."""
    target = source.with_name(f"{source.stem}-head{lines}.jsonl")
    if not target.exists():
        tmp = target.with_suffix(".tmp")
        with open(source, "rb") as src, open(tmp, "wb") as out:
            out.writelines(itertools.islice(src, lines))
        tmp.replace(target)
    return target


def http_batches(source: Path, size: int) -> list[Path]:
    """The file cut into gzip files of ``size`` lines (cached), as an exporter would send them."""
    directory = source.with_name(f"{source.stem}-http{size}")
    done = directory / "done"
    if not done.exists():
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        with open(source, "rb") as src:
            for index in itertools.count():
                chunk = list(itertools.islice(src, size))
                if not chunk:
                    break
                (directory / f"{index:06d}.gz").write_bytes(gzip.compress(b"".join(chunk), compresslevel=1))
        done.write_text("")
    return sorted(directory.glob("*.gz"))


# ------------------------------------------------------------------------------------------------ templates


@dataclass
class Template:
    """A database (PostgreSQL name, or SQLite file) migrated, holding the cluster, its inventory and a token."""

    name: str
    token: str
    stamp: tuple[tuple[str, int], ...] = ()

    @property
    def current(self) -> bool:
        return self.stamp == schema_stamp()


def setup_database(url: str, ds: Dataset) -> str:
    """Migrate, create the cluster, import the inventory, make a superuser and a token; the token."""
    done = timed([PY, "-m", "bench.ingest", "--child", "setup", "--inventory", str(ds.inventory),
                  "--observed-at", ds.observed_at], child_env(url))
    return done.output.strip().splitlines()[-1]


def child_setup(args: argparse.Namespace) -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "netsec.settings")
    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from flows.access import SYSTEM
    from flows.models import Cluster
    from policies import services

    call_command("migrate", verbosity=0)
    Cluster.objects.create(name=CLUSTER, pod_cidrs=synth.POD_CIDR, service_cidrs=synth.SERVICE_CIDR,
                           node_cidrs=synth.NODE_CIDR)
    call_command("import_inventory", "--cluster", CLUSTER, "--observed-at", args.observed_at, args.inventory,
                 stdout=open(os.devnull, "w"))  # noqa: SIM115 - its report is not wanted here
    get_user_model().objects.create_superuser("bench", password="netsec-bench")
    print(services.create_token(SYSTEM, "bench", username="bench").secret)


def pg_base() -> None:
    pg_fresh(BASE)
    manage("migrate", "-v0", env=child_env(PG_URL.format(BASE)))


def pg_template(ds: Dataset, name: str) -> Template:
    stamp = schema_stamp()
    pg_base()
    pg_fresh(name, BASE)
    return Template(name, setup_database(PG_URL.format(name), ds), stamp)


def sqlite_template(ds: Dataset, name: str) -> Template:
    stamp = schema_stamp()
    base = SCRATCH / "db" / "base.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{base}{suffix}").unlink(missing_ok=True)
    manage("migrate", "-v0", env=child_env(sqlite_url(base)))
    sqlite_checkpoint(base)
    path = SCRATCH / "db" / f"{name}.sqlite3"
    sqlite_copy(base, path)
    token = setup_database(sqlite_url(path), ds)
    sqlite_checkpoint(path)
    return Template(str(path), token, stamp)


# ---------------------------------------------------------------------------------------------- the figures


@dataclass
class Figure:
    """One measured thing over its runs."""

    label: str
    seconds: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    lines: int = 0
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) if self.seconds else float("nan")

    @property
    def rss(self) -> float:
        return statistics.median(self.rss_mb) if self.rss_mb else float("nan")

    @property
    def rate(self) -> float:
        return self.lines / self.median if self.seconds and self.median > 0 else float("nan")


_IMPORTED = re.compile(r"total: (\d+) lines read, (\d+) flows stored, (\d+) duplicates, (\d+) skipped, "
                       r"(\d+) malformed")
_AGGREGATED = re.compile(r"(\d+) new raw flows, (\d+) hour buckets rebuilt, (\d+) communications")


def imported(output: str) -> dict[str, int]:
    found = _IMPORTED.search(output)
    if not found:
        raise BenchError(f"import_flows printed no summary:\n{output[-2000:]}")
    return dict(zip(("lines", "stored", "duplicates", "skipped", "malformed"), map(int, found.groups()),
                    strict=True))


def aggregated(output: str) -> dict[str, int]:
    found = _AGGREGATED.search(output)
    if not found:
        raise BenchError(f"aggregate_flows printed no summary:\n{output[-2000:]}")
    return dict(zip(("raw_flows", "buckets", "communications"), map(int, found.groups()), strict=True))


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.figures: dict[str, Figure] = {}
        self.facts: dict[str, Any] = {}
        self.notes: list[str] = []
        self.pg = not pg_available()
        self.started = time.perf_counter()

    def say(self, text: str) -> None:
        print(text, flush=True)

    def figure(self, key: str, label: str, lines: int) -> Figure:
        return self.figures.setdefault(key, Figure(label, lines=lines))

    def runs(self) -> range:
        return range(self.args.runs)

    # ------------------------------------------------------------------------------------------- stages

    def cli(self, ds: Dataset, vendor: str, template: Callable[[], Template], workers: int = 1) -> None:
        lines = ds.shape.flows
        key = vendor if workers == 1 else f"{vendor}.workers"
        how = vendor if workers == 1 else f"{vendor} --workers {workers}"
        imp = self.figure(f"{key}.import", f"{how} import_flows", lines)
        agg = self.figure(f"{key}.aggregate", f"{how} aggregate_flows", lines)
        total = self.figure(f"{key}.total", f"{how} ingest + aggregate", lines)
        for run in self.runs():
            if vendor == "postgresql":
                url = pg_fresh(DB, template().name)
            else:
                url = sqlite_copy(Path(template().name), SCRATCH / "db" / "run.sqlite3")
            env = child_env(url)
            pg = vendor == "postgresql"
            pg_before, wal_before = (pg_cpu(), pg_wal_lsn()) if pg else (None, "")
            first = manage("import_flows", "--cluster", CLUSTER, "--format", "hubble", "--workers", str(workers),
                           str(ds.flows), env=env)
            counts = imported(first.output)
            if pg:
                pg_between, wal = pg_cpu(), pg_wal_bytes(wal_before)
                rows, heap, index = raw_flow_bytes(DB)
            second = manage("aggregate_flows", "--cluster", CLUSTER, env=env)
            result = aggregated(second.output)
            if pg:
                pg_after = pg_cpu()
                cost = {"lines": lines, "stored": counts["stored"], "netsec_cpu_s": first.cpu_s,
                        "wal_bytes": wal, "rows": rows, "heap_bytes": heap, "index_bytes": index,
                        "aggregate_wall_s": second.seconds, "raw_flows_aggregated": result["raw_flows"]}
                if pg_before is not None and pg_between is not None and pg_after is not None:
                    cost |= {"pg_import_cpu_s": pg_between - pg_before, "pg_aggregate_cpu_s": pg_after - pg_between}
                self.facts.setdefault(f"{key}.costs", []).append(cost)
            imp.seconds.append(first.seconds)
            imp.rss_mb.append(first.rss_mb)
            agg.seconds.append(second.seconds)
            agg.rss_mb.append(second.rss_mb)
            total.seconds.append(first.seconds + second.seconds)
            total.rss_mb.append(max(first.rss_mb, second.rss_mb))
            self.facts[f"{key}.counts"] = counts | result
            if run == 0:
                idle = manage("aggregate_flows", "--cluster", CLUSTER, env=env)
                self.facts[f"{key}.idle_aggregate_s"] = idle.seconds
            self.say(f"  {how:10} run {run + 1}: import {first.seconds:6.1f} s ({lines / first.seconds:8,.0f} "
                     f"lines/s, {first.rss_mb:5.0f} MB)  aggregate {second.seconds:6.1f} s ({second.rss_mb:5.0f} MB)"
                     f"  stored {counts['stored']:,}, malformed {counts['malformed']}, {result['buckets']} buckets, "
                     f"{result['communications']:,} communications")
        if vendor == "postgresql":
            size = pg_query(DB, "SELECT pg_database_size(current_database())")[0][0]
            self.facts["postgresql.database_mb"] = round(size / 2**20)

    def http(self, ds: Dataset, templates: Callable[[], Template], *, inline: bool) -> None:
        mode = "inline" if inline else "queued"
        batches = http_batches(ds.flows, self.args.batch)
        lines = ds.shape.flows
        post = self.figure(f"http.{mode}.post", f"HTTP POST ({mode} aggregation)", lines)
        agg = self.figure(f"http.{mode}.aggregate", "HTTP then aggregate_flows", lines)
        total = self.figure(f"http.{mode}.total", f"HTTP ingest + aggregate ({mode})", lines)
        for run in self.runs():
            template = templates()
            url = pg_fresh(DB, template.name)
            queue = f"netsec-bench-{os.getpid()}"
            extra = {} if inline else {"REDIS_URL": REDIS_BENCH_URL, "NETSEC_CELERY_QUEUE": queue}
            env = child_env(url, **extra)
            with Gunicorn(env) as server:
                workers_before, pg_before = server.worker_cpu(), pg_cpu()
                seconds, answers = post_all(server.port, template.token, batches, self.args.clients)
                rss = server.worker_rss_mb()
                workers_cpu, pg_after = server.worker_cpu() - workers_before, pg_cpu()
            if not inline:
                _purge_queue(queue)
            stored = sum(a["stored"] for a in answers)
            malformed = sum(a["malformed"] for a in answers)
            cost = {"lines": lines, "stored": stored, "workers_cpu_s": workers_cpu, "post_wall_s": seconds}
            if pg_before is not None and pg_after is not None:
                cost["pg_cpu_s"] = pg_after - pg_before
            self.facts.setdefault(f"http.{mode}.costs", []).append(cost)
            after = manage("aggregate_flows", "--cluster", CLUSTER, env=env)
            result = aggregated(after.output)
            post.seconds.append(seconds)
            post.rss_mb.append(rss)
            agg.seconds.append(after.seconds)
            agg.rss_mb.append(after.rss_mb)
            total.seconds.append(seconds + after.seconds)
            total.rss_mb.append(max(rss, after.rss_mb))
            self.say(f"  http       run {run + 1}: {len(batches)} POSTs of {self.args.batch:,} lines from "
                     f"{self.args.clients} clients {seconds:6.1f} s ({lines / seconds:8,.0f} lines/s, worker peak "
                     f"{rss:4.0f} MB), then aggregate_flows {after.seconds:5.1f} s ({result['raw_flows']:,} new raw "
                     f"flows); stored {stored:,}, malformed {malformed}, aggregation {answers[0]['aggregation']}")

    def peer(self, ds: Dataset, files: list[tuple[Path, int]]) -> None:
        exe = peer_executable(self.say)
        for path, lines in files:
            key = "peer" if path == ds.flows else "peer.part"
            label = "hubble-audit2policy 0.18.5" + ("" if path == ds.flows else f", first {lines:,} lines")
            fig = self.figure(key, label, lines)
            out = SCRATCH / "peer-policies.yaml"
            for run in self.runs() if path == ds.flows else range(1):
                done = timed([str(exe), str(path), "--no-enrich", "--single-file", str(out)], child_env(),
                             check=False)
                if done.output and "policies generated" not in done.output:
                    raise BenchError(f"hubble-audit2policy failed:\n{done.output[-2000:]}")
                summary = next((ln for ln in done.output.splitlines() if "policies generated" in ln), "")
                fig.seconds.append(done.seconds)
                fig.rss_mb.append(done.rss_mb)
                self.say(f"  peer       run {run + 1}: {lines:,} lines {done.seconds:6.1f} s "
                         f"({lines / done.seconds:8,.0f} lines/s, {done.rss_mb:4.0f} MB): {summary.strip()}")

    def floor(self, ds: Dataset) -> None:
        lines = ds.shape.flows
        fig = self.figure("floor", "floor: orjson parse + COPY (UNLOGGED)", lines)
        copy = self.figure("floor.copy", "floor: the COPY alone (no parse)", lines)
        for run in self.runs():
            pg_fresh(DB)
            done = timed([PY, "-m", "bench.ingest", "--child", "floor", "--file", str(ds.flows)], child_env())
            result = json.loads(done.output.strip().splitlines()[-1])
            fig.seconds.append(done.seconds)
            fig.rss_mb.append(done.rss_mb)
            copy.seconds.append(result["copy_s"])
            self.say(f"  floor      run {run + 1}: {result['copied']:,} rows {done.seconds:6.1f} s "
                     f"(parse {result['parse_s']:.1f} s, COPY {result['copy_s']:.1f} s, process start "
                     f"{done.seconds - result['parse_s'] - result['copy_s']:.1f} s)")

    def memory(self, ds: Dataset, template: Template, part: Path, lines: int) -> None:
        imp = self.figure("memory.import", f"PostgreSQL import_flows, first {lines:,} lines", lines)
        agg = self.figure("memory.aggregate", f"PostgreSQL aggregate_flows, first {lines:,} lines", lines)
        env = child_env(pg_fresh(DB, template.name))
        first = manage("import_flows", "--cluster", CLUSTER, "--format", "hubble", str(part), env=env)
        second = manage("aggregate_flows", "--cluster", CLUSTER, env=env)
        imp.seconds.append(first.seconds)
        imp.rss_mb.append(first.rss_mb)
        agg.seconds.append(second.seconds)
        agg.rss_mb.append(second.rss_mb)
        self.say(f"  memory     {lines:,} lines: import {first.seconds:6.1f} s ({first.rss_mb:4.0f} MB), aggregate "
                 f"{second.seconds:5.1f} s ({second.rss_mb:4.0f} MB)")

    # ------------------------------------------------------------------------------------- incremental

    def incremental(self) -> None:
        a = self.args
        ns, wl, rep = (5, 10, 5) if a.quick else (50, 20, 5)
        per_second = a.minute_rate
        minute_lines = per_second * 60
        start = datetime(2026, 11, 10, tzinfo=UTC)
        history_days = 7
        shape = synth.Shape(namespaces=ns, workloads=wl, replicas=rep, flows=a.history_density,
                            span=timedelta(days=history_days + 1), start=start, seed=7, churn=0.1)
        cluster = synth.Cluster(shape)
        directory = DATA / f"inc-{shape.key()}"
        now = start + timedelta(days=history_days)  # the minutes are measured from here on
        template_hour = now - timedelta(hours=1)
        files: dict[str, tuple[Path, datetime]] = {
            "template": (directory / "history-hour.jsonl", template_hour),
            "m1": (directory / f"minute1-{minute_lines}.jsonl", now),
            "m2": (directory / f"minute2-{minute_lines}.jsonl", now + timedelta(hours=1)),
            "m3": (directory / f"second-{per_second}.jsonl", now + timedelta(hours=1, minutes=1)),
        }
        if not (directory / "inventory.json").exists():
            directory.mkdir(parents=True, exist_ok=True)
            with open(directory / "inventory.json.tmp", "wb") as out:
                cluster.write_inventory(out)
            (directory / "inventory.json.tmp").replace(directory / "inventory.json")
        for key, (path, at) in files.items():
            if path.exists():
                continue
            length = {"template": timedelta(hours=1), "m3": timedelta(seconds=1)}.get(key, timedelta(minutes=1))
            count = {"template": a.history_density, "m3": per_second}.get(key, minute_lines)
            self.say(f"  generating {count:,} lines for {at:%Y-%m-%d %H:%M} + {length} ({shape.app_pods:,} pods) ...")
            synth.generate(shape, directory, flows_name=path.name, inventory_name=None, start=at, end=at + length,
                           flows=count, cluster=cluster)
        ds = Dataset(shape, directory, {})
        self.say(f"  history: a {shape.app_pods:,}-pod cluster ({len(cluster.pods):,} pods with the system ones and "
                 f"the {cluster.evicted} replaced during the week), {a.history_density:,} flows per hour of history "
                 f"(one hour generated and ingested, copied in SQL into the others); minutes of {minute_lines:,} "
                 f"lines ({per_second:,} flows/s)")
        pg_fresh(INCREMENTAL, BASE)
        url = PG_URL.format(INCREMENTAL)
        setup_database(url, ds)
        env = child_env(url)
        manage("import_flows", "--cluster", CLUSTER, str(files["template"][0]), env=env)
        manage("aggregate_flows", "--cluster", CLUSTER, env=env)

        def extend(hours: range) -> None:
            done = timed([PY, "-m", "bench.ingest", "--child", "history", "--template-hour", template_hour.isoformat(),
                          f"--hours={hours.start}:{hours.stop}"], env)
            self.say("  " + done.output.strip().splitlines()[-1] + f" in {done.seconds:.1f} s")

        def minute(key: str, label: str, lines: int = minute_lines) -> None:
            path = files[key][0]
            first = manage("import_flows", "--cluster", CLUSTER, str(path), env=env)
            counts = imported(first.output)
            second = manage("aggregate_flows", "--cluster", CLUSTER, env=env)
            result = aggregated(second.output)
            fig = self.figure(f"incremental.{key}", label, lines)
            fig.seconds.append(first.seconds + second.seconds)
            fig.rss_mb.append(max(first.rss_mb, second.rss_mb))
            fig.note = f"import {first.seconds:.1f} s + aggregate {second.seconds:.1f} s"
            rows = pg_query(INCREMENTAL, "SELECT (SELECT count(*) FROM flows_rawflow), "
                            "(SELECT count(*) FROM flows_communication), pg_database_size(current_database())")[0]
            self.facts[f"incremental.{key}"] = {"import_s": first.seconds, "aggregate_s": second.seconds,
                                                "raw_flows": rows[0], "communications": rows[1],
                                                "database_mb": round(rows[2] / 2**20)} | counts | result
            self.say(f"  {label}: import {first.seconds:5.1f} s + aggregate {second.seconds:5.1f} s = "
                     f"{first.seconds + second.seconds:5.1f} s ({result['buckets']} bucket, "
                     f"{result['communications']:,} communications); database now {rows[0]:,} raw flows, "
                     f"{rows[1]:,} communications, {rows[2] / 2**30:.1f} GB")

        extend(range(-23, 0))  # the day before `now`, the template hour being its last
        minute("m1", "minute on 1 day of history ")
        extend(range(-24 * history_days + 1, -23))
        minute("m2", "minute on 7 days of history")
        hours, rows, size, busy = pg_query(INCREMENTAL, f"""
            SELECT count(DISTINCT bucket), count(*), pg_total_relation_size('flows_communication'),
                   count(*) FILTER (WHERE bucket = '{files["m2"][1].isoformat()}')
              FROM flows_communication WHERE granularity = 'hour'""")[0]
        self.facts["incremental.communications"] = {"hours": hours, "rows": rows, "total_bytes": size,
                                                    "rows_of_the_minute_hour": busy}
        self.say(f"  communications: {busy:,} hourly rows from the minute at {per_second:,} flows/s; {rows:,} "
                 f"over all {hours} hours; {size / max(rows, 1):,.0f} bytes per row with its indexes")
        minute("m3", "1 s batch into the same hour", per_second)
        if not a.keep:
            pg_drop(INCREMENTAL)

    # ----------------------------------------------------------------------------------------- profile

    def profile(self, ds: Dataset, template: Template) -> None:
        spy = Path(PY).with_name("py-spy")
        out = SCRATCH / "profile"
        out.mkdir(parents=True, exist_ok=True)
        env = child_env(pg_fresh(DB, template.name))
        if not spy.exists():
            self.say("  py-spy is not in the venv (pip install py-spy into .venv, not into pyproject): the Python "
                     "profiles are left out")
        for name, args in (("import", ["import_flows", "--cluster", CLUSTER, "--format", "hubble", str(ds.flows)]),
                           ("aggregate", ["aggregate_flows", "--cluster", CLUSTER])):
            if not spy.exists():
                manage(*args, env=env)
                continue
            raw = out / f"{name}.collapsed"
            done = timed([str(spy), "record", "--idle", "--rate", "100", "--format", "raw", "--output", str(raw),
                          "--", PY, MANAGE, *args], env)
            self.say(f"  py-spy {name}: {done.seconds:.1f} s under the profiler; stacks in {raw}")
            report = summarize_profile(raw)
            (out / f"{name}.txt").write_text(report)
            self.say("\n".join("    " + line for line in report.splitlines()[:40]))
        # Statement times of one more aggregation: rebuild every bucket of the data just imported.
        done = timed([PY, "-m", "bench.ingest", "--child", "statements", "--explain", str(out / "bucket-plan.txt")],
                     env)
        (out / "statements.txt").write_text(done.output)
        self.say("\n".join("    " + line for line in done.output.splitlines()))

    # ------------------------------------------------------------------------------------------ report

    def report(self) -> None:
        f = {key: fig for key, fig in self.figures.items() if fig.seconds}  # a failed stage measured nothing
        peer = f.get("peer")
        floor = f.get("floor")
        self.say("")
        self.say(f"figures ({self.args.flows:,} lines; median of {self.args.runs} run(s); noisy shared 2-core machine)")
        self.say(f"  {'':44} {'seconds':>8} {'lines/s':>10} {'peak RSS':>9} {'peer/this':>9} {'this/floor':>10}")
        for key, fig in f.items():
            if key.startswith("incremental."):
                continue
            whole = fig.lines == self.args.flows  # ratios only between runs on the same (whole) file
            vs_peer = f"{peer.median / fig.median:8.2f}x" if peer and fig is not peer and whole else ""
            vs_floor = f"{fig.median / floor.median:9.2f}x" if floor and fig is not floor and whole else ""
            rss = f"{fig.rss:6.0f} MB" if fig.rss_mb else ""
            self.say(f"  {fig.label:44} {fig.median:8.1f} {fig.rate:10,.0f} {rss:>9} {vs_peer:>9} {vs_floor:>10}")
        self.say("")
        self.say("targets")
        # The headline is the faster way to run the import on this machine: one process, or --workers.
        candidates = [fig for key, fig in f.items() if key in ("postgresql.total", "postgresql.workers.total")]
        main = min(candidates, key=lambda fig: fig.median) if candidates else None
        if main:
            self.say(f"  (the figure judged: {main.label})")
        if main and peer:
            speedup = peer.median / main.median
            self.verdict(f"ingest + aggregate (PostgreSQL) >= {PEER_SPEEDUP_TARGET:.0f}x faster than "
                         f"hubble-audit2policy: {speedup:.2f}x", speedup >= PEER_SPEEDUP_TARGET)
        if main and floor:
            times = main.median / floor.median
            self.verdict(f"ingest + aggregate (PostgreSQL) within {FLOOR_TARGET:.0f}x of the bare COPY floor: "
                         f"{times:.1f}x", times <= FLOOR_TARGET)
        http = f.get("http.queued.total")
        if http and peer and floor:
            self.verdict(f"the same through HTTP: {peer.median / http.median:.2f}x the peer's speed, "
                         f"{http.median / floor.median:.1f}x the floor",
                         peer.median / http.median >= PEER_SPEEDUP_TARGET and http.median / floor.median
                         <= FLOOR_TARGET)
        small, big = f.get("memory.import"), f.get("postgresql.import")
        if small and big:
            ratio = big.rss / small.rss
            agg_small, agg_big = f.get("memory.aggregate"), f.get("postgresql.aggregate")
            agg = f", aggregate_flows {agg_small.rss:.0f} -> {agg_big.rss:.0f} MB" if agg_small and agg_big else ""
            self.verdict(f"memory flat in the input size: import_flows peak RSS {small.rss:.0f} MB at "
                         f"{small.lines:,} lines, {big.rss:.0f} MB at {big.lines:,} lines: {ratio:.2f}x{agg}",
                         ratio <= FLAT_TARGET and (not agg or agg_big.rss / agg_small.rss <= FLAT_TARGET))
        m1, m2, m3 = (f.get(f"incremental.m{i}") for i in (1, 2, 3))
        if m1 and m2:
            ratio = m2.median / m1.median
            self.verdict(f"a minute's batch does not grow with history: {m1.median:.1f} s on 1 day "
                         f"({m1.note}), {m2.median:.1f} s on 7 days ({m2.note}): {ratio:.2f}x",
                         ratio <= HISTORY_TARGET)
            keeps_up = max(m1.median, m2.median) <= 60
            self.verdict(f"keeps up with {self.args.minute_rate:,} flows/s (a minute's batch in under 60 s): "
                         f"{max(m1.median, m2.median):.1f} s", keeps_up)
        if m2 and m3:
            self.say(f"  (info) then one second's batch ({m3.lines:,} lines) into the same hour: {m3.median:.1f} s "
                     f"({m3.note}): aggregation rebuilds the whole hour, whatever the size of the batch")
        self.costs()
        missing = [fig.label for fig in self.figures.values() if not fig.seconds]
        if missing:
            self.say(f"  not measured (a stage failed): {', '.join(missing)}")
        for note in self.notes:
            self.say(f"  note: {note}")

    def costs(self) -> None:
        """Per core and per row: what docs/scaling.md sizes a deployment with (medians over the runs)."""
        lines: list[str] = []

        def med(runs: list[dict[str, Any]], value: Callable[[dict[str, Any]], float]) -> float:
            values = [value(run) for run in runs]
            return statistics.median(values) if values else float("nan")

        for key, how in (("postgresql", "one import_flows process"), ("postgresql.workers", "import_flows --workers")):
            runs = self.facts.get(f"{key}.costs", [])
            if not runs:
                continue
            lines.append(f"{how}: {med(runs, lambda r: r['lines'] / r['netsec_cpu_s']):,.0f} lines per CPU second of "
                         f"netsec")
            if "pg_import_cpu_s" in runs[0]:
                stored = med(runs, lambda r: r["stored"] / r["pg_import_cpu_s"])
                wall = med(runs, lambda r: r["raw_flows_aggregated"] / r["aggregate_wall_s"])
                cpu = med(runs, lambda r: r["raw_flows_aggregated"] / r["pg_aggregate_cpu_s"])
                lines.append(f"  PostgreSQL while it stores: {stored:,.0f} flows stored per CPU second of the server")
                lines.append(f"  aggregation: {wall:,.0f} raw flows per second of wall time, {cpu:,.0f} per CPU "
                             f"second of the server")
            lines.append(f"  raw flow on disk: {med(runs, lambda r: r['heap_bytes'] / r['rows']):,.0f} bytes of heap, "
                         f"{med(runs, lambda r: r['index_bytes'] / r['rows']):,.0f} of indexes; WAL "
                         f"{med(runs, lambda r: r['wal_bytes'] / r['stored']):,.0f} bytes per stored flow")
        runs = self.facts.get("http.queued.costs", [])
        if runs:
            text = f"HTTP: {med(runs, lambda r: r['lines'] / r['workers_cpu_s']):,.0f} lines per CPU second of gunicorn"
            if "pg_cpu_s" in runs[0]:
                text += f", {med(runs, lambda r: r['stored'] / r['pg_cpu_s']):,.0f} stored per CPU second of PostgreSQL"
            lines.append(text)
        comm = self.facts.get("incremental.communications")
        if comm:
            lines.append(f"communications: {comm['rows_of_the_minute_hour']:,} hourly rows in the hour of a minute at "
                         f"{self.args.minute_rate:,} flows/s; {comm['total_bytes'] / max(comm['rows'], 1):,.0f} bytes "
                         f"per row with its indexes")
        if lines:
            self.say("")
            self.say("per core and per row (docs/scaling.md)")
            for line in lines:
                self.say("  " + line)

    def verdict(self, text: str, met: bool) -> None:
        self.say(f"  {'met    ' if met else 'NOT met'}  {text}")

    def save(self) -> Path:
        results = SCRATCH / "results"
        results.mkdir(parents=True, exist_ok=True)
        path = results / f"ingest-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
        data = {"args": {k: str(v) for k, v in vars(self.args).items()},
                "figures": {k: asdict(v) | {"median": v.median, "rss": v.rss} for k, v in self.figures.items()},
                "facts": self.facts, "total_seconds": time.perf_counter() - self.started}
        path.write_text(json.dumps(data, indent=1, default=str))
        return path


# --------------------------------------------------------------------------------------------------- HTTP


class Gunicorn:
    """gunicorn on a free loopback port, 2 sync workers, until the block ends."""

    def __init__(self, env: dict[str, str], workers: int = 2) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.env, self.workers = env, workers
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = SCRATCH / "gunicorn.log"

    def __enter__(self) -> Gunicorn:
        gunicorn = Path(PY).with_name("gunicorn")
        self.proc = subprocess.Popen(
            [str(gunicorn), "netsec.wsgi:application", "--bind", f"127.0.0.1:{self.port}", "--workers",
             str(self.workers), "--timeout", "900", "--graceful-timeout", "10", "--log-level", "warning"],
            cwd=REPO, env=self.env, stdout=open(self.log, "wb"), stderr=subprocess.STDOUT)  # noqa: SIM115
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"gunicorn exited {self.proc.returncode}:\n{self.log.read_text()[-2000:]}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200 and len(self.worker_pids()) >= self.workers:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        raise BenchError("gunicorn did not answer /healthz within 60 s")

    def worker_pids(self) -> list[int]:
        assert self.proc is not None
        try:
            text = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        except OSError:
            return []
        return [int(pid) for pid in text.split()]

    def worker_cpu(self) -> float:
        """CPU seconds the workers have used so far."""
        return sum(proc_cpu(pid) for pid in self.worker_pids())

    def worker_rss_mb(self) -> float:
        """The largest peak RSS (VmHWM) of the workers."""
        peaks = []
        for pid in self.worker_pids():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            found = re.search(r"VmHWM:\s+(\d+) kB", status)
            if found:
                peaks.append(int(found.group(1)) / 1024)
        return max(peaks, default=float("nan"))

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def post_all(port: int, token: str, batches: list[Path], clients: int) -> tuple[float, list[dict[str, Any]]]:
    """POST every batch (gzip, Idempotency-Key, Bearer token) from ``clients`` threads; seconds and answers."""
    pending = iter(enumerate(batches))
    lock = threading.Lock()
    answers: list[dict[str, Any]] = []
    errors: list[str] = []
    run = f"{os.getpid()}-{time.time_ns()}"

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=900)
        while not errors:
            with lock:
                item = next(pending, None)
            if item is None:
                return
            index, path = item
            body = path.read_bytes()
            headers = {"Authorization": f"Bearer {token}", "Content-Encoding": "gzip",
                       "Content-Type": "application/x-ndjson", "Idempotency-Key": f"bench-{run}-{index}"}
            for attempt in range(4):
                try:
                    conn.request("POST", f"/api/v1/clusters/{CLUSTER}/flows?format=hubble", body, headers)
                    response = conn.getresponse()
                    data = response.read()
                except (OSError, http.client.HTTPException):
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=900)
                    time.sleep(0.5 * (attempt + 1))
                    continue
                if response.status == 200:
                    with lock:
                        answers.append(json.loads(data))
                    break
                if response.status in (429, 502, 503) and attempt < 3:
                    time.sleep(1 + attempt)
                    continue
                errors.append(f"batch {index}: HTTP {response.status}: {data[:500]!r}")
                return
            else:
                errors.append(f"batch {index}: no answer after 4 tries")

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    if errors:
        raise BenchError("ingestion over HTTP failed: " + "; ".join(errors[:3]))
    return seconds, answers


def _purge_queue(queue: str) -> None:
    """Drop the aggregation tasks that the queued run left in its private Redis queue."""
    try:
        import redis

        client = redis.Redis.from_url(REDIS_BENCH_URL)
        client.delete(queue, f"_kombu.binding.{queue}")
        client.close()
    except Exception:  # noqa: BLE001, S110 - leftovers in a private queue harm nothing
        pass


# --------------------------------------------------------------------------------------------------- peer


def peer_executable(say: Callable[[str], None]) -> Path:
    """hubble-audit2policy in its own venv (made once, never in ours)."""
    exe = PEER_VENV / "bin" / "hubble-audit2policy"
    if exe.exists():
        return exe
    say(f"  installing {PEER} into {PEER_VENV} ...")
    # The interpreter our venv was made from, not the venv itself: the peer must not see our packages.
    base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    subprocess.run([str(base), "-m", "venv", str(PEER_VENV)], check=True)
    subprocess.run([str(PEER_VENV / "bin" / "pip"), "install", "--quiet", PEER], check=True)
    return exe


# -------------------------------------------------------------------------------------------------- floor


def child_floor(args: argparse.Namespace) -> None:
    """The floor: parse the 5-tuples and time out of the file with orjson into a TSV file, then COPY that into an
    UNLOGGED table without indexes. One after the other, so that the two times do not overlap."""
    import tempfile

    import orjson
    import psycopg

    protocols = ("TCP", "UDP", "SCTP", "ICMPv4", "ICMPv6")
    null = "\\N"
    rows = 0
    started = time.perf_counter()
    with tempfile.TemporaryFile(dir=SCRATCH) as tsv:
        with open(args.file, "rb") as source:
            while chunk := list(itertools.islice(source, 20_000)):
                out = []
                for line in chunk:
                    flow = orjson.loads(line).get("flow")
                    if not flow or not flow.get("IP"):
                        continue
                    ip, l4 = flow["IP"], flow.get("l4") or {}
                    for proto in protocols:
                        layer = l4.get(proto)
                        if layer is not None:
                            break
                    else:
                        continue
                    sport, dport = layer.get("source_port", null), layer.get("destination_port", null)
                    out.append(f"{flow['time']}\t{ip['source']}\t{ip['destination']}\t{sport}\t{dport}\t{proto}\n")
                tsv.write("".join(out).encode())
                rows += len(out)
        tsv.flush()
        parse_s = time.perf_counter() - started
        tsv.seek(0)
        started = time.perf_counter()
        with psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={DB}", autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS bench_floor")
            conn.execute("CREATE UNLOGGED TABLE bench_floor (time timestamptz NOT NULL, src_ip text NOT NULL, "
                         "dst_ip text NOT NULL, src_port integer, dst_port integer, protocol text NOT NULL)")
            with conn.cursor() as cursor, cursor.copy(
                    "COPY bench_floor (time, src_ip, dst_ip, src_port, dst_port, protocol) FROM STDIN") as copy:
                while block := tsv.read(1 << 20):
                    copy.write(block)
            copied = conn.execute("SELECT count(*) FROM bench_floor").fetchone()
        copy_s = time.perf_counter() - started
    print(json.dumps({"rows": rows, "copied": copied[0] if copied else 0, "parse_s": parse_s, "copy_s": copy_s}))


# ----------------------------------------------------------------------------------------------- history


def child_history(args: argparse.Namespace) -> None:
    """Copy the template hour's raw flows and communications into hours ``--hours a:b`` relative to it, with new
    fingerprints; move the watermark past them (they are aggregated: their communications are copied too)."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "netsec.settings")
    django.setup()
    from django.db import connection, transaction
    from django.db.models import Max

    from flows.models import AggregationState, Cluster, Communication, RawFlow
    from flows.store import raw_flows

    cluster = Cluster.objects.get(name=CLUSTER)
    hour = datetime.fromisoformat(args.template_hour)
    first, stop = (int(x) for x in args.hours.split(":"))
    ensure = getattr(raw_flows, "ensure_partitions_for", None)
    if ensure is not None:  # day partitions (PostgreSQL), where the store has them
        ensure([hour + timedelta(hours=k) for k in range(first, stop)])
    quote = connection.ops.quote_name

    def columns(model: Any) -> list[str]:
        return [f.column for f in model._meta.concrete_fields if not f.primary_key]

    shifted = {"time": "f.time + k * interval '1 hour'",
               "fingerprint": "left(f.fingerprint, 56) || '~' || (k + 1000)::text",
               "bucket": "f.bucket + k * interval '1 hour'", "first_seen": "f.first_seen + k * interval '1 hour'",
               "last_seen": "f.last_seen + k * interval '1 hour'"}
    counts = []
    with transaction.atomic(), connection.cursor() as cursor:
        for model, when in ((RawFlow, "time"), (Communication, "bucket")):
            cols = columns(model)
            select = ", ".join(shifted.get(c, f"f.{quote(c)}") for c in cols)
            cursor.execute(
                f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(map(quote, cols))}) "
                f"SELECT {select} FROM {quote(model._meta.db_table)} f CROSS JOIN generate_series(%s, %s) k "
                f"WHERE f.cluster_id = %s AND f.{when} >= %s AND f.{when} < %s",
                [first, stop - 1, cluster.pk, hour, hour + timedelta(hours=1)])
            counts.append(cursor.rowcount)
        top = RawFlow.objects.filter(cluster=cluster).aggregate(m=Max("id"))["m"]
        AggregationState.objects.filter(cluster=cluster).update(last_raw_flow_id=top)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"history: {counts[0]:,} raw flows and {counts[1]:,} communications copied into {stop - first} hours")


# ------------------------------------------------------------------------------------------------ profile


def child_statements(args: argparse.Namespace) -> None:
    """Rebuild every bucket once with each SQL statement timed; EXPLAIN (ANALYZE, BUFFERS) the largest bucket."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "netsec.settings")
    django.setup()
    from django.db import connection, transaction
    from django.db.models import Count
    from django.db.models.functions import TruncHour

    from flows import aggregate
    from flows.models import Cluster, RawFlow

    cluster = Cluster.objects.get(name=CLUSTER)
    totals: dict[str, list[float]] = defaultdict(list)
    rows: Counter[str] = Counter()

    def label(sql: str) -> str:
        text = " ".join(sql.split())
        if "WITH ev AS" in text:
            return "BUCKET_SQL (INSERT ... SELECT of one hour bucket)"
        return re.sub(r"\b\d+\b", "N", text)[:110]

    def timer(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            totals[label(sql)].append(time.perf_counter() - started)
            rows[label(sql)] += max(context["cursor"].rowcount, 0) if context.get("cursor") else 0

    started = time.perf_counter()
    with connection.execute_wrapper(timer):
        result = aggregate.aggregate_cluster(cluster, rebuild_since=datetime(2000, 1, 1, tzinfo=UTC))
    total = time.perf_counter() - started
    print(f"aggregate_cluster(rebuild) of {RawFlow.objects.filter(cluster=cluster).count():,} raw flows: {total:.1f} s,"
          f" {len(result.buckets)} buckets, {result.communications:,} communications; SQL statements by total time:")
    spent = sum(sum(v) for v in totals.values())
    for name, times in sorted(totals.items(), key=lambda kv: -sum(kv[1]))[:15]:
        print(f"  {sum(times):7.2f} s {100 * sum(times) / total:5.1f} %  x{len(times):<4} {name}")
    print(f"  {total - spent:7.2f} s {100 * (total - spent) / total:5.1f} %  Python outside SQL")
    if connection.vendor != "postgresql" or not result.buckets:
        return
    counts = dict(RawFlow.objects.filter(cluster=cluster).annotate(h=TruncHour("time")).values("h")
                  .annotate(n=Count("id")).values_list("h", "n"))
    bucket = max(counts, key=lambda b: counts[b])
    params = {"cluster": cluster.id, "start": bucket, "end": bucket + aggregate.HOUR, "bucket": bucket}
    with transaction.atomic(), connection.cursor() as cursor:
        aggregate.plan_for_aggregation()
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, VERBOSE OFF) " + aggregate.bucket_sql(), params)
        plan = "\n".join(r[0] for r in cursor.fetchall())
        transaction.set_rollback(True)
    Path(args.explain).write_text(plan)
    print(f"EXPLAIN (ANALYZE, BUFFERS) of the bucket {bucket:%Y-%m-%d %H:00} ({counts[bucket]:,} raw flows) -> "
          f"{args.explain}:")
    for line in plan.splitlines():
        if "Execution Time" in line or "Planning Time" in line:
            print("  " + line.strip())


def summarize_profile(path: Path, top: int = 25) -> str:
    """py-spy's collapsed stacks (``frame;frame;... count``): inclusive and own shares of the heaviest frames."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        for name in dict.fromkeys(_frame(f, line=False) for f in frames):
            inclusive[name] += n
        if frames:
            own[_frame(frames[-1], line=True)] += n
    lines = [f"{total:,} samples; inclusive (the frame and what it calls):"]
    lines += [f"  {100 * n / total:5.1f} %  {name}" for name, n in inclusive.most_common(top)]
    lines.append("own time (the frame itself, C calls inside it included):")
    lines += [f"  {100 * n / total:5.1f} %  {name}" for name, n in own.most_common(top)]
    return "\n".join(lines) + "\n"


def _frame(frame: str, *, line: bool) -> str:
    """``fn (/repo/flows/x.py:12)`` -> ``fn (flows/x.py:12)`` (the line only with ``line``, and only for our code)."""
    name, _, where = frame.partition(" (")
    file, _, number = where.rstrip(")").rpartition(":")
    short = file.split("site-packages/")[-1] if "site-packages/" in file else file.replace(str(REPO) + "/", "")
    ours = short.startswith(("flows/", "policies/", "netsec/", "bench/"))
    return f"{name} ({short}:{number})" if line and ours else f"{name} ({short or where})"


# --------------------------------------------------------------------------------------------------- main


STAGES = ("pg", "sqlite", "http", "peer", "floor", "memory", "incremental")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flows", type=int, default=1_000_000, help="lines of the generated file")
    parser.add_argument("--runs", type=int, default=3, help="runs of each measurement (the median is shown)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="pg also runs import_flows --workers N (default: the cores; 1: one process only)")
    parser.add_argument("--quick", action="store_true", help="40,000 lines, 1 run, a small incremental cluster")
    parser.add_argument("--only", default=",".join(STAGES), help=f"stages, comma separated: {','.join(STAGES)}")
    parser.add_argument("--profile", action="store_true", help="also profile import and aggregation (py-spy)")
    parser.add_argument("--http-inline", action="store_true",
                        help="also measure HTTP with REDIS_URL unset (each request aggregates before it answers)")
    parser.add_argument("--batch", type=int, default=10_000, help="lines per HTTP POST")
    parser.add_argument("--clients", type=int, default=3, help="concurrent HTTP clients")
    parser.add_argument("--minute-rate", type=int, default=10_000, help="flows/s of the incremental minute")
    parser.add_argument("--history-density", type=int, default=20_000, help="flows per hour of the history")
    parser.add_argument("--keep", action="store_true", help="keep the incremental database (several GB)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--inventory", help=argparse.SUPPRESS)
    parser.add_argument("--observed-at", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--template-hour", help=argparse.SUPPRESS)
    parser.add_argument("--hours", help=argparse.SUPPRESS)
    parser.add_argument("--explain", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.flows = 40_000 if "--flows" not in (argv or sys.argv) else args.flows
        args.runs = 1 if "--runs" not in (argv or sys.argv) else args.runs
        args.minute_rate = 200 if "--minute-rate" not in (argv or sys.argv) else args.minute_rate
        args.history_density = 500 if "--history-density" not in (argv or sys.argv) else args.history_density
    args.stages = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(args.stages) - set(STAGES) - {"profile"}
    if unknown:
        parser.error(f"--only: unknown stage(s) {', '.join(sorted(unknown))}; known: {', '.join(STAGES)}")
    if args.profile and "profile" not in args.stages:
        args.stages.append("profile")
    if args.runs < 1 or args.flows < 4:
        parser.error("--runs must be at least 1 and --flows at least 4")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    children = {"setup": child_setup, "floor": child_floor, "history": child_history, "statements": child_statements}
    if args.child:
        children[args.child](args)
        return 0
    bench = Bench(args)
    say = bench.say
    stages = args.stages
    say(f"ingest + aggregate benchmark: {args.flows:,} lines, {args.runs} run(s) each, stages {', '.join(stages)}")
    (SCRATCH / "db").mkdir(parents=True, exist_ok=True)
    shape = synth.Shape(flows=args.flows)
    ds = dataset(shape, say)
    say(f"  data: {ds.summary.get('text', '')}")
    say(f"  file: {ds.flows} ({ds.flows.stat().st_size / 2**20:,.0f} MB)")
    failures = 0

    def stage(name: str, work: Callable[[], None]) -> None:
        nonlocal failures
        if name not in stages:
            return
        needs_pg = name in ("pg", "http", "floor", "memory", "incremental", "profile")
        if needs_pg and not bench.pg:
            say(f"{name}: left out, PostgreSQL is not reachable at 127.0.0.1:5432 ({pg_available()})")
            return
        say(f"{name}:")
        started = time.perf_counter()
        try:
            work()
        except (BenchError, subprocess.CalledProcessError, OSError) as exc:
            failures += 1
            say(f"  FAILED: {exc}")
        say(f"  ({time.perf_counter() - started:.0f} s)")

    templates: dict[str, Template] = {}

    def pg_tpl() -> Template:
        if "pg" not in templates or not templates["pg"].current:
            if "pg" in templates:
                say("  the migrations changed during the run: the template database is made again")
            templates["pg"] = pg_template(ds, "netsec_bench_tpl")
        return templates["pg"]

    def sqlite_tpl() -> Template:
        return sqlite_template(ds, "tpl")

    quarter = max(1, args.flows // 4)
    sqlite: dict[str, Template] = {}

    def sqlite_current() -> Template:
        if "t" not in sqlite or not sqlite["t"].current:
            sqlite["t"] = sqlite_tpl()
        return sqlite["t"]

    def pg() -> None:
        bench.cli(ds, "postgresql", pg_tpl)
        if args.workers > 1:
            bench.cli(ds, "postgresql", pg_tpl, workers=args.workers)

    stage("pg", pg)
    stage("sqlite", lambda: bench.cli(ds, "sqlite", sqlite_current))

    def http() -> None:
        bench.http(ds, pg_tpl, inline=False)
        if args.http_inline:
            bench.http(ds, pg_tpl, inline=True)

    stage("http", http)
    peer_files = [(ds.flows, args.flows)] + ([(head(ds.flows, quarter), quarter)] if "memory" in stages else [])
    stage("peer", lambda: bench.peer(ds, peer_files))
    stage("floor", lambda: bench.floor(ds))
    stage("memory", lambda: bench.memory(ds, pg_tpl(), head(ds.flows, quarter), quarter))

    def incremental() -> None:
        pg_base()
        bench.incremental()

    stage("incremental", incremental)
    stage("profile", lambda: bench.profile(ds, pg_tpl()))
    bench.report()
    path = bench.save()
    say(f"figures saved to {path}; {time.perf_counter() - bench.started:.0f} s in all")
    if bench.pg:
        pg_drop("netsec_bench_tpl", BASE)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
