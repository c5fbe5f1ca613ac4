"""The service layer: what the web pages, the API and the commands call, and the only code that does.

Every function takes the acting user first (commands pass ``access.SYSTEM``) and checks it with the one
rule of ``flows.access``; none of the callers touches the ORM or the engine for policy work. A selection
the user may not see does not exist for them (``ScopeError``); one they may see but not change is a
``PermissionDenied``. A peer in a namespace the user may not see comes out as an ``OpaquePeer`` (no name,
no labels, no policy names), while the verdicts stay those of the real peers.

Each function answers in a constant number of queries, whatever the number of peers.

Reading never creates a draft; every change creates it on demand, records who made it and keeps a
revision with the whole draft after the change.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac

from flows import access
from flows.classify import API_SERVER, API_SERVICE, IPClassifier
from flows.iputil import canonical_cidr
from flows.models import CIDRConfig, Cluster, IPAlias, Namespace
from policies import adapter, engine, memo
from policies.adapter import ScopeError
from policies.models import ApiToken, AuditEvent, Draft, DraftRevision, ManualRule, RowDecision

__all__ = ["DEFAULT_SPAN", "DraftView", "Generated", "ScopeError", "Verdicts"]

DEFAULT_SPAN = timedelta(hours=24)
API_SERVER_PEER = f"service/{API_SERVICE}"


# ------------------------------------------------------------------------------------------------ scopes


def _namespace(user: Any, cluster: str, namespace: str) -> tuple[Cluster, Namespace]:
    # Clusters and namespaces the user may not see are answered exactly like those that do not exist.
    cluster_row = Cluster.objects.restrict(user).filter(name=cluster).first()
    if cluster_row is None:
        raise ScopeError(f"cluster {cluster!r} does not exist")
    ns = Namespace.objects.restrict(user).filter(cluster=cluster_row, name=namespace).first()
    if ns is None:
        raise ScopeError(f"namespace {namespace!r} does not exist in cluster {cluster!r}")
    return cluster_row, ns


def resolve_scope(user: Any, cluster: str, namespace: str, kind: str, name: str) -> engine.Scope:
    """The scope a selection names, if the user may see it; ``ScopeError`` in words a user can act on."""
    cluster_row, ns = _namespace(user, cluster, namespace)
    return adapter.load_scope(cluster_row, ns, kind, name)


def namespace_scopes(user: Any, cluster: str, namespace: str) -> list[engine.Scope]:
    """Every live top-level workload of a namespace, as scopes (what ``generate_policy --all`` covers)."""
    cluster_row, ns = _namespace(user, cluster, namespace)
    return adapter.namespace_scopes(cluster_row, ns)


def _require(user: Any, action: access.Action, scope: engine.Scope, what: str) -> None:
    if scope.namespace_id is None:
        raise ValueError(f"{scope} was not resolved by resolve_scope")
    if action == "view" and access.allowed_everywhere(user, "view"):
        return
    try:
        access.require(user, action, scope.namespace_id, what)
    except PermissionDenied:
        if action != "view" and Namespace.objects.restrict(user).filter(pk=scope.namespace_id).exists():
            raise
        raise ScopeError(f"namespace {scope.namespace!r} does not exist in cluster {scope.cluster!r}") from None


# ------------------------------------------------------------------------------------------------ hiding


@dataclass(frozen=True)
class _Hider:
    """Turns what the service layer computed for everyone into what one user may see.

    A workload, or a Service without a selector, in a namespace the user may not see becomes an
    ``OpaquePeer`` whose token is a keyed hash of the real peer (stable, telling peers apart, and
    revealing nothing). The API server (``default/kubernetes``) is the cluster's, not a tenant's: it stays.
    """

    cluster_id: int
    visible: frozenset[str] | None  # namespace names the user may see; None: all

    def hidden(self, namespace: str) -> bool:
        return self.visible is not None and namespace not in self.visible

    def opaque_key(self, peer_key: str) -> str | None:
        """The peer key the user sees in place of a hidden peer's (None when the peer is not hidden)."""
        namespace = engine.peer_namespace(peer_key)
        if namespace is None or not self.hidden(namespace) or peer_key == API_SERVER_PEER:
            return None
        return engine.OpaquePeer(salted_hmac("netsec.opaque-peer", f"{self.cluster_id}:{peer_key}")
                                 .hexdigest()[:16]).key

    def peer(self, peer: engine.RowPeer) -> engine.RowPeer:
        if isinstance(peer, engine.OpaquePeer):
            return peer
        hidden = self.opaque_key(peer.key)
        return peer if hidden is None else engine.OpaquePeer(hidden.removeprefix("other/"))

    def row_key(self, key: str) -> str:
        parts = engine.split_row_key(key)
        hidden = self.opaque_key(parts[1]) if parts else None
        return key if hidden is None else f"{parts[0]}:{hidden}{parts[2]}"

    def row(self, row: engine.CommunicationRow) -> engine.CommunicationRow:
        peer = self.peer(row.peer)
        return row if peer is row.peer else replace(row, peer=peer)

    def policies(self, keys: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys("a policy in another namespace" if self.hidden(k.partition("/")[0]) else k
                                   for k in keys))

    def side(self, side: engine.SideVerdict) -> engine.SideVerdict:
        return replace(side, isolated_by=self.policies(side.isolated_by), admitted_by=self.policies(side.admitted_by))

    def verdict(self, verdict: engine.RowVerdict) -> engine.RowVerdict:
        row = self.row(verdict.row)
        if row is verdict.row and self.visible is None:
            return verdict
        warning = verdict.warning
        if row is not verdict.row and warning:
            warning = "this peer cannot be written into the policy (it is in a namespace you may not see)"
        return replace(verdict, row=row, egress=self.side(verdict.egress), ingress=self.side(verdict.ingress),
                       warning=warning)


