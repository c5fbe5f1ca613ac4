"""``/api/v1/``: the integrations API (design §8). Paths name things as the pages do."""

from __future__ import annotations

from django.urls import path, register_converter

from policies.api import ingest, views


class IdConverter:
    """A database id: at most 18 digits, so that it fits a 64-bit integer (a longer one is a 404)."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(IdConverter, "id")

_W = "workloads/<str:cluster>/<str:namespace>/<str:kind>/<str:name>/"

urlpatterns = [
    path("clusters/", views.Clusters.as_view(), name="api-clusters"),
    path("clusters/<str:cluster>/namespaces/", views.Namespaces.as_view(), name="api-namespaces"),
    path("clusters/<str:cluster>/namespaces/<str:namespace>/policies.yaml", views.NamespacePolicyYaml.as_view(),
         name="api-namespace-policies"),
    path("workloads/", views.Workloads.as_view(), name="api-workloads"),
    path(_W + "communications/", views.Communications.as_view(), name="api-communications"),
    path(_W + "policy/", views.Policy.as_view(), name="api-policy"),
    path(_W + "policy.yaml", views.PolicyYaml.as_view(), name="api-policy-yaml"),
    path(_W + "topology/", views.Topology.as_view(), name="api-topology"),
    path(_W + "applied-policies/", views.AppliedPolicies.as_view(), name="api-applied-policies"),
    path(_W + "draft/", views.Draft.as_view(), name="api-draft"),
    path(_W + "draft/rows/", views.DraftRows.as_view(), name="api-draft-rows"),
    path(_W + "draft/rules/", views.DraftRules.as_view(), name="api-draft-rules"),
    path(_W + "draft/rules/<id:rule>/", views.DraftRule.as_view(), name="api-draft-rule"),
    path(_W + "draft/namespace-labels/", views.DraftNamespaceLabels.as_view(), name="api-draft-namespace-labels"),
    path("aliases/", views.Aliases.as_view(), name="api-aliases"),
    path("aliases/<id:pk>/", views.Alias.as_view(), name="api-alias"),
    path("cidrs/", views.CIDRConfigs.as_view(), name="api-cidrs"),
    path("cidrs/<id:pk>/", views.CIDRConfig.as_view(), name="api-cidr"),
    path("tokens/", views.Tokens.as_view(), name="api-tokens"),
    path("tokens/<id:pk>/", views.Token.as_view(), name="api-token"),
    path("audit/", views.Audit.as_view(), name="api-audit"),
    path("audit.jsonl", views.AuditLines.as_view(), name="api-audit-lines"),
    path("clusters/<str:cluster>/flows", ingest.Flows.as_view(), name="api-ingest-flows"),
    path("clusters/<str:cluster>/inventory", ingest.Inventory.as_view(), name="api-ingest-inventory"),
]
