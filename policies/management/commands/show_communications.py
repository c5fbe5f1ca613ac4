from __future__ import annotations

import json
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from flows.access import SYSTEM
from flows.classify import API_SERVER
from flows.communications import SCOPE_KINDS
from flows.timespan import span_option, time_option
from policies import engine, services


def _ago(moment: datetime, now: datetime) -> str:
    seconds = max(0, int((now - moment).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return "just now"


def _status(row: engine.CommunicationRow) -> str:
    if row.node_local:
        return "always allowed (own node)"
    if row.denied_in_cluster:
        return "denied in cluster"
    return "included" if row.included else "excluded"


def _peer_cells(peer: engine.RowPeer) -> tuple[str, str, str]:
    """(kind, namespace, name) of the table for any peer."""
    if isinstance(peer, engine.WorkloadPeer):
        return peer.kind, peer.namespace, peer.name
    if isinstance(peer, engine.OpaquePeer):
        return "other namespace", "", peer.token
    extra = (f" ({peer.alias})" if peer.alias else "") + (f" {', '.join(peer.dns_names)}" if peer.dns_names else "")
    if peer.service:
        addresses = ", ".join(c.split("/")[0] for c in peer.cidrs) or "addresses unknown"
        what = "Kubernetes API server" if peer.category == API_SERVER else f"Service {peer.service}"
        return peer.category, "", f"{what} ({addresses}){extra}"
    return peer.category, "", peer.ip + extra


class Command(BaseCommand):
    help = "Print the ingress or egress communications of a workload over a time span."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--cluster", required=True)
        parser.add_argument("--namespace", required=True)
        parser.add_argument("--kind", required=True, choices=SCOPE_KINDS)
        parser.add_argument("--name", required=True)
        parser.add_argument("--direction", required=True, choices=engine.DIRECTIONS)
        parser.add_argument("--since", default="24h", help="time span: 1h, 12h, 24h, 7d ... (default 24h)")
        parser.add_argument("--until", help="end of the span, ISO 8601; without an offset it is UTC (default now)")
        parser.add_argument("--format", default="table", choices=("table", "json"))

    def handle(self, *args, **o) -> None:
        since = span_option(o["since"], "--since")
        until = time_option(o["until"], "--until")
        try:
            scope = services.resolve_scope(SYSTEM, o["cluster"], o["namespace"], o["kind"], o["name"])
        except services.ScopeError as exc:
            raise CommandError(str(exc)) from exc
        # "included" is what the saved draft decides (design §4 defaults where it decides nothing).
        rows = services.rows(SYSTEM, scope, o["direction"], since=since, until=until)
        if o["format"] == "json":
            payload = {"workload": scope.as_json(), "direction": o["direction"], "rows": [r.as_json() for r in rows]}
            self.stdout.write(json.dumps(payload, indent=2))
            return
        self._table(scope, o["direction"], rows, until or timezone.now(), o["since"])

    def _table(self, scope: engine.Scope, direction: str, rows: list[engine.CommunicationRow], now: datetime,
               span: str) -> None:
        self.stdout.write(f"{scope.kind} {scope.namespace}/{scope.name} · {direction} · last {span}")
        if not rows:
            hint = "the generated policy will deny all ingress" if direction == "ingress" else (
                "the generated policy will allow only DNS egress")
            self.stdout.write(f"No communications observed; {hint}. Try a longer --since (observe at least 12h).")
            return
        header = ("KIND", "NAMESPACE", "NAME", "PORT", "CONNS", "FIRST SEEN", "LAST SEEN", "STATUS")
        table = [header]
        for r in rows:
            table.append((*_peer_cells(r.peer), f"{r.port}/{r.protocol}", f"{r.connections:,}",
                          _ago(r.first_seen, now), _ago(r.last_seen, now), _status(r)))
        widths = [max(len(row[i]) for row in table) for i in range(len(header))]
        for row in table:
            self.stdout.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        included = sum(r.included for r in rows)
        self.stdout.write(f"{len(rows)} rows · {included} included")
