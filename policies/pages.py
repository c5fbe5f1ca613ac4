"""What each page shows, assembled from the service layer: one call per page or fragment.

Like ``services``, every function takes the acting user and returns only what the one rule of
``flows.access`` lets that user see; the views only render what these return.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Count, Max, Q
from django.utils import timezone

from flows import access
from flows.classify import CATEGORIES
from flows.communications import SCOPE_KINDS
from flows.models import Cluster, Communication, Namespace, Service, Workload
from flows.timespan import parse_span
from policies import adapter, engine, memo, services, topology
from policies.models import Draft

SPANS: dict[str, str] = {"1h": "1 hour", "6h": "6 hours", "12h": "12 hours", "24h": "24 hours", "7d": "7 days"}
DEFAULT_SPAN = "24h"
TABS = ("ingress", "egress", "topology", "applied", "policy")
NAME_LABEL = "kubernetes.io/metadata.name"


def span(text: str | None) -> tuple[str, timedelta]:
    """A span of the page's picker ('24h' when absent); ValueError for one it does not offer."""
    key = text or DEFAULT_SPAN
    if key not in SPANS:
        raise ValueError(f"since: {key!r}: use one of {', '.join(SPANS)}")
    return key, parse_span(key)


# ------------------------------------------------------------------------------------------------ landing


@dataclass(frozen=True)
class NamespaceOverview:
    name: str
    labels: dict[str, str]
    workloads: int
    isolated_ingress: int  # workloads that an applied policy already isolates for ingress
    isolated_egress: int
    drafts: int
    last_seen: datetime | None
    labelled: bool  # has the kubernetes.io/metadata.name label that other namespaces' policies select it by
    workload_names: tuple[tuple[str, str], ...]  # (kind, name) of each, to open its network page

    @property
    def first_workload(self) -> tuple[str, str] | None:
        return self.workload_names[0] if self.workload_names else None


@dataclass(frozen=True)
class ClusterOverview:
    name: str
    namespaces: list[NamespaceOverview]


def overview(user: Any) -> list[ClusterOverview]:
    """Every cluster and namespace the user may see, with the policy coverage of each namespace."""
    clusters = list(Cluster.objects.restrict(user).order_by("name"))
    namespaces = list(Namespace.objects.restrict(user).live().filter(cluster__in=clusters).order_by("name"))
    owners = adapter.workloads_of(namespaces)
    applied = {c.id: services.read_applied(c.id)[0] for c in clusters}
    drafts = dict(Draft.objects.filter(namespace__in=namespaces).values_list("namespace_id").annotate(n=Count("id")))
    last_seen: dict[int, datetime] = {}
    for side in ("src", "dst"):
        for ns_id, seen in (Communication.objects.filter(**{f"{side}_workload__namespace__in": namespaces})
                            .values_list(f"{side}_workload__namespace").annotate(m=Max("last_seen"))):
            last_seen[ns_id] = max(seen, last_seen.get(ns_id, seen))

    def isolated(policies: list[engine.Policy], peers: list[engine.WorkloadPeer], direction: str) -> int:
        return sum(any(p.isolates(direction) and p.selects(w.namespace, w.pod_labels) for p in policies)
                   for w in peers)

    out = []
    for cluster in clusters:
        rows = []
        for ns in (n for n in namespaces if n.cluster_id == cluster.id):
            peers = owners.get(ns.id, [])
            rows.append(NamespaceOverview(
                name=ns.name, labels=dict(ns.labels), workloads=len(peers),
                isolated_ingress=isolated(applied[cluster.id], peers, "ingress"),
                isolated_egress=isolated(applied[cluster.id], peers, "egress"), drafts=drafts.get(ns.id, 0),
                last_seen=last_seen.get(ns.id), labelled=ns.labels.get(NAME_LABEL) == ns.name,
                workload_names=tuple((p.kind, p.name) for p in peers),
            ))
        out.append(ClusterOverview(cluster.name, rows))
    return out


