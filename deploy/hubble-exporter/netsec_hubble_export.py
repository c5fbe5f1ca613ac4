#!/usr/bin/env python3
"""Stream `hubble observe` into netsec's ingestion API, batch by batch, resuming where it stopped.

    netsec_hubble_export.py --url https://netsec.example.com --cluster prod \\
        --token-file /var/run/secrets/netsec/token --state /var/lib/netsec-exporter/state.json \\
        --hubble "hubble observe --server hubble-relay:80"

Standard library only (Python 3.11+), so that it runs in any python image next to the hubble CLI.

What it does:
- runs ``<hubble command> -o jsonpb --follow [--since CURSOR]`` and reads its lines;
- cuts them into batches of at most --batch-lines lines (or --batch-bytes bytes), or what came in
  --batch-seconds after the first line of the batch, whichever comes first;
- gzips each batch and POSTs it to ``<url>/api/v1/clusters/<cluster>/flows?format=hubble`` with
  ``Authorization: Bearer <token>`` and ``Idempotency-Key: hubble-<sha256 of the batch>``: the key is the
  batch's content, so a batch sent again after a crash or a lost answer is answered from the first call and
  stores nothing;
- retries network errors, 5xx and 429 with exponential backoff (honouring Retry-After); a 413 splits the
  batch in two; any other refusal (400, 401, 403, 404, a redirect) is a configuration problem: it stops with
  exit code 2 and the server's message, without moving the cursor;
- after the server acknowledged a batch, and only then, writes the state file (atomically: a temporary file,
  fsync, rename) with the cursor, the time of the last flow of that batch. A restart resumes with
  ``--since <cursor - overlap>``. What it reads again (the cursor's own flow at least: hubble's --since is
  inclusive) is deduplicated by the server, which stores each flow event once (by Hubble's uuid, or by time,
  5-tuple, verdict and flags without one). So a crash at any point loses no batch and counts none twice.

Every option also reads an environment variable (below, as the manifest sets them). Exit codes: 0 stopped
(SIGTERM/SIGINT, or hubble ended cleanly), 1 hubble failed, 2 configuration or a batch the server refused.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import http.client
import json
import logging
import os
import queue
import random
import re
import shlex
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

log = logging.getLogger("netsec-hubble-export")

# option -> the environment variable that gives its default.
ENV = {
    "url": "NETSEC_URL",
    "cluster": "NETSEC_CLUSTER",
    "token_file": "NETSEC_TOKEN_FILE",
    "state": "NETSEC_EXPORT_STATE",
    "hubble": "HUBBLE_COMMAND",
    "batch_lines": "NETSEC_BATCH_LINES",
    "batch_bytes": "NETSEC_BATCH_BYTES",
    "batch_seconds": "NETSEC_BATCH_SECONDS",
    "overlap": "NETSEC_OVERLAP_SECONDS",
    "initial_since": "NETSEC_INITIAL_SINCE",
    "ca_file": "NETSEC_CA_FILE",
    "timeout": "NETSEC_HTTP_TIMEOUT",
    "max_backoff": "NETSEC_MAX_BACKOFF",
    "log_level": "LOG_LEVEL",
}
TOKEN_ENV = "NETSEC_TOKEN"  # the token itself, when no token file is given (a file from a Secret is better)
# Every variable the script reads; tests/test_deploy.py checks the manifest sets no other.
ENVIRONMENT = frozenset([*ENV.values(), TOKEN_ENV])

EXIT_STOPPED, EXIT_HUBBLE, EXIT_CONFIG = 0, 1, 2
EOF = object()  # the reader's last item: hubble's output ended


class ConfigError(Exception):
    """Something only a person can fix (options, token, a batch the server refuses): exit code 2."""


class Stopped(Exception):
    """SIGTERM arrived while a batch was waiting to be retried: it stays unacknowledged, to be read again."""


# ------------------------------------------------------------------------------------------------- times

_TIME = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)", re.I)


def parse_time(text: str) -> tuple[datetime, int]:
    """An RFC 3339 time (as protobuf's JSON writes Timestamps) as (the whole second, nanoseconds)."""
    match = _TIME.fullmatch(text.strip())
    if not match:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    offset = "+00:00" if match[3].upper() == "Z" else match[3]
    second = datetime.fromisoformat(match[1] + offset).astimezone(UTC)
    return second, int((match[2] or "").ljust(9, "0"))


def format_time(second: datetime, nanos: int) -> str:
    """RFC 3339 in UTC with nanoseconds, the way `hubble observe --since` reads it (RFC3339Nano)."""
    return f"{second.astimezone(UTC):%Y-%m-%dT%H:%M:%S}.{nanos:09d}Z"


def normalize_time(text: str) -> str:
    return format_time(*parse_time(text))


def before(text: str, seconds: float) -> str:
    """The time ``seconds`` before ``text`` (whole microseconds of overlap are plenty)."""
    second, nanos = parse_time(text)
    total = second + timedelta(microseconds=nanos // 1000) - timedelta(seconds=seconds)
    return format_time(total.replace(microsecond=0), total.microsecond * 1000 + nanos % 1000)


def flow_time(line: bytes) -> str | None:
    """The time of the flow a jsonpb line carries, or None for other events (lost events, node status) and
    for lines that are not JSON (those are sent all the same: the server counts and reports them)."""
    try:
        event = json.loads(line)
    except ValueError:
        return None
    if not isinstance(event, dict) or not isinstance(event.get("flow"), dict):
        return None
    value = event["flow"].get("time") or event.get("time")
    if not isinstance(value, str):
        return None
    try:
        return normalize_time(value)
    except ValueError:
        return None


# ------------------------------------------------------------------------------------------------ batches


@dataclass
class Batch:
    lines: list[bytes] = field(default_factory=list)
    size: int = 0
    started: float = 0.0  # time.monotonic() of its first line

    def add(self, line: bytes) -> None:
        if not self.lines:
            self.started = time.monotonic()
        if not line.endswith(b"\n"):
            line += b"\n"
        self.lines.append(line)
        self.size += len(line)

    def __len__(self) -> int:
        return len(self.lines)

    @property
    def body(self) -> bytes:
        return b"".join(self.lines)

    @property
    def cursor(self) -> str | None:
        """The time of the batch's last flow: where to resume once the batch is acknowledged."""
        for line in reversed(self.lines):
            if (found := flow_time(line)) is not None:
                return found
        return None

    def halves(self) -> tuple[Batch, Batch]:
        middle = len(self.lines) // 2
        first, second = Batch(), Batch()
        for line in self.lines[:middle]:
            first.add(line)
        for line in self.lines[middle:]:
            second.add(line)
        return first, second


def batch_key(body: bytes) -> str:
    """The Idempotency-Key of a batch: its content, so that sending it again is recognised as such."""
    return "hubble-" + hashlib.sha256(body).hexdigest()


# -------------------------------------------------------------------------------------------------- state


def load_state(path: str, cluster: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            state = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"state file {path}: cannot be read ({exc}); move it away to start afresh") from None
    if not isinstance(state, dict):
        raise ConfigError(f"state file {path}: not a JSON object; move it away to start afresh")
    if state.get("cluster") not in (None, cluster):
        raise ConfigError(f"state file {path} belongs to cluster {state['cluster']!r}, not {cluster!r}")
    if state.get("cursor") is not None:
        try:
            state["cursor"] = normalize_time(str(state["cursor"]))
        except ValueError as exc:
            raise ConfigError(f"state file {path}: cursor: {exc}") from None
    return state


def save_state(path: str, state: dict[str, Any]) -> None:
    """Write the whole file next to the old one, flush it to disk, then rename it over: a crash leaves the old
    state or the new one, never half of either."""
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(state, f, indent=2, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)  # the rename itself
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------------------------- HTTP


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """urllib would turn a redirected POST into a GET without a body: a redirect is an error to fix instead."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        return None


class Refused(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status


class Client:
    """POSTs batches to the ingestion API, retrying what may succeed later."""

    RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

    def __init__(self, url: str, cluster: str, token: str, *, timeout: float = 60.0, ca_file: str | None = None,
                 initial_backoff: float = 1.0, max_backoff: float = 300.0,
                 sleep: Callable[[float], bool] | None = None) -> None:
        base = url.rstrip("/")
        self.endpoint = f"{base}/api/v1/clusters/{urllib.parse.quote(cluster, safe='')}/flows?format=hubble"
        self.token, self.timeout = token, timeout
        self.initial_backoff, self.max_backoff = initial_backoff, max_backoff
        # sleep(seconds) -> False when the wait was cut short by a stop request.
        self.sleep = sleep or (lambda seconds: time.sleep(seconds) or True)
        handlers: list[Any] = [_NoRedirect()]
        if base.startswith("https:"):
            handlers.append(urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=ca_file)))
        self.opener = urllib.request.build_opener(*handlers)

    def post_once(self, body: bytes, key: str) -> dict[str, Any]:
        request = urllib.request.Request(self.endpoint, data=gzip.compress(body, mtime=0), method="POST", headers={
            "Authorization": f"Bearer {self.token}",
            "Content-Type": "application/x-ndjson",
            "Content-Encoding": "gzip",
            "Idempotency-Key": key,
            "Accept": "application/json",
            "User-Agent": "netsec-hubble-export/1",
        })
        with self.opener.open(request, timeout=self.timeout) as response:
            return json.loads(response.read())

    def post(self, body: bytes, key: str) -> dict[str, Any]:
        """The server's answer to the batch; Refused for an answer that no retry changes."""
        attempt = 0
        while True:
            try:
                return self.post_once(body, key)
            except urllib.error.HTTPError as exc:
                detail = _detail(exc)
                if exc.code not in self.RETRY_STATUSES:
                    if 300 <= exc.code < 400:
                        detail = f"redirected to {exc.headers.get('Location')!r}: give that address as --url"
                    raise Refused(exc.code, detail) from None
                wait = self._backoff(attempt, exc.headers.get("Retry-After"))
                problem = f"HTTP {exc.code}: {detail}"
            except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
                # Connection refused or reset, DNS, TLS, a timeout, an answer cut short or not JSON: the batch may
                # or may not have been stored; sending it again with the same key is safe either way.
                wait = self._backoff(attempt, None)
                problem = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
            attempt += 1
            log.warning("batch %s…: %s; retry %d in %.1fs", key[:19], problem, attempt, wait)
            if not self.sleep(wait):
                raise Stopped

    def _backoff(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            seconds = _retry_after(retry_after)
            if seconds is not None:
                return min(max(seconds, 0.0), 3600.0)
        ceiling = min(self.max_backoff, self.initial_backoff * 2 ** min(attempt, 30))
        return ceiling * random.uniform(0.5, 1.0)  # jitter: exporters of several clusters do not retry in step


def _retry_after(value: str) -> float | None:
    """Retry-After as seconds: a number of seconds, or an HTTP date."""
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - datetime.now(UTC)).total_seconds()


def _detail(exc: urllib.error.HTTPError) -> str:
    try:
        payload = json.loads(exc.read() or b"{}")
        return str(payload.get("detail", payload)) if isinstance(payload, dict) else str(payload)
    except (ValueError, OSError):
        return exc.reason if isinstance(exc.reason, str) else str(exc)


# ----------------------------------------------------------------------------------------------- exporter


class Exporter:
    def __init__(self, options: argparse.Namespace, client: Client, stop: threading.Event) -> None:
        self.options, self.client, self.stop = options, client, stop
        self.state = load_state(options.state, options.cluster)

    def hubble_command(self) -> list[str]:
        command = [*shlex.split(self.options.hubble), "-o", "jsonpb", "--follow"]
        cursor = self.state.get("cursor")
        if cursor:
            command += ["--since", before(cursor, self.options.overlap) if self.options.overlap else cursor]
        elif self.options.initial_since:
            command += ["--since", self.options.initial_since]
        return command

    def run(self) -> int:
        command = self.hubble_command()
        log.info("starting: %s", shlex.join(command))
        try:
            hubble = subprocess.Popen(command, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        except OSError as exc:
            raise ConfigError(f"cannot run {command[0]!r}: {exc}") from None
        # A bounded queue: while the server is away, reading stops and hubble waits on the pipe, instead of this
        # process holding an unbounded backlog in memory.
        lines: queue.Queue[Any] = queue.Queue(maxsize=max(1000, 4 * self.options.batch_lines))
        reader = threading.Thread(target=_read, args=(hubble.stdout, lines), daemon=True)
        reader.start()
        batch, ended = Batch(), False
        try:
            while not self.stop.is_set():
                wait = 1.0 if not batch else max(0.0, batch.started + self.options.batch_seconds - time.monotonic())
                try:
                    item = lines.get(timeout=min(wait, 1.0))
                except queue.Empty:
                    item = None
                if item is EOF:
                    ended = True
                    break
                if item is not None:
                    batch.add(item)
                if batch and self._full(batch):
                    self.send(batch)
                    batch = Batch()
            # Stopping or hubble ended: what was read is sent (in batches of the usual size) before leaving.
            _terminate(hubble)
            for item in _drain(lines):
                if item is EOF:
                    continue
                batch.add(item)
                if len(batch) >= self.options.batch_lines or batch.size >= self.options.batch_bytes:
                    self.send(batch)
                    batch = Batch()
            if batch:
                self.send(batch)
        except Stopped:
            log.info("stopped with a batch unacknowledged: it is read again at the next start")
            _terminate(hubble)
            return EXIT_STOPPED
        except BaseException:
            _terminate(hubble)
            raise
        if ended and hubble.returncode:
            log.error("hubble exited with status %s", hubble.returncode)
            return EXIT_HUBBLE
        log.info("stopped (%s)", "hubble ended" if ended else "signal")
        return EXIT_STOPPED

    def _full(self, batch: Batch) -> bool:
        return (len(batch) >= self.options.batch_lines or batch.size >= self.options.batch_bytes
                or time.monotonic() - batch.started >= self.options.batch_seconds)

    def send(self, batch: Batch) -> None:
        body = batch.body
        key = batch_key(body)
        try:
            answer = self.client.post(body, key)
        except Refused as exc:
            if exc.status == 413 and len(batch) > 1:
                log.warning("batch %s…: too large for the server; sending it in two halves", key[:19])
                for half in batch.halves():
                    self.send(half)
                return
            raise ConfigError(f"the server refused batch {key}: {exc}") from None
        self.acknowledged(batch, key, answer)

    def acknowledged(self, batch: Batch, key: str, answer: dict[str, Any]) -> None:
        cursor = batch.cursor
        self.state.update(cluster=self.options.cluster, last_key=key, saved_at=format_time(datetime.now(UTC), 0),
                          batches=int(self.state.get("batches", 0)) + 1)
        if cursor is not None:
            self.state["cursor"] = cursor
        save_state(self.options.state, self.state)
        counts = ", ".join(f"{name} {answer.get(name)}" for name in ("stored", "duplicates", "skipped", "malformed"))
        replayed = " (replayed: the server had this batch already)" if answer.get("replayed") else ""
        log.info("batch %s…: %d lines: %s%s; cursor %s", key[:19], len(batch), counts, replayed,
                 self.state.get("cursor"))
        for error in answer.get("errors") or []:
            log.warning("batch %s…: line %s: %s: %s", key[:19], error.get("line"), error.get("field"),
                        error.get("message"))
        if answer.get("lines") not in (None, len(batch)):
            log.warning("batch %s…: sent %d lines, the server read %s", key[:19], len(batch), answer.get("lines"))
        for line in batch.lines:
            if b'"lost_events"' in line:
                log.warning("hubble reports lost events (its buffer overflowed before they were read): %s",
                            line.decode("utf-8", "replace").strip()[:300])


def _read(stream: Any, lines: queue.Queue[Any]) -> None:
    try:
        for line in stream:
            if line.strip():
                lines.put(line)
    finally:
        lines.put(EOF)


def _drain(lines: queue.Queue[Any]) -> list[Any]:
    drained = []
    while True:
        try:
            drained.append(lines.get_nowait())
        except queue.Empty:
            return drained


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# ---------------------------------------------------------------------------------------------- arguments


def parse_args(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> argparse.Namespace:
    env = os.environ if environ is None else environ

    def default(name: str, fallback: Any = None) -> Any:
        return env.get(ENV[name], fallback)

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Each option's default comes from the environment variable named in [].")
    add = parser.add_argument
    add("--url", default=default("url"), help="netsec's address, e.g. https://netsec.example.com [NETSEC_URL]")
    add("--cluster", default=default("cluster"), help="the cluster's name in netsec [NETSEC_CLUSTER]")
    add("--token-file", default=default("token_file"),
        help=f"a file holding the API token (a Secret's key) [NETSEC_TOKEN_FILE]; else ${TOKEN_ENV}")
    add("--state", default=default("state"), help="the state file (on a volume that outlives the pod) "
                                                  "[NETSEC_EXPORT_STATE]")
    add("--hubble", default=default("hubble", "hubble observe"),
        help="the hubble command, before '-o jsonpb --follow [--since T]' (default: hubble observe) [HUBBLE_COMMAND]")
    add("--batch-lines", type=int, default=int(default("batch_lines", 2000)),
        help="lines per batch at most (default 2000) [NETSEC_BATCH_LINES]")
    add("--batch-bytes", type=int, default=int(default("batch_bytes", 16 * 1024 * 1024)),
        help="bytes per batch at most, before gzip; keep it under NETSEC_MAX_UPLOAD_BYTES (default 16 MiB) "
             "[NETSEC_BATCH_BYTES]")
    add("--batch-seconds", type=float, default=float(default("batch_seconds", 10)),
        help="send a batch at the latest this long after its first line (default 10) [NETSEC_BATCH_SECONDS]")
    add("--overlap", type=float, default=float(default("overlap", 5)),
        help="on resume, read again this many seconds before the cursor, for flows hubble-relay delivered out of "
             "order across nodes; the server drops what it has (default 5) [NETSEC_OVERLAP_SECONDS]")
    add("--initial-since", default=default("initial_since", ""),
        help="--since for the very first start, e.g. 1h (default: from now on) [NETSEC_INITIAL_SINCE]")
    add("--ca-file", default=default("ca_file"), help="CA bundle for netsec's certificate [NETSEC_CA_FILE]")
    add("--timeout", type=float, default=float(default("timeout", 120)),
        help="seconds to wait for an answer (default 120) [NETSEC_HTTP_TIMEOUT]")
    add("--max-backoff", type=float, default=float(default("max_backoff", 300)),
        help="longest wait between retries, in seconds (default 300) [NETSEC_MAX_BACKOFF]")
    add("--log-level", default=default("log_level", "INFO"), help="DEBUG, INFO, WARNING (default INFO) [LOG_LEVEL]")
    options = parser.parse_args(argv)
    for name in ("url", "cluster", "state"):
        if not getattr(options, name):
            parser.error(f"--{name} (or ${ENV[name]}) is required")
    if not options.url.startswith(("https://", "http://")):
        parser.error("--url: an http(s):// address")
    if options.batch_lines < 1 or options.batch_bytes < 1 or options.batch_seconds <= 0 or options.overlap < 0:
        parser.error("batch sizes and --batch-seconds must be positive, --overlap zero or more")
    return options


def read_token(options: argparse.Namespace, environ: dict[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    if options.token_file:
        try:
            with open(options.token_file, encoding="utf-8") as f:
                token = f.read().strip()
        except OSError as exc:
            raise ConfigError(f"--token-file: {exc}") from None
    else:
        token = env.get(TOKEN_ENV, "").strip()
    if not token:
        raise ConfigError(f"no API token: give --token-file (or ${ENV['token_file']}) or ${TOKEN_ENV}")
    return token


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    logging.basicConfig(level=options.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()

    def on_signal(number: int, frame: Any) -> None:
        log.info("signal %s: sending what was read, then stopping", signal.Signals(number).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        client = Client(options.url, options.cluster, read_token(options), timeout=options.timeout,
                        ca_file=options.ca_file, max_backoff=options.max_backoff,
                        sleep=lambda seconds: not stop.wait(seconds))
        return Exporter(options, client, stop).run()
    except ConfigError as exc:
        log.error("%s", exc)
        return EXIT_CONFIG


if __name__ == "__main__":
    sys.exit(main())