def _hider(user: Any, scope: engine.Scope) -> _Hider:
    return _hider_in(user, scope.cluster_id)


def _hider_in(user: Any, cluster_id: int) -> _Hider:
    if access.allowed_everywhere(user, "view"):
        return _Hider(cluster_id, None)
    names = Namespace.objects.restrict(user).filter(cluster_id=cluster_id).values_list("name", flat=True)
    return _Hider(cluster_id, frozenset(names))


def _real_keys(user: Any, scope: engine.Scope, row_keys: list[str]) -> list[str]:
    """The keys decisions are kept under: the real key of a row shown with an opaque peer. A key that names
    a hidden peer outright is refused like an unknown row, so that guessing names reveals nothing."""
    hider = _hider(user, scope)
    shown: dict[str, str] | None = None  # key as this user sees it -> real key, read when needed
    out = []
    for row_key in row_keys:
        _, peer_key, _ = engine.split_row_key(row_key) or ("", "", "")
        if not peer_key.startswith("other/") and hider.opaque_key(peer_key) is None:
            out.append(row_key)
            continue
        if shown is None:
            rows = adapter.observed_rows(scope, since=timedelta(days=3650), until=timezone.now())
            shown = {hider.row_key(row.key): row.key for row in rows}
        if peer_key.startswith("other/") and row_key in shown:
            out.append(shown[row_key])
            continue
        raise ValueError(f"row: {row_key!r} is not a row of {scope}")
    return out


# ------------------------------------------------------------------------------------------------ drafts


def _draft(scope: engine.Scope) -> Draft | None:
    return (
        Draft.objects.filter(namespace_id=scope.namespace_id, scope_kind=scope.kind, scope_name=scope.name)
        .prefetch_related("decisions", "manual_rules")
        .first()
    )


def draft_state(draft: Draft) -> dict:
    """The whole draft as plain data: what a revision keeps (the real row keys)."""
    return {
        "ingress_mode": draft.ingress_mode,
        "egress_mode": draft.egress_mode,
        "decisions": {d.row_key: d.included for d in draft.decisions.all()},
        "manual_rules": [
            {"id": r.id, "direction": r.direction, "cidr": r.cidr, "ports": r.ports, "note": r.note}
            for r in draft.manual_rules.all()
        ],
        "namespace_labels": draft.namespace_labels,
    }


