"""The pages. ``/network/<cluster>/<namespace>/<kind>/<name>/?since=24h`` is a stable contract, like the
command line: users bookmark and share it."""

from __future__ import annotations

from django.urls import path

from policies import views

_WORKLOAD = "network/<str:cluster>/<str:namespace>/<str:kind>/<str:name>/"

urlpatterns = [
    path("", views.landing, name="landing"),
    path("network/", views.select, name="select"),
    path("tokens/", views.tokens, name="tokens"),
    path("status/", views.status, name="status"),
    path(_WORKLOAD, views.network, name="network"),
    path(_WORKLOAD + "rows", views.set_rows, name="set-rows"),
    path(_WORKLOAD + "mode", views.set_mode, name="set-mode"),
    path(_WORKLOAD + "rules", views.add_rule, name="add-rule"),
    path(_WORKLOAD + "rules/remove", views.remove_rule, name="remove-rule"),
    path(_WORKLOAD + "namespace-label", views.label_namespace, name="label-namespace"),
    path(_WORKLOAD + "addresses", views.name_address, name="name-address"),
    path(_WORKLOAD + "policy.yaml", views.policy_yaml, name="policy-yaml"),
    path(_WORKLOAD + "topology.json", views.topology_json, name="topology-json"),
    path("network/<str:cluster>/<str:namespace>/policies.yaml", views.namespace_yaml, name="namespace-yaml"),
]
