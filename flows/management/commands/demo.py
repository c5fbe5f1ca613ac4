from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from flows import demo
from flows.access import ROLE_GROUPS, Role
from flows.aggregate import aggregate_cluster
from flows.ingest.inventory import Snapshot, parse_object
from flows.models import CIDRConfig, Cluster, IPAlias, Namespace, NamespaceGrant
from flows.store.inventory import apply_snapshot
from flows.store.raw_flows import store_records

# (cluster, days of flows): prod has the whole week, staging a day, so the picker has a choice.
CLUSTERS = (("prod", 7), ("staging", 1))
# (user, role group in every namespace, or None for the superuser; namespaces of a grant instead)
USERS: tuple[tuple[str, str | None, tuple[str, ...]], ...] = (
    ("admin", None, ()), ("editor", ROLE_GROUPS[Role.EDITOR], ()), ("viewer", ROLE_GROUPS[Role.VIEWER], ()),
    ("shop-team", None, ("shop",)),  # an Editor of the shop namespaces only
)


class Command(BaseCommand):
    help = "Load the demo clusters (inventory, a week of flows, aliases and CIDRs). Running it again adds nothing."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--users", action="store_true", help="also create the admin, editor and viewer users")

    def handle(self, *args, users: bool = False, **options) -> None:
        for name, days in CLUSTERS:
            self._cluster(name, days)
        if users:
            self._users()

    def _cluster(self, name: str, days: int) -> None:
        with transaction.atomic():
            cluster, created = Cluster.objects.get_or_create(
                name=name,
                defaults={"pod_cidrs": demo.POD_CIDR, "service_cidrs": demo.SERVICE_CIDR,
                          "node_cidrs": demo.NODE_CIDR},
            )
        # The demo's clock is when the cluster was first loaded, so a second run builds the very same
        # objects and flows, and the fingerprints make it a no-op.
        anchor = cluster.created.replace(minute=0, second=0, microsecond=0)
        items, pods = demo.build(name, anchor)
        snapshot = Snapshot.of(obj for obj in (parse_object(item) for item in items) if obj is not None)
        stats = apply_snapshot(cluster, snapshot, observed_at=anchor, full=True)
        IPAlias.objects.get_or_create(cluster=cluster, name="partner-sftp", defaults={
            "cidr": "203.0.113.192/26", "allowed": False, "note": "Partner's file drop; allow per workload"})
        CIDRConfig.objects.get_or_create(cluster=cluster, cidr="192.0.2.0/24", defaults={
            "category": CIDRConfig.Category.EXTERNAL, "label": "log-saas"})
        stored, duplicates = store_records(cluster, demo.flows(name, anchor, pods, days=days))
        result = aggregate_cluster(cluster)
        self.stdout.write(
            f"cluster {name} ({'new' if created else 'already there'}): inventory "
            f"{'changed' if stats.changed else 'unchanged'}; {stored} flows stored, {duplicates} already there; "
            f"{result}"
        )

    def _users(self) -> None:
        model = get_user_model()
        for username, group, namespaces in USERS:
            if model.objects.filter(username=username).exists():
                self.stdout.write(f"user {username}: exists, password unchanged")
                continue
            password = secrets.token_urlsafe(9)
            with transaction.atomic():
                if group is None and not namespaces:
                    model.objects.create_superuser(username, f"{username}@example.invalid", password)
                else:
                    user = model.objects.create_user(username, f"{username}@example.invalid", password)
                if group is not None:
                    # The role groups come with every installation (a migration makes them, with their
                    # permissions); a database emptied by hand lacks them, and still gets a working demo.
                    user.groups.add(Group.objects.get_or_create(name=group)[0])
                if namespaces:
                    grant = NamespaceGrant.objects.create(user=user, role=Role.EDITOR, note="demo")
                    grant.namespaces.set(Namespace.objects.filter(name__in=namespaces))
            where = f" (Editor in namespaces {', '.join(namespaces)} of every cluster)" if namespaces else ""
            self.stdout.write(f"user {username}: password {password}{where}")
