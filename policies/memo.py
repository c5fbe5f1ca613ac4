"""What the pages compute from a cluster's data, kept in the cache under the cluster's data version.

``kept(cluster_id, what, parts, compute)`` gives what ``compute()`` gives, from the cache when the same
``what`` and ``parts`` were computed at the cluster's current version (``flows.versions``): any change to the
cluster's communications, inventory, address names or CIDR configuration moves the version on, so nothing
out of date is ever served. ``parts`` must name every other input of ``compute`` (scopes, span, draft, the
user's view). The version is read before ``compute`` reads the data.

``max_age``: for what also shows the time it was made ("6 d ago", a policy's window annotations), the seconds
it is fresh; an older one is made again by one request while the others are still served it (at most one
more ``max_age`` old). Whatever is missing is made by one request at a time: the others wait for it rather
than make it too (a page many people open after new data is computed once, not once per person).

The cache is Django's (Redis in production, shared by every process; this process's memory on the embedded
default): a miss only costs the computation. A result is dropped after ``KEEP_SECONDS`` in any case. The
last ``LOCAL_ENTRIES`` results a process used are also held as they are, unpickled, in its memory: a table
of a thousand rows takes longer to unpickle than to use. So results are shared, never copied, between the
requests of a process: callers must not change what they get (the engine's values are frozen).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from django.core.cache import cache
from django.utils import timezone

from flows import versions

T = TypeVar("T")
KEEP_SECONDS = 3600
MAKING_SECONDS = 120  # how long a request may hold the right to make a result (then another may)
WAIT_SECONDS = 60.0  # how long a request waits for another's result before it makes it itself
POLL_SECONDS = 0.02
FRESH_SECONDS = 60.0  # the ``max_age`` of what shows the time it was made
LOCAL_ENTRIES = 64

_local: OrderedDict[str, tuple[float, object]] = OrderedDict()
_local_lock = threading.Lock()


def _get(key: str, max_age: float | None = None) -> tuple[float, object] | None:
    """This process's copy when it is fresh, else the shared cache's (which another process may have made
    again)."""
    with _local_lock:
        found = _local.get(key)
        if found is not None and (max_age is None or time.time() - found[0] < max_age):
            _local.move_to_end(key)
            return found
    found = cache.get(key)
    if found is not None:
        _hold(key, found)
    return found


def _hold(key: str, found: tuple[float, object]) -> None:
    with _local_lock:
        _local[key] = found
        _local.move_to_end(key)
        while len(_local) > LOCAL_ENTRIES:
            _local.popitem(last=False)


def forget_local() -> None:
    """Drop what this process holds (tests that clear the cache clear this too)."""
    with _local_lock:
        _local.clear()


def hour(moment: datetime) -> datetime:
    """The hour a span ending at ``moment`` reads the communications up to (its buckets only move on with it)."""
    return moment.replace(minute=0, second=0, microsecond=0)


def kept_until(cluster_id: int, what: str, parts: object, compute: Callable[[], T], until: datetime | None = None
               ) -> T:
    """``kept`` for a result over a span ending at ``until``: for that end only, or, for a span ending now
    (None), for the current hour and fresh for ``FRESH_SECONDS``, since it shows the time it was made."""
    if until is not None:
        return kept(cluster_id, what, (parts, until), compute)
    return kept(cluster_id, what, (parts, hour(timezone.now())), compute, max_age=FRESH_SECONDS)


def kept(cluster_id: int, what: str, parts: object, compute: Callable[[], T], *, max_age: float | None = None) -> T:
    key = key_of(cluster_id, what, parts)
    making = f"{key}:making"  # held by the request that makes it
    found = _get(key, max_age)
    if found is not None:
        made, value = found
        if max_age is None or time.time() - made < max_age or not cache.add(making, 1, MAKING_SECONDS):
            return value  # fresh, or being made again by another request
        return _make(key, making, compute)
    deadline = time.monotonic() + WAIT_SECONDS
    while not cache.add(making, 1, MAKING_SECONDS):
        time.sleep(POLL_SECONDS)
        found = _get(key)
        if found is not None:
            return found[1]
        if time.monotonic() > deadline:
            return _make(key, None, compute)  # the one making it is gone or stuck: make it here
    return _make(key, making, compute)


def key_of(cluster_id: int, what: str, parts: object) -> str:
    """The cache key of a result at the cluster's current version."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=16).hexdigest()
    return f"memo:{what}:{cluster_id}:{versions.current(cluster_id)}:{digest}"


def _make(key: str, making: str | None, compute: Callable[[], T]) -> T:
    try:
        value = compute()
        found = (time.time(), value)
        cache.set(key, found, KEEP_SECONDS)
        _hold(key, found)
        return value
    finally:
        if making is not None:
            cache.delete(making)
