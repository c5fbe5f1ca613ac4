"""Data versions: a number per cluster that changes whenever something a page is made of changes.

What is made from a cluster's data (the rows of a workload's tables, the policies applied in it) may be kept
in the cache under the cluster's version, read *before* the data: a writer changes the data and bumps the
version in one transaction, so a result kept under a version is never older than that version. Whoever writes
communications, inventory, address names or CIDR configuration calls ``bump`` in the transaction that writes
them: aggregation, the inventory import and sync, retention; the models' own saves and deletes (the admin,
the services, tests) bump through ``connect_signals``.

A version starts at a random number, so that a cluster made again under an old id (SQLite reuses ids after a
rollback) does not meet results kept for the old one; ``bump`` of a cluster never seen adds it.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any

from django.db import connection, models


class DataVersion(models.Model):  # noqa: DJ008 (never shown)
    """The version of one cluster's data (see the module); not a field of ``Cluster``, so that saving a
    cluster read earlier never writes an older version back."""

    cluster = models.OneToOneField("flows.Cluster", primary_key=True, on_delete=models.CASCADE, related_name="+")
    version = models.BigIntegerField()

    class Meta:
        app_label = "flows"


def bump(cluster_ids: Iterable[int] | None = None) -> None:
    """A new version for these clusters (None: every cluster), in the caller's transaction."""
    table = DataVersion._meta.db_table
    if cluster_ids is None:
        where, params = "WHERE 1 = 1", []
    else:
        ids = sorted(set(cluster_ids))
        if not ids:
            return
        where, params = f"WHERE id IN ({', '.join(['%s'] * len(ids))})", ids
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (cluster_id, version) SELECT id, %s FROM flows_cluster {where} "
            f"ON CONFLICT (cluster_id) DO UPDATE SET version = {table}.version + 1",
            [secrets.randbits(62), *params])


def current(cluster_id: int) -> int:
    """The version of a cluster's data now (0 for one never bumped: a cluster is bumped when it is made)."""
    row = DataVersion.objects.filter(cluster_id=cluster_id).values_list("version", flat=True).first()
    return row or 0


def connect_signals() -> None:
    """Bump on the saves and deletes of single rows that pages are made of: a cluster's settings, address
    names and CIDR configuration (the admin, the services) and inventory rows saved one by one (tests, the
    demo). Not on the tables written in bulk (communications, day summaries, addresses): a receiver would make
    Django fetch every row it deletes; their writers bump themselves."""
    from django.db.models.signals import post_delete, post_save

    from flows import models as m

    def saved(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
        if raw:
            return
        if sender is m.Cluster:
            bump([instance.pk])
        elif instance.cluster_id is None:
            bump(None)  # a global alias or range: every cluster
        else:
            bump([instance.cluster_id])

    def deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
        if instance.cluster_id is None:
            bump(None)
        elif DataVersion.objects.filter(cluster_id=instance.cluster_id).exists():  # not in the cluster's deletion
            bump([instance.cluster_id])

    for model in (m.Cluster, m.Namespace, m.Workload, m.Service, m.Pod, m.NetworkPolicy, m.IPAlias, m.CIDRConfig):
        post_save.connect(saved, sender=model, weak=False, dispatch_uid=f"netsec-version-{model.__name__}")
    for model in (m.IPAlias, m.CIDRConfig):
        post_delete.connect(deleted, sender=model, weak=False, dispatch_uid=f"netsec-version-del-{model.__name__}")
