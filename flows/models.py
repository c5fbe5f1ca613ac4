"""Inventory, raw flows, communications, IP aliases and CIDR configuration (design §2-3)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q

from flows import iputil
from flows.access import RestrictQuerySet, Role

slug_validator = RegexValidator(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "lower-case letters, digits and '-'")


class ClusterQuerySet(RestrictQuerySet):
    namespace_paths = ("namespace",)

    def restrict(self, user, action="view"):  # type: ignore[no-untyped-def]
        # A cluster is visible through any of its namespaces; one row per cluster all the same.
        return super().restrict(user, action).distinct()


class Cluster(models.Model):
    name = models.CharField(max_length=63, unique=True, validators=[slug_validator])
    pod_cidrs = models.TextField(blank=True, help_text="Pod CIDRs, comma or newline separated")
    service_cidrs = models.TextField(blank=True, help_text="Service (ClusterIP) CIDRs")
    node_cidrs = models.TextField(blank=True, help_text="Node address CIDRs")
    dns_namespace = models.CharField(max_length=253, default="kube-system")
    dns_pod_labels = models.JSONField(
        default=dict, blank=True, help_text='Labels of the cluster DNS pods, e.g. {"k8s-app": "kube-dns"}'
    )
    # How to reach the API (the live sync lists it; a cluster with neither is fed by dumps only) ...
    kubeconfig = models.CharField(max_length=500, blank=True, help_text="Path of a kubeconfig file")
    context = models.CharField(max_length=253, blank=True, help_text="kubeconfig context")
    in_cluster = models.BooleanField(default=False, help_text="Use the service account of the pod")
    # ... and how the last sync went: shown on the status page and in the admin.
    last_sync = models.DateTimeField(null=True, blank=True, help_text="when the last successful sync finished")
    last_sync_error = models.TextField(blank=True, help_text="why the last attempt failed; empty after a success")
    last_sync_attempt = models.DateTimeField(null=True, blank=True, help_text="when the last attempt finished")
    last_sync_duration = models.FloatField(null=True, blank=True, help_text="seconds the last attempt took")
    last_sync_summary = models.JSONField(default=dict, blank=True, help_text="what the last attempt listed and wrote")
    created = models.DateTimeField(auto_now_add=True)

    objects = ClusterQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        if not self.dns_pod_labels:
            self.dns_pod_labels = {"k8s-app": "kube-dns"}
        super().save(*args, **kwargs)

    def clean(self) -> None:
        for field_name in ("pod_cidrs", "service_cidrs", "node_cidrs"):
            try:
                iputil.parse_cidr_list(getattr(self, field_name))
            except ValueError as exc:
                raise ValidationError({field_name: str(exc)}) from exc

    def cluster_networks(self) -> list[iputil.IPNetwork]:
        """All ranges that make an address Internal: pods, services and nodes."""
        return [
            *iputil.parse_cidr_list(self.pod_cidrs),
            *iputil.parse_cidr_list(self.service_cidrs),
            *iputil.parse_cidr_list(self.node_cidrs),
        ]


class LiveQuerySet(models.QuerySet):
    def live(self) -> LiveQuerySet:
        return self.filter(deleted_at__isnull=True)


class InventoryQuerySet(LiveQuerySet, RestrictQuerySet):
    """Namespaced inventory: ``live()`` and ``restrict(user, action)``."""


class NamespaceQuerySet(InventoryQuerySet):
    namespace_paths = ("pk",)


class InventoryObject(models.Model):
    """Fields every object read from the Kubernetes API has. Deletion is soft: old flows still resolve."""

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE)
    name = models.CharField(max_length=253)
    uid = models.CharField(max_length=64, blank=True)
    labels = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(null=True, blank=True, help_text="creationTimestamp")
    first_seen = models.DateTimeField(auto_now_add=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = InventoryQuerySet.as_manager()

    class Meta:
        abstract = True


class Namespace(InventoryObject):
    objects = NamespaceQuerySet.as_manager()

    class Meta:
        ordering = ["cluster", "name"]
        constraints = [models.UniqueConstraint(fields=["cluster", "name"], name="uniq_namespace")]

    def __str__(self) -> str:
        return f"{self.cluster.name}/{self.name}"


class Node(InventoryObject):
    addresses = models.JSONField(default=list, blank=True, help_text="InternalIP/ExternalIP addresses")

    objects = LiveQuerySet.as_manager()  # a node belongs to no namespace

    class Meta:
        ordering = ["cluster", "name"]
        constraints = [models.UniqueConstraint(fields=["cluster", "name"], name="uniq_node")]

    def __str__(self) -> str:
        return f"{self.cluster.name}/{self.name}"


class Workload(InventoryObject):
    """A pod owner or a controller above one.

    Pods point at their top-level owner. Intermediate controllers (a ReplicaSet of a Deployment, a Job
    of a CronJob) are kept with ``parent`` set so that the chain can be followed when pods arrive.
    """

    class Kind(models.TextChoices):
        DEPLOYMENT = "Deployment"
        DAEMONSET = "DaemonSet"
        STATEFULSET = "StatefulSet"
        CRONJOB = "CronJob"
        JOB = "Job"
        REPLICASET = "ReplicaSet"
        POD = "Pod"

    namespace = models.ForeignKey(Namespace, on_delete=models.CASCADE, related_name="workloads")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children")
    selector = models.JSONField(default=dict, blank=True, help_text="LabelSelector of the controller")
    template_labels = models.JSONField(default=dict, blank=True, help_text="Labels of its pod template")
    placeholder = models.BooleanField(
        default=False, help_text="named by its pods or children but missing from the inventory: template unknown"
    )

    class Meta:
        ordering = ["cluster", "namespace__name", "kind", "name"]
        constraints = [models.UniqueConstraint(fields=["namespace", "kind", "name"], name="uniq_workload")]
        indexes = [models.Index(fields=["cluster", "uid"])]

    def __str__(self) -> str:
        return f"{self.kind}/{self.namespace.name}/{self.name}"


class Service(InventoryObject):
    namespace = models.ForeignKey(Namespace, on_delete=models.CASCADE, related_name="services")
    service_type = models.CharField(max_length=20, default="ClusterIP")
    selector = models.JSONField(default=dict, blank=True, help_text="spec.selector (matchLabels only)")

    class Meta:
        ordering = ["cluster", "namespace__name", "name"]
        constraints = [models.UniqueConstraint(fields=["namespace", "name"], name="uniq_service")]

    def __str__(self) -> str:
        return f"Service/{self.namespace.name}/{self.name}"


class ServiceAddress(models.Model):
    """A ClusterIP of a service, kept apart so that aggregation joins on it in SQL."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="addresses")
    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE)
    ip = models.CharField(max_length=45)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["service", "ip"], name="uniq_service_address")]
        indexes = [models.Index(fields=["cluster", "ip"])]

    def __str__(self) -> str:
        return f"{self.ip} ({self.service})"


