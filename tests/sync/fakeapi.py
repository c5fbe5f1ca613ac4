"""A Kubernetes API server small enough to read: the list and watch endpoints of flows/kube/resources.py,
answering the recorded lists of tests/sync/data over plain HTTP, so that the sync runs through the real
``kubernetes`` client (kubeconfig, bearer token, urllib3) and nothing of it is mocked.

What a test can make it do:

- ``page``: answer at most that many items per page, fewer than the client's ``limit``, with a continue token;
- ``fail(path, ...)``: answer an error status, or sleep before answering (a timeout), for the next requests
  of a path (only continued ones with ``on_continue``);
- ``watches``: per watch request, in order, a list of events to stream (dicts, or callables run at that point)
  or an HTTP status to refuse it with; with none left, a watch stays open and silent until its timeoutSeconds;
- ``lists``: the items themselves, to change between two syncs.

Every request is recorded in ``requests`` (path and query).
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flows.kube.resources import RESOURCES

DATA = Path(__file__).resolve().parent / "data"
TOKEN = "netsec-test-token"
HANG_UP = 599  # a fault "status" that closes the connection without answering
_REASONS = {401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 410: "Expired", 429: "TooManyRequests",
            500: "InternalError", 503: "ServiceUnavailable"}


def status_body(code: int, message: str) -> dict[str, Any]:
    """A metav1.Status as the API server sends it with an error."""
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": _REASONS.get(code, "Unknown"), "code": code}


@dataclass
class Fault:
    path: str
    status: int | None  # None: answer normally, after ``delay``
    times: int  # how many more requests it applies to (-1: all)
    on_continue: bool = False  # only to requests with a continue token
    delay: float = 0.0
    message: str = "injected failure"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Request:
    path: str
    query: dict[str, str]

    @property
    def watch(self) -> bool:
        return self.query.get("watch") == "true"


class FakeApi:
    def __init__(self) -> None:
        self.lists: dict[str, dict[str, Any]] = {
            r.path: json.loads((DATA / f"{r.plural}.json").read_text()) for r in RESOURCES
        }
        self.page: int | None = None
        self.faults: list[Fault] = []
        self.watches: list[list[dict[str, Any] | Callable[[], object]] | int] = []
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, address: None  # a client that hung up is no news
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeApi:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        self.server.shutdown()
        self.server.server_close()

    # -------------------------------------------------------------------------------------- for tests

    def items(self, plural: str) -> list[dict[str, Any]]:
        return self.lists[_path(plural)]["items"]

    def remove(self, plural: str, name: str) -> dict[str, Any]:
        items = self.items(plural)
        item = next(i for i in items if i["metadata"]["name"] == name)
        items.remove(item)
        return item

    def fail(self, plural: str, status: int | None = 500, *, times: int = 1, on_continue: bool = False,
             delay: float = 0.0, message: str = "injected failure", headers: dict[str, str] | None = None) -> None:
        self.faults.append(Fault(_path(plural), status, times, on_continue, delay, message, headers or {}))

    def set_version(self, plural: str, version: str) -> None:
        """What the next lists of ``plural`` say their resourceVersion is."""
        self.lists[_path(plural)]["metadata"]["resourceVersion"] = version

    def requests_to(self, plural: str, *, watch: bool = False) -> list[Request]:
        return [r for r in self.requests if r.path == _path(plural) and r.watch == watch]

    # ----------------------------------------------------------------------------------------- serving

    def fault_for(self, path: str, query: dict[str, str]) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.path == path and fault.times != 0 and (not fault.on_continue or "continue" in query):
                    if fault.times > 0:
                        fault.times -= 1
                    return fault
        return None

    def page_of(self, path: str, query: dict[str, str]) -> dict[str, Any]:
        listing = self.lists[path]
        if not isinstance(listing.get("items"), list):
            return listing  # a test's broken answer, as it is
        items = listing["items"]
        offset = int(base64.b64decode(query["continue"]).decode().split(":")[1]) if "continue" in query else 0
        size = int(query.get("limit") or len(items) or 1)
        if self.page is not None:
            size = min(size, self.page)
        end = offset + size
        metadata = {"resourceVersion": listing["metadata"]["resourceVersion"]}
        if end < len(items):
            metadata["continue"] = base64.b64encode(f"{metadata['resourceVersion']}:{end}".encode()).decode()
            metadata["remainingItemCount"] = len(items) - end
        return {**{k: v for k, v in listing.items() if k != "items"}, "metadata": metadata,
                "items": copy.deepcopy(items[offset:end])}


def _path(plural: str) -> str:
    return next(r.path for r in RESOURCES if r.plural == plural)


def _handler(api: FakeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # one request per connection: the end of a watch is the end of the body

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
            pass

        def send_json(self, code: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            # The client may have given up (its timeout), as tests make it.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.answer()

        def answer(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            request = Request(url.path, query)
            with api.lock:
                api.requests.append(request)
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self.send_json(401, status_body(401, "Unauthorized"))
                return
            if url.path not in api.lists:
                self.send_json(404, status_body(404, "the server could not find the requested resource"))
                return
            fault = api.fault_for(url.path, query)
            if fault is not None:
                time.sleep(fault.delay)
                if fault.status == HANG_UP:
                    return  # closes the connection without a word
                if fault.status is not None:
                    self.send_json(fault.status, status_body(fault.status, fault.message), fault.headers)
                    return
            if request.watch:
                self.watch(query)
            else:
                self.send_json(200, api.page_of(url.path, query))

        def watch(self, query: dict[str, str]) -> None:
            with api.lock:
                script = api.watches.pop(0) if api.watches else []
            if isinstance(script, int):
                self.send_json(script, status_body(script, "too old resource version"))
                return
            # As the API server streams a watch over HTTP/1.1: chunked, one event per chunk.
            self.protocol_version = "HTTP/1.1"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Connection", "close")
            self.end_headers()
            for event in script:
                if callable(event):
                    event()  # a change of the server's state at this point of the stream
                else:
                    self.chunk(json.dumps(event).encode() + b"\n")
            # Then silence until the watch's timeoutSeconds, as a quiet cluster gives.
            until = time.monotonic() + float(query.get("timeoutSeconds") or 1)
            while time.monotonic() < until and not api.stopped.is_set():
                time.sleep(0.02)
            self.chunk(b"")

        def chunk(self, data: bytes) -> None:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

    return Handler


def kubeconfig(path: Path, server: str, *, token: str = TOKEN, context: str = "fake") -> Path:
    """A kubeconfig with one context, ``context``, for ``server`` and a bearer-token user."""
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": context,
        "clusters": [{"name": "fake", "cluster": {"server": server}}],
        "users": [{"name": "tester", "user": {"token": token}}],
        "contexts": [{"name": context, "context": {"cluster": "fake", "user": "tester"}}],
    }
    path.write_text(json.dumps(config))
    return path


def event(kind: str, obj: dict[str, Any], version: str) -> dict[str, Any]:
    """A watch event for a pod, with the kind and apiVersion the watch gives its objects."""
    body = copy.deepcopy(obj)
    body["metadata"]["resourceVersion"] = version
    return {"type": kind, "object": {"kind": "Pod", "apiVersion": "v1", **body}}


def expired() -> dict[str, Any]:
    """The ERROR event of a watch whose resourceVersion the server no longer keeps."""
    return {"type": "ERROR", "object": status_body(410, "too old resource version: 1000 (2000)")}
