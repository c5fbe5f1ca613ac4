"""manage.py import_inventory --cluster C [--create] [--partial] FILE...   (design §6)

Reads what `kubectl get namespaces,nodes,pods,services,endpointslices,deployments,replicasets,daemonsets,
statefulsets,jobs,cronjobs,networkpolicies -A -o yaml` (or `-o json`) prints: a `kind: List`, multi-document YAML,
JSON (one object, a List, an array, or several objects one after the other), gzip-compressed or not.
'-' reads stdin.

Exit codes: 0 imported; 1 bad input (every problem is printed with its file, line, document and item
index and field, and nothing is written) or unknown cluster; 2 bad arguments.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from flows.ingest.inventory import InventoryError, read_sources
from flows.management.commands._clusters import cluster_or_creatable
from flows.models import Cluster
from flows.store.inventory import apply_snapshot
from flows.timespan import time_option


class Command(BaseCommand):
    help = (
        "Import a `kubectl get ... -A -o yaml|json` dump as the inventory of a cluster. Objects of a kind "
        "the dump contains, in a namespace it covers, that are missing from it are marked deleted (a dump of "
        "one namespace deletes nothing elsewhere; use --partial for a dump of only some objects). Importing "
        "the same dump twice changes nothing."
    )
    # Lets tests (and callers of call_command) hand in what '-' reads.
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--cluster", required=True, help="name of the cluster the dump was taken from")
        parser.add_argument("--create", action="store_true", help="create the cluster if it does not exist")
        parser.add_argument(
            "--partial", action="store_true",
            help="the dump is not the whole cluster: add and update, but mark nothing deleted",
        )
        parser.add_argument(
            "--observed-at", metavar="TIME",
            help="when the dump was taken (ISO 8601, default now): deletions and address changes are dated so",
        )
        parser.add_argument("files", nargs="+", metavar="FILE", help="'-' reads stdin")

    def handle(
        self, *args: Any, cluster: str, create: bool, partial: bool, observed_at: str | None,
        files: list[str], **options: Any,
    ) -> None:
        when = time_option(observed_at, "--observed-at") or timezone.now()
        if files.count("-") > 1:
            raise CommandError("'-' (stdin) can be given only once", returncode=2)
        target = cluster_or_creatable(cluster, create=create)

        # Everything is read and checked before anything is written: a bad item leaves the database as it was.
        try:
            snapshot = read_sources(files, stdin=options.get("stdin"))
        except InventoryError as exc:
            raise CommandError(f"nothing imported:\n{exc}", returncode=1) from None

        with transaction.atomic():
            if target is None:
                target = Cluster.objects.create(name=cluster)
                self.stdout.write(f"created cluster {cluster!r}")
            stats = apply_snapshot(target, snapshot, observed_at=when, full=not partial)
        mode = "partial" if partial else "full"
        self.stdout.write(
            f"imported {len(snapshot.objects)} objects into cluster {cluster!r} ({mode}, observed at "
            f"{when.isoformat()})"
        )
        for line in stats.summary_lines():
            self.stdout.write(line)