@dataclass(frozen=True)
class DraftView:
    """A scope's draft as the acting user may see it: decisions on hidden peers under the keys their rows
    show, labels chosen for hidden namespaces left out. ``exists`` is False until somebody changes
    something (reading never creates a draft)."""

    exists: bool
    ingress_mode: str = "custom"
    egress_mode: str = "custom"
    decisions: dict[str, bool] = field(default_factory=dict)
    manual_rules: list[dict] = field(default_factory=list)
    namespace_labels: dict[str, list[str]] = field(default_factory=dict)
    updated_by: str = ""
    updated_at: datetime | None = None

    def mode(self, direction: str) -> str:
        return self.ingress_mode if direction == "ingress" else self.egress_mode


def _view(hider: _Hider, draft: Draft | None) -> DraftView:
    if draft is None:
        return DraftView(exists=False)
    state = draft_state(draft)
    return DraftView(
        exists=True, ingress_mode=state["ingress_mode"], egress_mode=state["egress_mode"],
        decisions={hider.row_key(key): included for key, included in state["decisions"].items()},
        manual_rules=state["manual_rules"],
        namespace_labels={ns: kv for ns, kv in state["namespace_labels"].items() if not hider.hidden(ns)},
        updated_by=draft.updated_by.get_username() if draft.updated_by else "", updated_at=draft.updated_at,
    )


def get_draft(user: Any, scope: engine.Scope) -> DraftView:
    _require(user, "view", scope, "reading a draft")
    return _view(_hider(user, scope), _draft(scope))


def default_included(row: engine.CommunicationRow) -> bool:
    """Design §4: in-cluster peers (workloads, the API server) are allowed; unresolved IPs are excluded unless
    an admin allowed their alias; attempts denied in the cluster are never re-opened silently; traffic from
    the pod's own node needs no rule."""
    if row.denied_in_cluster or row.node_local:
        return False
    peer = row.peer
    if isinstance(peer, engine.AddressPeer):
        return peer.allowed or peer.category == API_SERVER
    return True


def _decide(rows: list[engine.CommunicationRow], draft: Draft | None, all_observed: bool
            ) -> list[engine.CommunicationRow]:
    """The rows with ``included`` as the draft decides (``all_observed``: every row that worked)."""
    if all_observed:
        return [replace(r, included=not r.denied_in_cluster and not r.node_local) for r in rows]
    decisions = {d.row_key: d.included for d in draft.decisions.all()} if draft is not None else {}
    return [replace(r, included=decisions.get(r.key, default_included(r)) and not r.node_local) for r in rows]


def _author(user: Any) -> AbstractBaseUser | None:
    return user if isinstance(user, AbstractBaseUser) else None


def _change(user: Any, scope: engine.Scope, action: str, summary: str, change) -> DraftView:
    """Apply ``change(draft)`` to the scope's draft (made on demand), keep a revision of the result and an
    audit event; return the draft as the user may see it."""
    _require(user, "edit", scope, "changing a draft")
    with transaction.atomic():
        draft, _ = Draft.objects.select_for_update().get_or_create(
            namespace_id=scope.namespace_id, scope_kind=scope.kind, scope_name=scope.name
        )
        change(draft)
        draft.updated_by = _author(user)
        draft.save()
        draft = Draft.objects.prefetch_related("decisions", "manual_rules").get(pk=draft.pk)
        DraftRevision.objects.create(draft=draft, author=draft.updated_by, summary=summary[:300],
                                     state=draft_state(draft))
        audit(user, f"draft.{action}", f"{scope.kind} {scope.namespace}/{scope.name}", cluster=scope.cluster,
              namespace=scope.namespace, summary=summary)
    return _view(_hider(user, scope), draft)


def _direction(direction: str) -> str:
    if direction not in engine.DIRECTIONS:
        raise ValueError(f"direction: {direction!r} is not ingress or egress")
    return direction


def set_mode(user: Any, scope: engine.Scope, direction: str, mode: str) -> DraftView:
    """The general rule of one direction: custom rows, block all, allow inside the namespace, allow all."""
    _direction(direction)
    if mode not in engine.MODES:
        raise ValueError(f"mode: {mode!r} is not one of {', '.join(engine.MODES)}")

    def change(draft: Draft) -> None:
        setattr(draft, f"{direction}_mode", mode)

    return _change(user, scope, "mode", f"{direction} rule: {engine.MODE_LABELS[mode]}", change)


