"""The API's views: thin shells over the service layer (``services``, and ``pages`` for what several parts
of the product show alike). Every view needs an authenticated user; what the user may see and do is the
service layer's one rule, as on the pages.

Errors: a selection the user may not see is a 404 like one that does not exist, a change they may not
make a 403, bad input a 400 whose ``detail`` starts with the field (``cidr: ...``).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from policies import engine, pages, services
from policies.api import serializers as s
from policies.api.common import Pagination

PROBLEMS = {400: OpenApiResponse(s.ProblemOut, "bad input: detail names the field"),
            403: OpenApiResponse(s.ProblemOut, "not allowed"), 404: OpenApiResponse(s.ProblemOut, "not found")}


def _query(serializer: type[s.serializers.Serializer], request: Request) -> dict[str, Any]:
    """The query's parameters, checked. An empty one (``?since=``) is refused rather than taken for the default:
    leave a parameter out to get its default."""
    empty = sorted(name for name in serializer().fields if request.query_params.get(name, None) == "")
    if empty:
        raise ValidationError({name: ["empty: leave it out for the default, or give a value"] for name in empty})
    checked = serializer(data=request.query_params)
    checked.is_valid(raise_exception=True)
    return dict(checked.validated_data)


def _body(serializer: type[s.serializers.Serializer], request: Request) -> dict[str, Any]:
    checked = serializer(data=request.data)
    checked.is_valid(raise_exception=True)
    return dict(checked.validated_data)


class Base(APIView):
    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        request.user.netsec_via = "api"  # for the audit log, whatever the authentication


class WorkloadView(Base):
    """A view of one workload: ``/workloads/<cluster>/<namespace>/<kind>/<name>/...``."""

    def scope(self, request: Request, cluster: str, namespace: str, kind: str, name: str) -> engine.Scope:
        return services.resolve_scope(request.user, cluster, namespace, kind, name)


# ----------------------------------------------------------------------------------------------- reading


class Clusters(Base):
    @extend_schema(parameters=[s.PageQuery], responses={200: s.paginated(s.ClusterOut), **PROBLEMS},
                   summary="The clusters you may see")
    def get(self, request: Request) -> Response:
        rows = [{"name": c.name, "namespaces": len(c.namespaces)} for c in pages.overview(request.user)]
        return _paginated(self, request, rows, s.ClusterOut)


class Namespaces(Base):
    @extend_schema(parameters=[s.PageQuery], responses={200: s.paginated(s.NamespaceOut), **PROBLEMS},
                   summary="A cluster's namespaces you may see, with their policy coverage")
    def get(self, request: Request, cluster: str) -> Response:
        found = next((c for c in pages.overview(request.user) if c.name == cluster), None)
        if found is None:
            raise NotFound(f"cluster {cluster!r} does not exist")
        rows = [{"name": n.name, "labels": n.labels, "workloads": n.workloads, "isolated_ingress": n.isolated_ingress,
                 "isolated_egress": n.isolated_egress, "drafts": n.drafts, "last_seen": n.last_seen}
                for n in found.namespaces]
        return _paginated(self, request, rows, s.NamespaceOut)


class Workloads(Base):
    @extend_schema(parameters=[s.WorkloadsQuery, s.PageQuery], responses={200: s.paginated(s.WorkloadOut), **PROBLEMS},
                   summary="Workloads and Services you may see, filtered by cluster, namespace and kind")
    def get(self, request: Request) -> Response:
        query = _query(s.WorkloadsQuery, request)
        rows = pages.workloads(request.user, cluster=query.get("cluster", ""), namespace=query.get("namespace", ""),
                               kind=query.get("kind", ""))
        return _paginated(self, request, rows, s.WorkloadOut)


class Communications(WorkloadView):
    @extend_schema(parameters=[s.CommunicationsQuery, s.PageQuery],
                   responses={200: s.CommunicationsOut, **PROBLEMS},
                   summary="A workload's communications in one direction (the rows of show_communications)")
    def get(self, request: Request, **where: str) -> Response:
        query = _query(s.CommunicationsQuery, request)
        scope = self.scope(request, **where)
        rows = services.rows(request.user, scope, query["direction"], since=query["since"],
                             until=query["until"])
        paginator = Pagination()
        page = paginator.paginate_queryset(rows, request, view=self) or []
        return Response(s.CommunicationsOut({
            "workload": scope.as_json(), "direction": query["direction"], "count": paginator.count,
            "next": paginator.get_next_link(), "previous": paginator.get_previous_link(),
            "rows": [{"key": r.key, **r.as_json()} for r in page],
        }).data)


class Policy(WorkloadView):
    @extend_schema(parameters=[s.SpanQuery], responses={200: s.PolicyOut, **PROBLEMS},
                   summary="The policy generated from the workload's draft and communications")
    def get(self, request: Request, **where: str) -> Response:
        query = _query(s.SpanQuery, request)
        generated = services.generate(request.user, self.scope(request, **where), since=query["since"],
                                      until=query["until"])
        return Response(s.PolicyOut({
            "name": generated.result.name if generated.result else None, "yaml": generated.yaml,
            "warnings": [{"code": w.code, "message": w.message} for w in generated.warnings],
            "complete": generated.complete, "error": generated.error,
        }).data)


class PolicyYaml(WorkloadView):
    @extend_schema(parameters=[s.SpanQuery], responses={(200, "application/yaml"): OpenApiTypes.STR, **PROBLEMS},
                   summary="The policy as a YAML file to apply (Editors)")
    def get(self, request: Request, **where: str) -> HttpResponse:
        query = _query(s.SpanQuery, request)
        filename, text = services.policy_file(request.user, self.scope(request, **where), since=query["since"])
        return _yaml(text, filename)


class NamespacePolicyYaml(Base):
    @extend_schema(parameters=[s.SpanQuery], responses={(200, "application/yaml"): OpenApiTypes.STR, **PROBLEMS},
                   summary="The policies of every workload of a namespace, one YAML file (Editors)")
    def get(self, request: Request, cluster: str, namespace: str) -> HttpResponse:
        query = _query(s.SpanQuery, request)
        files = services.namespace_policy_files(request.user, cluster, namespace, since=query["since"])
        return _yaml("".join(text for _, text in files), f"netsec-{cluster}-{namespace}.yaml")


class Topology(WorkloadView):
    @extend_schema(parameters=[s.SpanQuery], responses={200: s.TopologyOut, **PROBLEMS},
                   summary="The topology with verdicts, as Cytoscape elements with positions")
    def get(self, request: Request, **where: str) -> Response:
        query = _query(s.SpanQuery, request)
        return Response(pages.topology_of(request.user, self.scope(request, **where), since=query["since"],
                                          until=query["until"]))


class AppliedPolicies(WorkloadView):
    @extend_schema(parameters=[s.SpanQuery, s.PageQuery], responses={200: s.paginated(s.AppliedPolicyOut), **PROBLEMS},
                   summary="Applied policies that select the workload or a peer, and the rows each decides")
    def get(self, request: Request, **where: str) -> Response:
        query = _query(s.SpanQuery, request)
        found = pages.applied_policies(request.user, self.scope(request, **where), since=query["since"],
                                       until=query["until"])
        rows = [{"key": a.key, "yaml": a.yaml, "selects": a.selects,
                 "decides": [{"row": row, "allowed": allowed} for row, allowed in a.decides]} for a in found]
        return _paginated(self, request, rows, s.AppliedPolicyOut)


# ------------------------------------------------------------------------------------------------ drafts


def _draft(view: services.DraftView) -> dict[str, Any]:
    return s.DraftOut({"exists": view.exists, "ingress_mode": view.ingress_mode, "egress_mode": view.egress_mode,
                       "decisions": view.decisions, "manual_rules": view.manual_rules,
                       "namespace_labels": view.namespace_labels, "updated_by": view.updated_by,
                       "updated_at": view.updated_at}).data


class Draft(WorkloadView):
    @extend_schema(responses={200: s.DraftOut, **PROBLEMS}, summary="The workload's draft")
    def get(self, request: Request, **where: str) -> Response:
        return Response(_draft(services.get_draft(request.user, self.scope(request, **where))))

    @extend_schema(request=s.DraftModes, responses={200: s.DraftOut, **PROBLEMS},
                   summary="Set the rule of one direction or both (custom, block-all, allow-namespace, allow-all)")
    def patch(self, request: Request, **where: str) -> Response:
        body = _body(s.DraftModes, request)
        scope = self.scope(request, **where)
        view = services.get_draft(request.user, scope)
        for direction in engine.DIRECTIONS:
            if body.get(f"{direction}_mode"):
                view = services.set_mode(request.user, scope, direction, body[f"{direction}_mode"])
        return Response(_draft(view))


class DraftRows(WorkloadView):
    @extend_schema(request=s.RowDecisions, responses={200: s.DraftOut, **PROBLEMS},
                   summary="Include or exclude rows, by key (all or none)")
    def post(self, request: Request, **where: str) -> Response:
        body = _body(s.RowDecisions, request)
        return Response(_draft(services.set_rows(request.user, self.scope(request, **where), body["keys"],
                                                 body["included"])))


class DraftRules(WorkloadView):
    @extend_schema(request=s.ManualRuleInput, responses={201: s.DraftOut, **PROBLEMS},
                   summary='Add a manual rule: "allow egress to 203.0.113.0/24 on 443/TCP"')
    def post(self, request: Request, **where: str) -> Response:
        body = _body(s.ManualRuleInput, request)
        view = services.add_manual_rule(request.user, self.scope(request, **where), body["direction"], body["cidr"],
                                        body["ports"], body["note"])
        return Response(_draft(view), status=status.HTTP_201_CREATED)


class DraftRule(WorkloadView):
    @extend_schema(responses={200: s.DraftOut, **PROBLEMS}, summary="Remove a manual rule")
    def delete(self, request: Request, rule: int, **where: str) -> Response:
        return Response(_draft(services.remove_manual_rule(request.user, self.scope(request, **where), rule)))


class DraftNamespaceLabels(WorkloadView):
    @extend_schema(request=s.NamespaceLabelInput, responses={200: s.DraftOut, **PROBLEMS},
                   summary="Select a peer namespace without the name label by one of its labels")
    def post(self, request: Request, **where: str) -> Response:
        body = _body(s.NamespaceLabelInput, request)
        return Response(_draft(services.set_namespace_label(request.user, self.scope(request, **where),
                                                            body["namespace"], body["key"], body["value"])))


# ------------------------------------------------------------------------------------ aliases and CIDRs


def _alias(alias: Any) -> dict[str, Any]:
    return {"id": alias.id, "cluster": alias.cluster.name if alias.cluster else None, "cidr": alias.cidr,
            "name": alias.name, "allowed": alias.allowed, "note": alias.note}


def _cidr(config: Any) -> dict[str, Any]:
    return {"id": config.id, "cluster": config.cluster.name if config.cluster else None, "cidr": config.cidr,
            "category": config.category, "label": config.label}


class Aliases(Base):
    @extend_schema(parameters=[s.PageQuery], responses={200: s.paginated(s.AliasOut), **PROBLEMS}, summary="IP aliases")
    def get(self, request: Request) -> Response:
        return _paginated(self, request, [_alias(a) for a in services.aliases(request.user)], s.AliasOut)

    @extend_schema(request=s.AliasInput, responses={201: s.AliasOut, **PROBLEMS},
                   summary="Name an address or range (Admins); the alias of the same cluster and range is replaced")
    def post(self, request: Request) -> Response:
        body = _body(s.AliasInput, request)
        alias = services.set_alias(request.user, body["cidr"], body["name"], cluster=body["cluster"],
                                   allowed=body["allowed"], note=body["note"])
        return Response(s.AliasOut(_alias(alias)).data, status=status.HTTP_201_CREATED)


class Alias(Base):
    @extend_schema(responses={204: None, **PROBLEMS}, summary="Remove an alias (Admins)")
    def delete(self, request: Request, pk: int) -> Response:
        services.remove_alias(request.user, pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class CIDRConfigs(Base):
    @extend_schema(parameters=[s.PageQuery], responses={200: s.paginated(s.CIDRConfigOut), **PROBLEMS},
                   summary="CIDR configuration")
    def get(self, request: Request) -> Response:
        return _paginated(self, request, [_cidr(c) for c in services.cidr_configs(request.user)], s.CIDRConfigOut)

    @extend_schema(request=s.CIDRConfigInput, responses={201: s.CIDRConfigOut, **PROBLEMS},
                   summary="Classify a range as Internal or External and label it (Admins)")
    def post(self, request: Request) -> Response:
        body = _body(s.CIDRConfigInput, request)
        config = services.set_cidr_config(request.user, body["cidr"], body["category"], cluster=body["cluster"],
                                          label=body["label"])
        return Response(s.CIDRConfigOut(_cidr(config)).data, status=status.HTTP_201_CREATED)


class CIDRConfig(Base):
    @extend_schema(responses={204: None, **PROBLEMS}, summary="Remove a CIDR configuration (Admins)")
    def delete(self, request: Request, pk: int) -> Response:
        services.remove_cidr_config(request.user, pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


# ------------------------------------------------------------------------------------ tokens and audit


class Tokens(Base):
    @extend_schema(parameters=[OpenApiParameter("user", str, description="admins: another user's tokens"), s.PageQuery],
                   responses={200: s.paginated(s.TokenOut), **PROBLEMS}, summary="Your API tokens")
    def get(self, request: Request) -> Response:
        found = services.tokens(request.user, username=request.query_params.get("user") or None)
        return _paginated(self, request, [s.token_out(t) for t in found], s.TokenOut)

    @extend_schema(request=s.TokenInput, responses={201: s.NewTokenOut, **PROBLEMS},
                   summary="Make a token; the answer holds it, once")
    def post(self, request: Request) -> Response:
        body = _body(s.TokenInput, request)
        made = services.create_token(request.user, body["name"], expires_at=body["expires_at"],
                                     username=body["user"])
        return Response(s.NewTokenOut({**s.token_out(made.token), "token": made.secret}).data,
                        status=status.HTTP_201_CREATED)


class Token(Base):
    @extend_schema(responses={200: s.TokenOut, **PROBLEMS}, summary="Revoke a token")
    def delete(self, request: Request, pk: int) -> Response:
        return Response(s.TokenOut(s.token_out(services.revoke_token(request.user, pk))).data)


class Audit(Base):
    @extend_schema(parameters=[s.AuditQuery, s.PageQuery], responses={200: s.paginated(s.AuditEventOut), **PROBLEMS},
                   summary="The audit log (Admins), newest first")
    def get(self, request: Request) -> Response:
        query = _query(s.AuditQuery, request)
        events = services.audit_events(request.user, **query)
        return _paginated(self, request, [e.as_json() for e in events], s.AuditEventOut)


class AuditLines(Base):
    @extend_schema(parameters=[s.AuditQuery], responses={(200, "application/x-ndjson"): OpenApiTypes.STR, **PROBLEMS},
                   summary="The audit log as JSON lines (Admins), oldest first")
    def get(self, request: Request) -> StreamingHttpResponse:
        import json

        query = _query(s.AuditQuery, request)
        events = services.audit_events(request.user, **query).order_by("at", "id")
        response = StreamingHttpResponse((json.dumps(e.as_json()) + "\n" for e in events.iterator()),
                                         content_type="application/x-ndjson")
        response["Content-Disposition"] = 'attachment; filename="netsec-audit.jsonl"'
        return response


# --------------------------------------------------------------------------------------------- helpers


def _paginated(view: APIView, request: Request, rows: list[dict[str, Any]], serializer: type) -> Response:
    paginator = Pagination()
    page = paginator.paginate_queryset(rows, request, view=view)
    return paginator.get_paginated_response(serializer(page, many=True).data)


def _yaml(text: str, filename: str) -> HttpResponse:
    response = HttpResponse(text, content_type="application/yaml; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
