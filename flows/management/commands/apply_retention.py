"""``manage.py apply_retention [--dry-run]``: the daily retention run by hand (flows/retention.py)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandParser

from flows.retention import apply_retention


class Command(BaseCommand):
    help = ("Prune raw flows, ingest batches and soft-deleted inventory past their retention, seal and roll up "
            "old hourly communications into daily rows, create the coming days' partitions (PostgreSQL).")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="count what would go; change nothing")

    def handle(self, *args, dry_run: bool = False, **options) -> None:
        self.stdout.write(str(apply_retention(dry_run=dry_run)))