def set_row(user: Any, scope: engine.Scope, row_key: str, included: bool) -> DraftView:
    """Include or exclude one row, by its key as ``rows`` shows it to this user."""
    return set_rows(user, scope, [row_key], included)


def set_rows(user: Any, scope: engine.Scope, row_keys: list[str], included: bool) -> DraftView:
    """Include or exclude rows (a table's "all" box), all or none: every key is checked before any is saved."""
    for key in row_keys:
        if engine.split_row_key(key) is None:
            raise ValueError(f"row: {key!r} is not a row key (direction:peer:port/protocol)")
    if not row_keys:
        raise ValueError("row: no row given")
    _require(user, "edit", scope, "changing a draft")
    real_keys = _real_keys(user, scope, row_keys)

    def change(draft: Draft) -> None:
        for key in real_keys:
            RowDecision.objects.update_or_create(draft=draft, row_key=key, defaults={"included": included})

    what = row_keys[0] if len(row_keys) == 1 else f"{len(row_keys)} rows"
    return _change(user, scope, "rows", f"{'included' if included else 'excluded'} {what}", change)


def add_manual_rule(user: Any, scope: engine.Scope, direction: str, cidr: str, ports: str = "", note: str = ""
                    ) -> DraftView:
    """Validate and add "allow <direction> to/from CIDR on PORTS"; ValueError names the bad field."""
    _direction(direction)
    try:
        cidr = canonical_cidr(cidr)
    except ValueError as exc:
        raise ValueError(f"cidr: {cidr!r} is not a CIDR or address ({exc})") from exc
    ranges = engine.parse_ports(ports)

    def change(draft: Draft) -> None:
        ManualRule.objects.create(draft=draft, direction=direction, cidr=cidr, ports=adapter.ports_json(ranges),
                                  note=note[:200], created_by=_author(user))

    text = ", ".join(map(str, ranges)) or "all ports"
    return _change(user, scope, "rule_added", f"manual rule: {direction} {cidr} {text}", change)


def remove_manual_rule(user: Any, scope: engine.Scope, rule_id: int) -> DraftView:
    _require(user, "edit", scope, "changing a draft")
    rule = ManualRule.objects.filter(pk=rule_id, draft__namespace_id=scope.namespace_id, draft__scope_kind=scope.kind,
                                     draft__scope_name=scope.name).first()
    if rule is None:
        raise ScopeError(f"manual rule {rule_id} does not exist in the draft of {scope}")
    return _change(user, scope, "rule_removed", f"removed manual rule: {rule}",
                   lambda draft: ManualRule.objects.filter(pk=rule.pk).delete())


def set_namespace_label(user: Any, scope: engine.Scope, namespace: str, key: str, value: str) -> DraftView:
    """Select peer namespace ``namespace`` by ``key=value`` (for namespaces without the name label)."""
    if not key or not value:
        raise ValueError("namespace label: both key and value are needed, as key=value")
    problem = engine.label_key_problem(key) or engine.label_value_problem(value)
    if problem:
        raise ValueError(f"namespace label: {problem}")
    _require(user, "edit", scope, "changing a draft")
    if not Namespace.objects.restrict(user).filter(cluster_id=scope.cluster_id, name=namespace).exists():
        raise ValueError(f"namespace label: there is no namespace {namespace!r} in cluster {scope.cluster!r}")

    def change(draft: Draft) -> None:
        draft.namespace_labels = {**draft.namespace_labels, namespace: [key, value]}

    return _change(user, scope, "namespace_label", f"namespace {namespace} selected by {key}={value}", change)


# ------------------------------------------------------------------------------------------ rows, policy


def rows(user: Any, scope: engine.Scope, direction: str | None = None, *, since: timedelta = DEFAULT_SPAN,
         until: datetime | None = None, all_observed: bool = False) -> list[engine.CommunicationRow]:
    """The table rows of a scope (one direction, or both), ``included`` as its saved draft decides (design
    §4 defaults where it decides nothing); ``all_observed`` includes every row that worked."""
    _require(user, "view", scope, "reading communications")
    if direction is not None:
        _direction(direction)
    until = until or timezone.now()
    decided = _decide(adapter.observed_rows(scope, since=since, until=until), _draft(scope), all_observed)
    hider = _hider(user, scope)
    return [hider.row(r) for r in decided if direction is None or r.direction == direction]


