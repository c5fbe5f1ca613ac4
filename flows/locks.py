"""Locks that keep a periodic job from running twice at once for one cluster, across workers and hosts.

With Redis (``REDIS_URL``) the lock is a Redis key set only if absent, with an expiry: a worker that dies
holding it blocks nobody for longer than the expiry. It is released only by its holder (a token compared
in Redis), never by a late worker whose own lock had already expired and been taken by another. Without
Redis (the embedded default, tasks run in-process) the cache of the process plays that part.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import cache

from django.conf import settings
from django.core.cache import cache as django_cache

PREFIX = "netsec:lock:"


@cache
def _redis(url: str):  # type: ignore[no-untyped-def]
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=10)


@contextmanager
def exclusive(name: str, *, ttl: float) -> Iterator[bool]:
    """Hold the lock ``name`` for at most ``ttl`` seconds; yields whether it was taken.

    Never waits: a caller that did not get it decides whether to skip or retry later.
    """
    key = PREFIX + name
    if settings.REDIS_URL:
        lock = _redis(settings.REDIS_URL).lock(key, timeout=ttl, blocking=False)
        taken = bool(lock.acquire(blocking=False))
        try:
            yield taken
        finally:
            if taken:
                from redis.exceptions import LockError

                # It expired while we ran, and may be someone else's now: then it is left alone.
                with suppress(LockError):
                    lock.release()
        return
    token = secrets.token_hex(8)
    taken = django_cache.add(key, token, timeout=ttl)
    try:
        yield taken
    finally:
        if taken and django_cache.get(key) == token:
            django_cache.delete(key)


def held(name: str) -> bool:
    """Whether someone holds the lock now (for the status page)."""
    key = PREFIX + name
    if settings.REDIS_URL:
        return bool(_redis(settings.REDIS_URL).exists(key))
    return django_cache.get(key) is not None
