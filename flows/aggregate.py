"""Aggregation of raw flows into communications (design §3).

Each run takes the raw flows that arrived since the watermark, finds the hour buckets they fall in,
and rebuilds those buckets from *all* raw flows of the hour with one INSERT ... SELECT per bucket.
Rebuilding whole buckets (rather than adding counts) is what makes the result independent of how
flows were batched: a connection whose egress event came in one batch and its ingress event in the
next still counts once, and running twice changes nothing.

What the SQL does, per bucket, on SQLite and PostgreSQL alike:
1. keeps TCP/UDP/SCTP events that are not replies (``is_reply`` true is never a connection);
2. orients every event so that the initiator is the client: ``is_reply`` false, then SYN without ACK,
   then SYN+ACK (a reply), then known listening ports (container ports, service ports, ports that
   took a SYN), then the lower port being the server's: a long-lived connection seen only as ACK/PSH
   packets still counts, its direction taken from that evidence;
3. resolves each side to the pod's owner: by the pod Hubble names, when the inventory knows it; else by
   IP *and time* through the pod address history (unless Hubble named another pod: the history is
   stale); else by the workload Hubble names, when we know it; a service address
   resolves through ``ServiceBackend`` to its backend workloads (a Service without a selector to an
   address of its endpoints, the API server's for ``default/kubernetes``) and the translated target port;
4. groups events into connections (client IP and port, resolved server, port, protocol): a connection
   reported at both ends counts once, and one with any DROPPED event is an attempt "denied in cluster";
   traffic from the server pod's own node (kubelet probes) is flagged ``node_local``;
5. groups connections into communications.

Retention (``flows.retention``) prunes raw flows by day. Before it does, it seals the hourly communications
of those days: rebuilding such an hour from the few raw flows a backfill brings would replace its counts
with a part of them. So a bucket that holds a sealed row, or whose day was rolled up into a daily row, is
never rebuilt; raw flows that arrive for it are left to retention. Only unsealed hourly rows are ever deleted.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import F, Max, Q, QuerySet
from django.db.models.functions import TruncHour
from django.utils import timezone

from flows import apiserver, versions
from flows.iputil import ip_key
from flows.models import (
    AggregationState,
    Cluster,
    Communication,
    ContainerPort,
    ObservedIP,
    Pod,
    RawFlow,
    Service,
    ServiceBackend,
)
from flows.rollup import refresh_rollup
from flows.store.raw_flows import write_lock

log = logging.getLogger(__name__)

HOUR = timedelta(hours=1)
# PostgreSQL's work_mem for one aggregation run (per hash table or sort of its statements).
AGGREGATION_WORK_MEM = "64MB"


@dataclass
class AggregationResult:
    cluster: str
    raw_flows: int = 0
    buckets: list[datetime] = field(default_factory=list)
    communications: int = 0
    sealed: list[datetime] = field(default_factory=list)  # buckets with new flows left alone: retention sealed them

    def __str__(self) -> str:
        sealed = f", {len(self.sealed)} sealed buckets left alone" if self.sealed else ""
        return (
            f"{self.cluster}: {self.raw_flows} new raw flows, {len(self.buckets)} hour buckets rebuilt, "
            f"{self.communications} communications{sealed}"
        )


# Columns of RawFlow that come in a source/destination pair and are swapped when an event is a reply.
_SIDE_COLUMNS = ("ip", "port", "namespace", "pod", "workload_kind", "workload_name", "reserved")

_SYN = "fl LIKE '%%,SYN,%%'"
_ACK = "fl LIKE '%%,ACK,%%'"


def _side_select(prefix: str) -> str:
    """Select the client (c_) or server (s_) columns of an event according to its orientation."""
    this, other = ("src", "dst") if prefix == "c" else ("dst", "src")
    return ",\n".join(
        f"CASE WHEN fwd = 1 THEN {this}_{col} ELSE {other}_{col} END AS {prefix}_{col}" for col in _SIDE_COLUMNS
    )


def _resolve_workload(prefix: str, ip: str) -> str:
    """Resolution of one side of an observed connection (``a``) to its top-level workload id.

    Hubble names the pod as its agent saw it at that moment, so a pod it names that the inventory knows
    comes first. Then the address history by IP at the connection's first event, unless Hubble named another
    pod (the history is stale: the address moved to a pod the inventory has not seen yet). Then Hubble's
    workload. ``ip`` is the column holding the side's address (the server's after service translation).
    COALESCE evaluates its arguments lazily: the later lookups run only for what the earlier ones missed.
    """
    return f"""
    COALESCE(
      (SELECT p.workload_id FROM flows_pod p JOIN flows_namespace n ON n.id = p.namespace_id
        WHERE n.cluster_id = %(cluster)s AND a.{prefix}_pod <> '' AND n.name = a.{prefix}_namespace
          AND p.name = a.{prefix}_pod AND p.host_network = FALSE
        ORDER BY p.id DESC LIMIT 1),
      (SELECT p.workload_id FROM flows_podaddress pa JOIN flows_pod p ON p.id = pa.pod_id
        WHERE pa.cluster_id = %(cluster)s AND pa.ip = {ip} AND pa.valid_from <= a.first_seen
          AND (pa.valid_to IS NULL OR pa.valid_to > a.first_seen) AND (a.{prefix}_pod = '' OR p.name = a.{prefix}_pod)
        ORDER BY pa.valid_from DESC LIMIT 1),
      (SELECT COALESCE(w.parent_id, w.id) FROM flows_workload w JOIN flows_namespace n ON n.id = w.namespace_id
        WHERE n.cluster_id = %(cluster)s AND a.{prefix}_workload_name <> '' AND n.name = a.{prefix}_namespace
          AND w.kind = a.{prefix}_workload_kind AND w.name = a.{prefix}_workload_name
        LIMIT 1)
    )"""


# What identifies a connection as the observers described it, before resolution: the client's address, port
# and what Hubble said of it, the server's address and port (before service translation) and what Hubble said of it.
_OBSERVED = ("protocol, c_ip, c_port, c_namespace, c_pod, c_workload_kind, c_workload_name, c_reserved, "
             "s_ip, s_port, s_namespace, s_pod, s_workload_kind, s_workload_name")

# Where an observed connection to a service address lands (``ServiceBackend``: one row per backend workload, so
# the join may fan out). On PostgreSQL a LATERAL lookup, so that the plan is an index lookup per observed
# connection whatever the statistics say: a freshly refreshed backend table has none, and the planner's guess of
# one row made it scan every backend of the cluster for every row (``OFFSET 0`` keeps the planner from pulling the
# subquery up into that plain join again). SQLite has no LATERAL and always joins
# through the index.
_BACKEND_JOIN = {
    "postgresql": """LEFT JOIN LATERAL (
      SELECT sb.workload_id, sb.address, sb.target_port FROM flows_servicebackend sb
       WHERE sb.cluster_id = %(cluster)s AND sb.ip = a.s_ip AND sb.port = a.s_port AND sb.protocol = a.protocol
      OFFSET 0
    ) sb ON TRUE""",
    "sqlite": """LEFT JOIN flows_servicebackend sb
      ON sb.cluster_id = %(cluster)s AND sb.ip = a.s_ip AND sb.port = a.s_port AND sb.protocol = a.protocol""",
}

# The INSERT comes first (with the CTEs inside its SELECT) so that drivers report the row count.
# ``oriented`` and ``observed`` are MATERIALIZED: each is computed once, so that what follows compares plain
# columns instead of re-evaluating the orientation CASE, and service translation and the lookups of resolution
# run once per observed connection (a few per connection: the reports of its two ends may name its pods
# differently), not once per packet event. A connection resolves as of its first event.
_BUCKET_SQL = f"""
INSERT INTO flows_communication
  (cluster_id, bucket, granularity, sealed, src_workload_id, src_ip, dst_workload_id, dst_ip, port, protocol,
   denied, node_local, connections, first_seen, last_seen)