class ServicePort(models.Model):
    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="service_ports")
    name = models.CharField(max_length=63, blank=True)
    port = models.PositiveIntegerField()
    protocol = models.CharField(max_length=8, default="TCP")
    target_port = models.PositiveIntegerField(null=True, blank=True)
    target_port_name = models.CharField(max_length=63, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["service", "port", "protocol"], name="uniq_service_port")]

    def __str__(self) -> str:
        return f"{self.port}/{self.protocol} → {self.target_port or self.target_port_name or self.port}"


class ServiceEndpoint(models.Model):
    """An address (and port) behind a Service without a selector, from its EndpointSlices or Endpoints.

    ``default/kubernetes`` (the API server) and Services in front of something outside the cluster have no
    pods to say where their traffic lands; these rows do. ``port`` empty: every port of the address.
    """

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="endpoints")
    ip = models.CharField(max_length=45)
    port = models.PositiveIntegerField(null=True, blank=True)
    protocol = models.CharField(max_length=8, default="TCP")
    name = models.CharField(max_length=63, blank=True, help_text="matches the name of the Service port")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["service", "ip", "port", "protocol"], name="uniq_service_endpoint")
        ]

    def __str__(self) -> str:
        return f"{self.ip}:{self.port or '*'}/{self.protocol} ({self.service})"


