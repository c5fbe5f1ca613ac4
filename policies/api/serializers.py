"""What the API takes and gives. Serializers check the shape of input and describe the output; the service
layer decides (and validates the meaning: CIDRs, ports, labels, modes)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from rest_framework import serializers

from flows.timespan import check_time, parse_span
from policies import engine

MODES = list(engine.MODES)
DIRECTIONS = list(engine.DIRECTIONS)


# ------------------------------------------------------------------------------------------------- input


class SpanQuery(serializers.Serializer):
    since = serializers.RegexField(r"^\d+[mhdw]$", required=False, default="24h",
                                   help_text="a span such as 1h, 12h, 24h, 7d (default 24h)")
    until = serializers.DateTimeField(required=False, allow_null=True, default=None,
                                      help_text="end of the span, ISO 8601 (default now)")

    def validate_since(self, value: str) -> timedelta:
        return _checked(parse_span, value)

    def validate_until(self, value: datetime | None) -> datetime | None:
        return value if value is None else _checked(check_time, value)


def _checked(check: Any, value: Any) -> Any:
    try:
        return check(value)
    except ValueError as exc:
        raise serializers.ValidationError(str(exc)) from None


class PageQuery(serializers.Serializer):
    """The page of a list (``common.Pagination`` reads them; here for the schema)."""

    limit = serializers.IntegerField(required=False, min_value=1, max_value=1000, help_text="items a page (100)")
    offset = serializers.IntegerField(required=False, min_value=0, max_value=10**9, help_text="items to skip (0)")


class CommunicationsQuery(SpanQuery):
    direction = serializers.ChoiceField(choices=DIRECTIONS)


class WorkloadsQuery(serializers.Serializer):
    cluster = serializers.CharField(required=False, max_length=63)
    namespace = serializers.CharField(required=False, max_length=253)
    kind = serializers.ChoiceField(required=False, choices=["Service", "Deployment", "DaemonSet", "StatefulSet",
                                                            "CronJob", "Job", "ReplicaSet", "Pod"])


class DraftModes(serializers.Serializer):
    ingress_mode = serializers.ChoiceField(choices=MODES, required=False)
    egress_mode = serializers.ChoiceField(choices=MODES, required=False)

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if not data:
            raise serializers.ValidationError("give ingress_mode, egress_mode or both")
        return data


class RowDecisions(serializers.Serializer):
    keys = serializers.ListField(child=serializers.CharField(max_length=600), min_length=1, max_length=1000,
                                 help_text="row keys as the communications give them")
    included = serializers.BooleanField()


class ManualRuleInput(serializers.Serializer):
    direction = serializers.ChoiceField(choices=DIRECTIONS)
    cidr = serializers.CharField(max_length=49, help_text="a CIDR or an address, e.g. 203.0.113.0/24")
    ports = serializers.CharField(required=False, allow_blank=True, default="", max_length=200,
                                  help_text="e.g. '443/TCP, 8000-8100/UDP'; empty: every port")
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)


class NamespaceLabelInput(serializers.Serializer):
    namespace = serializers.CharField(max_length=253)
    key = serializers.CharField(max_length=317)
    value = serializers.CharField(max_length=63)


class AliasInput(serializers.Serializer):
    cluster = serializers.CharField(required=False, allow_null=True, default=None, max_length=63,
                                    help_text="a cluster's name; empty: every cluster")
    cidr = serializers.CharField(max_length=49)
    name = serializers.CharField(max_length=100)
    allowed = serializers.BooleanField(required=False, default=False)
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class CIDRConfigInput(serializers.Serializer):
    cluster = serializers.CharField(required=False, allow_null=True, default=None, max_length=63)
    cidr = serializers.CharField(max_length=49)
    category = serializers.ChoiceField(choices=["Internal", "External"])
    label = serializers.CharField(required=False, allow_blank=True, default="", max_length=100)


class TokenInput(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    user = serializers.CharField(required=False, allow_null=True, default=None, max_length=150,
                                 help_text="admins only: make the token for this user")


class AuditQuery(serializers.Serializer):
    action = serializers.CharField(required=False, default="", max_length=40)
    cluster = serializers.CharField(required=False, default="", max_length=63)
    actor = serializers.CharField(required=False, default="", max_length=150)
    since = serializers.DateTimeField(required=False, allow_null=True, default=None)


# ------------------------------------------------------------------------------------------------ output


class ClusterOut(serializers.Serializer):
    name = serializers.CharField()
    namespaces = serializers.IntegerField()


class NamespaceOut(serializers.Serializer):
    name = serializers.CharField()
    labels = serializers.DictField(child=serializers.CharField())
    workloads = serializers.IntegerField()
    isolated_ingress = serializers.IntegerField(help_text="workloads an applied policy isolates for ingress")
    isolated_egress = serializers.IntegerField()
    drafts = serializers.IntegerField()
    last_seen = serializers.DateTimeField(allow_null=True)


class WorkloadOut(serializers.Serializer):
    cluster = serializers.CharField()
    namespace = serializers.CharField()
    kind = serializers.CharField()
    name = serializers.CharField()
    labels = serializers.DictField(child=serializers.CharField(), help_text="the labels its pods carry")
    selector = serializers.DictField(allow_null=True, help_text="the podSelector policies select it by")


class WorkloadRef(serializers.Serializer):
    cluster = serializers.CharField()
    namespace = serializers.CharField()
    kind = serializers.CharField()
    name = serializers.CharField()


class RowOut(serializers.Serializer):
    """A row of `show_communications --format json` (design §6)."""

    key = serializers.CharField(help_text="the row's identity: what draft decisions name")
    peer = serializers.DictField(help_text='{"kind", "namespace", "name"} or {"ip", "category", "alias", '
                                           '"dns_names"} (plus "service" and "addresses" for a Service), or '
                                           '{"other_namespace": true, "token"} for a peer you may not see')
    port = serializers.IntegerField(allow_null=True)
    protocol = serializers.CharField()
    connections = serializers.IntegerField()
    first_seen = serializers.DateTimeField(allow_null=True)
    last_seen = serializers.DateTimeField(allow_null=True)
    denied_in_cluster = serializers.BooleanField()
    included = serializers.BooleanField()
    always_allowed = serializers.BooleanField()


class CommunicationsOut(serializers.Serializer):
    workload = WorkloadRef()
    direction = serializers.CharField()
    count = serializers.IntegerField()
    next = serializers.CharField(allow_null=True)
    previous = serializers.CharField(allow_null=True)
    rows = RowOut(many=True)


class PortRangeOut(serializers.Serializer):
    port = serializers.IntegerField()
    end_port = serializers.IntegerField(allow_null=True)
    protocol = serializers.CharField()


class ManualRuleOut(serializers.Serializer):
    id = serializers.IntegerField()
    direction = serializers.CharField()
    cidr = serializers.CharField()
    ports = PortRangeOut(many=True)
    note = serializers.CharField()


class DraftOut(serializers.Serializer):
    exists = serializers.BooleanField(help_text="false until somebody changes something")
    ingress_mode = serializers.CharField()
    egress_mode = serializers.CharField()
    decisions = serializers.DictField(child=serializers.BooleanField(), help_text="row key -> included")
    manual_rules = ManualRuleOut(many=True)
    namespace_labels = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))
    updated_by = serializers.CharField()
    updated_at = serializers.DateTimeField(allow_null=True)


class WarningOut(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class PolicyOut(serializers.Serializer):
    name = serializers.CharField(allow_null=True)
    yaml = serializers.CharField(help_text="one networking.k8s.io/v1 NetworkPolicy ('' when none can be made)")
    warnings = WarningOut(many=True)
    complete = serializers.BooleanField(help_text="false when peers you may not see were left out")
    error = serializers.CharField(help_text="why no policy could be made")


class TopologyOut(serializers.Serializer):
    nodes = serializers.ListField(child=serializers.DictField())
    edges = serializers.ListField(child=serializers.DictField())
    legend = serializers.DictField(child=serializers.IntegerField())


class DecidedRowOut(serializers.Serializer):
    row = serializers.CharField()
    allowed = serializers.BooleanField()


class AppliedPolicyOut(serializers.Serializer):
    key = serializers.CharField(help_text="namespace/name")
    yaml = serializers.CharField()
    selects = serializers.ListField(child=serializers.CharField())
    decides = DecidedRowOut(many=True)


class AliasOut(serializers.Serializer):
    id = serializers.IntegerField()
    cluster = serializers.CharField(allow_null=True)
    cidr = serializers.CharField()
    name = serializers.CharField()
    allowed = serializers.BooleanField()
    note = serializers.CharField()


class CIDRConfigOut(serializers.Serializer):
    id = serializers.IntegerField()
    cluster = serializers.CharField(allow_null=True)
    cidr = serializers.CharField()
    category = serializers.CharField()
    label = serializers.CharField()


class TokenOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    prefix = serializers.CharField()
    user = serializers.CharField()
    created = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(allow_null=True)
    last_used_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)


class NewTokenOut(TokenOut):
    token = serializers.CharField(help_text="the token itself: shown this once, never again")


class AuditEventOut(serializers.Serializer):
    at = serializers.DateTimeField()
    actor = serializers.CharField()
    via = serializers.CharField()
    action = serializers.CharField()
    target = serializers.CharField()
    cluster = serializers.CharField()
    namespace = serializers.CharField()
    details = serializers.DictField()


class ProblemOut(serializers.Serializer):
    detail = serializers.CharField()


_PAGES: dict[type, type] = {}


def paginated(item: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """The page of a list (``Pagination``): count, next, previous and the items as results."""
    if item not in _PAGES:
        _PAGES[item] = type(f"Paginated{item.__name__.removesuffix('Out')}List", (serializers.Serializer,), {
            "count": serializers.IntegerField(), "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True), "results": item(many=True),
            "__doc__": f"A page of {item.__name__.removesuffix('Out')} items (?limit=, ?offset=).",
        })
    return _PAGES[item]


def token_out(token: Any) -> dict[str, Any]:
    return {"id": token.id, "name": token.name, "prefix": token.prefix, "user": token.user.get_username(),
            "created": token.created, "expires_at": token.expires_at, "last_used_at": token.last_used_at,
            "revoked_at": token.revoked_at}
