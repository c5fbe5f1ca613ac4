from django.contrib import admin

from policies import models


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
