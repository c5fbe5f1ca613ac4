import json

from django.contrib import admin
from django.db.models import Q
from django.utils.html import format_html

from flows import iputil, models


@admin.register(models.Cluster)
class ClusterAdmin(admin.ModelAdmin):
    """The sync's record is read-only: only a sync writes it, and an edit would hide what happened."""

    list_display = ["name", "pod_cidrs", "service_cidrs", "last_sync", "sync_status", "last_sync_duration"]
    search_fields = ["name"]
    readonly_fields = ["last_sync", "last_sync_attempt", "last_sync_duration", "last_sync_error", "sync_summary",
                       "created"]
    fieldsets = [
        (None, {"fields": ["name", "pod_cidrs", "service_cidrs", "node_cidrs", "dns_namespace", "dns_pod_labels"]}),
        ("Kubernetes API", {"fields": ["kubeconfig", "context", "in_cluster"]}),
        ("Last sync", {"fields": ["last_sync", "last_sync_attempt", "last_sync_duration", "last_sync_error",
                                  "sync_summary"]}),
        (None, {"fields": ["created"]}),
    ]

    @admin.display(description="sync", ordering="last_sync_attempt")
    def sync_status(self, obj: models.Cluster) -> str:
        """The outcome of the last attempt at a glance: the error, shortened, when it failed."""
        if obj.last_sync_error:
            error = obj.last_sync_error
            short = error if len(error) <= 120 else error[:119] + "…"
            return format_html('<span style="color: #ba2121" title="{}">failed: {}</span>', error, short)
        if obj.last_sync_attempt is None:
            return "never"
        return "ok"

    @admin.display(description="last sync summary")
    def sync_summary(self, obj: models.Cluster) -> str:
        if not obj.last_sync_summary:
            return "-"
        text = json.dumps(obj.last_sync_summary, indent=2, sort_keys=True, ensure_ascii=False)
        return format_html('<pre style="white-space: pre-wrap; margin: 0">{}</pre>', text)


