"""``python -m bench.web [--quick]``: server time of the heavy pages under load, gunicorn + locust.

1. A dedicated PostgreSQL database ``netsec_bench_web`` is (re)created and migrated, and a cluster is built in
   it with set-based SQL (``generate_series``, never the ORM per row):

   - namespace ``shop``: 300 Deployments (a pod, an address, a container port each) talking among themselves,
     each to the next ``--mesh`` workloads, every hour of the last 7 days;
   - namespace ``core``: Deployment ``gateway`` with 1,000 distinct peers, in and out, every hour of 7 days:
     600 workloads of 20 namespaces ``team-NN`` and 400 unresolved addresses (public and private);
   - a few NetworkPolicies applied in the cluster (default deny, namespace allow, a policy per team).

   With the defaults that is about 2.05 M hourly rows in ``flows_communication``. Then the day summaries of
   ``flows.rollup`` are made (``refresh_rollup``), as aggregation makes them after it rebuilt hours.
2. gunicorn serves the app on loopback with production settings (DEBUG off, no HTTPS redirect, plain cookies,
   ``CONN_MAX_AGE=60`` as deploy/configmap.yaml), 2 workers × 4 threads; a superuser's session cookie signs
   the load in.
3. locust, in its own virtualenv ``.bench/venvs/locust`` (made on first use), runs headless: ``--users``
   concurrent clients for ``--seconds`` per endpoint, each client waiting ``--wait`` seconds (uniform 0.5-1.5 ×)
   between its requests. p50, p95 and errors come from locust's CSV stats and are printed against the targets.
4. The pages keep what they computed under the cluster's data version (``policies.memo``, in Redis as in
   production: ``BENCH_REDIS_URL``, database 7 by default), so the load measures views of unchanged data.
   After each load the first view after new data is timed too (the version moved on as aggregation moves
   it, one request alone, median of 3): what a user waits for once a minute on a cluster whose flows flow.
5. Last, a checkbox of the hub's egress table is clicked six times, one request alone (an HTMX POST, answered
   with the parts of the page it changed): the median is printed.

``--quick`` shrinks everything (a week of 40 peers and 30 workloads, 10 s per endpoint): under 3 minutes.
``--keep`` reuses the database when it already holds the data set of these options.
Figures are printed, never asserted; the exit status is 0 whatever they are.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / ".bench"
LOCUST_VENV = BENCH / "venvs" / "locust"
DB = "netsec_bench_web"
PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
DB_URL = f"postgres://postgres@127.0.0.1:5432/{DB}"
SECRET_KEY = "netsec-bench-web-not-secret"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/7")
CLUSTER = "bench"
HUB = ("core", "Deployment", "gateway")
MESH_NS = "shop"

# (label, path template, headers, target p95 ms)
ENDPOINTS = [
    ("egress table fragment", "/network/{c}/core/Deployment/gateway/?since=7d&tab=egress",
     {"HX-Request": "true", "HX-Target": "panel-egress", "HX-Current-URL": "http://127.0.0.1/"}, 100.0),
    ("ingress table fragment", "/network/{c}/core/Deployment/gateway/?since=7d&tab=ingress",
     {"HX-Request": "true", "HX-Target": "panel-ingress", "HX-Current-URL": "http://127.0.0.1/"}, 100.0),
    ("topology JSON", "/network/{c}/core/Deployment/gateway/topology.json?since=7d", {}, 150.0),
    ("policy YAML", "/network/{c}/core/Deployment/gateway/policy.yaml?since=7d", {}, 150.0),
    ("namespace YAML (shop)", "/network/{c}/shop/policies.yaml?since=7d", {}, 150.0),
]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DEBUG")}
    # Production's cache: Redis, shared by the workers (a database of its own, so nothing else is touched).
    return env | {"REDIS_URL": REDIS_URL, "DATABASE_URL": DB_URL, "DEBUG": "0", "SECRET_KEY": SECRET_KEY,
                  "ALLOWED_HOSTS": "127.0.0.1",
                  "SECURE_SSL_REDIRECT": "0", "SECURE_COOKIES": "0", "CONN_MAX_AGE": "60",
                  "PYTHONDONTWRITEBYTECODE": "1", "DJANGO_SETTINGS_MODULE": "netsec.settings"}


# ------------------------------------------------------------------------------------------------ data set


def _sql_build(conn, *, workloads: int, mesh: int, peer_workloads: int, peer_ips: int, hours: int,
               anchor: datetime) -> None:
    """The cluster, in a handful of set-based statements."""
    teams = 20 if peer_workloads >= 20 else max(1, peer_workloads // 2)
    per_team = -(-peer_workloads // teams)
    start = anchor - timedelta(hours=hours - 1)
    x = conn.execute
    cid = x("""INSERT INTO flows_cluster (name, pod_cidrs, service_cidrs, node_cidrs, dns_namespace, dns_pod_labels,
               kubeconfig, context, in_cluster, last_sync_error, created, last_sync_summary, last_sync)
               VALUES (%s, '10.244.0.0/16', '10.96.0.0/12', '172.18.0.0/24', 'kube-system',
               '{"k8s-app": "kube-dns"}', '', '', false, '', now(), '{}', now()) RETURNING id""",
            (CLUSTER,)).fetchone()[0]
    ns_names = ["kube-system", "core", MESH_NS, *(f"team-{i:02d}" for i in range(teams))]
    x("""INSERT INTO flows_namespace (cluster_id, name, uid, labels, created_at, first_seen)
         SELECT %s, n, '', jsonb_build_object('kubernetes.io/metadata.name', n), now(), now()
         FROM unnest(%s::text[]) AS n""", (cid, ns_names))
    ns = dict(x("SELECT name, id FROM flows_namespace WHERE cluster_id = %s", (cid,)).fetchall())
    # Workloads: (namespace, name, ip). Pod IPs are 10.244.<block>.<host>, unique per workload.
    rows = [("kube-system", "coredns"), ("core", "gateway"),
            *((MESH_NS, f"svc-{i:03d}") for i in range(workloads)),
            *((f"team-{i % teams:02d}", f"app-{i // teams:02d}") for i in range(peer_workloads))]
    x("CREATE TEMP TABLE w_in (seq int, ns text, name text) ON COMMIT DROP")
    with conn.cursor().copy("COPY w_in (seq, ns, name) FROM STDIN") as copy:
        for seq, (n, name) in enumerate(rows):
            copy.write_row((seq, n, name))
    x("""INSERT INTO flows_workload (cluster_id, namespace_id, name, uid, labels, created_at, first_seen, kind,
                                     selector, template_labels, placeholder)
         SELECT %s, ns.id, w.name, 'uid-' || w.seq, '{}', now(), now(), 'Deployment',
                jsonb_build_object('matchLabels', jsonb_build_object('app', w.name)),
                CASE WHEN w.name = 'coredns' THEN '{"k8s-app": "kube-dns"}'::jsonb
                     ELSE jsonb_build_object('app', w.name, 'tier', CASE WHEN w.seq %% 3 = 0 THEN 'web' ELSE 'api' END)
                END, false
         FROM w_in w JOIN flows_namespace ns ON ns.cluster_id = %s AND ns.name = w.ns ORDER BY w.seq""", (cid, cid))
    x("""INSERT INTO flows_pod (cluster_id, namespace_id, workload_id, name, uid, labels, created_at, first_seen,
                                node_name, host_ip, host_network)
         SELECT w.cluster_id, w.namespace_id, w.id, w.name || '-7d9f-' || lpad(w.id::text, 5, '0'), 'pod-' || w.id,
                w.template_labels, now(), now(), 'node-' || (w.id %% 4), '172.18.0.' || (10 + w.id %% 4), false
         FROM flows_workload w WHERE w.cluster_id = %s""", (cid,))
    x("""INSERT INTO flows_podaddress (cluster_id, pod_id, ip, valid_from)
         SELECT p.cluster_id, p.id, '10.244.' || (p.workload_id / 250) || '.' || (p.workload_id %% 250 + 2),
                %s::timestamptz - interval '30 days'
         FROM flows_pod p WHERE p.cluster_id = %s""", (start, cid))
    x("""INSERT INTO flows_containerport (pod_id, name, port, protocol)
         SELECT p.id, 'http', 8080, 'TCP' FROM flows_pod p WHERE p.cluster_id = %s
         UNION ALL SELECT p.id, 'dns', 53, 'UDP' FROM flows_pod p JOIN flows_workload w ON w.id = p.workload_id
                   WHERE p.cluster_id = %s AND w.name = 'coredns'""", (cid, cid))
    # Unresolved addresses: public ones (External) and private ones outside the cluster ranges.
    x("CREATE TEMP TABLE ip_in (ip text) ON COMMIT DROP")
    x("""INSERT INTO ip_in SELECT CASE WHEN i %% 2 = 0 THEN '203.0.' || (113 + i / 500) || '.' || (i / 2 %% 250 + 1)
                                       ELSE '10.10.' || (i / 500) || '.' || (i / 2 %% 250 + 1) END
         FROM generate_series(0, %s - 1) AS i""", (peer_ips,))
    x("""INSERT INTO flows_observedip (cluster_id, ip, identity, dns_names)
         SELECT %s, ip, 'world', CASE WHEN ip LIKE '203.%%' THEN jsonb_build_array('api-' || replace(ip, '.', '-')
                || '.example.com') ELSE '[]'::jsonb END FROM ip_in""", (cid,))
    # Hourly communications. Columns shared by every statement below.
    cols = ("cluster_id, bucket, granularity, sealed, src_workload_id, src_ip, dst_workload_id, dst_ip, port, "
            "protocol, denied, node_local, connections, first_seen, last_seen")
    hub = x("SELECT id FROM flows_workload WHERE cluster_id = %s AND name = 'gateway'", (cid,)).fetchone()[0]
    dns = x("SELECT id FROM flows_workload WHERE cluster_id = %s AND name = 'coredns'", (cid,)).fetchone()[0]
    hour_series = "generate_series(%(start)s::timestamptz, %(end)s::timestamptz, interval '1 hour') AS h"
    args = {"cid": cid, "hub": hub, "dns": dns, "start": start, "end": anchor}
    values = """%(cid)s, h, 'hour', false, {src_w}, {src_ip}, {dst_w}, {dst_ip}, {port}, '{proto}', false, false,
                1 + (abs(hashtext({seed} || h::text)) %% 40), h + interval '2 minutes', h + interval '58 minutes'"""
    peers = "flows_workload p WHERE p.cluster_id = %(cid)s AND p.namespace_id IN (SELECT id FROM flows_namespace WHERE name LIKE 'team-%%')"  # noqa: E501
    statements = [
        # gateway → team workloads, and back
        ("p.id::text", dict(src_w="%(hub)s", src_ip="''", dst_w="p.id", dst_ip="''", port=8080, proto="TCP"), peers),
        ("p.id::text || 'i'", dict(src_w="p.id", src_ip="''", dst_w="%(hub)s", dst_ip="''", port=8443,
                                   proto="TCP"), peers),
        # gateway ↔ unresolved addresses
        ("a.ip", dict(src_w="%(hub)s", src_ip="''", dst_w="NULL", dst_ip="a.ip", port=443, proto="TCP"),
         "ip_in a"),
        ("a.ip || 'i'", dict(src_w="NULL", src_ip="a.ip", dst_w="%(hub)s", dst_ip="''", port=8443, proto="TCP"),
         "ip_in a"),
        # every workload of shop → the next `mesh` ones
        ("s.id::text || '-' || d.id::text",
         dict(src_w="s.id", src_ip="''", dst_w="d.id", dst_ip="''", port=8080, proto="TCP"),
         f"shop_k s CROSS JOIN generate_series(1, {mesh}) AS j JOIN shop_k d ON d.k = (s.k + j) %% {workloads}"),
        # DNS lookups of the gateway and of every shop workload
        ("s.id::text || 'dns'", dict(src_w="s.id", src_ip="''", dst_w="%(dns)s", dst_ip="''", port=53, proto="UDP"),
         f"flows_workload s WHERE s.namespace_id IN ({ns[MESH_NS]}, {ns['core']})"),
    ]
    x(f"""CREATE TEMP TABLE shop_k ON COMMIT DROP AS SELECT id, (row_number() OVER (ORDER BY id) - 1)::int AS k
          FROM flows_workload WHERE namespace_id = {ns[MESH_NS]}""")
    for seed, parts, source in statements:
        x(f"INSERT INTO flows_communication ({cols}) SELECT {values.format(seed=seed, **parts)} "
          f"FROM {hour_series} CROSS JOIN {source}", args)
    # Applied policies: default deny ingress in core and shop, shop-internal allow, one per team.
    policies = [("core", "default-deny-ingress", {"podSelector": {}, "policyTypes": ["Ingress"]}),
                (MESH_NS, "default-deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
                (MESH_NS, "allow-same-namespace", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"],
                                                   "ingress": [{"from": [{"podSelector": {}}]}],
                                                   "egress": [{"to": [{"podSelector": {}}]}]}),
                ("core", "allow-gateway-from-teams", {
                    "podSelector": {"matchLabels": {"app": "gateway"}}, "policyTypes": ["Ingress"],
                    "ingress": [{"from": [{"namespaceSelector": {"matchExpressions": [
                        {"key": "kubernetes.io/metadata.name", "operator": "In",
                         "values": [f"team-{i:02d}" for i in range(0, teams, 2)]}]}}],
                        "ports": [{"port": 8443, "protocol": "TCP"}]}]})]
    policies += [(f"team-{i:02d}", "allow-from-core", {
        "podSelector": {"matchLabels": {"tier": "api"}}, "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "core"}}}],
                     "ports": [{"port": 8080, "protocol": "TCP"}]}]}) for i in range(0, teams, 3)]
    for namespace, name, spec in policies:
        manifest = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                    "metadata": {"name": name, "namespace": namespace}, "spec": spec}
        x("""INSERT INTO flows_networkpolicy (cluster_id, namespace_id, name, uid, labels, created_at, first_seen,
                                              spec, manifest) VALUES (%s, %s, %s, '', '{}', now(), now(), %s, %s)""",
          (cid, ns[namespace], name, json.dumps(spec), json.dumps(manifest)))
    del per_team


def build(args: argparse.Namespace) -> dict:
    import psycopg

    signature = {"workloads": args.workloads, "mesh": args.mesh, "peer_workloads": args.peer_workloads,
                 "peer_ips": args.peer_ips, "hours": args.hours}
    stamp = BENCH / "db" / "web-pg.json"
    if args.keep and stamp.exists():
        saved = json.loads(stamp.read_text())
        anchor = datetime.fromisoformat(saved["anchor"])
        # The data must still cover the 7-day span asked for: rebuilt once an hour has gone by.
        if saved.get("signature") == signature and datetime.now(UTC) - anchor < timedelta(minutes=50):
            subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=REPO, env=_env(), check=True)
            print(f"  data set: kept ({saved['rows']:,} communications)", flush=True)
            return saved
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB}")
    started = time.perf_counter()
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=REPO, env=_env(), check=True)
    migrated = time.perf_counter() - started
    anchor = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    started = time.perf_counter()
    with psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={DB}") as conn:
        _sql_build(conn, workloads=args.workloads, mesh=args.mesh, peer_workloads=args.peer_workloads,
                   peer_ips=args.peer_ips, hours=args.hours, anchor=anchor)
        conn.commit()
    # What aggregation does after it rebuilt hour buckets: the days that are over get their summaries.
    # And, as every writer does, a new data version for the cluster.
    code = ("import django; django.setup(); from flows.models import Cluster; from flows.rollup import refresh_rollup; "
            f"from flows import versions; c = Cluster.objects.get(name={CLUSTER!r}); "
            "refresh_rollup(c, since=c.communication_set.order_by('bucket').values_list('bucket', flat=True).first()); "
            "versions.bump([c.pk])")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, env=_env(), check=True)
    with psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={DB}", autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        rows = conn.execute("SELECT count(*) FROM flows_communication").fetchone()[0]
    built = time.perf_counter() - started
    print(f"  data set: {rows:,} hourly communications, {args.workloads} workloads in {MESH_NS}, "
          f"{args.peer_workloads + args.peer_ips} peers of core/gateway (migrate {migrated:.0f} s, "
          f"build + VACUUM ANALYZE {built:.0f} s)", flush=True)
    saved = {"anchor": anchor.isoformat(), "rows": rows, "signature": signature}
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps(saved))
    return saved


def session_cookie() -> str:
    """A superuser's session, made in the database the server reads (same SECRET_KEY)."""
    code = textwrap.dedent("""
        import django; django.setup()
        from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
        from django.contrib.sessions.backends.db import SessionStore
        User = get_user_model()
        user = User.objects.filter(username="bench").first() or User.objects.create_superuser("bench", password="x")
        s = SessionStore()
        s[SESSION_KEY] = str(user.pk)
        s[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        s[HASH_SESSION_KEY] = user.get_session_auth_hash()
        s.create()
        print(s.session_key)
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=_env(), check=True, capture_output=True,
                         text=True)
    return out.stdout.strip().splitlines()[-1]


# ------------------------------------------------------------------------------------------------ serving


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(port: int, workers: int, threads: int) -> subprocess.Popen:
    log = (BENCH / "web-gunicorn.log").open("w")
    gunicorn = REPO / ".venv" / "bin" / "gunicorn"
    cmd = [str(gunicorn) if gunicorn.exists() else "gunicorn", "netsec.wsgi", "-b", f"127.0.0.1:{port}",
           "-w", str(workers), "--threads", str(threads), "--timeout", "120"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
            return proc
        except Exception:  # noqa: BLE001 - not up yet
            if proc.poll() is not None:
                raise SystemExit(f"gunicorn exited {proc.returncode}: see {log.name}") from None
            time.sleep(0.3)
    raise SystemExit("gunicorn did not answer within 60 s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def warm(port: int, cookie: str) -> None:
    """Every endpoint once per worker thread, so the first load numbers are not imports and connections;
    and a check that each answers 200 with a body (a 302 to the sign-in page would measure nothing)."""
    for label, path, headers, _ in ENDPOINTS:
        for _ in range(3):
            req = urllib.request.Request(f"http://127.0.0.1:{port}{path.format(c=CLUSTER)}",
                                         headers={**headers, "Cookie": f"sessionid={cookie}"})
            with urllib.request.urlopen(req, timeout=120) as response:
                body = response.read()
                if response.status != 200 or not body or response.url.rstrip("/").endswith("login"):
                    raise SystemExit(f"{label}: answered {response.status} at {response.url}")
        print(f"    warm: {label:26} {len(body):>9,} bytes", flush=True)


def new_data() -> None:
    """What aggregation does to what the pages kept when new flows land: a new data version of the cluster."""
    import psycopg

    with psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={DB}", autocommit=True) as conn:
        conn.execute("INSERT INTO flows_dataversion (cluster_id, version) SELECT id, 1 FROM flows_cluster "
                     "WHERE name = %s ON CONFLICT (cluster_id) DO UPDATE SET version = flows_dataversion.version + 1",
                     (CLUSTER,))


def cold(port: int, cookie: str, path: str, headers: dict, runs: int = 3) -> float:
    """Median ms of one request, alone, right after new data: nothing kept serves it (rows, verdicts, page)."""
    times = []
    for _ in range(runs):
        new_data()
        req = urllib.request.Request(f"http://127.0.0.1:{port}{path.format(c=CLUSTER)}",
                                     headers={**headers, "Cookie": f"sessionid={cookie}"})
        started = time.perf_counter()
        with urllib.request.urlopen(req, timeout=120) as response:
            response.read()
        times.append((time.perf_counter() - started) * 1000)
    return sorted(times)[len(times) // 2]


def row_change(port: int, cookie: str, runs: int = 6) -> float:
    """Median ms of a checkbox of the hub's egress table, clicked as the page does (an HTMX POST, answered with
    the parts it changed), one request alone: included and excluded in turn, the draft put back at the end."""
    import http.cookiejar
    import re
    import urllib.parse

    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    base = f"http://127.0.0.1:{port}/network/{CLUSTER}/{HUB[0]}/{HUB[1]}/{HUB[2]}/"
    page = opener.open(urllib.request.Request(f"{base}?since=7d&tab=egress", headers={"Cookie": f"sessionid={cookie}"}),
                       timeout=120).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="(\w+)"', page).group(1)
    key = re.search(r'data-key="(egress:[^"]+)"', page).group(1)
    times = []
    for n in range(runs):
        form = urllib.parse.urlencode({"key": key, "included": "1" if n % 2 else "", "since": "7d", "tab": "egress",
                                       "csrfmiddlewaretoken": token}).encode()
        csrf = next(c.value for c in jar if c.name == "csrftoken")
        req = urllib.request.Request(f"{base}rows", data=form, headers={
            "Cookie": f"sessionid={cookie}; csrftoken={csrf}", "HX-Request": "true", "X-CSRFToken": token,
            "Referer": base, "Origin": f"http://127.0.0.1:{port}"})
        started = time.perf_counter()
        with opener.open(req, timeout=120) as response:
            response.read()
        times.append((time.perf_counter() - started) * 1000)
    return sorted(times)[len(times) // 2]


# ------------------------------------------------------------------------------------------------- locust


def locust_bin() -> Path:
    exe = LOCUST_VENV / "bin" / "locust"
    if not exe.exists():
        print("  locust: making its virtualenv .bench/venvs/locust (once)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(LOCUST_VENV)], check=True)
        subprocess.run([str(LOCUST_VENV / "bin" / "pip"), "install", "-q", "locust"], check=True)
    return exe


LOCUSTFILE = '''
from locust import HttpUser, between, task

PATH = {path!r}
HEADERS = {headers!r}
COOKIE = {cookie!r}


class Client(HttpUser):
    wait_time = between({wait_low}, {wait_high})

    def on_start(self):
        self.client.cookies.set("sessionid", COOKIE, domain="127.0.0.1")

    @task
    def get(self):
        with self.client.get(PATH, headers=HEADERS, name={label!r}, allow_redirects=False,
                             catch_response=True) as response:
            if response.status_code != 200 or not response.content:
                response.failure(f"status {{response.status_code}}")
'''


def load(port: int, cookie: str, label: str, path: str, headers: dict, *, users: int, seconds: int,
         wait: float, outdir: Path) -> dict:
    outdir.mkdir(parents=True, exist_ok=True)
    slug = "".join(ch if ch.isalnum() else "-" for ch in label.lower()).strip("-")
    locustfile = outdir / f"locustfile-{slug}.py"
    locustfile.write_text(LOCUSTFILE.format(path=path.format(c=CLUSTER), headers=headers, cookie=cookie,
                                            label=label, wait_low=round(wait * 0.5, 3),
                                            wait_high=round(wait * 1.5, 3)))
    prefix = outdir / slug
    cmd = [str(locust_bin()), "-f", str(locustfile), "--headless", "-u", str(users), "-r", str(users),
           "-t", f"{seconds}s", "--host", f"http://127.0.0.1:{port}", "--csv", str(prefix), "--only-summary",
           "--loglevel", "WARNING"]
    subprocess.run(cmd, cwd=outdir, capture_output=True, text=True)
    with open(f"{prefix}_stats.csv", newline="") as f:
        for row in csv.DictReader(f):
            if row["Name"] == label:
                return {"requests": int(row["Request Count"]), "errors": int(row["Failure Count"]),
                        "p50": float(row["50%"]), "p95": float(row["95%"]), "p99": float(row["99%"]),
                        "mean": float(row["Average Response Time"]), "rps": float(row["Requests/s"])}
    raise SystemExit(f"{label}: no row in {prefix}_stats.csv")


# --------------------------------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.web", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small data set and 10 s per endpoint")
    parser.add_argument("--keep", action="store_true", help="reuse the database when it holds this data set")
    parser.add_argument("--build-only", action="store_true", help="make the data set and stop")
    parser.add_argument("--only", default="", help="comma separated words: run the endpoints whose label has one")
    parser.add_argument("--workloads", type=int, default=300)
    parser.add_argument("--mesh", type=int, default=34, help="peers of each workload of shop")
    parser.add_argument("--peer-workloads", type=int, default=600)
    parser.add_argument("--peer-ips", type=int, default=400)
    parser.add_argument("--hours", type=int, default=168)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--wait", type=float, default=1.0, help="mean seconds a client waits between requests")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    if args.quick:
        args.workloads, args.mesh, args.peer_workloads, args.peer_ips, args.seconds = 30, 5, 24, 16, 10
    print(f"web under load: gunicorn -w {args.workers} --threads {args.threads}, locust {args.users} clients × "
          f"{args.seconds} s per endpoint (wait {args.wait * 0.5:g}-{args.wait * 1.5:g} s), PostgreSQL {DB}",
          flush=True)
    build(args)
    if args.build_only:
        return 0
    cookie = session_cookie()
    port = _free_port()
    proc = serve(port, args.workers, args.threads)
    outdir = BENCH / "results" / f"web-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    results = []
    try:
        warm(port, cookie)
        for label, path, headers, target in ENDPOINTS:
            if args.only and not any(w in label for w in args.only.split(",")):
                continue
            r = load(port, cookie, label, path, headers, users=args.users, seconds=args.seconds, wait=args.wait,
                     outdir=outdir)
            met = r["p95"] <= target and r["errors"] == 0
            first = cold(port, cookie, path, headers)
            results.append({"label": label, "target_p95_ms": target, "met": met, "cold_ms": first, **r})
            print(f"    {label:26} p50 {r['p50']:6.0f} ms  p95 {r['p95']:6.0f} ms  (target ≤ {target:.0f})  "
                  f"errors {r['errors']}/{r['requests']}  {r['rps']:5.1f} req/s  "
                  f"{'met' if met else 'NOT met'};  first view after new data {first:6.0f} ms", flush=True)
        change = row_change(port, cookie)
        print(f"    a row's checkbox (HTMX POST, the parts it changed), alone: {change:.0f} ms", flush=True)
        results.append({"label": "row change", "median_ms": change})
    finally:
        stop(proc)
    (outdir / "summary.json").write_text(json.dumps({"args": vars(args), "results": results}, indent=2))
    print(f"  locust CSVs and summary: {outdir.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
