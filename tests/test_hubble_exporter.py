"""The Hubble exporter recipe (deploy/hubble-exporter/): the real script, run as a process against the live server
with a fake `hubble` that prints a jsonpb sample, killed half-way and restarted, stores exactly what one clean
`import_flows` of the same file stores; and its HTTP client retries what may succeed later, and nothing else."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command

from flows.models import Cluster, IngestBatch, RawFlow
from policies import services
from tests.test_deploy import load_exporter

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "deploy" / "hubble-exporter" / "netsec_hubble_export.py"
FLOWS = ROOT / "tests" / "data" / "hubble-flows.jsonl"  # the same as ../shared/examples/hubble-flows.jsonl
INVENTORY = ROOT / "tests" / "data" / "inventory.yaml"

# A stand-in for `hubble observe -o jsonpb --follow [--since T]`: prints the sample's lines from T on (hubble's
# --since is inclusive), then, following, waits for flows that never come. FAKE_HUBBLE_LINES stops it after that
# many lines, as if the cluster had gone quiet. Each run's arguments are logged.
FAKE_HUBBLE = """\
#!{python}
import json, os, sys, time
from datetime import datetime

def nanos(text):
    head, _, fraction = text.rstrip("Z").partition(".")
    return int(datetime.fromisoformat(head + "+00:00").timestamp()) * 10**9 + int(fraction.ljust(9, "0") or 0)

