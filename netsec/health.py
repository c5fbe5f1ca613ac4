"""``/healthz`` (the process answers) and ``/readyz`` (it can serve: database reachable and migrated, broker
reachable), for Kubernetes probes and load balancers.

Both are answered by a middleware placed first, before the host check, the HTTPS redirect, sessions and
authentication: a kubelet probes a pod by its IP over plain HTTP, with a Host header that ALLOWED_HOSTS does
not list. They need no sign-in and say nothing but "ok", "ready" or "not ready": why a check failed goes to
the log (and, for admins, to /status/), never to whoever asks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.db import connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse

log = logging.getLogger(__name__)

_migrated: set[str] = set()  # databases found fully migrated once: that does not change while we run


def _plain(text: str, status: int = 200) -> HttpResponse:
    response = HttpResponse(text + "\n", content_type="text/plain; charset=utf-8", status=status)
    response["Cache-Control"] = "no-store"
    return response


def database_problem(alias: str = "default") -> str:
    """Why the database cannot serve us, or ''."""
    try:
        connection = connections[alias]
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        if alias not in _migrated:
            executor = MigrationExecutor(connection)
            if executor.migration_plan(executor.loader.graph.leaf_nodes()):
                return "migrations are not applied yet (run manage.py migrate)"
            _migrated.add(alias)
    except Exception as exc:  # noqa: BLE001 - any failure means not ready; the reason is logged
        return f"database: {type(exc).__name__}: {exc}"
    return ""


def broker_problem() -> str:
    """Why the Celery broker (Redis) cannot take tasks, or '' (none is needed when tasks run in-process)."""
    if not settings.REDIS_URL:
        return ""
    import redis

    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2).ping()
    except redis.RedisError as exc:
        return f"broker: {type(exc).__name__}: {exc}"
    return ""


def healthz(request: HttpRequest) -> HttpResponse:
    return _plain("ok")


def readyz(request: HttpRequest) -> HttpResponse:
    problems = [p for p in (database_problem(), broker_problem()) if p]
    if problems:
        log.warning("not ready: %s", "; ".join(problems))
        return _plain("not ready", 503)
    return _plain("ready")


PROBES: dict[str, Callable[[HttpRequest], HttpResponse]] = {"/healthz": healthz, "/readyz": readyz}


class HealthCheckMiddleware:
    """Answers the probes before any other middleware can refuse them (see the module docstring)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        probe = PROBES.get(request.path_info.rstrip("/"))
        if probe is not None and request.method in ("GET", "HEAD"):
            return probe(request)
        return self.get_response(request)
