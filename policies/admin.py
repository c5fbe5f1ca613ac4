import json

from django.contrib import admin
from django.http import HttpResponse

from flows.models import NamespaceGrant
from policies import models, services


class RowDecisionInline(admin.TabularInline):
    model = models.RowDecision
    extra = 0


class ManualRuleInline(admin.TabularInline):
    model = models.ManualRule
    extra = 0
    readonly_fields = ["created_by", "created_at"]


@admin.register(models.Draft)
class DraftAdmin(admin.ModelAdmin):
    list_display = ["scope_kind", "scope_name", "namespace", "ingress_mode", "egress_mode", "updated_by", "updated_at"]
    list_filter = ["namespace__cluster", "scope_kind", "ingress_mode", "egress_mode"]
    search_fields = ["scope_name", "namespace__name"]
    raw_id_fields = ["namespace"]
    inlines = [RowDecisionInline, ManualRuleInline]


@admin.register(models.DraftRevision)
class DraftRevisionAdmin(admin.ModelAdmin):
    list_display = ["at", "draft", "author", "summary"]
    list_filter = ["draft__namespace__cluster"]
    readonly_fields = ["draft", "author", "at", "summary", "state"]


@admin.register(NamespaceGrant)
class NamespaceGrantAdmin(admin.ModelAdmin):
    """Grants are changed here; each change goes to the audit log."""

    list_display = ["role", "user", "group", "note", "created"]
    list_filter = ["role", "namespaces__cluster"]
    search_fields = ["user__username", "group__name", "namespaces__name", "note"]
    filter_horizontal = ["namespaces"]
    raw_id_fields = ["user"]

    def save_related(self, request, form, formsets, change) -> None:  # type: ignore[no-untyped-def]
        super().save_related(request, form, formsets, change)
        grant = form.instance
        namespaces = sorted(f"{n.cluster.name}/{n.name}" for n in grant.namespaces.select_related("cluster"))
        services.audit(request.user, "grant.saved", str(grant), namespaces=namespaces)

    def delete_model(self, request, obj) -> None:  # type: ignore[no-untyped-def]
        text = str(obj)
        super().delete_model(request, obj)
        services.audit(request.user, "grant.removed", text)

    def delete_queryset(self, request, queryset) -> None:  # type: ignore[no-untyped-def]
        texts = [str(g) for g in queryset]
        super().delete_queryset(request, queryset)
        for text in texts:
            services.audit(request.user, "grant.removed", text)


@admin.register(models.ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "prefix", "created", "expires_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "user__username", "prefix"]
    readonly_fields = ["user", "name", "prefix", "digest", "created", "expires_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False  # a token is made by its user (or for them) where its secret can be shown once

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset) -> None:  # type: ignore[no-untyped-def]
        for token in queryset:
            services.revoke_token(request.user, token.pk)


@admin.register(models.AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["at", "actor", "via", "action", "target", "cluster", "namespace"]
    list_filter = ["via", "action", "cluster", ("at", admin.DateFieldListFilter)]
    search_fields = ["actor", "target", "namespace", "action"]
    date_hierarchy = "at"
    actions = ["export_jsonl"]

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False

    @admin.action(description="Export the selected events as JSON lines")
    def export_jsonl(self, request, queryset) -> HttpResponse:  # type: ignore[no-untyped-def]
        lines = "".join(json.dumps(e.as_json()) + "\n" for e in queryset.order_by("at", "id"))
        response = HttpResponse(lines, content_type="application/x-ndjson")
        response["Content-Disposition"] = 'attachment; filename="netsec-audit.jsonl"'
        return response