@dataclass(frozen=True)
class Generated:
    """The policy of a scope, as the acting user may see it, and the rows it was made from."""

    scope: engine.Scope
    rows: list[engine.CommunicationRow]
    result: engine.GenerationResult | None
    error: str = ""  # why no policy could be made (the scope has no usable label)

    @property
    def yaml(self) -> str:
        return engine.to_yaml([self.result.policy]) if self.result else ""

    @property
    def warnings(self) -> tuple[engine.GenerationWarning, ...]:
        return self.result.warnings if self.result else ()

    @property
    def complete(self) -> bool:
        """False when peers the user may not see were left out of this policy."""
        return not any(w.code == "peer-hidden" for w in self.warnings)


def _generate(scope: engine.Scope, rows_: list[engine.CommunicationRow], draft: engine.Draft,
              dns: engine.DNSTarget, since: timedelta, until: datetime) -> Generated:
    request = engine.GenerationRequest(scope=scope, rows=tuple(rows_), draft=draft, dns=dns,
                                       window_start=until - since, window_end=until)
    try:
        return Generated(scope, rows_, engine.generate_policy(request))
    except engine.GenerationError as exc:
        return Generated(scope, rows_, None, str(exc))


def _prepare(user: Any, scope: engine.Scope, since: timedelta, until: datetime | None, all_observed: bool,
             addresses: IPClassifier | None = None
             ) -> tuple[list[engine.CommunicationRow], engine.Draft, engine.DNSTarget, datetime]:
    _require(user, "view", scope, "reading a policy")
    until = until or timezone.now()
    draft = None if all_observed else _draft(scope)
    addresses = addresses or adapter.classifier(scope.cluster_id)
    decided = _decide(adapter.observed_rows(scope, since=since, until=until, addresses=addresses), draft,
                      all_observed)
    return decided, adapter.engine_draft(draft), adapter.dns_target(addresses.cluster), until


def generate(user: Any, scope: engine.Scope, *, since: timedelta = DEFAULT_SPAN, until: datetime | None = None,
             all_observed: bool = False) -> Generated:
    """The policy for a scope: the draft applied to its communications over the span (``all_observed``:
    every observed row that worked, the draft ignored). Peers the user may not see are left out, with a
    warning (``Generated.complete`` is False)."""
    decided, draft, dns, until = _prepare(user, scope, since, until, all_observed)
    hider = _hider(user, scope)
    return _generate(scope, [hider.row(r) for r in decided], draft, dns, since, until)


def policy_file(user: Any, scope: engine.Scope, *, since: timedelta = DEFAULT_SPAN) -> tuple[str, str]:
    """(file name, YAML) of the scope's policy to download: downloading is an Editor's (design §9)."""
    _require(user, "edit", scope, "downloading a policy")

    def made() -> tuple[str, str] | str:
        generated = generate(user, scope, since=since)
        return generated.error if generated.result is None else (f"{generated.result.name}.yaml", generated.yaml)

    # Kept as the verdicts are: the same draft over the same data gives the same text, but for its window.
    found = memo.kept_until(scope.cluster_id, "policy-file", (stamp(user, scope), since), made)
    if isinstance(found, str):
        raise ValueError(found)
    return found


def namespace_policy_files(user: Any, cluster: str, namespace: str, *, since: timedelta = DEFAULT_SPAN
                           ) -> list[tuple[str, str]]:
    """(file name, YAML) of the policy of every workload of a namespace that has one, by file name: what
    "download all" gives. The addresses of the cluster are classified once for all of them."""
    cluster_row, ns = _namespace(user, cluster, namespace)  # a namespace the user may not see is unknown
    access.require(user, "edit", ns.pk, "downloading policies")
    hider = _hider_in(user, cluster_row.pk)
    # Kept under what the files are made of: the namespace's workloads (the cluster's data), its drafts, what
    # the user may see and the span.
    drafts = tuple(Draft.objects.filter(namespace=ns).order_by("pk").values_list("pk", "updated_at"))
    parts = (ns.pk, drafts, None if hider.visible is None else tuple(sorted(hider.visible)), since)
    return memo.kept_until(cluster_row.pk, "namespace-files", parts,
                           lambda: _namespace_policy_files(adapter.namespace_scopes(cluster_row, ns), hider, since))