WITH ev AS (
  SELECT f.time, f.protocol, f.verdict, f.is_reply,
         f.src_ip, f.src_port, f.src_namespace, f.src_pod, f.src_workload_kind, f.src_workload_name,
         f.src_reserved,
         f.dst_ip, f.dst_port, f.dst_namespace, f.dst_pod, f.dst_workload_kind, f.dst_workload_name,
         f.dst_reserved,
         (',' || f.tcp_flags || ',') AS fl
  FROM flows_rawflow f
  WHERE f.cluster_id = %(cluster)s AND f.time >= %(start)s AND f.time < %(end)s
    AND f.protocol IN ('TCP', 'UDP', 'SCTP')
    AND f.src_port IS NOT NULL AND f.dst_port IS NOT NULL
    AND (f.is_reply IS NULL OR f.is_reply = FALSE)
),
listen AS (
  SELECT pa.ip AS ip, cp.port AS port, cp.protocol AS protocol
    FROM flows_podaddress pa JOIN flows_containerport cp ON cp.pod_id = pa.pod_id
   WHERE pa.cluster_id = %(cluster)s
  UNION
  SELECT sa.ip, sp.port, sp.protocol
    FROM flows_serviceaddress sa JOIN flows_serviceport sp ON sp.service_id = sa.service_id
   WHERE sa.cluster_id = %(cluster)s
  UNION
  SELECT dst_ip, dst_port, protocol FROM ev
   WHERE is_reply = FALSE OR ({_SYN} AND NOT {_ACK})
),
judged AS (
  SELECT ev.*,
    CASE
      WHEN ev.is_reply = FALSE THEN 1
      WHEN {_SYN} AND NOT {_ACK} THEN 1
      WHEN {_SYN} AND {_ACK} THEN 0
      WHEN ld.ip IS NOT NULL AND ls.ip IS NULL THEN 1
      WHEN ls.ip IS NOT NULL AND ld.ip IS NULL THEN 0
      WHEN ev.dst_port <= ev.src_port THEN 1
      ELSE 0
    END AS fwd
  FROM ev
  LEFT JOIN listen ld ON ld.ip = ev.dst_ip AND ld.port = ev.dst_port AND ld.protocol = ev.protocol
  LEFT JOIN listen ls ON ls.ip = ev.src_ip AND ls.port = ev.src_port AND ls.protocol = ev.protocol
),
oriented AS MATERIALIZED (
  SELECT time, protocol, verdict,
{_side_select("c")},
{_side_select("s")}
  FROM judged
),
observed AS MATERIALIZED (
  SELECT {_OBSERVED},
         MIN(time) AS first_seen, MAX(time) AS last_seen,
         MAX(CASE WHEN verdict = 'DROPPED' THEN 1 ELSE 0 END) AS denied
  FROM oriented
  GROUP BY {_OBSERVED}
),
translated AS MATERIALIZED (
  SELECT a.*, sb.workload_id AS sb_wl,
         COALESCE(NULLIF(sb.address, ''), a.s_ip) AS t_ip, COALESCE(sb.target_port, a.s_port) AS t_port
  FROM observed a
  {{backend_join}}
),
resolved AS MATERIALIZED (
  SELECT a.protocol, a.c_ip, a.c_port, a.c_reserved, a.first_seen, a.last_seen, a.denied,
    {_resolve_workload("c", "a.c_ip")} AS c_wl,
    COALESCE(a.sb_wl, {_resolve_workload("s", "a.t_ip")}) AS s_wl,
    a.t_port AS port,
    a.t_ip AS s_ip,
    (SELECT p.host_ip FROM flows_podaddress pa JOIN flows_pod p ON p.id = pa.pod_id
      WHERE pa.cluster_id = %(cluster)s AND pa.ip = a.t_ip AND pa.valid_from <= a.first_seen
        AND (pa.valid_to IS NULL OR pa.valid_to > a.first_seen)
      ORDER BY pa.valid_from DESC LIMIT 1) AS s_host_ip
  FROM translated a
),
conn AS (
  SELECT c_wl, CASE WHEN c_wl IS NULL THEN c_ip ELSE '' END AS c_unresolved,
         s_wl, CASE WHEN s_wl IS NULL THEN s_ip ELSE '' END AS s_unresolved,
         port, protocol, c_ip, c_port,
         MAX(denied) AS denied,
         MAX(CASE WHEN (c_reserved = 'host' AND s_wl IS NOT NULL) OR c_ip = s_host_ip THEN 1 ELSE 0 END)
           AS node_local,
         MIN(first_seen) AS first_seen, MAX(last_seen) AS last_seen
  FROM resolved
  GROUP BY c_wl, c_unresolved, s_wl, s_unresolved, port, protocol, c_ip, c_port
)
SELECT %(cluster)s, %(bucket)s, 'hour', FALSE, c_wl, c_unresolved, s_wl, s_unresolved, port, protocol,
       denied = 1, node_local = 1, COUNT(*), MIN(first_seen), MAX(last_seen)