args = sys.argv[1:]
with open(os.environ["FAKE_HUBBLE_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
if args[:1] != ["observe"] or "-o" not in args or args[args.index("-o") + 1] != "jsonpb":
    sys.exit("usage: hubble observe -o jsonpb ...")
since = nanos(args[args.index("--since") + 1]) if "--since" in args else None
limit = int(os.environ.get("FAKE_HUBBLE_LINES") or 0)
printed = 0
with open(os.environ["FAKE_HUBBLE_FLOWS"], "rb") as flows:
    for line in flows:
        if since is not None and nanos(json.loads(line)["flow"]["time"]) < since:
            continue
        if limit and printed == limit:
            break
        sys.stdout.buffer.write(line)
        sys.stdout.buffer.flush()
        printed += 1
        time.sleep(0.02)
if "--follow" in args:
    time.sleep(600)
"""

exporter = load_exporter()


def wait_for(condition: Callable[[], bool], process: subprocess.Popen[bytes], log: Path, what: str,
             timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the exporter exited ({process.returncode}) before {what}:\n{log.read_text()}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {timeout}s:\n{log.read_text()}")
        time.sleep(0.05)


def cursor(state: Path) -> str | None:
    try:
        return json.loads(state.read_text()).get("cursor")
    except FileNotFoundError:
        return None


def rows(cluster: Cluster) -> list[tuple[Any, ...]]:
    fields = [f.name for f in RawFlow._meta.concrete_fields if f.name not in ("id", "cluster")]
    return sorted(tuple(json.dumps(v, sort_keys=True, default=str) for v in row)
                  for row in RawFlow.objects.filter(cluster=cluster).values_list(*fields))


@pytest.mark.django_db(transaction=True)
def test_killed_and_restarted_it_stores_each_flow_once(live_server: Any, tmp_path: Path) -> None:
    call_command("import_inventory", "--cluster", "prod", "--create", str(INVENTORY), stdout=StringIO())
    prod = Cluster.objects.get(name="prod")
    admin = get_user_model().objects.create_user("exporter")
    admin.groups.add(Group.objects.get_or_create(name="Admins")[0])  # ingestion is for Admins
    token = services.create_token(admin, "hubble exporter").secret
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    fake = tmp_path / "hubble"
    fake.write_text(FAKE_HUBBLE.format(python=sys.executable))
    fake.chmod(0o755)
    state, hubble_log, log = tmp_path / "state" / "state.json", tmp_path / "hubble-args.jsonl", tmp_path / "export.log"
    state.parent.mkdir()
    lines = FLOWS.read_bytes().splitlines(keepends=True)
    times = [exporter.flow_time(line) for line in lines]
    assert len(lines) == 12 and None not in times

    def start(batch_seconds: float, hubble_lines: int = 0) -> subprocess.Popen[bytes]:
        command = [sys.executable, str(SCRIPT), "--url", live_server.url, "--cluster", "prod",
                   "--token-file", str(token_file), "--state", str(state),
                   "--hubble", f"{shlex.quote(str(fake))} observe", "--batch-lines", "3",
                   "--batch-seconds", str(batch_seconds), "--overlap", "0", "--max-backoff", "1"]
        env = {**os.environ, "FAKE_HUBBLE_LOG": str(hubble_log), "FAKE_HUBBLE_FLOWS": str(FLOWS),
               "FAKE_HUBBLE_LINES": str(hubble_lines)}
        with log.open("ab") as stderr:
            # Its own process group: SIGKILL to the group takes hubble down with it, as a container's death does.
            return subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=stderr, start_new_session=True)

    # 1. Seven lines come, then nothing for a while: two batches of three are sent and acknowledged, the seventh
    #    line waits in the third batch (60 s to go) when the exporter is killed.
    first = start(batch_seconds=60, hubble_lines=7)
    try:
        wait_for(lambda: cursor(state) == times[5], first, log, "the second batch acknowledged")
        time.sleep(0.3)  # the seventh line is read, and pending
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        _kill_group(first)
    assert RawFlow.objects.filter(cluster=prod).count() == 6
    assert IngestBatch.objects.filter(cluster=prod).count() == 2

    # 2. The crash came between the server's acknowledgement of the second batch and the state's write: the file
    #    still holds the first batch's cursor (the time of its last flow).
    saved = json.loads(state.read_text())
    state.write_text(json.dumps({**saved, "cursor": times[2], "batches": 1}))

    # 3. Restarted, it resumes at that cursor, reads again what the server has (dropped there as duplicates), and
    #    sends the rest; the last, short batch goes after a second. SIGTERM then stops it cleanly.
    second = start(batch_seconds=1)
    try:
        wait_for(lambda: cursor(state) == times[11] and RawFlow.objects.filter(cluster=prod).count() == 12,
                 second, log, "every flow acknowledged")
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=15) == 0, log.read_text()
    finally:
        _kill_group(second)

    runs = [json.loads(line) for line in hubble_log.read_text().splitlines()]
    assert runs == [["observe", "-o", "jsonpb", "--follow"],
                    ["observe", "-o", "jsonpb", "--follow", "--since", times[2]]]
    answers = [batch.summary for batch in IngestBatch.objects.filter(cluster=prod)]
    assert sum(a["stored"] for a in answers) == 12
    # Read again: the lines from the cursor's own flow to the sixth, which the second batch had stored.
    assert sum(a["duplicates"] for a in answers) == 4
    assert sum(a["malformed"] + a["skipped"] for a in answers) == 0

    # No loss, no double count: the same rows as one clean import of the file.
    clean = Cluster.objects.create(name="clean")
    call_command("import_flows", "--cluster", "clean", str(FLOWS), stdout=StringIO(), stderr=StringIO())
    assert rows(prod) == rows(clean)

    # A batch sent again (its answer lost, say) carries the same key, its content's: answered, nothing stored.
    body = b"".join(lines[:3])
    key = exporter.batch_key(body)
    assert IngestBatch.objects.filter(cluster=prod, key=key).exists(), "the first batch went under its content's key"
    answer = exporter.Client(live_server.url, "prod", token).post(body, key)
    assert answer["replayed"] is True
    assert RawFlow.objects.filter(cluster=prod).count() == 12
    assert IngestBatch.objects.filter(cluster=prod).count() == len(answers)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


# -------------------------------------------------------------------------------------- the HTTP client


@contextmanager
def server(answers: list[tuple[int, dict[str, str], bytes]]) -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A local HTTP server answering each POST with the next of ``answers``; yields its URL and the requests'
    headers."""
    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            self.rfile.read(int(self.headers["Content-Length"]))
            seen.append(dict(self.headers))
            status, headers, body = answers.pop(0)
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    finally:
        httpd.shutdown()
        httpd.server_close()


OK = (200, {}, json.dumps({"lines": 1, "stored": 1, "duplicates": 0, "skipped": 0, "malformed": 0, "errors": [],
                           "replayed": False}).encode())


def test_the_client_retries_5xx_and_429_honouring_retry_after() -> None:
    waits: list[float] = []
    answers = [(503, {}, b'{"detail": "down"}'), (429, {"Retry-After": "7"}, b'{"detail": "slow down"}'),
               (502, {}, b"<html>bad gateway</html>"), OK]
    with server(answers) as (url, seen):
        client = exporter.Client(url, "prod", "nsk_x", initial_backoff=2, max_backoff=300,
                                 sleep=lambda s: waits.append(s) or True)
        assert client.post(b'{"flow": {}}\n', "hubble-abc")["stored"] == 1
    assert len(seen) == 4
    assert 1.0 <= waits[0] <= 2.0 and waits[1] == 7.0 and 4.0 <= waits[2] <= 8.0  # backoff doubles; Retry-After
    for headers in seen:
        assert headers["Authorization"] == "Bearer nsk_x"
        assert headers["Idempotency-Key"] == "hubble-abc"  # the same key on every try
        assert headers["Content-Encoding"] == "gzip"


def test_the_client_retries_network_errors_and_gives_up_when_stopped() -> None:
    waits: list[float] = []
    with server([]) as (url, _):
        pass  # closed: nothing listens there any more
    client = exporter.Client(url, "prod", "nsk_x", initial_backoff=1, sleep=lambda s: waits.append(s) or len(waits) < 3)
    with pytest.raises(exporter.Stopped):
        client.post(b"{}\n", "hubble-abc")
    assert len(waits) == 3


@pytest.mark.parametrize("status", [400, 401, 403, 404, 301])
def test_the_client_does_not_retry_a_refusal(status: int) -> None:
    headers = {"Location": "https://elsewhere.example/"} if status == 301 else {}
    with server([(status, headers, b'{"detail": "cluster \'prod\' does not exist"}')]) as (url, seen):
        client = exporter.Client(url, "prod", "nsk_x", sleep=lambda s: pytest.fail("retried a refusal"))
        with pytest.raises(exporter.Refused) as refused:
            client.post(b"{}\n", "hubble-abc")
    assert refused.value.status == status and len(seen) == 1
    assert ("elsewhere.example" if status == 301 else "does not exist") in str(refused.value)


def test_a_batch_too_large_is_sent_in_halves_and_the_state_moves_after_each(tmp_path: Path) -> None:
    lines = FLOWS.read_bytes().splitlines(keepends=True)[:4]
    answers = [(413, {}, b'{"detail": "too large"}'), OK, OK]
    with server(answers) as (url, seen):
        options = exporter.parse_args(["--url", url, "--cluster", "prod", "--state", str(tmp_path / "s.json")],
                                      environ={})
        export = exporter.Exporter(options, exporter.Client(url, "prod", "t"), threading.Event())
        batch = exporter.Batch()
        for line in lines:
            batch.add(line)
        export.send(batch)
    keys = [headers["Idempotency-Key"] for headers in seen]
    assert keys[0] == exporter.batch_key(b"".join(lines))
    assert keys[1:] == [exporter.batch_key(b"".join(lines[:2])), exporter.batch_key(b"".join(lines[2:]))]
    saved = json.loads((tmp_path / "s.json").read_text())
    assert saved["cursor"] == exporter.flow_time(lines[-1]) and saved["batches"] == 2 and saved["cluster"] == "prod"
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"], "no temporary file left behind"
    with pytest.raises(exporter.ConfigError):
        exporter.load_state(str(tmp_path / "s.json"), "another-cluster")


def test_times_and_the_resume_point() -> None:
    assert exporter.normalize_time("2026-11-27T16:00:00.001Z") == "2026-11-27T16:00:00.001000000Z"
    assert exporter.normalize_time("2026-11-27T17:00:00.123456789+01:00") == "2026-11-27T16:00:00.123456789Z"
    assert exporter.before("2026-11-27T16:00:00.000000001Z", 5) == "2026-11-27T15:59:55.000000001Z"
    assert exporter.flow_time(b'{"node_status": {}}') is None and exporter.flow_time(b"not json") is None


def test_the_script_needs_only_the_standard_library() -> None:
    # -S: no site-packages, -I: no user site, no PYTHON* variables, no script directory on the path.
    ran = subprocess.run([sys.executable, "-I", "-S", str(SCRIPT), "--help"], capture_output=True, text=True,
                         timeout=30)
    assert ran.returncode == 0, ran.stderr
    assert "--since" in ran.stdout or "NETSEC_URL" in ran.stdout