def _namespace_policy_files(scopes: list[engine.Scope], hider: _Hider, since: timedelta) -> list[tuple[str, str]]:
    if not scopes:
        return []
    until = timezone.now()
    addresses = adapter.classifier(scopes[0].cluster_id)
    # One read for the whole namespace: its drafts, and the communications of all its workloads.
    drafts = {(d.scope_kind, d.scope_name): d for d in Draft.objects.filter(namespace_id=scopes[0].namespace_id)
              .prefetch_related("decisions", "manual_rules")}
    dns = adapter.dns_target(addresses.cluster)
    files = []
    for scope, observed in zip(scopes, adapter.observed_rows_many(scopes, since=since, until=until,
                                                                    addresses=addresses), strict=True):
        draft = drafts.get((scope.kind, scope.name))
        decided = _decide(observed, draft, False)
        generated = _generate(scope, [hider.row(r) for r in decided], adapter.engine_draft(draft), dns, since, until)
        if generated.result is not None:
            files.append((f"{generated.result.name}.yaml", generated.yaml))
    return sorted(files)


@dataclass(frozen=True)
class Verdicts:
    """The draft's policy and what it, with the policies applied in the cluster, does to every row.

    ``unreadable`` names applied policies the engine cannot read (left out of the verdicts): a policy
    written with a field this version does not know would otherwise stop every verdict of the cluster.
    """

    generated: Generated
    verdicts: list[engine.RowVerdict]
    unreadable: tuple[str, ...] = ()


def read_applied(cluster_id: int) -> tuple[list[engine.Policy], list[engine.PolicyError]]:
    """The policies applied in a cluster as the engine reads them, and those it cannot read (not for a
    user's eyes as they are: callers hide what the user may not see)."""
    policies, unreadable = [], []
    for manifest in adapter.applied_policies(cluster_id):
        try:
            policies.append(engine.parse_policy(manifest))
        except engine.PolicyError as exc:
            unreadable.append(exc)
    return policies, unreadable


def stamp(user: Any, scope: engine.Scope) -> tuple:
    """What a user's view of a scope depends on besides the cluster's data (``flows.versions``) and the span:
    the scope, the last change of its draft and the namespaces the user may see. What is kept of a view
    (``policies.memo``) is kept under it. Only for a user who may view the scope (checked here)."""
    _require(user, "view", scope, "reading a policy")
    hider = _hider(user, scope)
    draft = (Draft.objects.filter(namespace_id=scope.namespace_id, scope_kind=scope.kind, scope_name=scope.name)
             .values_list("pk", "updated_at").first())
    return repr(scope), draft, None if hider.visible is None else tuple(sorted(hider.visible))


def verdicts(user: Any, scope: engine.Scope, *, since: timedelta = DEFAULT_SPAN, until: datetime | None = None
             ) -> Verdicts:
    """Per-row verdicts for the tables and the topology: red when the draft plus the applied policies would
    deny the row. They are judged on the real peers, whatever the user may see of them.

    Kept (``policies.memo``): the same scope, span, draft and visible namespaces over the same data give the
    same verdicts, but for the policy's window annotations, which a result made "now" keeps for a minute."""
    return memo.kept_until(scope.cluster_id, "verdicts", (stamp(user, scope), since),
                           lambda: _verdicts(user, scope, since, until or timezone.now()), until)


def _verdicts(user: Any, scope: engine.Scope, since: timedelta, until: datetime) -> Verdicts:
    decided, draft, dns, until = _prepare(user, scope, since, until, False)
    full = _generate(scope, decided, draft, dns, since, until)
    applied, unreadable = read_applied(scope.cluster_id)
    judged = engine.row_verdicts(scope, decided, full.result.policy if full.result else None, applied,
                                 full.warnings)
    hider = _hider(user, scope)
    problems = tuple("a policy in another namespace cannot be read" if hider.hidden(e.policy.partition("/")[0])
                     else str(e) for e in unreadable)
    if hider.visible is None:
        return Verdicts(full, judged, problems)
    shown = _generate(scope, [hider.row(r) for r in decided], draft, dns, since, until)
    return Verdicts(shown, [hider.verdict(v) for v in judged], problems)


