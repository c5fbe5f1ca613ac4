"""What the pages compute from a cluster's data, kept in the cache under the cluster's data version.

``kept(cluster_id, what, parts, compute)`` gives what ``compute()`` gives, from the cache when the same
``what`` and ``parts`` were computed at the cluster's current version (``flows.versions``): any change to the
cluster's communications, inventory, address names or CIDR configuration moves the version on, so nothing
out of date is ever served; a result is also dropped after ``KEEP_SECONDS``. ``parts`` must name every other
input of ``compute`` (scopes, span, draft). The version is read before ``compute`` reads the data.

The cache is Django's (Redis in production, shared by every process; this process's memory on the embedded
default): a miss only costs the computation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TypeVar

from django.core.cache import cache

from flows import versions

T = TypeVar("T")
KEEP_SECONDS = 3600


def kept(cluster_id: int, what: str, parts: object, compute: Callable[[], T]) -> T:
    version = versions.current(cluster_id)
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=16).hexdigest()
    key = f"memo:{what}:{cluster_id}:{version}:{digest}"
    found = cache.get(key)
    if found is not None:
        return found
    value = compute()
    cache.set(key, value, KEEP_SECONDS)
    return value