class Pod(InventoryObject):
    # No index of its own: uniq_pod (namespace, name, uid) starts with it. Beside that one, the planner took the
    # plain index for aggregation's lookups by namespace and name and filtered every pod of the namespace.
    namespace = models.ForeignKey(Namespace, on_delete=models.CASCADE, related_name="pods", db_index=False)
    workload = models.ForeignKey(Workload, null=True, blank=True, on_delete=models.SET_NULL, related_name="pods")
    node_name = models.CharField(max_length=253, blank=True)
    host_ip = models.CharField(max_length=45, blank=True)
    host_network = models.BooleanField(default=False)

    class Meta:
        ordering = ["cluster", "namespace__name", "name"]
        constraints = [models.UniqueConstraint(fields=["namespace", "name", "uid"], name="uniq_pod")]

    def __str__(self) -> str:
        return f"Pod/{self.namespace.name}/{self.name}"


class ContainerPort(models.Model):
    """A port a pod's containers declare: named-port resolution and 'known listening port' evidence."""

    pod = models.ForeignKey(Pod, on_delete=models.CASCADE, related_name="container_ports")
    name = models.CharField(max_length=63, blank=True)
    port = models.PositiveIntegerField()
    protocol = models.CharField(max_length=8, default="TCP")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["pod", "port", "protocol"], name="uniq_container_port")]

    def __str__(self) -> str:
        return f"{self.name or self.port}: {self.port}/{self.protocol}"


class PodAddress(models.Model):
    """An IP held by a pod for an interval. Flows resolve by IP *and* time through this history."""

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE)
    pod = models.ForeignKey(Pod, on_delete=models.CASCADE, related_name="addresses")
    ip = models.CharField(max_length=45)
    valid_from = models.DateTimeField()
    valid_to = models.DateTimeField(null=True, blank=True, help_text="empty while the pod holds it")

    class Meta:
        ordering = ["cluster", "ip", "valid_from"]
        indexes = [models.Index(fields=["cluster", "ip", "valid_from"])]

    def __str__(self) -> str:
        return f"{self.ip} → {self.pod} [{self.valid_from:%Y-%m-%d %H:%M} – {self.valid_to or '…'}]"


class NetworkPolicy(InventoryObject):
    """A NetworkPolicy applied in the cluster, stored as the API returned it."""

    namespace = models.ForeignKey(Namespace, on_delete=models.CASCADE, related_name="network_policies")
    spec = models.JSONField(default=dict)
    manifest = models.JSONField(default=dict, help_text="The whole object, status and noise removed")

    class Meta:
        ordering = ["cluster", "namespace__name", "name"]
        constraints = [models.UniqueConstraint(fields=["namespace", "name"], name="uniq_network_policy")]
        verbose_name_plural = "network policies"

    def __str__(self) -> str:
        return f"NetworkPolicy/{self.namespace.name}/{self.name}"


class RawFlowQuerySet(models.QuerySet):
    def bulk_create(self, objs, *args, **kwargs):  # type: ignore[no-untyped-def]
        """Make sure the day partitions of the rows exist first (PostgreSQL), as ``RawFlow.save`` does."""
        from flows.store.raw_flows import ensure_partitions_for

        objs = list(objs)
        ensure_partitions_for(obj.time for obj in objs if obj.time is not None)
        return super().bulk_create(objs, *args, **kwargs)