def workloads(user: Any, *, cluster: str = "", namespace: str = "", kind: str = "") -> list[dict[str, Any]]:
    """Every workload (and Service) the user may see, filtered, as the API lists them."""
    namespaces = Namespace.objects.restrict(user).live().select_related("cluster")
    if cluster:
        namespaces = namespaces.filter(cluster__name=cluster)
    if namespace:
        namespaces = namespaces.filter(name=namespace)
    namespaces = list(namespaces.order_by("cluster__name", "name"))
    by_id = {ns.id: ns for ns in namespaces}
    out: list[dict[str, Any]] = []
    if kind != "Service":
        for ns_id, peers in adapter.workloads_of(namespaces).items():
            ns = by_id[ns_id]
            for peer in peers:
                if not kind or peer.kind == kind:
                    out.append({"cluster": ns.cluster.name, "namespace": ns.name, "kind": peer.kind, "name": peer.name,
                                "labels": dict(peer.pod_labels),
                                "selector": peer.selector.to_dict() if not peer.selector.is_empty else None})
    if not kind or kind == "Service":
        for service in Service.objects.live().filter(namespace__in=namespaces).select_related("namespace"):
            ns = by_id[service.namespace_id]
            out.append({"cluster": ns.cluster.name, "namespace": ns.name, "kind": "Service", "name": service.name,
                        "labels": dict(service.labels),
                        "selector": {"matchLabels": service.selector} if service.selector else None})
    return sorted(out, key=lambda w: (w["cluster"], w["namespace"], w["kind"], w["name"]))


def topology_of(user: Any, scope: engine.Scope, *, since: timedelta, until: datetime | None = None
                ) -> dict[str, Any]:
    """The topology of a workload with the verdicts of its edges (what the page's graph draws)."""
    stamp = services.stamp(user, scope)  # refuses a user who may not view the scope

    def made() -> dict[str, Any]:
        judged = services.verdicts(user, scope, since=since, until=until)
        unlabelled = frozenset(w.namespace for w in judged.generated.warnings
                               if w.code == "namespace-unlabelled" and w.namespace)
        return topology.layout(scope, judged.verdicts, unlabelled=unlabelled,
                               services=_services_selecting(scope, judged.verdicts))

    return memo.kept_until(scope.cluster_id, "topology", (stamp, since), made, until)  # as its verdicts are


def topology_json(user: Any, scope: engine.Scope, *, since: timedelta) -> str:
    """``topology_of`` now, as the JSON the page's graph fetches: kept as text, which a request reads back
    from the cache faster than the structure (a thousand peers are a megabyte)."""
    return memo.kept_until(scope.cluster_id, "topology-json", (services.stamp(user, scope), since),
                           lambda: json.dumps(topology_of(user, scope, since=since), cls=DjangoJSONEncoder))


def applied_policies(user: Any, scope: engine.Scope, *, since: timedelta, until: datetime | None = None
                     ) -> list[AppliedView]:
    """The applied policies that select the workload or one of its peers, and the rows each decides."""
    return _applied_views(user, scope, services.verdicts(user, scope, since=since, until=until))


# ----------------------------------------------------------------------------------------------- pickers


@dataclass(frozen=True)
class Choices:
    """What the scope bar offers: the user's clusters, namespaces (with workload counts), kinds (with
    counts) and names, for the current selection."""

    clusters: list[str]
    namespaces: list[tuple[str, int]]
    kinds: list[tuple[str, int]]
    names: list[str]
    cluster: str = ""
    namespace: str = ""
    kind: str = ""
    name: str = ""


