from __future__ import annotations

import json
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from flows.communications import (
    DIRECTIONS,
    SCOPE_KINDS,
    CommunicationRow,
    ScopeError,
    parse_span,
    resolve_scope,
)
from policies import services


def _ago(moment: datetime, now: datetime) -> str:
    seconds = max(0, int((now - moment).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return "just now"


def _status(row: CommunicationRow) -> str:
    if row.node_local:
        return "always allowed (own node)"
    if row.denied_in_cluster:
        return "denied in cluster"
    return "included" if row.included else "excluded"


class Command(BaseCommand):
    help = "Print the ingress or egress communications of a workload over a time span."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--cluster", required=True)
        parser.add_argument("--namespace", required=True)
        parser.add_argument("--kind", required=True, choices=SCOPE_KINDS)
        parser.add_argument("--name", required=True)
        parser.add_argument("--direction", required=True, choices=DIRECTIONS)
        parser.add_argument("--since", default="24h", help="time span: 1h, 12h, 24h, 7d ... (default 24h)")
        parser.add_argument("--until", help="end of the span, ISO 8601 (default now)")
        parser.add_argument("--format", default="table", choices=("table", "json"))

    def handle(self, *args, **o) -> None:
        try:
            since = parse_span(o["since"])
        except ValueError as exc:
            raise CommandError(f"--since: {exc}", returncode=2) from exc
        until = None
        if o["until"]:
            try:
                until = datetime.fromisoformat(o["until"])
            except ValueError as exc:
                raise CommandError(f"--until: not an ISO 8601 time: {o['until']!r}", returncode=2) from exc
            if timezone.is_naive(until):
                until = timezone.make_aware(until, timezone.utc)
        try:
            scope = resolve_scope(o["cluster"], o["namespace"], o["kind"], o["name"])
        except ScopeError as exc:
            raise CommandError(str(exc)) from exc
        # "included" is what the saved draft decides (design §4 defaults where it decides nothing).
        rows = services.decided_rows(scope, o["direction"], since=since, until=until, draft=services.get_draft(scope))
        if o["format"] == "json":
            payload = {"workload": scope.as_json(), "direction": o["direction"], "rows": [r.as_json() for r in rows]}
            self.stdout.write(json.dumps(payload, indent=2))
            return
        self._table(scope, o["direction"], rows, until or timezone.now(), o["since"])

    def _table(self, scope, direction: str, rows: list[CommunicationRow], now: datetime, span: str) -> None:
        self.stdout.write(f"{scope.kind} {scope.namespace.name}/{scope.name} · {direction} · last {span}")
        if not rows:
            hint = "the generated policy will deny all ingress" if direction == "ingress" else (
                "the generated policy will allow only DNS egress")
            self.stdout.write(f"No communications observed; {hint}. Try a longer --since (observe at least 12h).")
            return
        header = ("KIND", "NAMESPACE", "NAME", "PORT", "CONNS", "FIRST SEEN", "LAST SEEN", "STATUS")
        table = [header]
        for r in rows:
            if r.peer is not None:
                kind, ns, name = r.peer.kind, r.peer.namespace.name, r.peer.name
            else:
                kind, ns = r.ip.category, ""
                name = r.ip.ip + (f" ({r.ip.alias})" if r.ip.alias else "") + (
                    f" {', '.join(r.ip.dns_names)}" if r.ip.dns_names else "")
            table.append((kind, ns, name, f"{r.port}/{r.protocol}", f"{r.connections:,}",
                          _ago(r.first_seen, now), _ago(r.last_seen, now), _status(r)))
        widths = [max(len(row[i]) for row in table) for i in range(len(header))]
        for row in table:
            self.stdout.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        included = sum(r.included for r in rows)
        self.stdout.write(f"{len(rows)} rows · {included} included")