FROM conn
GROUP BY c_wl, c_unresolved, s_wl, s_unresolved, port, protocol, denied, node_local
"""


def bucket_sql() -> str:
    """The statement that rebuilds one hour bucket, for this database."""
    return _BUCKET_SQL.replace("{backend_join}", _BACKEND_JOIN[connection.vendor])


def plan_for_aggregation() -> None:
    """PostgreSQL settings of the transaction that rebuilds buckets (call it inside that transaction)."""
    with connection.cursor() as cursor:
        # Room for the hash tables of an hour's events: the default 4 MB spills them to disk.
        cursor.execute(f"SET LOCAL work_mem = '{AGGREGATION_WORK_MEM}'")
        # Once the tables have statistics, the bucket statement's estimated cost passes jit_above_cost, and
        # compiling its 200-odd expressions took 3 s of every 3.5 s bucket (a 62,000-flow hour); it runs once
        # per bucket, so the compiled code never pays that back.
        cursor.execute("SET LOCAL jit = off")
        # With statistics, the planner also joined the events to the listening ports by a merge join whose inner
        # side was rescanned for every event of a client address (60 million rows sorted for 43,000 events,
        # 7.5 s). Every join of aggregation is a lookup: hash or nested loop.
        cursor.execute("SET LOCAL enable_mergejoin = off")


def _db_datetime(value: datetime) -> object:
    """A datetime as this database stores it, so that raw SQL compares like the ORM does."""
    return connection.ops.adapt_datetimefield_value(value)


def refresh_service_backends(cluster: Cluster) -> int:
    """Rebuild where each service address and port lands, and on which (target) port.

    A Service with a selector lands on its pods' workloads; one without on its endpoints' lowest address
    (``ServiceBackend``), and ``default/kubernetes`` without endpoints on the API server's fallback
    addresses (``flows.apiserver``). A loop per service and backend (inventory size), never per flow.
    """
    pods_by_namespace: dict[int, list[Pod]] = defaultdict(list)
    for pod in Pod.objects.filter(cluster=cluster, workload__isnull=False, host_network=False):
        pods_by_namespace[pod.namespace_id].append(pod)
    named_ports: dict[tuple[int, str, str], int] = {
        (cp.pod_id, cp.name, cp.protocol): cp.port
        for cp in ContainerPort.objects.filter(pod__cluster=cluster).exclude(name="")
    }
    rows: dict[tuple[str, int, str, int | None, str], int] = {}
    claimed: dict[tuple[str, int, str], int] = {}  # (ip, port, protocol) → the service that owns it
    # Live services first: a ClusterIP that a deleted service once had belongs to its live successor.
    services = (Service.objects.filter(cluster=cluster).order_by(F("deleted_at").desc(nulls_first=True), "id")
                .select_related("namespace").prefetch_related("addresses", "service_ports", "endpoints"))
    api_fallback: list[str] | None = None
    for service in services:
        for sp in service.service_ports.all():
            targets: list[tuple[int | None, str, int]] = []  # (workload, address, target port)
            if service.selector:
                for pod in pods_by_namespace.get(service.namespace_id, []):
                    if not all(pod.labels.get(k) == v for k, v in service.selector.items()):
                        continue
                    if sp.target_port_name:
                        target = named_ports.get((pod.id, sp.target_port_name, sp.protocol))
                        if target is None:
                            continue  # the pod does not declare that named port: traffic cannot land there
                    else:
                        target = sp.target_port or sp.port
                    targets.append((pod.workload_id, "", target))
            else:
                # kube-proxy pairs a Service port with the endpoint port of the same name.
                endpoints = sorted(((e.ip, e.port) for e in service.endpoints.all()
                                    if e.protocol == sp.protocol and e.name == sp.name), key=lambda e: ip_key(e[0]))
                default_port = sp.target_port or sp.port
                if not endpoints and (service.namespace.name, service.name) == (
                        apiserver.SERVICE_NAMESPACE, apiserver.SERVICE_NAME):
                    if api_fallback is None:
                        api_fallback = sorted(apiserver.fallback_addresses(cluster), key=ip_key)
                    endpoints = [(ip, default_port) for ip in api_fallback]
                if endpoints:
                    ip, port = endpoints[0]
                    targets.append((None, ip, port or default_port))
            for address in service.addresses.all():
                if claimed.setdefault((address.ip, sp.port, sp.protocol), service.id) != service.id:
                    continue
                for workload_id, backend, target in targets:
                    rows[(address.ip, sp.port, sp.protocol, workload_id, backend)] = target
    ServiceBackend.objects.filter(cluster=cluster).delete()
    ServiceBackend.objects.bulk_create(
        ServiceBackend(cluster=cluster, ip=ip, port=port, protocol=proto, workload_id=wl, address=backend,
                       target_port=target)
        for (ip, port, proto, wl, backend), target in rows.items()
    )
    return len(rows)


def _open(cluster: Cluster) -> QuerySet[Communication]:
    """The communications aggregation owns: hourly rows that retention has not sealed."""
    return Communication.objects.filter(cluster=cluster, granularity=Communication.Granularity.HOUR, sealed=False)


def _sealed_buckets(cluster: Cluster, buckets: set[datetime]) -> set[datetime]:
    """Those of ``buckets`` that hold a sealed hourly row or fall on a day rolled up into daily rows: one query."""
    if not buckets:
        return set()

    def day(bucket: datetime) -> datetime:
        return bucket.replace(hour=0, minute=0, second=0, microsecond=0)

    sealed = (Communication.objects.filter(cluster=cluster, sealed=True, bucket__gte=min(map(day, buckets)),
                                           bucket__lte=max(buckets))
              .values_list("bucket", "granularity").distinct())
    hours = {b for b, granularity in sealed if granularity == Communication.Granularity.HOUR}
    days = {b for b, granularity in sealed if granularity == Communication.Granularity.DAY}
    return {b for b in buckets if b in hours or day(b) in days}


def _rebuild_bucket(cluster: Cluster, bucket: datetime) -> int:
    _open(cluster).filter(bucket=bucket).delete()
    params = {
        "cluster": cluster.id,
        "start": _db_datetime(bucket),
        "end": _db_datetime(bucket + HOUR),
        "bucket": _db_datetime(bucket),
    }
    with connection.cursor() as cursor:
        cursor.execute(bucket_sql(), params)
        return cursor.rowcount


def _update_observed_ips(cluster: Cluster, start: datetime, end: datetime) -> None:
    """Remember DNS names and reserved identities seen for addresses that stay unresolved.

    Names come from the flows' own destination names and from DNS responses (L7 events), whose answers
    are kept for every address: the connection to it may come in a later hour.
    """
    unresolved: set[str] = set()
    for src_ip, dst_ip in Communication.objects.filter(
        cluster=cluster, bucket__gte=start, bucket__lt=end
    ).values_list("src_ip", "dst_ip").distinct():
        unresolved.update(ip for ip in (src_ip, dst_ip) if ip)
    # One scan of the window for everything it tells about addresses: DNS answers, destination names, reserved
    # identities (of the few events that carry any).
    seen = (RawFlow.objects.filter(cluster=cluster, time__gte=start, time__lt=end)
            .filter(~Q(dns_query="") & ~Q(dns_ips=[]) | ~Q(dst_names=[]) | ~Q(src_reserved="") | ~Q(dst_reserved=""))
            .values_list("dns_query", "dns_ips", "dst_ip", "dst_names", "src_ip", "src_reserved", "dst_reserved")
            .distinct())
    names: dict[str, set[str]] = defaultdict(set)
    dst_names: dict[str, set[str]] = defaultdict(set)
    src_identities: dict[str, str] = {}
    dst_identities: dict[str, str] = {}
    for query, answers, dst_ip, flow_names, src_ip, src_reserved, dst_reserved in seen:
        if query and answers:
            for ip in answers:
                names[ip].add(query)
        if flow_names:
            dst_names[dst_ip].update(flow_names)
        if src_reserved:
            src_identities.setdefault(src_ip, src_reserved)
        if dst_reserved:
            dst_identities.setdefault(dst_ip, dst_reserved)
    unresolved.update(names)
    if not unresolved:
        return
    for ip, flow_names in dst_names.items():
        if ip in unresolved:
            names[ip].update(flow_names)
    # Where an address was seen with two identities, the one it had as a destination wins.
    identities = {ip: identity for ip, identity in (src_identities | dst_identities).items() if ip in unresolved}
    existing = {o.ip: o for o in ObservedIP.objects.filter(cluster=cluster, ip__in=unresolved)}
    to_create, to_update = [], []
    for ip in sorted(unresolved):
        merged = sorted(set(existing[ip].dns_names if ip in existing else ()) | names.get(ip, set()))
        identity = identities.get(ip, existing[ip].identity if ip in existing else "")
        if ip not in existing:
            to_create.append(ObservedIP(cluster=cluster, ip=ip, identity=identity, dns_names=merged))
        elif existing[ip].dns_names != merged or existing[ip].identity != identity:
            existing[ip].dns_names, existing[ip].identity = merged, identity
            to_update.append(existing[ip])
    ObservedIP.objects.bulk_create(to_create, ignore_conflicts=True)
    ObservedIP.objects.bulk_update(to_update, ["dns_names", "identity"])


def _committed_high_water_mark(cluster: Cluster) -> int | None:
    """The largest raw flow id below which every id is committed.

    PostgreSQL hands out sequence values in the order inserts start, not the order they commit: with two
    imports running, id 200 can be visible while id 150 is not yet. Taking the cluster's ingest lock exclusively
    waits for its batches in flight; every batch that starts later gets larger ids. SQLite has one
    writer at a time, so ids are committed in order there.
    """
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [write_lock(cluster.id)])
        return RawFlow.objects.filter(cluster=cluster).aggregate(m=Max("id"))["m"]


def aggregate_cluster(cluster: Cluster, *, rebuild_since: datetime | None = None) -> AggregationResult:
    """Aggregate what arrived since the watermark; with ``rebuild_since``, rebuild every bucket from then
    on (after an inventory import that explains addresses that were unresolved before)."""
    result = AggregationResult(cluster=cluster.name)
    mark = _committed_high_water_mark(cluster)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            plan_for_aggregation()
        state, _ = AggregationState.objects.get_or_create(cluster=cluster)
        # Serialises concurrent runs for one cluster (beat and a manual run) on PostgreSQL; SQLite's
        # IMMEDIATE transactions already serialise writers.
        state = AggregationState.objects.select_for_update().get(pk=state.pk)
        high = mark if mark is not None and mark > state.last_raw_flow_id else None
        buckets: set[datetime] = set()
        if high is not None:
            pending = RawFlow.objects.filter(cluster=cluster, id__gt=state.last_raw_flow_id, id__lte=high)
            result.raw_flows = pending.count()
            buckets.update(pending.annotate(h=TruncHour("time")).values_list("h", flat=True).distinct())
        if rebuild_since is not None:
            old = RawFlow.objects.filter(cluster=cluster, time__gte=rebuild_since)
            buckets.update(old.annotate(h=TruncHour("time")).values_list("h", flat=True).distinct())
            _open(cluster).filter(bucket__gte=rebuild_since).exclude(bucket__in=buckets).delete()
        result.sealed = sorted(_sealed_buckets(cluster, buckets))
        buckets.difference_update(result.sealed)
        if not buckets:
            if rebuild_since is not None:
                refresh_rollup(cluster, since=rebuild_since)  # the rebuild may have deleted buckets of past days
                versions.bump([cluster.pk])
            if high is not None:
                state.last_raw_flow_id = high
                state.last_run = timezone.now()
                state.save(update_fields=["last_raw_flow_id", "last_run"])
            return result
        refresh_service_backends(cluster)
        result.buckets = sorted(buckets)
        for bucket in result.buckets:
            result.communications += _rebuild_bucket(cluster, bucket)
        _update_observed_ips(cluster, result.buckets[0], result.buckets[-1] + HOUR)
        refresh_rollup(cluster, result.buckets, since=rebuild_since)  # the day summaries of the days touched
        versions.bump([cluster.pk])  # what pages keep of the cluster's communications is out of date
        if high is not None:
            state.last_raw_flow_id = high
        state.last_run = timezone.now()
        state.save(update_fields=["last_raw_flow_id", "last_run"])
    log.info("%s", result)
    return result

