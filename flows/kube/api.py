"""Reading the Kubernetes API: connection settings, paged lists and watch streams, as raw JSON.

The ``kubernetes`` client does the HTTP work (kubeconfig or in-cluster credentials, TLS, proxies, exec auth
plugins); its typed models are never built: the inventory parser reads the API's JSON as kubectl prints it,
and building thousands of model objects only to turn them back into dicts would cost more than the list.
Responses are parsed from bytes with orjson.

Failures are said in terms a user can act on (which resource, which request, what the server answered) and
sorted into those worth a retry (5xx, 429, timeouts, a refused or reset connection) and those that are not
(401/403, 404, a bad answer). urllib3's own retries are off: one retry policy (``Backoff``) counts and
records every attempt, and its delays are the ones a test can make tiny.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import urllib3
from kubernetes import client as kube_client
from kubernetes import config as kube_config
from kubernetes.config.config_exception import ConfigException

from flows.kube.resources import Resource

# --------------------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff between attempts of one request: ``base * 2**n`` seconds, at most ``max_delay``,
    with jitter (so that many workers do not retry in step), for at most ``attempts`` tries in all."""

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (0-based); a server's Retry-After wins, capped."""
        if retry_after is not None:
            return min(self.max_delay, max(0.0, retry_after))
        wanted = min(self.max_delay, self.base_delay * 2**retry)
        return wanted * random.uniform(0.5, 1.0)


@dataclass(frozen=True)
class ApiOptions:
    """How the sync talks to the API server; the defaults suit a production cluster."""

    page_size: int = 500  # the `limit` of each list request
    timeout: float = 60.0  # seconds a list request may wait for data (the read timeout)
    connect_timeout: float = 10.0
    backoff: Backoff = field(default_factory=Backoff)
    list_restarts: int = 3  # how often an expired continue token (410) may restart one list
    watch_timeout: int = 300  # seconds the server keeps one watch request open (timeoutSeconds)


# ----------------------------------------------------------------------------------------------- errors


class KubeConfigError(Exception):
    """The cluster's API settings cannot be used (no kubeconfig, unknown context, no in-cluster account)."""