class InventoryAdmin(admin.ModelAdmin):
    list_filter = ["cluster", ("deleted_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "uid"]
    list_select_related = True


@admin.register(models.Namespace)
class NamespaceAdmin(InventoryAdmin):
    list_display = ["name", "cluster", "labels", "deleted_at"]


@admin.register(models.Node)
class NodeAdmin(InventoryAdmin):
    list_display = ["name", "cluster", "addresses", "deleted_at"]


@admin.register(models.Workload)
class WorkloadAdmin(InventoryAdmin):
    list_display = ["name", "kind", "namespace", "parent", "placeholder", "cluster", "deleted_at"]
    list_filter = ["cluster", "kind", "placeholder", ("deleted_at", admin.EmptyFieldListFilter)]
    raw_id_fields = ["namespace", "parent"]


class ServicePortInline(admin.TabularInline):
    model = models.ServicePort
    extra = 0


class ServiceAddressInline(admin.TabularInline):
    model = models.ServiceAddress
    extra = 0


class ServiceEndpointInline(admin.TabularInline):
    model = models.ServiceEndpoint
    extra = 0


@admin.register(models.Service)
class ServiceAdmin(InventoryAdmin):
    list_display = ["name", "namespace", "service_type", "cluster", "deleted_at"]
    raw_id_fields = ["namespace"]
    inlines = [ServiceAddressInline, ServicePortInline, ServiceEndpointInline]


class ContainerPortInline(admin.TabularInline):
    model = models.ContainerPort
    extra = 0


class PodAddressInline(admin.TabularInline):
    model = models.PodAddress
    extra = 0


@admin.register(models.Pod)
class PodAdmin(InventoryAdmin):
    list_display = ["name", "namespace", "workload", "node_name", "host_network", "cluster", "deleted_at"]
    raw_id_fields = ["namespace", "workload"]
    inlines = [ContainerPortInline, PodAddressInline]


@admin.register(models.PodAddress)
class PodAddressAdmin(admin.ModelAdmin):
    list_display = ["ip", "pod", "valid_from", "valid_to", "cluster"]
    list_filter = ["cluster"]
    search_fields = ["ip", "pod__name"]
    raw_id_fields = ["pod"]


@admin.register(models.NetworkPolicy)
class NetworkPolicyAdmin(InventoryAdmin):
    list_display = ["name", "namespace", "cluster", "deleted_at"]
    raw_id_fields = ["namespace"]


@admin.register(models.RawFlow)
class RawFlowAdmin(admin.ModelAdmin):
    list_display = ["time", "src_ip", "src_port", "dst_ip", "dst_port", "protocol", "verdict",
                    "traffic_direction", "is_reply", "cluster"]
    list_filter = ["cluster", "verdict", "protocol", "traffic_direction"]
    search_fields = ["src_ip", "dst_ip", "src_pod", "dst_pod"]
    date_hierarchy = "time"


@admin.register(models.Communication)
class CommunicationAdmin(admin.ModelAdmin):
    list_display = ["bucket", "src_workload", "src_ip", "dst_workload", "dst_ip", "port", "protocol",
                    "connections", "denied", "node_local"]
    list_filter = ["cluster", "protocol", "denied", "node_local"]
    raw_id_fields = ["src_workload", "dst_workload"]
    date_hierarchy = "bucket"


class RangeSearchAdmin(admin.ModelAdmin):
    """Searching for an address also finds every range that contains it, by the range keys."""

    def get_search_results(self, request, queryset, search_term):  # type: ignore[no-untyped-def]
        found, duplicates = super().get_search_results(request, queryset, search_term)
        try:
            key = iputil.ip_key(search_term.strip())
        except ValueError:
            return found, duplicates
        return found | queryset.filter(Q(start_key__lte=key, end_key__gte=key)), duplicates


@admin.register(models.IPAlias)
class IPAliasAdmin(RangeSearchAdmin):
    list_display = ["name", "cidr", "allowed", "cluster"]
    list_filter = ["cluster", "allowed"]
    search_fields = ["name", "cidr"]
    search_help_text = "A name, a CIDR, or an address: every range containing it."


@admin.register(models.CIDRConfig)
class CIDRConfigAdmin(RangeSearchAdmin):
    list_display = ["cidr", "category", "label", "cluster"]
    list_filter = ["cluster", "category"]
    search_fields = ["cidr", "label"]
    search_help_text = "A label, a CIDR, or an address: every range containing it."


class DerivedAdmin(admin.ModelAdmin):
    """Rows that aggregation derives: visible for troubleshooting, never edited by hand."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(models.ObservedIP)
class ObservedIPAdmin(DerivedAdmin):
    list_display = ["ip", "identity", "dns_names", "cluster"]
    list_filter = ["cluster", "identity"]
    search_fields = ["ip"]


@admin.register(models.ServiceBackend)
class ServiceBackendAdmin(DerivedAdmin):
    list_display = ["ip", "port", "protocol", "workload", "address", "target_port", "cluster"]
    list_filter = ["cluster"]
    search_fields = ["ip"]


@admin.register(models.AggregationState)
class AggregationStateAdmin(DerivedAdmin):
    list_display = ["cluster", "last_raw_flow_id", "last_run", "last_error", "last_error_at"]


@admin.register(models.IngestBatch)
class IngestBatchAdmin(DerivedAdmin):
    list_display = ["created", "cluster", "kind", "key"]
    list_filter = ["cluster", "kind"]
    search_fields = ["key"]
    date_hierarchy = "created"


@admin.register(models.CommunicationDay)
class CommunicationDayAdmin(DerivedAdmin):
    list_display = ["day", "src_workload", "src_ip", "dst_workload", "dst_ip", "port", "protocol", "connections",
                    "cluster"]
    list_filter = ["cluster"]
    raw_id_fields = ["src_workload", "dst_workload"]


@admin.register(models.DataVersion)
class DataVersionAdmin(DerivedAdmin):
    list_display = ["cluster", "version"]


@admin.register(models.RollupDay)
class RollupDayAdmin(DerivedAdmin):
    list_display = ["cluster", "day", "built"]
    list_filter = ["cluster"]
