from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from flows.aggregate import aggregate_cluster
from flows.models import Cluster
from flows.timespan import span_option


class Command(BaseCommand):
    help = "Aggregate raw flows that arrived since the last run into communications (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--cluster", help="only this cluster (default: every cluster)")
        parser.add_argument(
            "--rebuild", metavar="SPAN",
            help="also rebuild every bucket of the last SPAN (e.g. 7d), after an inventory import",
        )

    def handle(self, *args, cluster: str | None = None, rebuild: str | None = None, **options) -> None:
        rebuild_since = timezone.now() - span_option(rebuild, "--rebuild") if rebuild else None
        clusters = Cluster.objects.all()
        if cluster:
            clusters = clusters.filter(name=cluster)
            if not clusters.exists():
                raise CommandError(f"cluster {cluster!r} does not exist")
        for c in clusters:
            self.stdout.write(str(aggregate_cluster(c, rebuild_since=rebuild_since)))