def choices(user: Any, cluster: str = "", namespace: str = "", kind: str = "", name: str = "") -> Choices:
    """The pickers for a selection, each part replaced by the first valid one when it names nothing the user
    may see (so that changing the namespace lands on one of its workloads)."""
    clusters = list(Cluster.objects.restrict(user).order_by("name").values_list("name", flat=True))
    cluster = cluster if cluster in clusters else (clusters[0] if clusters else "")
    namespaces = list(
        Namespace.objects.restrict(user).live().filter(cluster__name=cluster).order_by("name")
        .annotate(n=Count("workloads", filter=Q(workloads__deleted_at__isnull=True,
                                               workloads__parent__isnull=True)))
        .values_list("name", "n")
    )
    names_only = [n for n, _ in namespaces]
    if namespace not in names_only:
        namespace = next((n for n, count in namespaces if count), names_only[0] if names_only else "")
    counts = dict(
        Workload.objects.live().filter(namespace__cluster__name=cluster, namespace__name=namespace,
                                       parent__isnull=True)
        .values_list("kind").annotate(n=Count("id"))
    )
    counts["Service"] = Service.objects.live().filter(namespace__cluster__name=cluster,
                                                      namespace__name=namespace).count()
    # ReplicaSet and Pod are offered only when there are orphans of that kind; the others always.
    kinds = [(k, counts.get(k, 0)) for k in SCOPE_KINDS if k not in ("ReplicaSet", "Pod") or counts.get(k)]
    if kind not in dict(kinds) or not counts.get(kind):
        kind = next((k for k, n in kinds if n and k != "Service"), next((k for k, n in kinds if n), kind or ""))
    if kind == "Service":
        names = list(Service.objects.live().filter(namespace__cluster__name=cluster, namespace__name=namespace)
                     .order_by("name").values_list("name", flat=True))
    else:
        names = list(Workload.objects.live().filter(namespace__cluster__name=cluster, namespace__name=namespace,
                                                    kind=kind, parent__isnull=True)
                     .order_by("name").values_list("name", flat=True))
    name = name if name in names else (names[0] if names else "")
    return Choices(clusters, namespaces, kinds, names, cluster, namespace, kind, name)


# ------------------------------------------------------------------------------------------ network page


@dataclass(frozen=True)
class RowView:
    """A row with its verdict and what the table says of it."""

    verdict: engine.RowVerdict
    status: str  # allowed, blocked, label (a namespace needs a label), always
    text: str  # the status in words
    dns: bool = False  # a lookup to the cluster DNS, which the policy always keeps

    @property
    def row(self) -> engine.CommunicationRow:
        return self.verdict.row

    @property
    def peer_text(self) -> str:
        return _peer_text(self.row.peer)

    @property
    def activity_peak(self) -> int:
        return max(self.row.activity, default=0)


@dataclass(frozen=True)
class DirectionView:
    direction: str
    mode: str
    rows: list[RowView]  # in-cluster peers, filtered and sorted as asked
    addresses: list[RowView]  # addresses without Kubernetes metadata (and the API server)
    total: int  # before filtering
    included: int
    blocked: int
    namespaces: list[str]  # of the in-cluster peers, for the namespace filter
    categories: list[tuple[str, int]]  # chips of the address table, with counts
    manual_rules: list[dict]  # of this direction, as the draft keeps them
    limit: int | None = None  # rows of each table the page renders (None: all); the rest are counted

    @property
    def label(self) -> str:
        return self.direction.title()

    @property
    def rows_shown(self) -> list[RowView]:
        return self.rows if self.limit is None else self.rows[:self.limit]

    @property
    def addresses_shown(self) -> list[RowView]:
        return self.addresses if self.limit is None else self.addresses[:self.limit]

    @property
    def rows_hidden(self) -> int:
        return len(self.rows) - len(self.rows_shown)

    @property
    def addresses_hidden(self) -> int:
        return len(self.addresses) - len(self.addresses_shown)


@dataclass(frozen=True)
class AppliedView:
    key: str
    yaml: str
    selects: list[str]  # what it applies to here: "this workload" and/or peers
    decides: list[tuple[str, bool]]  # rows of this workload whose verdict it decides, and whether they pass