class RawFlow(models.Model):
    """One flow event as received, only syntax-checked. ``fingerprint`` makes re-sending a no-op.

    On PostgreSQL the table is partitioned by day on ``time`` (``flows.store.raw_flows``: pruning drops a
    day's partition instead of deleting its rows), so its primary key is (cluster_id, id, time) there (the cluster
    first: a key that a database distributed by cluster can enforce) and the dedupe key includes ``time``. The
    fingerprint already covers the time (it hashes it, or it is the observer's
    event id, whose time never changes), so (cluster, time, fingerprint) refuses exactly what
    (cluster, fingerprint) did for a re-sent event.
    """

    class Direction(models.TextChoices):
        INGRESS = "INGRESS"
        EGRESS = "EGRESS"
        UNKNOWN = "UNKNOWN"

    # Not the foreign key's own index: (cluster, id) below serves lookups by cluster as well, and answers
    # aggregation's watermark (the largest id of a cluster) at once, from each day partition's index.
    # Nor its constraint: checking it is a trigger call and a key-share lock on the cluster row for every one of
    # millions of inserted rows (a fifth of the server's time in an import). The ingest path writes only the id of
    # a cluster it has just read, and deleting a cluster still deletes its raw flows (Django's cascade).
    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, db_index=False, db_constraint=False)
    fingerprint = models.CharField(max_length=64)
    time = models.DateTimeField()
    verdict = models.CharField(max_length=20, default="FORWARDED")
    protocol = models.CharField(max_length=8)
    src_ip = models.CharField(max_length=45)
    dst_ip = models.CharField(max_length=45)
    src_port = models.PositiveIntegerField(null=True, blank=True)
    dst_port = models.PositiveIntegerField(null=True, blank=True)
    is_reply = models.BooleanField(null=True, help_text="empty when the observer did not know")
    tcp_flags = models.CharField(max_length=40, blank=True, help_text="e.g. 'SYN' or 'SYN,ACK'")
    traffic_direction = models.CharField(max_length=8, choices=Direction.choices, default=Direction.UNKNOWN)
    node_name = models.CharField(max_length=253, blank=True)
    src_namespace = models.CharField(max_length=253, blank=True)
    src_pod = models.CharField(max_length=253, blank=True)
    src_workload_kind = models.CharField(max_length=20, blank=True)
    src_workload_name = models.CharField(max_length=253, blank=True)
    src_reserved = models.CharField(max_length=40, blank=True, help_text="host, world, kube-apiserver, ...")
    dst_namespace = models.CharField(max_length=253, blank=True)
    dst_pod = models.CharField(max_length=253, blank=True)
    dst_workload_kind = models.CharField(max_length=20, blank=True)
    dst_workload_name = models.CharField(max_length=253, blank=True)
    dst_reserved = models.CharField(max_length=40, blank=True)
    dst_service = models.CharField(max_length=510, blank=True, help_text="namespace/name of a service")
    dst_names = models.JSONField(default=list, blank=True, help_text="DNS names seen for the destination")
    dns_query = models.CharField(max_length=253, blank=True, help_text="the name an L7 DNS event asked for")
    dns_ips = models.JSONField(default=list, blank=True, help_text="the addresses a DNS response gave for it")

    objects = RawFlowQuerySet.as_manager()

    class Meta:
        # The partition key is part of every unique constraint of a partitioned table (see the class docstring).
        # Time before fingerprint: new rows land at the end of the index (fingerprints are random hashes, which
        # scattered every insert over the whole index), and the same index serves aggregation's scan of a
        # cluster's hour.
        constraints = [models.UniqueConstraint(fields=["cluster", "time", "fingerprint"], name="uniq_raw_flow")]
        # SQLite's; on PostgreSQL the primary key (cluster_id, id, time) serves the same lookups, and the index is
        # dropped there (migration 0009).
        indexes = [models.Index(fields=["cluster", "id"], name="raw_flow_cluster_id")]

    def __str__(self) -> str:
        return (f"{self.time:%Y-%m-%d %H:%M:%S} {self.src_ip}:{self.src_port} → "
                f"{self.dst_ip}:{self.dst_port}/{self.protocol} {self.verdict}")

    def save(self, *args, **kwargs) -> None:
        """A row written through the ORM (tests, the admin) needs its day's partition as the flow store's do."""
        from flows.store.raw_flows import ensure_partitions_for

        if self.time is not None:
            ensure_partitions_for([self.time])
        super().save(*args, **kwargs)


class CommunicationQuerySet(RestrictQuerySet):
    # A communication is seen from the namespaces of both its ends.
    namespace_paths = ("src_workload__namespace", "dst_workload__namespace")


