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
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from django.db import models, transaction

from flows import versions
from flows.ingest.inventory import (
    ENDPOINT_KINDS,
    WORKLOAD_KINDS,
    EndpointsObj,
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
    ServiceEndpoint,
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


# ----------------------------------------------------------------------------------------------- applier

WorkloadKey = tuple[str, str, str]  # (namespace, kind, name)
PodKey = tuple[str, str, str]  # (namespace, name, uid)
ServiceKey = tuple[str, str]  # (namespace, name)


@dataclass(frozen=True)
class _Namespaces:
    """The namespace rows of the cluster once applied: what every later step needs to place its objects."""

    rows: dict[str, Namespace]

    def id(self, name: str) -> int:
        return self.rows[name].pk

    @property
    def names(self) -> dict[int, str]:
        return {row.pk: name for name, row in self.rows.items()}


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
        self.services: dict[ServiceKey, ServiceObj] = {}
        self.endpoints: dict[ServiceKey, list[EndpointsObj]] = defaultdict(list)
        self.pods: dict[PodKey, PodObj] = {}
        self.policies: dict[tuple[str, str], NetworkPolicyObj] = {}
        for obj in snapshot.objects:
            self._add(obj)
        # The namespaces the snapshot speaks for: those it lists, and those any of its objects live in.
        # A dump of one namespace (`kubectl get ... -n shop`) thus deletes nothing in the others; a live list
        # at the cluster scope speaks for every namespace (``Snapshot.all_namespaces``), see ``covers``.
        self.covered = set(self.namespaces) | self.referenced_namespaces()
        # Pods the API said were deleted (a watch), and the bare-Pod workloads that go with them.
        self.removed_pods: set[PodKey] = {(p.namespace, p.name, p.uid) for p in snapshot.deleted}
        self.removed_bare: set[WorkloadKey] = {
            (p.namespace, "Pod", p.name) for p in snapshot.deleted
            if p.owner is None or p.owner.kind not in WORKLOAD_KINDS
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
        elif isinstance(obj, EndpointsObj):
            self.endpoints[(obj.namespace, obj.service)].append(obj)
        elif isinstance(obj, PodObj):
            self.pods[(obj.namespace, obj.name, obj.uid)] = obj
        elif isinstance(obj, NetworkPolicyObj):
            self.policies[(obj.namespace, obj.name)] = obj
        else:  # pragma: no cover - the union above is exhaustive
            raise TypeError(f"not an inventory object: {obj!r}")

    def referenced_namespaces(self) -> set[str]:
        """Namespaces that the snapshot's namespaced objects live in."""
        groups = (self.workloads, self.services, self.endpoints, self.pods, self.policies)
        return {key[0] for group in groups for key in group}

    def deletes(self, kind: str) -> bool:
        """Whether rows of this kind that the snapshot does not list are gone."""
        return self.full and kind in self.snapshot.kinds

    def covers(self, namespace: str) -> bool:
        """Whether the snapshot speaks for the objects of this namespace (so those it lacks are gone)."""
        return self.snapshot.all_namespaces or namespace in self.covered

    def gone(self, kind: str, key: tuple, wanted: Mapping, removed: Collection[tuple] = ()) -> bool:
        """Whether the row of a namespaced object (key starting with its namespace) has been deleted: a full
        snapshot of its kind and namespace lacks it, or the snapshot says so (``removed``)."""
        if key in wanted:
            return False
        return key in removed or (self.covers(key[0]) and self.deletes(kind))

    def run(self) -> ImportStats:
        namespaces = self.apply_namespaces()
        self.apply_nodes()
        pod_workload_ids = self.apply_workloads(namespaces)
        self.apply_services(namespaces)
        self.apply_pods(namespaces, pod_workload_ids)
        self.apply_network_policies(namespaces)
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

    def upsert_namespaced(
        self, model: type[M], objects: Mapping[tuple, Any], namespaces: _Namespaces, kind: str,
        fields: Callable[[Any, tuple], dict[str, Any]], removed: Collection[tuple] = (),
    ) -> tuple[dict[tuple, M], set[tuple], set[int]]:
        """Upsert the namespaced objects of one kind (keyed ``(namespace, name[, uid])``) with their common
        fields plus ``fields(obj, key)``, and soft-delete those gone (``removed``: keys reported deleted);
        return (rows by key, keys touched, ids of the rows deleted now)."""
        names = namespaces.names
        existing = {}
        for row in model.objects.filter(cluster=self.cluster):
            # A pod made again under its old name is a new pod (PodKey has its uid); other kinds go by name.
            key = (names[row.namespace_id], row.name)
            existing[(*key, row.uid) if model is Pod else key] = row
        wanted = {
            key: {"namespace_id": namespaces.id(o.namespace), "name": o.name, "uid": o.uid, "labels": o.labels,
                  "created_at": o.created_at, **fields(o, key)}
            for key, o in objects.items()
        }
        rows, touched = self.upsert(model, existing, wanted, kind)
        gone: set[int] = set()
        if self.deletes(kind) or removed:
            gone = set(self.soft_delete(
                model, [r for k, r in rows.items() if self.gone(kind, k, wanted, removed)], kind))
        return rows, touched, gone

    def sync_children(
        self, model: type[M], parent: str, key_fields: tuple[str, ...],
        wanted: Mapping[int, Mapping[tuple, Mapping[str, Any]]], **constant: Any,
    ) -> set[int]:
        """Make the child rows of each parent exactly those wanted; return the ids of parents whose changed.

        ``wanted`` maps a parent id to its children, each by the values of ``key_fields`` (what tells two
        children of one parent apart) to its other values. ``constant`` values go into every new row.
        """
        have: dict[int, dict[tuple, M]] = defaultdict(dict)
        for chunk in _chunks(sorted(wanted)):
            for row in model.objects.filter(**{f"{parent}_id__in": chunk}):
                have[getattr(row, f"{parent}_id")][tuple(getattr(row, f) for f in key_fields)] = row
        new: list[M] = []
        stale: list[int] = []
        changed: set[int] = set()
        for parent_id, children in wanted.items():
            old = have.get(parent_id, {})
            for key, values in children.items():
                row = old.get(key)
                if row is None:
                    new.append(model(**{f"{parent}_id": parent_id}, **dict(zip(key_fields, key, strict=True)),
                                     **values, **constant))
                    changed.add(parent_id)
                elif fields := _assign(row, dict(values)):
                    self.writer.update(row, fields)
                    changed.add(parent_id)
            for key, row in old.items():
                if key not in children:
                    stale.append(row.pk)
                    changed.add(parent_id)
        _delete_ids(model, stale)
        _create(model, new)
        self.writer.flush_updates(model)
        return changed

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

    def apply_namespaces(self) -> _Namespaces:
        existing = {ns.name: ns for ns in Namespace.objects.filter(cluster=self.cluster)}
        wanted = {
            name: {"name": name, "uid": o.uid, "labels": o.labels, "created_at": o.created_at}
            for name, o in self.namespaces.items()
        }
        implied = self.referenced_namespaces() - set(wanted)
        for name in implied:
            wanted[name] = {"name": name, "uid": "", "labels": {}, "created_at": None}
        rows, _ = self.upsert(Namespace, existing, wanted, "Namespace", implied=implied)
        if self.deletes("Namespace"):
            # Only the row is marked: its workloads, pods and policies stay for the flows of the past.
            self.soft_delete(Namespace, [r for n, r in rows.items() if n not in wanted], "Namespace")
        return _Namespaces(rows)

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

    def apply_workloads(self, namespaces: _Namespaces) -> dict[PodKey, int]:
        """Upsert the workloads (and the placeholders their references imply); return each pod's top-level
        workload id."""
        rows_by_key: dict[WorkloadKey, Workload] = {}
        by_uid: dict[str, WorkloadKey] = {}
        names = namespaces.names
        for row in Workload.objects.filter(cluster=self.cluster):
            key = (names[row.namespace_id], row.kind, row.name)
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
                 "selector": o.selector, "template_labels": o.template_labels, "placeholder": False},
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
                 "selector": {}, "template_labels": {}, "placeholder": True},
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
                # A bare pod is its own template; it has no selector of its own.
                wanted[okey] = _WantedWorkload(
                    {"kind": "Pod", "name": pod.name, "uid": "", "labels": pod.labels, "created_at": pod.created_at,
                     "selector": {}, "template_labels": pod.labels, "placeholder": False},
                    None, BARE_POD,
                )
            pod_owner[pkey] = okey

        # Parents first, so that children can point at their primary keys. A parent (Deployment, CronJob)
        # never has a parent itself, so two rounds are enough.
        rows = dict(rows_by_key)
        implied = {k for k, w in wanted.items() if w.implied}
        for with_parent in (False, True):
            values = {
                key: {**w.values, "namespace_id": namespaces.id(key[0]),
                      "parent_id": rows[w.parent].pk if w.parent else None}
                for key, w in wanted.items() if (w.parent is not None) == with_parent
            }
            stats_keys = {key: wanted[key].stats_key for key in values}
            rows, _ = self.upsert(Workload, rows, values, stats_keys, implied=implied & set(values))

        if self.full or self.removed_bare:
            gone: dict[str, list[Workload]] = defaultdict(list)
            for key, row in rows.items():
                # Bare-Pod workloads come and go with the pods of the snapshot (kind "Pod").
                if self.gone(key[1], key, wanted, self.removed_bare):
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

        return {pkey: rows[top(okey)].pk for pkey, okey in pod_owner.items()}

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

    def apply_services(self, namespaces: _Namespaces) -> None:
        # A deleted service keeps its addresses, ports and endpoints: old flows to its ClusterIP still resolve.
        rows, touched, _ = self.upsert_namespaced(
            Service, self.services, namespaces, "Service",
            lambda o, _: {"service_type": o.service_type, "selector": o.selector},
        )
        ids = {key: rows[key].pk for key in self.services}
        changed = self.sync_children(
            ServiceAddress, "service", ("ip",),
            {ids[key]: {(ip,): {} for ip in o.cluster_ips} for key, o in self.services.items()},
            cluster=self.cluster,
        )
        changed |= self.sync_children(
            ServicePort, "service", ("port", "protocol"),
            {ids[key]: {(p.port, p.protocol): {"name": p.name, "target_port": p.target_port,
                                               "target_port_name": p.target_port_name} for p in o.ports}
             for key, o in self.services.items()},
        )
        changed |= self.apply_endpoints(rows)
        key_of = {row.pk: key for key, row in rows.items()}
        self.promote("Service", {key_of[pk] for pk in changed}, touched)

    def apply_endpoints(self, services: Mapping[ServiceKey, Service]) -> set[int]:
        """Endpoints of the Services without a selector, from EndpointSlices (else legacy Endpoints).

        Services with a selector need none: their pods say where traffic lands. When the snapshot lists
        endpoints completely (a full import with that kind), a selectorless Service of a covered namespace
        that has none left loses its old ones; otherwise only the Services the snapshot has endpoints for
        change.
        """
        complete = self.full and any(kind in self.snapshot.kinds for kind in ENDPOINT_KINDS)
        wanted: dict[int, dict[tuple, dict[str, Any]]] = {}
        for key, service in services.items():
            if service.selector or service.deleted_at is not None:
                continue
            objects = self.endpoints.get(key, [])
            # A Service has both when the cluster mirrors its slices into Endpoints: the slices are the truth.
            slices = [o for o in objects if o.kind == "EndpointSlice"] or objects
            if slices or (complete and self.covers(key[0])):
                wanted[service.pk] = {(e.ip, e.port, e.protocol): {"name": e.name} for o in slices for e in o.endpoints}
        orphans = sum(len(objects) for key, objects in self.endpoints.items() if key not in services)
        if orphans:
            self.stats.ignored["endpoints of a Service not in the inventory"] = orphans
        return self.sync_children(ServiceEndpoint, "service", ("ip", "port", "protocol"), wanted)

    # ------------------------------------------------------------------------------------------------ pods

    def apply_pods(self, namespaces: _Namespaces, pod_workload_ids: Mapping[PodKey, int]) -> None:
        rows, touched, gone = self.upsert_namespaced(
            Pod, self.pods, namespaces, "Pod",
            lambda o, key: {"workload_id": pod_workload_ids[key], "node_name": o.node_name, "host_ip": o.host_ip,
                            "host_network": o.host_network},
            removed=self.removed_pods,
        )
        key_of = {row.pk: key for key, row in rows.items()}
        changed = {key_of[pk] for pk in self.sync_children(
            ContainerPort, "pod", ("port", "protocol"),
            {rows[key].pk: {(p.port, p.protocol): {"name": p.name} for p in o.container_ports}
             for key, o in self.pods.items()},
        )}
        changed |= self.apply_pod_addresses(rows, sorted(rows[key].pk for key in self.pods), gone)
        self.promote("Pod", changed, touched)

    def apply_pod_addresses(self, rows: dict[PodKey, Pod], pod_ids: list[int], gone: set[int]) -> set[PodKey]:
        """Keep the IP history true to the snapshot (the rules are in the module docstring)."""
        observed_at = self.observed_at
        # Open addresses of the whole cluster (an IP may move away from a pod the snapshot does not list)
        # and the whole history of the snapshot's pods.
        addresses: dict[int, PodAddress] = {
            a.pk: a for a in PodAddress.objects.filter(cluster=self.cluster, valid_to__isnull=True)
        }
        for chunk in _chunks(pod_ids):
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

    def apply_network_policies(self, namespaces: _Namespaces) -> None:
        self.upsert_namespaced(NetworkPolicy, self.policies, namespaces, "NetworkPolicy",
                               lambda o, _: {"spec": o.spec, "manifest": o.manifest})


def apply_snapshot(
    cluster: Cluster, objects: Snapshot | Iterable[InventoryObj], *, observed_at: datetime, full: bool
) -> ImportStats:
    """Upsert a snapshot of ``cluster`` as seen at ``observed_at``; the one write path of the inventory.

    ``full``: the snapshot lists every object of each kind it has (``Snapshot.kinds``), so rows of those
    kinds that it does not list are soft-deleted (``deleted_at = observed_at``) and their open addresses
    closed, in the namespaces it covers (every one with ``Snapshot.all_namespaces``). With ``full=False``
    nothing is deleted but the pods of ``Snapshot.deleted``. An object that reappears is undeleted.
    """
    if observed_at.tzinfo is None:
        raise ValueError("observed_at must be timezone-aware")
    snapshot = objects if isinstance(objects, Snapshot) else Snapshot.of(objects)
    with transaction.atomic():
        stats = _Applier(cluster, snapshot, observed_at, full).run()
        if stats.changed:
            versions.bump([cluster.pk])
        return stats