@dataclass(frozen=True)
class NetworkPage:
    scope: engine.Scope
    span: str
    until: datetime
    draft: services.DraftView
    ingress: DirectionView
    egress: DirectionView
    generated: services.Generated
    topology: dict[str, Any]
    applied: list[AppliedView]
    unreadable: tuple[str, ...]
    unlabelled: list[str]  # peer namespaces without a label to select them by
    can_edit: bool
    can_admin: bool
    filters: dict[str, str] = field(default_factory=dict)

    @property
    def directions(self) -> tuple[DirectionView, DirectionView]:
        return (self.ingress, self.egress)

    @property
    def observed(self) -> bool:
        return bool(self.ingress.total or self.egress.total)


def _peer_text(peer: engine.RowPeer) -> str:
    if isinstance(peer, engine.WorkloadPeer):
        return f"{peer.namespace}/{peer.name}"
    if isinstance(peer, engine.OpaquePeer):
        return "other namespace"
    return " ".join(filter(None, [peer.ip, peer.alias or "", *peer.dns_names, peer.service, peer.category]))


def _status(verdict: engine.RowVerdict) -> tuple[str, str]:
    row = verdict.row
    if row.node_local:
        return "always", "always allowed (the pod's own node)"
    if verdict.warning and row.included:
        if isinstance(row.peer, engine.OpaquePeer):
            return "label", "in a namespace you may not see"
        return "label", "namespace needs a label" if "assign labels" in verdict.warning else "cannot be written"
    if verdict.allowed:
        return "allowed", "allowed"
    own = "egress" if row.direction == "egress" else "ingress"
    if own in verdict.blocked_by:
        return "blocked", "blocked by the draft" if not row.included else "blocked: " + ", ".join(verdict.policies)
    return "blocked", "blocked by " + (", ".join(verdict.policies) or "the peer's policies")


def _matches(view: RowView, q: str) -> bool:
    if not q:
        return True
    row = view.row
    peer = row.peer
    words = [view.peer_text, f"{row.port}/{row.protocol}", view.text]
    if isinstance(peer, engine.WorkloadPeer):
        words += [peer.kind, *(f"{k}={v}" for k, v in peer.pod_labels.items())]
    return all(term in " ".join(words).lower() for term in q.lower().split())


def _direction_view(direction: str, draft: services.DraftView, views: list[RowView], *, q: str, ns: str,
                    sort: str, cat: str, limit: int | None = None) -> DirectionView:
    mine = [v for v in views if v.row.direction == direction]
    in_cluster = [v for v in mine if not isinstance(v.row.peer, engine.AddressPeer)]
    addresses = [v for v in mine if isinstance(v.row.peer, engine.AddressPeer)]
    namespaces = sorted({v.row.peer.namespace for v in in_cluster if isinstance(v.row.peer, engine.WorkloadPeer)})
    categories = [(c, sum(1 for v in addresses if v.row.peer.category == c)) for c in CATEGORIES]
    key, descending = sort.lstrip("-"), sort.startswith("-") or sort == ""
    sorter: Callable[[RowView], Any] = SORT_KEYS.get(key, SORT_KEYS["connections"])

    def order(items: list[RowView]) -> list[RowView]:
        # Ties broken by the row key, so the table never reshuffles between two loads.
        return sorted(sorted(items, key=lambda v: v.row.key), key=sorter, reverse=descending)

    shown = [v for v in in_cluster if _matches(v, q)
             and (not ns or (isinstance(v.row.peer, engine.WorkloadPeer) and v.row.peer.namespace == ns))]
    shown_addresses = [v for v in addresses if _matches(v, q) and (not cat or v.row.peer.category == cat)]
    return DirectionView(
        direction=direction, mode=draft.mode(direction), rows=order(shown), addresses=order(shown_addresses),
        total=len(mine), included=sum(1 for v in mine if v.row.included),
        blocked=sum(1 for v in mine if not v.verdict.allowed), namespaces=namespaces, categories=categories,
        manual_rules=[r for r in draft.manual_rules if r["direction"] == direction], limit=limit,
    )