class Communication(models.Model):
    """Connections of one hour (or one day) between two endpoints on one destination port (design §3).

    An endpoint is a workload, or an IP when it cannot be resolved (then ``*_workload`` is empty).
    Hourly rows are written by aggregation, which rebuilds whole hour buckets, so one GROUP BY keeps
    (bucket, source, destination, port, protocol, denied, node_local) unique. Retention (``flows.retention``)
    seals the hourly rows whose raw flows it prunes, so that aggregation never rebuilds them from a part of
    their flows, and later rolls them up into one daily row per key: aggregation never touches a sealed row.
    """

    class Granularity(models.TextChoices):
        HOUR = "hour"
        DAY = "day"

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE)
    bucket = models.DateTimeField(help_text="start of the hour, or of the day (UTC) for a daily row")
    granularity = models.CharField(max_length=4, choices=Granularity.choices, default=Granularity.HOUR)
    sealed = models.BooleanField(
        default=False, help_text="its raw flows are pruned: aggregation no longer rebuilds it (daily rows always)"
    )
    src_workload = models.ForeignKey(
        Workload, null=True, blank=True, on_delete=models.CASCADE, related_name="egress_communications"
    )
    src_ip = models.CharField(max_length=45, blank=True, help_text="set when the source is unresolved")
    dst_workload = models.ForeignKey(
        Workload, null=True, blank=True, on_delete=models.CASCADE, related_name="ingress_communications"
    )
    dst_ip = models.CharField(max_length=45, blank=True, help_text="set when the destination is unresolved")
    port = models.PositiveIntegerField()
    protocol = models.CharField(max_length=8)
    denied = models.BooleanField(default=False, help_text="DROPPED in the cluster: an attempt, not traffic")
    node_local = models.BooleanField(
        default=False, help_text="from the destination pod's own node (kubelet probes): always allowed"
    )
    connections = models.PositiveIntegerField(default=0)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()

    objects = CommunicationQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(src_workload__isnull=False) | ~Q(src_ip=""), name="communication_has_source"
            ),
            models.CheckConstraint(
                condition=Q(dst_workload__isnull=False) | ~Q(dst_ip=""), name="communication_has_destination"
            ),
            models.CheckConstraint(condition=Q(granularity="hour") | Q(sealed=True), name="communication_daily_sealed"),
        ]
        indexes = [
            models.Index(fields=["src_workload", "bucket"]),
            models.Index(fields=["dst_workload", "bucket"]),
            models.Index(fields=["cluster", "bucket"]),
            # The rows aggregation may still rebuild (a few days' worth): what it deletes and retention seals.
            models.Index(fields=["cluster", "bucket"], condition=Q(sealed=False), name="communication_open"),
        ]

    def __str__(self) -> str:
        return f"{self.src_workload or self.src_ip} → {self.dst_workload or self.dst_ip} {self.port}/{self.protocol}"


class AggregationState(models.Model):
    """The watermark of aggregation: raw flows with a larger id have not been aggregated yet."""

    cluster = models.OneToOneField(Cluster, on_delete=models.CASCADE, related_name="aggregation")
    last_raw_flow_id = models.BigIntegerField(default=0)
    last_run = models.DateTimeField(null=True, blank=True, help_text="when the last run that found work finished")
    last_error = models.TextField(blank=True, help_text="why the last periodic run failed; empty after a success")
    last_error_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.cluster}: up to raw flow {self.last_raw_flow_id}"


class IPRange(models.Model):
    """Portable range columns shared by aliases and CIDR configuration."""

    cidr = models.CharField(max_length=49, help_text="a CIDR or a single address")
    start_key = models.CharField(max_length=32, editable=False)
    end_key = models.CharField(max_length=32, editable=False)

    class Meta:
        abstract = True

    def save(self, *args, **kwargs) -> None:
        self.cidr = iputil.canonical_cidr(self.cidr)
        self.start_key, self.end_key = iputil.range_keys(self.cidr)
        super().save(*args, **kwargs)

    def clean(self) -> None:
        try:
            self.cidr = iputil.canonical_cidr(self.cidr)
        except ValueError as exc:
            raise ValidationError({"cidr": f"not a CIDR or address: {exc}"}) from exc


