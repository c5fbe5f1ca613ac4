"""manage.py sync_cluster --cluster C [--create] [--kubeconfig PATH] [--context NAME] [--watch [--watch-seconds N]]
(design §6)

Lists the cluster's Kubernetes API (flows/kube/resources.py says what) into the inventory, through the same
upsert path as import_inventory, and records the attempt on the cluster. The API is reached with
--kubeconfig/--context when given (saved on the cluster when it is created or has no API settings yet), else
with the cluster's settings (in-cluster, or its kubeconfig and context), else with the client's default
kubeconfig ($KUBECONFIG, ~/.kube/config) and its current context.

--watch keeps the pods current after the list (a long-lived process), listing afresh when the watch's
resourceVersion expires; --watch-seconds bounds it (tests, cron-like runs).

Exit codes: 0 synced; 1 unknown cluster, unusable kubeconfig, or an API failure (what was listed is upserted,
nothing is deleted; the message says which resources failed and why); 2 bad arguments.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from flows.kube.api import ApiOptions, Backoff, KubeApi, KubeConfigError
from flows.kube.sync import SyncResult, WatchResult, record_failure, sync_and_watch, sync_cluster, target_for
from flows.management.commands._clusters import cluster_or_creatable
from flows.models import Cluster


def _positive(kind: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text!r}: must be more than 0")
        return value

    return parse


class Command(BaseCommand):
    help = (
        "Read the inventory of a cluster from its Kubernetes API (namespaces, nodes, pods, services, "
        "endpointslices, workloads, networkpolicies) and store it. Objects that are gone are marked deleted, "
        "unless some list failed: then what was listed is stored and nothing is deleted (exit code 1)."
    )
    # Lets tests (and callers of call_command) hand in ApiOptions, e.g. with tiny backoff delays.
    stealth_options = ("api_options",)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--cluster", required=True, help="name of the cluster in netsec")
        parser.add_argument("--create", action="store_true", help="create the cluster if it does not exist")
        parser.add_argument("--kubeconfig", metavar="PATH", help="kubeconfig file (default: the cluster's, "
                            "else $KUBECONFIG or ~/.kube/config)")
        parser.add_argument("--context", metavar="NAME", help="kubeconfig context (default: the cluster's, else "
                            "the current context)")
        parser.add_argument("--watch", action="store_true",
                            help="after the list, keep the pods current by watching them, until interrupted")
        parser.add_argument("--watch-seconds", type=_positive(float), metavar="N",
                            help="watch for N seconds, then exit (implies --watch)")
        defaults = ApiOptions()
        parser.add_argument("--page-size", type=_positive(int), metavar="N", default=defaults.page_size,
                            help=f"items per list request (default {defaults.page_size})")
        parser.add_argument("--timeout", type=_positive(float), metavar="SECONDS", default=defaults.timeout,
                            help=f"how long one request may wait for the server (default {defaults.timeout:g})")
        parser.add_argument("--attempts", type=_positive(int), metavar="N", default=defaults.backoff.attempts,
                            help="tries per request before a resource counts as failed "
                                 f"(default {defaults.backoff.attempts})")
        parser.add_argument("--retry-delay", type=_positive(float), metavar="SECONDS",
                            default=defaults.backoff.base_delay,
                            help=f"wait before the first retry, doubled for each next one, at most "
                                 f"{defaults.backoff.max_delay:g}s (default {defaults.backoff.base_delay:g})")

    def handle(
        self, *args: Any, cluster: str, create: bool, kubeconfig: str | None, context: str | None, watch: bool,
        watch_seconds: float | None, page_size: int, timeout: float, attempts: int, retry_delay: float,
        **options: Any,
    ) -> None:
        api_options: ApiOptions = options.get("api_options") or ApiOptions(
            page_size=page_size, timeout=timeout, backoff=Backoff(attempts=attempts, base_delay=retry_delay))
        target = cluster_or_creatable(cluster, create=create)
        if kubeconfig and not kubeconfig.startswith("~"):
            # Saved on the cluster, the path must mean the same file to a worker started elsewhere.
            kubeconfig = os.path.abspath(kubeconfig)

        started = timezone.now()
        where = target_for(target or Cluster(name=cluster), kubeconfig, context)
        try:
            api = KubeApi.connect(where, api_options)
        except KubeConfigError as exc:
            if target is not None:
                record_failure(target, str(exc), started=started, source=str(where))
            raise CommandError(f"cluster {cluster!r}: {exc}", returncode=1) from None

        with api:
            if target is None:
                with transaction.atomic():
                    target = Cluster.objects.create(name=cluster, kubeconfig=kubeconfig or "", context=context or "")
                self.stdout.write(f"created cluster {cluster!r}")
            elif (kubeconfig or context) and not (target.kubeconfig or target.context or target.in_cluster):
                target.kubeconfig, target.context = kubeconfig or "", context or ""
                target.save(update_fields=["kubeconfig", "context"])
                self.stdout.write(f"saved the API settings on cluster {cluster!r}: {where}")
            if watch or watch_seconds is not None:
                self.watch(target, api, watch_seconds)
                return
            result = sync_cluster(target, api=api)
        self.print_sync(result)
        if not result.ok:
            raise CommandError(f"cluster {cluster!r}: {result.error}", returncode=1)

    def watch(self, cluster: Cluster, api: KubeApi, seconds: float | None) -> None:
        last: list[SyncResult | WatchResult] = []

        def report(outcome: SyncResult | WatchResult) -> None:
            last[:] = [outcome]
            if isinstance(outcome, SyncResult):
                self.print_sync(outcome)
            else:
                self.stdout.write(str(outcome))
                self.stdout.flush()

        try:
            ok = sync_and_watch(cluster, api=api, seconds=seconds, report=report)
        except KeyboardInterrupt:
            self.stdout.write("interrupted")
            return
        if ok:
            return
        outcome = last[-1] if last else None
        if isinstance(outcome, WatchResult) and outcome.failure is not None:
            why = f"the watch of pods stopped: {outcome.failure.message}"
        else:
            why = outcome.error if isinstance(outcome, SyncResult) else "the sync failed"
        raise CommandError(f"cluster {cluster.name!r}: {why}", returncode=1)

    def print_sync(self, result: SyncResult) -> None:
        if result.kinds:
            mode = "full" if result.full else "partial: nothing deleted"
            self.stdout.write(f"listed {result.listed} objects of cluster {result.cluster!r} from {result.api} "
                              f"({result.source}) in {result.duration:.2f}s ({mode})")
            width = max(len(k) for k in result.kinds)
            self.stdout.write(f"{'kind':<{width}}  listed  pages  retries  status")
            for kind, s in result.kinds.items():
                status = "ok" if not s.error else "FAILED"
                self.stdout.write(f"{kind:<{width}}  {s.listed:6}  {s.pages:5}  {s.retries + s.restarts:7}  {status}")
            for line in result.stats.summary_lines():
                self.stdout.write(line)
        self.stdout.flush()