SORT_KEYS: dict[str, Callable[[RowView], Any]] = {
    "connections": lambda v: v.row.connections,
    "peer": lambda v: v.peer_text,
    "port": lambda v: (v.row.port or 0, v.row.protocol),
    "first_seen": lambda v: v.row.first_seen,
    "last_seen": lambda v: v.row.last_seen,
}


# A table renders at most this many rows (a user reads a few hundred at best; search and the filters narrow
# it down): the counts, the "all" box and the policy still cover every row.
ROW_LIMIT = 200


def network_page(user: Any, scope: engine.Scope, *, since: str | None = None, until: datetime | None = None,
                 q: str = "", ns: str = "", sort: str = "-connections", cat: str = "",
                 limit: int | None = None, tables_only: bool = False) -> NetworkPage:
    """Everything the network page of one workload shows, in one call (a constant number of queries).

    ``limit``: rows each table renders (None: all). ``tables_only``: for a table fragment, the topology and
    the applied policies (which it does not show) are left empty."""
    span_key, span_delta = span(since)
    judged = services.verdicts(user, scope, since=span_delta, until=until)  # None: now (kept for a minute)
    until = until or timezone.now()
    generated = judged.generated
    draft = services.get_draft(user, scope)
    cluster = Cluster.objects.get(pk=scope.cluster_id)
    dns = adapter.dns_target(cluster)
    views = []
    for verdict in judged.verdicts:
        status, text = _status(verdict)
        views.append(RowView(verdict, status, text, engine.covered_by_dns_rule(dns, verdict.row)))
    unlabelled = sorted({w.namespace for w in generated.warnings if w.code == "namespace-unlabelled" and w.namespace})
    directions = {d: _direction_view(d, draft, views, q=q, ns=ns, sort=sort, cat=cat, limit=limit)
                  for d in engine.DIRECTIONS}
    return NetworkPage(
        scope=scope, span=span_key, until=until, draft=draft, ingress=directions["ingress"],
        egress=directions["egress"], generated=generated,
        topology={} if tables_only else topology.layout(scope, judged.verdicts, unlabelled=frozenset(unlabelled),
                                                        services=_services_selecting(scope, judged.verdicts)),
        applied=[] if tables_only else _applied_views(user, scope, judged), unreadable=judged.unreadable,
        unlabelled=unlabelled,
        can_edit=_can(user, "edit", scope), can_admin=access.allowed_everywhere(user, "admin"),
        filters={k: v for k, v in {"q": q, "ns": ns, "sort": sort, "cat": cat}.items() if v},
    )


def kept_html(user: Any, scope: engine.Scope, request_key: object, render: Callable[[], str]) -> str:
    """A scope's page, or a part of it, rendered and kept (``policies.memo``) under everything it shows: the
    cluster's data, the draft, what the user may see and do, the user and ``request_key`` (the request's path
    and target). It shows times as "6 d ago" (and the scope bar lists the user's other clusters, which are not
    this cluster's data): made again after a minute."""
    parts = (services.stamp(user, scope), getattr(user, "pk", None), _can(user, "edit", scope),
             access.allowed_everywhere(user, "admin"), request_key)
    return memo.kept_until(scope.cluster_id, "html", parts, render)


# A change that alters more rows of a table than this answers with the whole table.
CHANGED_ROWS_LIMIT = 50


def _row_shown(v: RowView) -> tuple:
    return v.row.included, v.status, v.text, v.verdict.warning, v.dns


ChangedRows = list[tuple[RowView, bool]]  # a row, and whether it is one of the address table