class IPAlias(IPRange):
    """An admin's name for an address or range; an allowed alias is included in policies by default."""

    cluster = models.ForeignKey(Cluster, null=True, blank=True, on_delete=models.CASCADE,
                                help_text="empty: every cluster")
    name = models.CharField(max_length=100)
    allowed = models.BooleanField(default=False, help_text="include this range in generated policies")
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "IP alias"
        verbose_name_plural = "IP aliases"
        indexes = [models.Index(fields=["start_key", "end_key"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.cidr})"


class CIDRConfig(IPRange):
    """Admin configuration that classifies a range as internal or external and labels it."""

    class Category(models.TextChoices):
        INTERNAL = "Internal"
        EXTERNAL = "External"

    cluster = models.ForeignKey(Cluster, null=True, blank=True, on_delete=models.CASCADE,
                                help_text="empty: every cluster")
    category = models.CharField(max_length=10, choices=Category.choices)
    label = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["cidr"]
        verbose_name = "CIDR configuration"
        verbose_name_plural = "CIDR configuration"
        indexes = [models.Index(fields=["start_key", "end_key"])]

    def __str__(self) -> str:
        return f"{self.cidr} {self.category} {self.label}".strip()


class ServiceBackend(models.Model):
    """Where traffic to a service address lands: a backend workload, or an address, and the target port.

    Derived from services, pods and endpoints by aggregation, so that ClusterIP flows translate in one SQL
    join. A Service with a selector lands on its pods' workloads; one without (``default/kubernetes``, an
    external database) on an address of its endpoints (``address``, the lowest: every address of the
    Service is allowed together when a policy is written, so which one took a connection does not matter).
    """

    # No index of its own: the (cluster, ip, port) index starts with it. The table is rebuilt by every aggregation
    # run, so it often has no statistics, and then the planner took the plain cluster index for the lookup of each
    # observed connection (a third of a bucket's time).
    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, db_index=False)
    ip = models.CharField(max_length=45)
    port = models.PositiveIntegerField()
    protocol = models.CharField(max_length=8)
    workload = models.ForeignKey(Workload, null=True, blank=True, on_delete=models.CASCADE)
    address = models.CharField(max_length=45, blank=True, help_text="set when the backend is not a pod")
    target_port = models.PositiveIntegerField()

    class Meta:
        indexes = [models.Index(fields=["cluster", "ip", "port"])]
        constraints = [
            models.CheckConstraint(condition=Q(workload__isnull=False) | ~Q(address=""), name="service_backend_target")
        ]

    def __str__(self) -> str:
        return f"{self.ip}:{self.port}/{self.protocol} → {self.workload or self.address}:{self.target_port}"


class ObservedIP(models.Model):
    """What flows told us about an address we could not resolve: DNS names and the observer's identity."""

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE)
    ip = models.CharField(max_length=45)
    identity = models.CharField(max_length=40, blank=True, help_text="Cilium reserved identity, e.g. world")
    dns_names = models.JSONField(default=list, blank=True)

    class Meta:
        verbose_name = "observed IP"
        constraints = [models.UniqueConstraint(fields=["cluster", "ip"], name="uniq_observed_ip")]

    def __str__(self) -> str:
        return self.ip


class NamespaceGrant(models.Model):
    """A role for a user, or for a group, in some namespaces only (design §9; the rule is ``flows.access``)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                             related_name="namespace_grants")
    group = models.ForeignKey("auth.Group", null=True, blank=True, on_delete=models.CASCADE,
                              related_name="namespace_grants")
    role = models.CharField(max_length=10, choices=Role.choices)
    namespaces = models.ManyToManyField(Namespace, related_name="grants")
    note = models.CharField(max_length=200, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(user__isnull=False, group__isnull=True) | Q(user__isnull=True, group__isnull=False),
                name="grant_to_a_user_or_a_group",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_role_display()} for {self.user or self.group}"

    def clean(self) -> None:
        if (self.user_id is None) == (self.group_id is None):
            raise ValidationError("grant the role to a user or to a group (one of them)")


class IngestBatch(models.Model):
    """A batch taken over the ingestion API under an ``Idempotency-Key``: a retry of it answers what the first
    call answered and stores nothing, however often a client retries after a timeout.

    ``summary`` is that answer, with the SHA-256 of the (decompressed) body, so that a key reused for a
    different batch is refused rather than silently answered with another batch's counts.
    """

    class Kind(models.TextChoices):
        FLOWS = "flows", "flows"
        INVENTORY = "inventory", "inventory"

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    key = models.CharField(max_length=200, help_text="the Idempotency-Key the client sent")
    created = models.DateTimeField(auto_now_add=True)
    summary = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name_plural = "ingest batches"
        constraints = [models.UniqueConstraint(fields=["cluster", "kind", "key"], name="uniq_ingest_batch")]

    def __str__(self) -> str:
        return f"{self.cluster} {self.kind} {self.key}"


# The day summaries of communications live beside the code that keeps them; imported here so Django knows them.
from flows.rollup import CommunicationDay, RollupDay  # noqa: E402, F401
from flows.versions import DataVersion  # noqa: E402, F401
