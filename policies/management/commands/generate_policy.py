from __future__ import annotations

from datetime import datetime
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from flows.communications import SCOPE_KINDS, ScopeError, parse_span, resolve_scope
from flows.models import Cluster, Namespace
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
        parser.add_argument("--until", help="end of the span, ISO 8601 (default now)")
        parser.add_argument(
            "--all-observed",
            action="store_true",
            help="allow every observed row, unresolved IPs included, ignoring saved drafts",
        )
        parser.add_argument("-o", "--output", help="write to FILE instead of stdout")

    def handle(self, *args, **o) -> None:
        if o["all"] == bool(o["kind"] or o["name"]) or (not o["all"] and not (o["kind"] and o["name"])):
            raise CommandError("give either --kind and --name, or --all", returncode=2)
        try:
            since = parse_span(o["since"])
            until = datetime.fromisoformat(o["until"]) if o["until"] else timezone.now()
        except ValueError as exc:
            raise CommandError(f"--since/--until: {exc}", returncode=2) from exc
        if timezone.is_naive(until):
            until = timezone.make_aware(until, timezone.utc)
        try:
            if o["all"]:
                cluster = Cluster.objects.get(name=o["cluster"])
                namespace = Namespace.objects.get(cluster=cluster, name=o["namespace"])
                scopes = services.namespace_scopes(cluster, namespace)
            else:
                scopes = [resolve_scope(o["cluster"], o["namespace"], o["kind"], o["name"])]
        # Names that match nothing are bad input (exit 1), as in every other command; malformed flags were
        # usage errors (exit 2) above.
        except Cluster.DoesNotExist:
            raise CommandError(f"cluster {o['cluster']!r} does not exist") from None
        except Namespace.DoesNotExist:
            raise CommandError(f"namespace {o['namespace']!r} does not exist in cluster {o['cluster']!r}") from None
        except ScopeError as exc:
            raise CommandError(str(exc)) from exc

        policies, peers = [], {}
        for scope in scopes:
            generated = services.generate(
                scope, since=since, until=until, all_observed=o["all_observed"], peers=peers
            )
            if generated.result is None:
                self.stderr.write(f"skipped {scope.kind} {scope.namespace.name}/{scope.name}: {generated.error}")
                continue
            for warning in generated.result.warnings:
                self.stderr.write(f"warning: {scope.kind} {scope.namespace.name}/{scope.name}: {warning.message}")
            policies.append(generated.result.policy)
        policies.sort(key=lambda p: (p["metadata"]["namespace"], p["metadata"]["name"]))
        text = engine.to_yaml(policies)
        if o["output"]:
            Path(o["output"]).write_text(text)
            self.stderr.write(f"wrote {len(policies)} policies to {o['output']}")
        else:
            self.stdout.write(text, ending="")