def changed_parts(before: NetworkPage | None, after: NetworkPage) -> list[tuple[DirectionView, ChangedRows | None]]:
    """Per direction, what a change altered of its table, for the answer to swap: ``[]`` nothing; the rows
    shown whose checkbox or status changed (with the counts above them); None for the whole table (its rule,
    its manual rules or its rows changed, or too many rows, or nothing to compare with)."""
    out: list[tuple[DirectionView, ChangedRows | None]] = []
    for old, new in zip(before.directions if before else (None, None), after.directions, strict=True):
        if old is None or (old.mode, old.manual_rules, old.total) != (new.mode, new.manual_rules, new.total):
            out.append((new, None))
            continue
        was = {v.row.key: _row_shown(v) for v in [*old.rows_shown, *old.addresses_shown]}
        shown = [*new.rows_shown, *new.addresses_shown]
        if was.keys() != {v.row.key for v in shown}:
            out.append((new, None))
            continue
        addresses = {v.row.key for v in new.addresses_shown}
        changed = [(v, v.row.key in addresses) for v in shown if was[v.row.key] != _row_shown(v)]
        out.append((new, changed if len(changed) <= CHANGED_ROWS_LIMIT else None))
    return out


def _services_selecting(scope: engine.Scope, verdicts: list[engine.RowVerdict]) -> dict[str, list[str]]:
    """The Services that select the workload ("scope") and each workload peer (by peer key): one query."""
    owners: dict[str, tuple[str, Any]] = {"scope": (scope.namespace, scope.pod_labels)}
    for verdict in verdicts:
        peer = verdict.row.peer
        if isinstance(peer, engine.WorkloadPeer):
            owners[peer.key] = (peer.namespace, peer.pod_labels)
    found: dict[str, list[str]] = defaultdict(list)
    rows = Service.objects.live().filter(namespace__cluster_id=scope.cluster_id,
                                         namespace__name__in={ns for ns, _ in owners.values()})
    for namespace, name, selector in rows.order_by("name").values_list("namespace__name", "name", "selector"):
        for key, (owner_namespace, labels) in owners.items():
            if selector and owner_namespace == namespace and all(labels.get(k) == v for k, v in selector.items()):
                found[key].append(name)
    return found


def _can(user: Any, action: access.Action, scope: engine.Scope) -> bool:
    return Namespace.objects.restrict(user, action).filter(pk=scope.namespace_id).exists()


def _applied_views(user: Any, scope: engine.Scope, judged: services.Verdicts) -> list[AppliedView]:
    """The applied policies the user may see that select this workload or one of its peers."""
    visible = set(Namespace.objects.restrict(user).filter(cluster_id=scope.cluster_id).values_list("name", flat=True))
    policies, _ = services.read_applied(scope.cluster_id)
    manifests = {f"{m['metadata']['namespace']}/{m['metadata']['name']}": m
                 for m in adapter.applied_policies(scope.cluster_id)}
    decides: dict[str, list[tuple[str, bool]]] = defaultdict(list)
    for verdict in judged.verdicts:
        row = verdict.row
        for key in verdict.policies:
            decides[key].append((f"{row.direction} {_peer_text(row.peer)} {row.port}/{row.protocol}", verdict.allowed))
    peers = {v.row.peer.key: v.row.peer for v in judged.verdicts if isinstance(v.row.peer, engine.WorkloadPeer)}
    out = []
    for policy in sorted(policies, key=lambda p: p.key):
        if policy.namespace not in visible:
            continue
        selects = (["this workload"] if policy.selects(scope.namespace, scope.pod_labels) else []) + [
            f"{p.kind} {p.namespace}/{p.name}" for p in peers.values() if policy.selects(p.namespace, p.pod_labels)]
        if selects:
            out.append(AppliedView(policy.key, engine.to_yaml([manifests[policy.key]]), selects, decides[policy.key]))
    return out


# --------------------------------------------------------------------------------------------- downloads


def namespace_yaml(user: Any, cluster: str, namespace: str, *, since: str | None = None) -> tuple[str, str, int]:
    """(file name, multi-document YAML, number of policies) of every workload of a namespace."""
    _, delta = span(since)
    # A workload without a usable label has no policy: the page of each says why.
    documents = services.namespace_policy_files(user, cluster, namespace, since=delta)
    return f"netsec-{cluster}-{namespace}.yaml", "".join(text for _, text in documents), len(documents)