# ----------------------------------------------------------------------------------------- audit log


def via(user: Any) -> str:
    """Where a change comes from: the API (set on the user by the API's authentication), a command (the
    system user), or a page."""
    return getattr(user, "netsec_via", "page")


def audit(user: Any, action: str, target: str, *, cluster: str = "", namespace: str = "", **details: Any) -> None:
    """Record a change in the audit log (its callers decided the change was allowed)."""
    AuditEvent.objects.create(user=_author(user), actor=str(getattr(user, "username", user))[:150], via=via(user),
                              action=action, target=target[:300], cluster=cluster, namespace=namespace,
                              details=details)


def audit_events(user: Any, *, action: str = "", cluster: str = "", actor: str = "",
                 since: datetime | None = None) -> Any:
    """The audit log, newest first, filtered: for admins only."""
    access.require_everywhere(user, "admin", "reading the audit log")
    events = AuditEvent.objects.all()
    if action:
        events = events.filter(action__startswith=action)
    if cluster:
        events = events.filter(cluster=cluster)
    if actor:
        events = events.filter(actor=actor)
    if since is not None:
        events = events.filter(at__gte=since)
    return events


# -------------------------------------------------------------------------------------------- tokens

TOKEN_PREFIX = "nsk"
TOKEN_TOUCH = timedelta(minutes=1)  # last use is written at most this often, not on every request


@dataclass(frozen=True)
class NewToken:
    token: ApiToken
    secret: str  # the whole token: shown once, never stored


def _owner_of_tokens(user: Any, username: str | None) -> Any:
    if not username or username == getattr(user, "username", None):
        if not isinstance(user, AbstractBaseUser):
            raise ValueError("user: the system user has no tokens; name a user")
        return user
    access.require_everywhere(user, "admin", "managing another user's tokens")
    owner = get_user_model().objects.filter(username=username).first()
    if owner is None:
        raise ValueError(f"user: {username!r} does not exist")
    return owner


