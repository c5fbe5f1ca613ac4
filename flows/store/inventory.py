"""The one write path of the inventory: a parsed snapshot of a cluster in, upserted rows out.

``apply_snapshot`` is used by ``import_inventory`` and will be used by the live API sync; it knows
nothing of files. It loads the cluster's existing rows into dicts once, compares, and writes only what
differs with bulk statements, all in one transaction, so that:

- re-applying the same snapshot issues no UPDATE at all (values are compared before saving);
- the number of queries does not grow with the number of objects (a 5,000-pod dump is a few seconds);
- a failure leaves the database as it was.

Choices where Kubernetes data is incomplete or odd:

- An owner named by an ownerReference but absent from the snapshot and the database becomes a
  *placeholder* workload of that kind and name (empty selector and labels), so its pods still roll up
  to one owner; a later dump that has the owner fills the same row in. A placeholder ReplicaSet gets
  its Deployment as parent when the name is ``<deployment>-<pod-template-hash>`` and that Deployment is
  known; a placeholder Job gets its CronJob when the name is ``<cronjob>-<digits>`` and it is known.
- An owner of a kind that is not a workload kind (a mirror pod's Node, a custom resource such as an
  Argo Rollout) is not followed: the object is then top-level (a pod gets a bare-Pod workload).
- Pod addresses are half-open intervals ``[valid_from, valid_to)``, matching how flows are resolved.
  ``valid_from`` is the pod's startTime, else creationTimestamp, else the observation time. A pod that
  Succeeded or Failed keeps its IP in the API but has released it: its address is closed at the last
  container's finishedAt (else the observation time) and it never holds an IP against a running pod.
  When several running pods claim one IP (inconsistent dump), the one started last holds it.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from django.db import models, transaction

from flows.ingest.inventory import (
    CONTROLLER_LABELS,
    WORKLOAD_KINDS,
    InventoryObj,
    NamespaceObj,
    NetworkPolicyObj,
    NodeObj,
    OwnerRef,
    PodObj,
    ServiceObj,
    Snapshot,
    WorkloadObj,
)
from flows.models import (
    Cluster,
    ContainerPort,
    Namespace,
    NetworkPolicy,
    Node,
    Pod,
    PodAddress,
    Service,
    ServiceAddress,
    ServicePort,
    Workload,
)

M = TypeVar("M", bound=models.Model)

BARE_POD = "bare Pod"  # stats key of the workloads made for pods that nothing owns
# The controller an intermediate workload may have above it (design §2 owner chains).
PARENT_KIND = {"ReplicaSet": "Deployment", "Job": "CronJob"}
_CHUNK = 500  # ids per IN (...) list, well below SQLite's variable limit
_BATCH = 500  # rows per bulk statement
_JOB_SUFFIX = re.compile(r"^(?P<cronjob>.+)-\d+$")
_STATS_ORDER = ("Namespace", "Node", "Deployment", "StatefulSet", "DaemonSet", "CronJob", "Job", "ReplicaSet",
                BARE_POD, "Pod", "Service", "NetworkPolicy")


# ----------------------------------------------------------------------------------------------- stats


@dataclass
class KindStats:
    created: int = 0
    updated: int = 0  # includes undeleted rows
    deleted: int = 0
    unchanged: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deleted)


@dataclass
class ImportStats:
    kinds: dict[str, KindStats] = field(default_factory=lambda: defaultdict(KindStats))
    ignored: dict[str, int] = field(default_factory=dict)
    addresses_opened: int = 0
    addresses_closed: int = 0  # open addresses closed, plus closed intervals cut at an IP move
    placeholders: list[str] = field(default_factory=list)  # "ReplicaSet shop/cart-7d9f" made for pods

    def __getitem__(self, kind: str) -> KindStats:
        return self.kinds[kind]

    @property
    def changed(self) -> bool:
        return bool(self.addresses_opened or self.addresses_closed or any(s.changed for s in self.kinds.values()))

    def summary_lines(self) -> list[str]:
        order = [k for k in _STATS_ORDER if k in self.kinds] + sorted(set(self.kinds) - set(_STATS_ORDER))
        width = max([len(k) for k in order] + [4])
        lines = [f"{'kind':<{width}}  created  updated  deleted  unchanged"]
        for kind in order:
            s = self.kinds[kind]
            lines.append(f"{kind:<{width}}  {s.created:7}  {s.updated:7}  {s.deleted:7}  {s.unchanged:9}")
        lines.append(f"pod addresses: {self.addresses_opened} opened, {self.addresses_closed} closed")
        if self.placeholders:
            shown = ", ".join(self.placeholders[:10])
            more = f" and {len(self.placeholders) - 10} more" if len(self.placeholders) > 10 else ""
            lines.append(f"owners missing from the input, kept as placeholders: {shown}{more}")
        if self.ignored:
            lines.append("ignored kinds: " + ", ".join(f"{k} {n}" for k, n in sorted(self.ignored.items())))
        return lines


# ----------------------------------------------------------------------------------------------- helpers


def _chunks(values: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _assign(row: models.Model, values: dict[str, Any]) -> list[str]:
    """Set the values that differ and return their names; an equal value is never written."""
    changed = []
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed.append(name)
    return changed


class _Writer:
    """Collects creates and updates per model, then writes them with bulk statements."""

    def __init__(self) -> None:
        self.updates: dict[type[models.Model], dict[tuple[str, ...], list[models.Model]]] = defaultdict(
            lambda: defaultdict(list)
        )

    def update(self, row: models.Model, fields: Iterable[str]) -> None:
        self.updates[type(row)][tuple(sorted(fields))].append(row)

    def flush_updates(self, model: type[models.Model]) -> None:
        # Rows are grouped by the set of fields that changed, so no statement writes an unchanged column.
        for fields, rows in self.updates.pop(model, {}).items():
            model.objects.bulk_update(rows, list(fields), batch_size=_BATCH)


def _create(model: type[M], rows: list[M]) -> list[M]:
    # PostgreSQL and SQLite >= 3.35 return the new primary keys, which the next steps need.
    return model.objects.bulk_create(rows, batch_size=_BATCH) if rows else rows


def _delete_ids(model: type[models.Model], ids: list[int]) -> None:
    for chunk in _chunks(sorted(ids)):
        model.objects.filter(id__in=chunk).delete()


def _start(pod: PodObj, observed_at: datetime) -> datetime:
    return pod.start_time or pod.created_at or observed_at


def _selector_from_labels(labels: dict[str, str]) -> dict[str, Any]:
    match = {k: v for k, v in labels.items() if k not in CONTROLLER_LABELS}
    # {} rather than {"matchLabels": {}}: an empty selector would select every pod of the namespace.
    return {"matchLabels": match} if match else {}


# ----------------------------------------------------------------------------------------------- applier

WorkloadKey = tuple[str, str, str]  # (namespace, kind, name)
PodKey = tuple[str, str, str]  # (namespace, name, uid)


@dataclass
class _WantedWorkload:
    values: dict[str, Any]  # model field values except namespace_id / parent_id
    parent: WorkloadKey | None
    stats_key: str
    implied: bool = False  # a placeholder: created if missing, never overwrites an existing row


class _Applier:
    def __init__(self, cluster: Cluster, snapshot: Snapshot, observed_at: datetime, full: bool) -> None:
        self.cluster = cluster
        self.snapshot = snapshot
        self.observed_at = observed_at
        self.full = full
        self.stats = ImportStats(ignored=dict(snapshot.ignored))
        self.writer = _Writer()
        # The last object with a key wins (the same object listed twice, or in two files).
        self.namespaces: dict[str, NamespaceObj] = {}
        self.nodes: dict[str, NodeObj] = {}
        self.workloads: dict[WorkloadKey, WorkloadObj] = {}
        self.services: dict[tuple[str, str], ServiceObj] = {}
        self.pods: dict[PodKey, PodObj] = {}
        self.policies: dict[tuple[str, str], NetworkPolicyObj] = {}
        for obj in snapshot.objects:
            self._add(obj)
        # The namespaces the snapshot speaks for: those it lists, and those any of its objects live in.
        # A dump of one namespace (`kubectl get ... -n shop`) thus deletes nothing in the others.
        self.covered = set(self.namespaces) | {
            key[0] for keys in (self.workloads, self.services, self.pods, self.policies) for key in keys
        }

    def _add(self, obj: InventoryObj) -> None:
        if isinstance(obj, NamespaceObj):
            self.namespaces[obj.name] = obj
        elif isinstance(obj, NodeObj):
            self.nodes[obj.name] = obj
        elif isinstance(obj, WorkloadObj):
            self.workloads[(obj.namespace, obj.kind, obj.name)] = obj
        elif isinstance(obj, ServiceObj):
            self.services[(obj.namespace, obj.name)] = obj
        elif isinstance(obj, PodObj):
            self.pods[(obj.namespace, obj.name, obj.uid)] = obj
        elif isinstance(obj, NetworkPolicyObj):
            self.policies[(obj.namespace, obj.name)] = obj
        else:  # pragma: no cover - the union above is exhaustive
            raise TypeError(f"not an inventory object: {obj!r}")

    def deletes(self, kind: str) -> bool:
        """Whether rows of this kind that the snapshot does not list are gone."""
        return self.full and kind in self.snapshot.kinds

    def gone(self, kind: str, key: tuple, wanted: Mapping) -> bool:
        """Whether the row of a namespaced object (key starting with its namespace) has been deleted."""
        return key not in wanted and key[0] in self.covered and self.deletes(kind)

    def run(self) -> ImportStats:
        self.apply_namespaces()
        self.apply_nodes()
        self.apply_workloads()
        self.apply_services()
        self.apply_pods()
        self.apply_network_policies()
        return self.stats

    # -------------------------------------------------------------------------------------- generic upsert

    def upsert(
        self, model: type[M], existing: dict[Any, M], wanted: dict[Any, dict[str, Any]], stats_key: str | dict,
        *, implied: Iterable[Any] = (),
    ) -> tuple[dict[Any, M], set[Any]]:
        """Create or update rows so that each wanted key has the wanted values (and is not deleted).

        Keys in ``implied`` are only ensured to exist and be undeleted: they were inferred from a reference
        (a missing owner), so their other values are not known to be better than what the row has.
        ``stats_key`` is a kind name, or a dict key -> kind name. Returns every row by key, and the keys of
        the rows created or updated.
        """
        implied = set(implied)
        created: list[M] = []
        created_keys: list[Any] = []
        touched: set[Any] = set()
        for key, values in wanted.items():
            kind = stats_key if isinstance(stats_key, str) else stats_key[key]
            row = existing.get(key)
            values = {**values, "deleted_at": None}
            if row is None:
                created.append(model(cluster=self.cluster, **values))
                created_keys.append(key)
                touched.add(key)
                self.stats[kind].created += 1
                continue
            changed = _assign(row, {"deleted_at": None} if key in implied else values)
            if changed:
                self.writer.update(row, changed)
                touched.add(key)
                self.stats[kind].updated += 1
            else:
                self.stats[kind].unchanged += 1
        self.writer.flush_updates(model)
        rows = dict(existing)
        rows.update(zip(created_keys, _create(model, created), strict=True))
        return rows, touched

    def promote(self, kind: str, keys: Iterable[Any], touched: set[Any]) -> None:
        """An object whose own row was unchanged but whose ports or addresses changed counts as updated."""
        moved = len(set(keys) - touched)
        self.stats[kind].unchanged -= moved
        self.stats[kind].updated += moved

    def soft_delete(self, model: type[models.Model], rows: Iterable[models.Model], stats_key: str) -> list[int]:
        ids = [row.pk for row in rows if row.deleted_at is None]
        for row in rows:
            if row.deleted_at is None:
                row.deleted_at = self.observed_at
        for chunk in _chunks(sorted(ids)):
            model.objects.filter(id__in=chunk).update(deleted_at=self.observed_at)
        self.stats[stats_key].deleted += len(ids)
        return ids

    # ------------------------------------------------------------------------------------------ namespaces

    def apply_namespaces(self) -> None:
        existing = {ns.name: ns for ns in Namespace.objects.filter(cluster=self.cluster)}
        wanted = {
            name: {"name": name, "uid": o.uid, "labels": o.labels, "created_at": o.created_at}
            for name, o in self.namespaces.items()
        }
        referenced = {key[0] for group in (self.workloads, self.services, self.pods, self.policies) for key in group}
        implied = referenced - set(wanted)
        for name in implied:
            wanted[name] = {"name": name, "uid": "", "labels": {}, "created_at": None}
        self.ns_rows, _ = self.upsert(Namespace, existing, wanted, "Namespace", implied=implied)
        self.ns_names = {row.pk: name for name, row in self.ns_rows.items()}
        if self.deletes("Namespace"):
            # Only the row is marked: its workloads, pods and policies stay for the flows of the past.
            self.soft_delete(Namespace, [r for n, r in self.ns_rows.items() if n not in wanted], "Namespace")

    # ----------------------------------------------------------------------------------------------- nodes

    def apply_nodes(self) -> None:
        existing = {node.name: node for node in Node.objects.filter(cluster=self.cluster)}
        # Every pod tells the IP of its node (hostNetwork pods use no other): keep those as node addresses.
        host_ips: dict[str, set[str]] = defaultdict(set)
        for pod in self.pods.values():
            if pod.node_name:
                host_ips[pod.node_name].update(pod.host_ips)
        wanted: dict[str, dict[str, Any]] = {}
        for name, o in self.nodes.items():
            addresses = [address for _, address in o.addresses]
            addresses += sorted(host_ips.get(name, set()) - set(addresses))
            wanted[name] = {"name": name, "uid": o.uid, "labels": o.labels, "created_at": o.created_at,
                            "addresses": addresses}
        for name in set(host_ips) - set(wanted):
            # A node known only from its pods: no Node object says its other addresses are gone, so keep them.
            row = existing.get(name)
            have = list(row.addresses or []) if row is not None else []
            wanted[name] = {"name": name, "addresses": have + sorted(host_ips[name] - set(have))}
            if row is not None:
                wanted[name] |= {"uid": row.uid, "labels": row.labels, "created_at": row.created_at}
        rows, _ = self.upsert(Node, existing, wanted, "Node")
        if self.deletes("Node"):
            self.soft_delete(Node, [r for n, r in rows.items() if n not in wanted], "Node")

    # ------------------------------------------------------------------------------------------- workloads

    def apply_workloads(self) -> None:
        rows_by_key: dict[WorkloadKey, Workload] = {}
        by_uid: dict[str, WorkloadKey] = {}
        for row in Workload.objects.filter(cluster=self.cluster):
            key = (self.ns_names[row.namespace_id], row.kind, row.name)
            rows_by_key[key] = row
            if row.uid:
                by_uid[row.uid] = key
        key_of_id = {row.pk: key for key, row in rows_by_key.items()}
        for key, o in self.workloads.items():
            if o.uid:
                by_uid[o.uid] = key

        def resolve(namespace: str, ref: OwnerRef) -> WorkloadKey:
            # The uid names one object for certain; kind and name are the fallback for dumps without uids.
            key = by_uid.get(ref.uid) if ref.uid else None
            if key is not None and key[0] == namespace and key[1] == ref.kind:
                return key
            return (namespace, ref.kind, ref.name)

        def known(key: WorkloadKey) -> bool:
            return key in self.workloads or key in rows_by_key

        wanted: dict[WorkloadKey, _WantedWorkload] = {}
        for key, o in self.workloads.items():
            parent = None
            if o.owner is not None and o.owner.kind == PARENT_KIND.get(o.kind):
                parent = resolve(o.namespace, o.owner)
            wanted[key] = _WantedWorkload(
                {"kind": o.kind, "name": o.name, "uid": o.uid, "labels": o.labels, "created_at": o.created_at,
                 "selector": o.selector, "template_labels": o.template_labels},
                parent, o.kind,
            )

        def ensure(key: WorkloadKey, uid: str, child: str, pod: PodObj | None) -> None:
            """Make sure an owner that ``child`` names exists, as a placeholder if it is nowhere else."""
            if key in wanted:
                return
            row = rows_by_key.get(key)
            if row is not None:
                parent = key_of_id.get(row.parent_id) if row.parent_id else None
            else:
                parent = self.infer_parent(key, pod, known)
                self.stats.placeholders.append(f"{key[1]} {key[0]}/{key[2]} (owner of {child})")
            wanted[key] = _WantedWorkload(
                {"kind": key[1], "name": key[2], "uid": uid, "labels": {}, "created_at": None,
                 "selector": {}, "template_labels": {}},
                parent, BARE_POD if key[1] == "Pod" else key[1], implied=True,
            )
            if parent is not None:
                ensure(parent, "", f"{key[1]} {key[0]}/{key[2]}", None)

        for key, item in list(wanted.items()):
            if item.parent is not None:
                o = self.workloads[key]
                ensure(item.parent, o.owner.uid if o.owner else "", f"{o.kind} {o.namespace}/{o.name}", None)

        # Each pod's direct owner: a workload, or a bare-Pod workload of its own name.
        pod_owner: dict[PodKey, WorkloadKey] = {}
        for pkey, pod in self.pods.items():
            if pod.owner is not None and pod.owner.kind in WORKLOAD_KINDS:
                okey = resolve(pod.namespace, pod.owner)
                ensure(okey, pod.owner.uid, f"Pod {pod.namespace}/{pod.name}", pod)
            else:
                okey = (pod.namespace, "Pod", pod.name)
                wanted[okey] = _WantedWorkload(
                    {"kind": "Pod", "name": pod.name, "uid": "", "labels": pod.labels, "created_at": pod.created_at,
                     "selector": _selector_from_labels(pod.labels), "template_labels": pod.labels},
                    None, BARE_POD,
                )
            pod_owner[pkey] = okey

        # Parents first, so that children can point at their primary keys. A parent (Deployment, CronJob)
        # never has a parent itself, so two rounds are enough.
        rows = dict(rows_by_key)
        implied = {k for k, w in wanted.items() if w.implied}
        for with_parent in (False, True):
            values = {
                key: {**w.values, "namespace_id": self.ns_rows[key[0]].pk,
                      "parent_id": rows[w.parent].pk if w.parent else None}
                for key, w in wanted.items() if (w.parent is not None) == with_parent
            }
            stats_keys = {key: wanted[key].stats_key for key in values}
            rows, _ = self.upsert(Workload, rows, values, stats_keys, implied=implied & set(values))
        self.wl_rows = rows

        if self.full:
            gone: dict[str, list[Workload]] = defaultdict(list)
            for key, row in rows.items():
                # Bare-Pod workloads come and go with the pods of the snapshot (kind "Pod").
                if self.gone(key[1], key, wanted):
                    gone[BARE_POD if key[1] == "Pod" else key[1]].append(row)
            for stats_key, gone_rows in gone.items():
                self.soft_delete(Workload, gone_rows, stats_key)

        # Pods point at the top of their owner chain.
        parent_of = {key: w.parent for key, w in wanted.items()}

        def top(key: WorkloadKey) -> WorkloadKey:
            for _ in range(4):  # chains are at most two deep; the bound only guards against a cycle
                parent = parent_of.get(key)
                if parent is None:
                    return key
                key = parent
            return key

        self.pod_workload_id = {pkey: rows[top(okey)].pk for pkey, okey in pod_owner.items()}

    def infer_parent(self, key: WorkloadKey, pod: PodObj | None, known: Any) -> WorkloadKey | None:
        """The controller above a placeholder ReplicaSet or Job, when its name gives it away for sure."""
        namespace, kind, name = key
        if kind == "ReplicaSet" and pod is not None:
            suffix = pod.labels.get("pod-template-hash", "")
            if suffix and name.endswith(f"-{suffix}"):
                candidate = (namespace, "Deployment", name[: -len(suffix) - 1])
                return candidate if known(candidate) else None
        if kind == "Job":
            match = _JOB_SUFFIX.match(name)
            if match:
                candidate = (namespace, "CronJob", match["cronjob"])
                return candidate if known(candidate) else None
        return None

    # -------------------------------------------------------------------------------------------- services

    def apply_services(self) -> None:
        existing = {(self.ns_names[s.namespace_id], s.name): s for s in Service.objects.filter(cluster=self.cluster)}
        wanted = {}
        for key, o in self.services.items():
            wanted[key] = {
                "namespace_id": self.ns_rows[o.namespace].pk, "name": o.name, "uid": o.uid, "labels": o.labels,
                "created_at": o.created_at, "service_type": o.service_type, "selector": o.selector,
                "cluster_ips": list(o.cluster_ips),
                "ports": [
                    {"name": p.name, "port": p.port, "protocol": p.protocol,
                     "targetPort": p.target_port if p.target_port is not None else p.target_port_name}
                    for p in o.ports
                ],
            }
        rows, touched = self.upsert(Service, existing, wanted, "Service")
        if self.deletes("Service"):
            # A deleted service keeps its addresses and ports: old flows to its ClusterIP still resolve.
            self.soft_delete(Service, [r for k, r in rows.items() if self.gone("Service", k, wanted)], "Service")
        if not self.services:
            return

        service_ids = {key: rows[key].pk for key in self.services}
        wanted_ids = set(service_ids.values())
        old_addresses: dict[int, dict[str, int]] = defaultdict(dict)
        for chunk in _chunks(sorted(wanted_ids)):
            for pk, service_id, ip in ServiceAddress.objects.filter(service_id__in=chunk).values_list(
                "id", "service_id", "ip"
            ):
                old_addresses[service_id][ip] = pk
        new_addresses: list[ServiceAddress] = []
        stale: list[int] = []
        changed_services: set[tuple[str, str]] = set()
        for key, o in self.services.items():
            sid = service_ids[key]
            have = old_addresses.get(sid, {})
            for ip in o.cluster_ips:
                if ip not in have:
                    new_addresses.append(ServiceAddress(service_id=sid, cluster=self.cluster, ip=ip))
                    changed_services.add(key)
            for ip, pk in have.items():
                if ip not in o.cluster_ips:
                    stale.append(pk)
                    changed_services.add(key)
        _delete_ids(ServiceAddress, stale)
        _create(ServiceAddress, new_addresses)

        old_ports: dict[int, dict[tuple[int, str], ServicePort]] = defaultdict(dict)
        for chunk in _chunks(sorted(wanted_ids)):
            for port in ServicePort.objects.filter(service_id__in=chunk):
                old_ports[port.service_id][(port.port, port.protocol)] = port
        new_ports: list[ServicePort] = []
        stale = []
        for key, o in self.services.items():
            sid = service_ids[key]
            have = old_ports.get(sid, {})
            seen = set()
            for p in o.ports:
                values = {"name": p.name, "target_port": p.target_port, "target_port_name": p.target_port_name}
                seen.add((p.port, p.protocol))
                row = have.get((p.port, p.protocol))
                if row is None:
                    new_ports.append(ServicePort(service_id=sid, port=p.port, protocol=p.protocol, **values))
                    changed_services.add(key)
                elif changed := _assign(row, values):
                    self.writer.update(row, changed)
                    changed_services.add(key)
            for port_key, row in have.items():
                if port_key not in seen:
                    stale.append(row.pk)
                    changed_services.add(key)
        _delete_ids(ServicePort, stale)
        _create(ServicePort, new_ports)
        self.writer.flush_updates(ServicePort)
        self.promote("Service", changed_services, touched)

    # ------------------------------------------------------------------------------------------------ pods

    def apply_pods(self) -> None:
        existing: dict[PodKey, Pod] = {}
        for row in Pod.objects.filter(cluster=self.cluster):
            existing[(self.ns_names[row.namespace_id], row.name, row.uid)] = row
        wanted = {
            key: {"namespace_id": self.ns_rows[o.namespace].pk, "name": o.name, "uid": o.uid, "labels": o.labels,
                  "created_at": o.created_at, "workload_id": self.pod_workload_id[key], "node_name": o.node_name,
                  "host_ip": o.host_ip, "host_network": o.host_network}
            for key, o in self.pods.items()
        }
        known_ids = sorted(existing[key].pk for key in wanted if key in existing)
        rows, touched = self.upsert(Pod, existing, wanted, "Pod")
        gone: set[int] = set()
        if self.deletes("Pod"):
            gone = set(self.soft_delete(Pod, [r for k, r in rows.items() if self.gone("Pod", k, wanted)], "Pod"))
        changed = self.apply_container_ports(rows, known_ids)
        changed |= self.apply_pod_addresses(rows, known_ids, gone)
        self.promote("Pod", changed, touched)

    def apply_container_ports(self, rows: dict[PodKey, Pod], known_ids: list[int]) -> set[PodKey]:
        old: dict[int, dict[tuple[int, str], ContainerPort]] = defaultdict(dict)
        for chunk in _chunks(known_ids):
            for port in ContainerPort.objects.filter(pod_id__in=chunk):
                old[port.pod_id][(port.port, port.protocol)] = port
        new: list[ContainerPort] = []
        stale: list[int] = []
        changed: set[PodKey] = set()
        for key, o in self.pods.items():
            pod_id = rows[key].pk
            have = old.get(pod_id, {})
            for p in o.container_ports:
                row = have.get((p.port, p.protocol))
                if row is None:
                    new.append(ContainerPort(pod_id=pod_id, name=p.name, port=p.port, protocol=p.protocol))
                    changed.add(key)
                elif row.name != p.name:
                    row.name = p.name
                    self.writer.update(row, ["name"])
                    changed.add(key)
            wanted_ports = {(p.port, p.protocol) for p in o.container_ports}
            for port_key, row in have.items():
                if port_key not in wanted_ports:
                    stale.append(row.pk)
                    changed.add(key)
        _delete_ids(ContainerPort, stale)
        _create(ContainerPort, new)
        self.writer.flush_updates(ContainerPort)
        return changed

    def apply_pod_addresses(self, rows: dict[PodKey, Pod], known_ids: list[int], gone: set[int]) -> set[PodKey]:
        """Keep the IP history true to the snapshot (the rules are in the module docstring)."""
        observed_at = self.observed_at
        # Open addresses of the whole cluster (an IP may move away from a pod the snapshot does not list)
        # and the whole history of the snapshot's pods.
        addresses: dict[int, PodAddress] = {
            a.pk: a for a in PodAddress.objects.filter(cluster=self.cluster, valid_to__isnull=True)
        }
        for chunk in _chunks(known_ids):
            addresses.update((a.pk, a) for a in PodAddress.objects.filter(pod_id__in=chunk))
        by_pod: dict[int, list[PodAddress]] = defaultdict(list)
        for address in addresses.values():
            by_pod[address.pod_id].append(address)
        key_of = {row.pk: key for key, row in rows.items() if key in self.pods}
        deleted_pods = gone | {row.pk for row in rows.values() if row.deleted_at is not None}

        # Who holds each IP now: among running pods that list it, the one started last.
        holders: dict[str, list[tuple[datetime, PodKey]]] = defaultdict(list)
        for key, o in self.pods.items():
            if o.host_network:
                continue
            for ip in o.pod_ips:
                holders[ip].append((_start(o, observed_at), key))
        winner: dict[str, tuple[int, datetime]] = {}
        for ip, claims in holders.items():
            running = [(start, key) for start, key in claims if not self.pods[key].terminated]
            if running:
                start, key = max(running)
                winner[ip] = (rows[key].pk, start)

        changed: set[PodKey] = set()
        closing: list[PodAddress] = []
        for address in addresses.values():
            if address.valid_to is not None:
                continue
            pod_id, ip = address.pod_id, address.ip
            held = winner.get(ip)
            if held is not None and held[0] == pod_id:
                continue
            ends: list[datetime] = []
            if held is not None:
                ends.append(held[1])  # the IP moved to another pod when that pod started
            # A pod of the snapshot that no longer holds the IP (it changed, or the pod finished).
            pod = self.pods.get(key_of[pod_id]) if pod_id in key_of else None
            if pod is not None:
                ends.append(pod.finished_at if pod.terminated and pod.finished_at else observed_at)
            elif pod_id in deleted_pods:
                ends.append(observed_at)
            # The IP shows up on a finished pod that started after this address opened: it moved then.
            ends += [_start(self.pods[k], observed_at) for _, k in holders.get(ip, ())
                     if rows[k].pk != pod_id and _start(self.pods[k], observed_at) >= address.valid_from]
            if not ends:
                continue  # partial snapshot without this pod, and nobody else has the IP
            address.valid_to = max(address.valid_from, min(ends))
            closing.append(address)
            if pod_id in key_of:
                changed.add(key_of[pod_id])

        opening: list[PodAddress] = []
        for ip, (pod_id, start) in winner.items():
            own = by_pod.get(pod_id, [])
            if any(a.ip == ip and a.valid_to is None for a in own):
                continue
            # A pod seen before with another IP (or the same one, before a gap) got this one after its
            # earlier intervals ended (they include those closed above, at the observation time).
            valid_from = max([start, *(a.valid_to for a in own if a.valid_to is not None)])
            opening.append(PodAddress(cluster=self.cluster, pod_id=pod_id, ip=ip, valid_from=valid_from))
            changed.add(key_of[pod_id])
        # A finished pod seen for the first time still held its IP while it ran: record that interval.
        for key, o in self.pods.items():
            if not o.terminated or o.host_network:
                continue
            pod_id = rows[key].pk
            for ip in o.pod_ips:
                if any(a.ip == ip for a in by_pod.get(pod_id, ())):
                    continue
                start = _start(o, observed_at)
                end = o.finished_at or observed_at
                held = winner.get(ip)
                if held is not None and held[1] >= start:
                    end = min(end, held[1])
                opening.append(PodAddress(cluster=self.cluster, pod_id=pod_id, ip=ip, valid_from=start,
                                          valid_to=max(start, end)))
                changed.add(key)

        # Intervals closed earlier (at an observation time) that run past the moment a new holder started:
        # the new holder's start is the better-known time of the move.
        cut = self.cut_closed_intervals([a for a in opening if a.valid_to is None])
        PodAddress.objects.bulk_update(closing + cut, ["valid_to"], batch_size=_BATCH)
        _create(PodAddress, opening)
        self.stats.addresses_closed += len(closing) + len(cut)
        self.stats.addresses_opened += len(opening)
        return changed

    def cut_closed_intervals(self, opened: list[PodAddress]) -> list[PodAddress]:
        if not opened:
            return []
        starts = {a.ip: (a.pod_id, a.valid_from) for a in opened}
        earliest = min(a.valid_from for a in opened)
        cut: list[PodAddress] = []
        for chunk in _chunks(sorted(starts)):
            for address in PodAddress.objects.filter(
                cluster=self.cluster, ip__in=chunk, valid_to__gt=earliest
            ).exclude(valid_to__isnull=True):
                pod_id, start = starts[address.ip]
                if address.pod_id == pod_id:
                    continue
                if address.valid_from <= start < address.valid_to:
                    address.valid_to = start
                    cut.append(address)
        return cut

    # ------------------------------------------------------------------------------------ network policies

    def apply_network_policies(self) -> None:
        existing = {
            (self.ns_names[p.namespace_id], p.name): p for p in NetworkPolicy.objects.filter(cluster=self.cluster)
        }
        wanted = {
            key: {"namespace_id": self.ns_rows[o.namespace].pk, "name": o.name, "uid": o.uid, "labels": o.labels,
                  "created_at": o.created_at, "spec": o.spec, "manifest": o.manifest}
            for key, o in self.policies.items()
        }
        rows, _ = self.upsert(NetworkPolicy, existing, wanted, "NetworkPolicy")
        if self.deletes("NetworkPolicy"):
            self.soft_delete(NetworkPolicy, [r for k, r in rows.items() if self.gone("NetworkPolicy", k, wanted)],
                             "NetworkPolicy")


def apply_snapshot(
    cluster: Cluster, objects: Snapshot | Iterable[InventoryObj], *, observed_at: datetime, full: bool
) -> ImportStats:
    """Upsert a snapshot of ``cluster`` as seen at ``observed_at``; the one write path of the inventory.

    ``full``: the snapshot lists every object of each kind it has (``Snapshot.kinds``), so rows of those
    kinds that it does not list are soft-deleted (``deleted_at = observed_at``) and their open addresses
    closed. With ``full=False`` nothing is deleted. An object that reappears is undeleted.
    """
    if observed_at.tzinfo is None:
        raise ValueError("observed_at must be timezone-aware")
    snapshot = objects if isinstance(objects, Snapshot) else Snapshot.of(objects)
    with transaction.atomic():
        return _Applier(cluster, snapshot, observed_at, full).run()
