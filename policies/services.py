"""The draft service layer that the command line, the web UI and the API call.

Reading never creates a draft; every change creates it on demand, records who made it and keeps a
revision with the whole draft after the change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from flows import communications as comms
from flows.iputil import canonical_cidr
from flows.models import Workload
from policies import adapter, engine
from policies.models import Direction, Draft, DraftRevision, ManualRule, Mode, RowDecision

DEFAULT_SPAN = timedelta(hours=24)


def get_draft(scope: comms.Scope) -> Draft | None:
    return (
        Draft.objects.filter(namespace=scope.namespace, scope_kind=scope.kind, scope_name=scope.name)
        .prefetch_related("decisions", "manual_rules")
        .first()
    )


def _draft_for_update(scope: comms.Scope) -> Draft:
    draft, _ = Draft.objects.select_for_update().get_or_create(
        namespace=scope.namespace, scope_kind=scope.kind, scope_name=scope.name
    )
    return draft


def draft_state(draft: Draft | None) -> dict:
    """The whole draft as plain data: what a revision stores and the API shows."""
    if draft is None:
        return {
            "ingress_mode": Mode.CUSTOM,
            "egress_mode": Mode.CUSTOM,
            "decisions": {},
            "manual_rules": [],
            "namespace_labels": {},
        }
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


def _record(draft: Draft, user, summary: str) -> None:
    draft.updated_by = user if user is not None and user.is_authenticated else None
    draft.save(update_fields=["updated_by", "updated_at", "ingress_mode", "egress_mode", "namespace_labels"])
    DraftRevision.objects.create(
        draft=draft,
        author=draft.updated_by,
        summary=summary[:300],
        state=draft_state(Draft.objects.prefetch_related("decisions", "manual_rules").get(pk=draft.pk)),
    )


def set_mode(scope: comms.Scope, direction: str, mode: str, user=None) -> Draft:
    if direction not in Direction.values:
        raise ValueError(f"direction {direction!r}: use ingress or egress")
    if mode not in Mode.values:
        raise ValueError(f"mode {mode!r}: use one of {', '.join(Mode.values)}")
    with transaction.atomic():
        draft = _draft_for_update(scope)
        setattr(draft, f"{direction}_mode", mode)
        _record(draft, user, f"{direction} rule: {Mode(mode).label}")
    return draft


def set_row(scope: comms.Scope, row_key: str, included: bool, user=None) -> Draft:
    with transaction.atomic():
        draft = _draft_for_update(scope)
        RowDecision.objects.update_or_create(draft=draft, row_key=row_key, defaults={"included": included})
        _record(draft, user, f"{'included' if included else 'excluded'} {row_key}")
    return draft


def add_manual_rule(
    scope: comms.Scope, direction: str, cidr: str, ports: str = "", note: str = "", user=None
) -> ManualRule:
    """Validate and add "allow <direction> to/from CIDR on PORTS"; ValueError names the bad field."""
    if direction not in Direction.values:
        raise ValueError(f"direction: {direction!r} is not ingress or egress")
    try:
        cidr = canonical_cidr(cidr)
    except ValueError as exc:
        raise ValueError(f"cidr: {cidr!r} is not a CIDR or address ({exc})") from exc
    ranges = adapter.parse_ports(ports)
    canonical_ports = ", ".join(f"{r.port}{f'-{r.end_port}' if r.end_port else ''}/{r.protocol}" for r in ranges)
    with transaction.atomic():
        draft = _draft_for_update(scope)
        rule = ManualRule.objects.create(
            draft=draft,
            direction=direction,
            cidr=cidr,
            ports=canonical_ports,
            note=note,
            created_by=user if user and user.is_authenticated else None,
        )
        _record(draft, user, f"manual rule: {direction} {cidr} {canonical_ports or 'all ports'}")
    return rule


def remove_manual_rule(scope: comms.Scope, rule_id: int, user=None) -> None:
    with transaction.atomic():
        draft = _draft_for_update(scope)
        rule = ManualRule.objects.get(pk=rule_id, draft=draft)
        rule.delete()
        _record(draft, user, f"removed manual rule: {rule}")


def set_namespace_label(scope: comms.Scope, namespace: str, key: str, value: str, user=None) -> Draft:
    """Select peer namespace ``namespace`` by ``key=value`` (for namespaces without the name label)."""
    if not key or not value:
        raise ValueError("namespace label: both key and value are needed")
    with transaction.atomic():
        draft = _draft_for_update(scope)
        draft.namespace_labels = {**draft.namespace_labels, namespace: [key, value]}
        _record(draft, user, f"namespace {namespace} selected by {key}={value}")
    return draft


def decided_rows(
    scope: comms.Scope,
    direction: str,
    *,
    since: timedelta = DEFAULT_SPAN,
    until: datetime | None = None,
    draft: Draft | None = None,
    all_observed: bool = False,
) -> list[comms.CommunicationRow]:
    """The table rows with ``included`` set by the draft's decisions over the defaults of design §4.

    ``all_observed`` includes every observed row (unresolved IPs too) except attempts denied in the cluster,
    ignoring the draft.
    """
    rows = comms.communications(scope, direction, since=since, until=until)
    decisions = {} if all_observed or draft is None else {d.row_key: d.included for d in draft.decisions.all()}
    for row in rows:
        if all_observed:
            row.included = not row.denied_in_cluster and not row.node_local
        else:
            row.included = decisions.get(row.peer_key, row.default_included) and not row.node_local
    return rows


def engine_draft(draft: Draft | None, all_observed: bool = False) -> engine.Draft:
    if draft is None or all_observed:
        return engine.Draft()
    return engine.Draft(
        ingress_mode=draft.ingress_mode,
        egress_mode=draft.egress_mode,
        manual_rules=tuple(
            engine.ManualRule(r.direction, r.cidr, adapter.parse_ports(r.ports)) for r in draft.manual_rules.all()
        ),
        namespace_labels={ns: (kv[0], kv[1]) for ns, kv in (draft.namespace_labels or {}).items()},
    )


@dataclass
class Generated:
    scope: comms.Scope
    rows: list[comms.CommunicationRow]
    request: engine.GenerationRequest
    result: engine.GenerationResult | None
    error: str | None = None

    @property
    def yaml(self) -> str:
        return engine.to_yaml([self.result.policy]) if self.result else ""


def generation_request(
    scope: comms.Scope, *, since: timedelta = DEFAULT_SPAN, until: datetime | None = None, all_observed: bool = False,
    peers: dict | None = None,
) -> tuple[engine.GenerationRequest, list[comms.CommunicationRow]]:
    until = until or timezone.now()
    draft = None if all_observed else get_draft(scope)
    rows = [
        row
        for direction in comms.DIRECTIONS
        for row in decided_rows(scope, direction, since=since, until=until, draft=draft, all_observed=all_observed)
    ]
    cluster = scope.cluster
    request = engine.GenerationRequest(
        scope=adapter.engine_scope(scope),
        rows=adapter.engine_rows(rows, peers),
        draft=engine_draft(draft, all_observed),
        dns=engine.DNSTarget(cluster.dns_namespace, dict(cluster.dns_pod_labels or {"k8s-app": "kube-dns"})),
        window_start=until - since,
        window_end=until,
    )
    return request, rows


def generate(
    scope: comms.Scope, *, since: timedelta = DEFAULT_SPAN, until: datetime | None = None, all_observed: bool = False,
    peers: dict | None = None,
) -> Generated:
    """The policy for a scope: the draft applied to its communications over the span. ``peers``: a cache
    of peer workloads shared by the scopes of one run."""
    request, rows = generation_request(scope, since=since, until=until, all_observed=all_observed, peers=peers)
    try:
        return Generated(scope, rows, request, engine.generate_policy(request))
    except engine.GenerationError as exc:
        return Generated(scope, rows, request, None, str(exc))


@dataclass
class RowVerdict:
    """A table row and what the draft, together with the policies applied in the cluster, does to it."""

    row: comms.CommunicationRow
    allowed: bool
    blocked_by: tuple[str, ...]  # "egress" (of the source) and/or "ingress" (of the destination)
    policies: tuple[str, ...]  # deciding policies, "namespace/name"
    warning: str = ""  # why an included row could not be written into the policy


def row_verdicts(scope: comms.Scope, *, since: timedelta = DEFAULT_SPAN, until: datetime | None = None
                 ) -> tuple[Generated, list[RowVerdict]]:
    """Per-row verdicts for the topology and the tables: red when the draft plus the applied policies
    would deny the row. Traffic from a pod's own node is always allowed."""
    generated = generate(scope, since=since, until=until)
    request = generated.request
    verdicts = engine.row_verdicts(request.scope, request.rows,
                                   generated.result.policy if generated.result else None,
                                   adapter.applied_policies(scope.cluster.id))
    by_key = {v.row.key: v for v in verdicts}
    warnings = {w.row_key: w.message for w in (generated.result.warnings if generated.result else ())}
    out = []
    for row in generated.rows:
        if row.node_local:
            out.append(RowVerdict(row, True, (), ()))
            continue
        v = by_key[row.peer_key]
        out.append(RowVerdict(row, v.allowed, tuple(v.blocked_by), tuple(v.policies),
                              warnings.get(row.peer_key, "")))
    return generated, out


def namespace_scopes(cluster, namespace) -> list[comms.Scope]:
    """Every top-level workload of a namespace, as scopes (what `generate_policy --all` covers)."""
    workloads = Workload.objects.live().filter(namespace=namespace, parent__isnull=True).order_by("kind", "name")
    return [comms.Scope(cluster, namespace, w.kind, w.name, (w,)) for w in workloads]