def create_token(user: Any, name: str, *, expires_at: datetime | None = None, username: str | None = None
                 ) -> NewToken:
    """A new API token for the user (an admin may make one for another user); its secret is returned once."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ValueError("name: give the token a name of 1 to 100 characters")
    if expires_at is not None and expires_at <= timezone.now():
        raise ValueError("expires_at: must be in the future")
    owner = _owner_of_tokens(user, username)
    prefix = secrets.token_hex(4)
    secret = f"{TOKEN_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    token = ApiToken.objects.create(user=owner, name=name, prefix=prefix, digest=_digest(secret),
                                    expires_at=expires_at)
    audit(user, "token.created", f"{name} ({prefix}…) of {owner.get_username()}")
    return NewToken(token, secret)


def tokens(user: Any, *, username: str | None = None) -> list[ApiToken]:
    """The user's tokens (an admin may list another user's), newest first, revoked ones included."""
    return list(ApiToken.objects.filter(user=_owner_of_tokens(user, username)).order_by("-created"))


def revoke_token(user: Any, token_id: int) -> ApiToken:
    """Revoke one of the user's tokens (an admin: anyone's). A token of someone else is unknown to a user."""
    token = ApiToken.objects.filter(pk=token_id).select_related("user").first()
    if token is None or (token.user_id != getattr(user, "pk", None) and not access.allowed_everywhere(user, "admin")):
        raise ScopeError(f"token {token_id} does not exist")
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit(user, "token.revoked", str(token))
    return token


def authenticate_token(secret: str) -> tuple[Any, ApiToken] | None:
    """(user, token) for a valid, live token of an active user; None otherwise."""
    parts = (secret or "").split("_", 2)  # the random part may hold "_" too
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        return None
    token = ApiToken.objects.filter(prefix=parts[1]).select_related("user").first()
    if token is None or not hmac.compare_digest(token.digest, _digest(secret)):
        return None
    now = timezone.now()
    if token.revoked_at is not None or (token.expires_at is not None and token.expires_at <= now):
        return None
    if not token.user.is_active:
        return None
    if token.last_used_at is None or now - token.last_used_at >= TOKEN_TOUCH:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user, token


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# ---------------------------------------------------------------------------------- aliases and CIDRs


def _cluster_scope(user: Any) -> Any:
    """Aliases and CIDR configuration a user may read: global ones and those of clusters they may see."""
    from django.db.models import Q

    return Q(cluster__isnull=True) | Q(cluster__in=Cluster.objects.restrict(user))


def aliases(user: Any) -> list[IPAlias]:
    if not getattr(user, "is_authenticated", False):
        return []
    return list(IPAlias.objects.filter(_cluster_scope(user)).select_related("cluster").order_by("name", "id"))


def cidr_configs(user: Any) -> list[CIDRConfig]:
    if not getattr(user, "is_authenticated", False):
        return []
    return list(CIDRConfig.objects.filter(_cluster_scope(user)).select_related("cluster").order_by("cidr", "id"))


def _cluster_or_all(user: Any, cluster: str | None) -> Cluster | None:
    if cluster is None:
        return None
    row = Cluster.objects.restrict(user).filter(name=cluster).first()
    if row is None:
        raise ScopeError(f"cluster {cluster!r} does not exist")
    return row


def _save_range(row: IPAlias | CIDRConfig) -> IPAlias | CIDRConfig:
    """Validate an alias or CIDR configuration (ValueError names the field) and save it, replacing the one
    of the same cluster and range."""
    try:
        row.full_clean(exclude=["start_key", "end_key"], validate_unique=False)
    except ValidationError as exc:
        raise ValueError("; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items())) from None
    existing = type(row).objects.filter(cluster=row.cluster, cidr=row.cidr).first()
    if existing is not None:
        row.pk = existing.pk
    row.save()
    return row


def set_alias(user: Any, cidr: str, name: str, *, cluster: str | None = None, allowed: bool = False,
              note: str = "") -> IPAlias:
    """Name an address or range (for one cluster, or every one); ``allowed`` includes it by default."""
    access.require_everywhere(user, "admin", "naming addresses")
    alias = _save_range(IPAlias(cluster=_cluster_or_all(user, cluster), cidr=cidr, name=name, allowed=allowed,
                                note=note))
    audit(user, "alias.saved", str(alias), cluster=cluster or "", allowed=allowed)
    return alias


def remove_alias(user: Any, alias_id: int) -> None:
    access.require_everywhere(user, "admin", "removing an alias")
    alias = IPAlias.objects.filter(pk=alias_id).select_related("cluster").first()
    if alias is None:
        raise ScopeError(f"alias {alias_id} does not exist")
    alias.delete()
    audit(user, "alias.removed", str(alias), cluster=alias.cluster.name if alias.cluster else "")


def set_cidr_config(user: Any, cidr: str, category: str, *, cluster: str | None = None, label: str = ""
                    ) -> CIDRConfig:
    """Classify a range as Internal or External and label it (for one cluster, or every one)."""
    access.require_everywhere(user, "admin", "configuring CIDRs")
    config = _save_range(CIDRConfig(cluster=_cluster_or_all(user, cluster), cidr=cidr, category=category,
                                    label=label))
    audit(user, "cidr.saved", str(config), cluster=cluster or "")
    return config


def remove_cidr_config(user: Any, config_id: int) -> None:
    access.require_everywhere(user, "admin", "removing a CIDR configuration")
    config = CIDRConfig.objects.filter(pk=config_id).select_related("cluster").first()
    if config is None:
        raise ScopeError(f"CIDR configuration {config_id} does not exist")
    config.delete()
    audit(user, "cidr.removed", str(config), cluster=config.cluster.name if config.cluster else "")


# ------------------------------------------------------------------------------------------- operation


def operations_status(user: Any) -> tuple[list[Any], Any]:
    """Per cluster the last sync and aggregation and the raw-flow backlog, and the task queue (admins)."""
    access.require_everywhere(user, "admin", "the status of syncs, aggregation and the task queue")
    from flows import status

    return status.overview()