class ApiError(Exception):
    """A request that failed: the message names the request and what went wrong.

    ``status`` is the HTTP status (None when no answer came); ``retriable`` whether another attempt may
    succeed; ``everywhere`` whether every other request would fail alike (the server is unreachable, the
    credentials are refused), so that trying the other resources is pointless.
    """

    def __init__(self, message: str, *, status: int | None = None, retriable: bool = False,
                 everywhere: bool = False, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retriable = retriable
        self.everywhere = everywhere
        self.retry_after = retry_after

    def add(self, note: str) -> None:
        """Append a note to the message, e.g. how many attempts were made."""
        self.message = f"{self.message} {note}"
        self.args = (self.message,)


def _status_message(body: bytes) -> str:
    """The ``message`` of a Kubernetes Status answer, or a short piece of whatever else came."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        text = body.decode("utf-8", "replace").strip()
        return text[:200]
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return data["message"]
    return ""


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None  # an HTTP date: rare from an API server, and the backoff is a fine substitute


def http_error(status: int, reason: str, body: bytes, *, verb: str, resource: Resource, request: str,
               retry_after: str | None = None) -> ApiError:
    """The ApiError for an HTTP answer that is not a success, with what to do about it."""
    said = _status_message(body)
    detail = f" ({said})" if said else ""
    head = f"{status} {reason}".strip()
    group = resource.group or '"" (core)'
    if status == 401:
        return ApiError(f"{head} on {request}: the API server refused the credentials; check the user of the "
                        f"kubeconfig context (an expired token?){detail}", status=status, everywhere=True)
    if status == 403:
        return ApiError(f"{head} on {request}: missing permission to {verb} {resource.plural} (API group {group}) "
                        f"at the cluster scope; grant the verb {verb!r} on {resource.plural!r} in the "
                        f"ClusterRole of the sync's account{detail}", status=status)
    if status == 404:
        return ApiError(f"{head} on {request}: the API server does not serve {resource.group or 'core'}/"
                        f"{resource.version} {resource.plural}{detail}", status=status)
    retriable = status == 429 or status >= 500
    return ApiError(f"{head} on {request}{detail}", status=status, retriable=retriable,
                    retry_after=_retry_after(retry_after) if retriable else None)


def transport_error(exc: BaseException, *, request: str, host: str, timeout: float) -> ApiError:
    """The ApiError for a request that got no answer (or only part of one)."""
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    # NewConnectionError (refused, no route, unknown name) is a ConnectTimeoutError too, for urllib3's history.
    if isinstance(exc, urllib3.exceptions.NewConnectionError | ConnectionRefusedError):
        cause = exc.__cause__ or exc.__context__ or exc
        refused = isinstance(cause, ConnectionRefusedError) or "refused" in str(exc)
        why = "connection refused" if refused else str(cause)
        return ApiError(f"{request}: cannot connect to {host}: {why}", retriable=True, everywhere=True)
    if isinstance(exc, urllib3.exceptions.ConnectTimeoutError):
        return ApiError(f"{request}: connecting to {host} timed out", retriable=True, everywhere=True)
    if isinstance(exc, urllib3.exceptions.ReadTimeoutError | TimeoutError):
        return ApiError(f"{request}: timed out after {timeout:g}s", retriable=True)
    if isinstance(exc, urllib3.exceptions.SSLError):
        return ApiError(f"{request}: TLS error with {host}: {exc}", everywhere=True)
    if isinstance(exc, urllib3.exceptions.ProtocolError):
        # ('Connection aborted.', RemoteDisconnected(...)), or a reset halfway through the answer.
        inner = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], BaseException) else exc
        return ApiError(f"{request}: the connection to {host} broke off: {inner}", retriable=True)
    return ApiError(f"{request}: {type(exc).__name__}: {exc}", retriable=True)


# ------------------------------------------------------------------------------------------ connection


@dataclass(frozen=True)
class Target:
    """Where the API settings come from, said in messages: "kubeconfig ~/.kube/config, context prod"."""

    kubeconfig: str = ""
    context: str = ""
    in_cluster: bool = False

    def __str__(self) -> str:
        if self.in_cluster:
            return "the in-cluster service account"
        where = f"kubeconfig {self.kubeconfig}" if self.kubeconfig else "the default kubeconfig"
        return f"{where}, context {self.context}" if self.context else f"{where}, its current context"


def default_kubeconfig() -> str:
    """What the client reads when told nothing: $KUBECONFIG (a list, ':'-separated), else ~/.kube/config.

    Read now rather than when the client was imported, so that the environment of this run counts.
    """
    return os.environ.get("KUBECONFIG") or "~/.kube/config"


def configuration(target: Target) -> kube_client.Configuration:
    """The client's Configuration for ``target``; KubeConfigError says what is wrong with the settings."""
    config = kube_client.Configuration()
    try:
        if target.in_cluster:
            kube_config.load_incluster_config(client_configuration=config)
        else:
            path = target.kubeconfig or default_kubeconfig()
            files = [p for p in path.split(os.pathsep) if p]
            if not any(Path(p).expanduser().is_file() for p in files):
                raise KubeConfigError(f"kubeconfig {path}: no such file")
            # persist_config=False: a token refreshed by an auth plugin is never written back to the file.
            kube_config.load_kube_config(config_file=path, context=target.context or None,
                                         client_configuration=config, persist_config=False)
    except KubeConfigError:
        raise
    except ConfigException as exc:
        raise KubeConfigError(f"{target}: {exc}") from None
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        # A file that is not a kubeconfig (YAML of another shape, unreadable certificate files, ...).
        raise KubeConfigError(f"{target}: cannot be used: {type(exc).__name__}: {exc}") from None
    # Every attempt goes through Backoff, which counts it; urllib3 raises the first error as it is.
    config.retries = False
    return config


class KubeApi:
    """GET requests to one API server, with the client's credentials, answering raw JSON."""

    def __init__(self, config: kube_client.Configuration, target: Target, options: ApiOptions) -> None:
        self.target = target
        self.options = options
        self.client = kube_client.ApiClient(config)
        self.host = config.host

    @classmethod
    def connect(cls, target: Target, options: ApiOptions | None = None) -> KubeApi:
        return cls(configuration(target), target, options or ApiOptions())

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> KubeApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------------------------------- requests

    def open(self, path: str, query: Sequence[tuple[str, Any]], *, read_timeout: float, accept: str,
             verb: str, resource: Resource) -> urllib3.BaseHTTPResponse:
        """Send one GET and return the response, unread; ApiError when there is no success answer."""
        request = describe(path, query)
        method, url, headers, body, post = self.client.param_serialize(
            "GET", path, query_params=list(query), header_params={"Accept": accept}, auth_settings=["BearerToken"],
        )
        try:
            response = self.client.call_api(method, url, headers, body, post,
                                            _request_timeout=(self.options.connect_timeout, read_timeout))
        except kube_client.ApiException as exc:  # the client's wrapper of a TLS failure
            raise ApiError(f"{request}: {exc.reason}", everywhere=True) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise transport_error(exc, request=request, host=self.host, timeout=read_timeout) from None
        raw = response.response
        if not 200 <= response.status <= 299:
            try:
                data = raw.read(64 * 1024)  # a Status is small; whatever else may be huge
            except (urllib3.exceptions.HTTPError, OSError):
                data = b""
            finally:
                raw.close()  # the rest of the body, if any, is never read: the connection is not reused
                raw.release_conn()
            raise http_error(response.status, response.reason or "", data, verb=verb, resource=resource,
                             request=request, retry_after=raw.headers.get("Retry-After"))
        return raw

    def get_list(self, resource: Resource, query: Sequence[tuple[str, Any]]) -> dict[str, Any]:
        """One page of a list, as a dict: ApiError when it fails or is not a Kubernetes list."""
        request = describe(resource.path, query)
        timeout = self.options.timeout
        raw = self.open(resource.path, query, read_timeout=timeout, accept="application/json", verb="list",
                        resource=resource)
        try:
            data = raw.read()
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise transport_error(exc, request=request, host=self.host, timeout=timeout) from None
        finally:
            raw.release_conn()
        try:
            page = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise ApiError(f"{request}: the answer is not JSON ({exc})") from None
        # The API always sends `items`, [] when there are none: an answer without it (a proxy's page, say)
        # must not read as "no objects", which a full sync would take for "all of them deleted".
        if not isinstance(page, dict) or not isinstance(page.get("items"), list):
            raise ApiError(f"{request}: the answer is not a Kubernetes list (it has no items)")
        return page

    def with_retries(self, call: Any, counter: Attempts) -> Any:
        """``call()`` until it succeeds, fails for good, or the attempts run out (the last error is raised)."""
        backoff = self.options.backoff
        for attempt in range(max(1, backoff.attempts)):
            try:
                return call()
            except ApiError as exc:
                if not exc.retriable or attempt + 1 >= backoff.attempts:
                    if exc.retriable and attempt:
                        exc.add(f"(after {attempt + 1} attempts)")
                    raise
                counter.retries += 1
                time.sleep(backoff.delay(attempt, exc.retry_after))
        raise AssertionError("unreachable")  # pragma: no cover


def describe(path: str, query: Sequence[tuple[str, Any]]) -> str:
    """'GET /api/v1/pods?limit=500' (a continue token is long and says nothing: it is shortened)."""
    parts = [f"{k}={'…' if k == 'continue' else v}" for k, v in query]
    return f"GET {path}" + (f"?{'&'.join(parts)}" if parts else "")


@dataclass
class Attempts:
    """What one list or watch took beyond its first try."""

    retries: int = 0
    restarts: int = 0


# -------------------------------------------------------------------------------------------- listing


@dataclass
class Listing:
    """Every item of one resource, read page by page; ``error`` set when the list could not be completed."""

    resource: Resource
    items: list[dict[str, Any]] = field(default_factory=list)
    resource_version: str = ""
    pages: int = 0
    attempts: Attempts = field(default_factory=Attempts)
    error: ApiError | None = None


def list_all(api: KubeApi, resource: Resource) -> Listing:
    """List ``resource`` in every namespace, following continue tokens until the server gives none.

    A server may answer fewer items than the limit (even none) with a token: only the token says whether
    more follow. A token that expired (410 Gone) restarts the list from the start, at most
    ``ApiOptions.list_restarts`` times: the pages already read belong to an older snapshot.
    """
    listing = Listing(resource)
    token = ""
    while True:
        query: list[tuple[str, Any]] = [("limit", api.options.page_size)]
        if token:
            query.append(("continue", token))
        try:
            page = api.with_retries(lambda q=query: api.get_list(resource, q), listing.attempts)
        except ApiError as exc:
            if exc.status == 410 and token and listing.attempts.restarts < api.options.list_restarts:
                listing.attempts.restarts += 1
                listing.items.clear()
                token = ""
                continue
            if exc.status == 410 and token:
                exc.add(f"(the continue token expired {listing.attempts.restarts + 1} times)")
            listing.error = exc
            return listing
        listing.pages += 1
        listing.items.extend(page["items"])
        metadata = page.get("metadata") if isinstance(page.get("metadata"), dict) else {}
        token = metadata.get("continue") or ""
        if not isinstance(token, str):
            token = ""
        if not token:
            listing.resource_version = str(metadata.get("resourceVersion") or "")
            return listing


# --------------------------------------------------------------------------------------------- watching


def watch_lines(api: KubeApi, resource: Resource, resource_version: str, timeout_seconds: int,
                read_timeout: float) -> tuple[urllib3.BaseHTTPResponse, Iterator[bytes]]:
    """Open a watch of ``resource`` from ``resource_version``: the response (to close it) and its lines.

    The server ends the request after ``timeout_seconds``; ``read_timeout`` (longer) catches a connection
    that went silent. Bookmarks are asked for, so that a quiet watch still moves its resourceVersion on.
    """
    query = [("watch", "true"), ("resourceVersion", resource_version), ("allowWatchBookmarks", "true"),
             ("timeoutSeconds", timeout_seconds)]
    raw = api.open(resource.path, query, read_timeout=read_timeout, accept="application/json", verb="watch",
                   resource=resource)
    return raw, _lines(raw, describe(resource.path, query), api.host, read_timeout)


def _lines(raw: urllib3.BaseHTTPResponse, request: str, host: str, timeout: float) -> Iterator[bytes]:
    """The non-empty lines of a streamed answer (one JSON event each), as bytes.

    ``read1`` hands over what has arrived, chunked or not; ``read(n)`` would wait for n bytes, and an event
    could sit in a buffer until the next ones fill it.
    """
    pending = b""
    try:
        while chunk := raw.read1(64 * 1024):
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for line in complete:
                if line.strip():
                    yield line
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise transport_error(exc, request=request, host=host, timeout=timeout) from None
    if pending.strip():
        yield pending
