from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from flows.access import SYSTEM
from flows.communications import SCOPE_KINDS
from flows.timespan import span_option, time_option
from policies import engine, services


class Command(BaseCommand):
    help = "Generate NetworkPolicies (multi-document YAML) from drafts and observed communications."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--cluster", required=True)
        parser.add_argument("--namespace", required=True)
        parser.add_argument("--kind", choices=SCOPE_KINDS)
        parser.add_argument("--name")
        parser.add_argument("--all", action="store_true", help="every workload of the namespace")
        parser.add_argument("--since", default="24h", help="time span: 1h, 12h, 24h, 7d ... (default 24h)")
        parser.add_argument("--until", help="end of the span, ISO 8601; without an offset it is UTC (default now)")
        parser.add_argument(
            "--all-observed",
            action="store_true",
            help="allow every observed row, unresolved IPs included, ignoring saved drafts",
        )
        parser.add_argument("-o", "--output", help="write to FILE instead of stdout")

    def handle(self, *args, **o) -> None:
        if o["all"] == bool(o["kind"] or o["name"]) or (not o["all"] and not (o["kind"] and o["name"])):
            raise CommandError("give either --kind and --name, or --all", returncode=2)
        since = span_option(o["since"], "--since")
        until = time_option(o["until"], "--until")
        # Names that match nothing are bad input (exit 1), as in every other command; malformed flags are
        # usage errors (exit 2).
        try:
            if o["all"]:
                scopes = services.namespace_scopes(SYSTEM, o["cluster"], o["namespace"])
            else:
                scopes = [services.resolve_scope(SYSTEM, o["cluster"], o["namespace"], o["kind"], o["name"])]
        except services.ScopeError as exc:
            raise CommandError(str(exc)) from exc

        policies = []
        for scope in scopes:
            generated = services.generate(SYSTEM, scope, since=since, until=until, all_observed=o["all_observed"])
            if generated.result is None:
                self.stderr.write(f"skipped {scope}: {generated.error}")
                continue
            for warning in generated.warnings:
                self.stderr.write(f"warning: {scope}: {warning.message}")
            policies.append(generated.result.policy)
        policies.sort(key=lambda p: (p["metadata"]["namespace"], p["metadata"]["name"]))
        text = engine.to_yaml(policies)
        if o["output"]:
            Path(o["output"]).write_text(text)
            self.stderr.write(f"wrote {len(policies)} policies to {o['output']}")
        else:
            self.stdout.write(text, ending="")
