"""Typed reading of Kubernetes objects as the API and `kubectl get -o yaml|json` give them.

Pure Python, no Django: the file importer and the live API sync both turn raw objects into the frozen
records below, and ``store.apply_snapshot`` is the only code that writes them to the database.

Everything is parsed before anything is written, so a bad item anywhere stops the whole import. Error
messages say where the problem is in terms a user can act on: the file, the line where the item starts
(YAML only), the 1-based document and item index, the object, and the field path.

Input may be hostile (it comes over the API too): YAML is read with the safe loader; YAML aliases that expand a
document far beyond what it writes out (an alias bomb: a few lines that stand for billions of values) or that
refer to themselves are refused, and so is a document nested deeper than ``MAX_DEPTH``, YAML or JSON, before
anything walks it recursively.
"""

from __future__ import annotations

import gzip
import ipaddress
import json
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Any, ClassVar

import orjson
import yaml

from flows.ingest.fields import nul_path

# The kinds an inventory is made of; any other kind in a dump is counted and skipped.
WORKLOAD_KINDS: tuple[str, ...] = ("Deployment", "ReplicaSet", "DaemonSet", "StatefulSet", "Job", "CronJob")
ENDPOINT_KINDS: tuple[str, ...] = ("EndpointSlice", "Endpoints")

# API groups each kind may come from. The kind name alone is not enough: Calico, for one, has its own
# `NetworkPolicy` kind (projectcalico.org/v3) with a different schema. An object without apiVersion
# (hand-written) is accepted.
_API_GROUPS: dict[str, frozenset[str]] = {
    "Namespace": frozenset({""}),
    "Node": frozenset({""}),
    "Pod": frozenset({""}),
    "Service": frozenset({""}),
    "EndpointSlice": frozenset({"discovery.k8s.io"}),
    "Endpoints": frozenset({""}),
    "Deployment": frozenset({"apps", "extensions"}),
    "ReplicaSet": frozenset({"apps", "extensions"}),
    "DaemonSet": frozenset({"apps", "extensions"}),
    "StatefulSet": frozenset({"apps"}),
    "Job": frozenset({"batch"}),
    "CronJob": frozenset({"batch"}),
    "NetworkPolicy": frozenset({"networking.k8s.io", "extensions"}),
}

_PROTOCOLS = frozenset({"TCP", "UDP", "SCTP"})
_TERMINATED_PHASES = frozenset({"Succeeded", "Failed"})
_NODE_ADDRESS_TYPES = ("InternalIP", "ExternalIP")
# Fields of a stored NetworkPolicy manifest that change without the policy changing; keeping them would
# make every re-import an update.
_METADATA_NOISE = ("managedFields", "resourceVersion", "generation", "uid", "creationTimestamp", "selfLink")
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


# --------------------------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class OwnerRef:
    """The controlling owner of an object (metadata.ownerReferences with controller: true)."""

    kind: str
    name: str
    uid: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class _Object:
    # The dict fields are never mutated after parsing; they stay dicts because they go to JSON columns.
    name: str
    uid: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NamespaceObj(_Object):
    kind: ClassVar[str] = "Namespace"


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeObj(_Object):
    kind: ClassVar[str] = "Node"
    addresses: tuple[tuple[str, str], ...] = ()  # (type, address), InternalIP/ExternalIP only


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkloadObj(_Object):
    kind: str  # one of WORKLOAD_KINDS
    namespace: str
    selector: dict[str, Any] = field(default_factory=dict)  # a LabelSelector; {} when none is known
    template_labels: dict[str, str] = field(default_factory=dict)
    owner: OwnerRef | None = None


@dataclass(frozen=True, slots=True)
class ServicePortObj:
    port: int
    protocol: str = "TCP"
    name: str = ""
    target_port: int | None = None  # set when targetPort is a number (defaults to port)
    target_port_name: str = ""  # set when targetPort names a container port


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceObj(_Object):
    kind: ClassVar[str] = "Service"
    namespace: str
    service_type: str = "ClusterIP"
    selector: dict[str, str] = field(default_factory=dict)
    cluster_ips: tuple[str, ...] = ()
    ports: tuple[ServicePortObj, ...] = ()


@dataclass(frozen=True, slots=True)
class EndpointObj:
    """One address and port behind a Service; ``port`` None is every port (an EndpointSlice without ports)."""

    ip: str
    port: int | None
    protocol: str = "TCP"
    name: str = ""  # the port's name: it matches the name of the Service port that leads to it


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointsObj(_Object):
    """An EndpointSlice (discovery.k8s.io/v1) or a legacy Endpoints object: where a Service's traffic lands.

    Only Services without a selector need them (``default/kubernetes``, an external database behind a
    Service): the pods of a selector say where the traffic of the others lands.
    """

    kind: str  # one of ENDPOINT_KINDS
    namespace: str
    service: str
    endpoints: tuple[EndpointObj, ...] = ()


@dataclass(frozen=True, slots=True)
class ContainerPortObj:
    port: int
    protocol: str = "TCP"
    name: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class PodObj(_Object):
    kind: ClassVar[str] = "Pod"
    namespace: str
    owner: OwnerRef | None = None
    node_name: str = ""
    host_ips: tuple[str, ...] = ()  # status.hostIPs, else status.hostIP
    pod_ips: tuple[str, ...] = ()  # status.podIPs, else status.podIP
    host_network: bool = False
    container_ports: tuple[ContainerPortObj, ...] = ()
    phase: str = ""
    start_time: datetime | None = None
    finished_at: datetime | None = None  # latest container termination, for Succeeded/Failed pods

    @property
    def host_ip(self) -> str:
        return self.host_ips[0] if self.host_ips else ""

    @property
    def terminated(self) -> bool:
        """Succeeded/Failed pods still list their IP, but it has been released and may be reused."""
        return self.phase in _TERMINATED_PHASES


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkPolicyObj(_Object):
    kind: ClassVar[str] = "NetworkPolicy"
    namespace: str
    spec: dict[str, Any] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)


InventoryObj = NamespaceObj | NodeObj | WorkloadObj | ServiceObj | EndpointsObj | PodObj | NetworkPolicyObj


@dataclass(frozen=True)
class Snapshot:
    """What one read of a cluster saw.

    ``kinds`` are the kinds the snapshot lists completely: with a full import, rows of those kinds that
    are not in it are soft-deleted. From a file it is the set of kinds that have at least one object
    (a dump cannot say "there are no pods"); the live sync, which lists each kind, passes it explicitly.

    ``all_namespaces``: the snapshot lists those kinds in every namespace of the cluster (a live list at the
    cluster scope), so a full import also deletes the objects of namespaces it does not name, a namespace
    that is gone among them. A dump cannot say that (`kubectl get -n shop` looks like `-A` of one namespace),
    so it is False there, and a full import then only speaks for the namespaces the dump names.

    ``deleted``: pods the API reported deleted (a watch's DELETED events, between two full lists). They are
    soft-deleted and their addresses closed whether the import is full or not; an object of ``objects``
    with the same key wins (it exists). Only pods: the watch follows pods, other kinds wait for a full list.
    """

    objects: tuple[InventoryObj, ...]
    kinds: frozenset[str]
    ignored: Mapping[str, int] = field(default_factory=dict)
    all_namespaces: bool = False
    deleted: tuple[PodObj, ...] = ()

    @classmethod
    def of(
        cls, objects: Iterable[InventoryObj], *, kinds: Iterable[str] | None = None,
        ignored: Mapping[str, int] | None = None, all_namespaces: bool = False, deleted: Iterable[PodObj] = (),
    ) -> Snapshot:
        objs = tuple(objects)
        gone = tuple(deleted)
        for obj in gone:
            if not isinstance(obj, PodObj):
                raise TypeError(f"only pods can be reported deleted, not {obj.kind} {obj.name!r}")
        return cls(
            objects=objs,
            kinds=frozenset(kinds) if kinds is not None else frozenset(o.kind for o in objs),
            ignored=dict(ignored or {}),
            all_namespaces=all_namespaces,
            deleted=gone,
        )


# ---------------------------------------------------------------------------------------------- errors


class FieldError(ValueError):
    """A problem with one field of one object; the reader adds where the object is."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


class InventoryError(ValueError):
    """Input that cannot be imported. ``problems`` has one line per bad item (all of them are reported)."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        shown = self.problems[:_MAX_PROBLEMS]
        more = len(self.problems) - len(shown)
        super().__init__("\n".join(shown) + (f"\n... and {more} more problems" if more else ""))


_MAX_PROBLEMS = 50
# Mappings and lists inside one another, the document itself being 1. A Kubernetes object needs about 12 (a
# NetworkPolicy's matchExpressions values); the limit leaves room for CRD-like annotations, not for a bomb.
MAX_DEPTH = 64
# Values that YAML aliases may add beyond twice what a document writes out (see _check_yaml_node).
_ALIAS_ALLOWANCE = 100_000


@dataclass(frozen=True, slots=True)
class Location:
    source: str
    document: int  # 1-based
    item: int | None = None  # 1-based index in a List's items (or a JSON array), None for a lone object
    line: int | None = None  # where the item starts; known for YAML only

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        text = f"{where}: document {self.document}"
        return f"{text}, item {self.item}" if self.item is not None else text


# ---------------------------------------------------------------------------------------- field readers


def _type_name(value: object) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), type(value).__name__
    )


def _mapping(value: object, path: str, *, required: bool = False) -> dict[str, Any]:
    if value is None:
        if required:
            raise FieldError(path, "missing")
        return {}
    if not isinstance(value, dict):
        raise FieldError(path, f"expected a mapping, got {_type_name(value)}")
    return value


def _list(value: object, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise FieldError(path, f"expected a list, got {_type_name(value)}")
    return value


def _str(value: object, path: str, *, required: bool = False) -> str:
    if value is None or value == "":
        if required:
            raise FieldError(path, "missing")
        return ""
    if not isinstance(value, str):
        raise FieldError(path, f"expected a string, got {_type_name(value)} {value!r}")
    return value


def _bool(value: object, path: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise FieldError(path, f"expected true or false, got {value!r}")
    return value


def _port(value: object, path: str) -> int:
    if value is None:
        raise FieldError(path, "missing")
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldError(path, f"expected a port number, got {_type_name(value)} {value!r}")
    if not 1 <= value <= 65535:
        raise FieldError(path, f"port {value} out of range 1-65535")
    return value


def _protocol(value: object, path: str) -> str:
    text = _str(value, path) or "TCP"
    if text not in _PROTOCOLS:
        raise FieldError(path, f"expected TCP, UDP or SCTP, got {text!r}")
    return text


def _ip(value: object, path: str) -> str:
    text = _str(value, path, required=True)
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        raise FieldError(path, f"not an IP address: {text!r}") from None


def _time(value: object, path: str) -> datetime | None:
    if value is None or value == "":
        return None
    # YAML turns an unquoted timestamp into a datetime itself; kubectl quotes them, hand-written files may not.
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise FieldError(path, f"not an RFC 3339 time: {value!r}") from None
    else:
        raise FieldError(path, f"expected a time, got {_type_name(value)} {value!r}")
    # Kubernetes times are UTC; a time without offset can only mean UTC.
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _labels(value: object, path: str) -> dict[str, str]:
    labels = _mapping(value, path)
    for key, val in labels.items():
        if not isinstance(val, str):
            # The API only stores strings; YAML reads an unquoted `1.0` or `true` as something else.
            raise FieldError(f"{path}.{key}", f"expected a string, got {_type_name(val)} {val!r} (quote it)")
    return {str(key): val for key, val in labels.items()}


def _selector(value: object, path: str) -> dict[str, Any]:
    selector = _mapping(value, path)
    result: dict[str, Any] = {}
    if "matchLabels" in selector and selector["matchLabels"] is not None:
        result["matchLabels"] = _labels(selector["matchLabels"], f"{path}.matchLabels")
    if selector.get("matchExpressions"):
        expressions = []
        for i, expr in enumerate(_list(selector["matchExpressions"], f"{path}.matchExpressions")):
            epath = f"{path}.matchExpressions[{i}]"
            expr = _mapping(expr, epath, required=True)
            values = [_str(v, f"{epath}.values[{j}]") for j, v in enumerate(_list(expr.get("values"), epath))]
            item: dict[str, Any] = {
                "key": _str(expr.get("key"), f"{epath}.key", required=True),
                "operator": _str(expr.get("operator"), f"{epath}.operator", required=True),
            }
            if values:
                item["values"] = values
            expressions.append(item)
        result["matchExpressions"] = expressions
    return result


def _plain(value: Any) -> Any:
    """A JSON-storable copy: string keys, times as RFC 3339 text (so that re-reads compare equal)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _owner(metadata: dict[str, Any]) -> OwnerRef | None:
    refs = _list(metadata.get("ownerReferences"), "metadata.ownerReferences")
    parsed: list[tuple[bool, OwnerRef]] = []
    for i, ref in enumerate(refs):
        path = f"metadata.ownerReferences[{i}]"
        ref = _mapping(ref, path, required=True)
        parsed.append(
            (
                _bool(ref.get("controller"), f"{path}.controller"),
                OwnerRef(
                    kind=_str(ref.get("kind"), f"{path}.kind", required=True),
                    name=_str(ref.get("name"), f"{path}.name", required=True),
                    uid=_str(ref.get("uid"), f"{path}.uid"),
                ),
            )
        )
    for controller, ref in parsed:
        if controller:
            return ref
    # Hand-written dumps often leave out `controller: true`; a reference to a workload kind is then the
    # only sensible owner. (kubectl output always has the flag, so this changes nothing for real dumps.)
    for _, ref in parsed:
        if ref.kind in WORKLOAD_KINDS:
            return ref
    return None


def _addresses(values: object, single: object, path: str, single_path: str) -> tuple[str, ...]:
    """status.podIPs/hostIPs ([{ip: ...}]) when present, else the single status.podIP/hostIP."""
    items = _list(values, path)
    if items:
        ips: list[str] = []
        for i, item in enumerate(items):
            ip = _ip(_mapping(item, f"{path}[{i}]", required=True).get("ip"), f"{path}[{i}].ip")
            if ip not in ips:
                ips.append(ip)
        return tuple(ips)
    if single in (None, ""):
        return ()
    return (_ip(single, single_path),)


# ---------------------------------------------------------------------------------------- object parsers


def _common(obj: dict[str, Any], *, namespaced: bool) -> dict[str, Any]:
    metadata = _mapping(obj.get("metadata"), "metadata", required=True)
    fields: dict[str, Any] = {
        "name": _str(metadata.get("name"), "metadata.name", required=True),
        "uid": _str(metadata.get("uid"), "metadata.uid"),
        "labels": _labels(metadata.get("labels"), "metadata.labels"),
        "created_at": _time(metadata.get("creationTimestamp"), "metadata.creationTimestamp"),
    }
    if namespaced:
        fields["namespace"] = _str(metadata.get("namespace"), "metadata.namespace", required=True)
    return fields


def _parse_namespace(obj: dict[str, Any]) -> NamespaceObj:
    return NamespaceObj(**_common(obj, namespaced=False))


def _parse_node(obj: dict[str, Any]) -> NodeObj:
    status = _mapping(obj.get("status"), "status")
    addresses: list[tuple[str, str]] = []
    for i, item in enumerate(_list(status.get("addresses"), "status.addresses")):
        path = f"status.addresses[{i}]"
        item = _mapping(item, path, required=True)
        kind = _str(item.get("type"), f"{path}.type", required=True)
        if kind in _NODE_ADDRESS_TYPES:
            pair = (kind, _ip(item.get("address"), f"{path}.address"))
            if pair not in addresses:
                addresses.append(pair)
    return NodeObj(**_common(obj, namespaced=False), addresses=tuple(addresses))


def _parse_workload(obj: dict[str, Any], kind: str) -> WorkloadObj:
    fields = _common(obj, namespaced=True)
    metadata = obj["metadata"]
    spec = _mapping(obj.get("spec"), "spec")
    if kind == "CronJob":
        job_spec = _mapping(_mapping(spec.get("jobTemplate"), "spec.jobTemplate").get("spec"),
                            "spec.jobTemplate.spec")
        tpath = "spec.jobTemplate.spec.template"
        template = _mapping(job_spec.get("template"), tpath)
        template_labels = _labels(_mapping(template.get("metadata"), f"{tpath}.metadata").get("labels"),
                                  f"{tpath}.metadata.labels")
        # A CronJob has no selector of its own: {} here, and its runs' pods carry the template's labels.
        selector: dict[str, Any] = {}
    else:
        selector = _selector(spec.get("selector"), "spec.selector")
        template = _mapping(spec.get("template"), "spec.template")
        template_labels = _labels(_mapping(template.get("metadata"), "spec.template.metadata").get("labels"),
                                  "spec.template.metadata.labels")
    return WorkloadObj(
        **fields, kind=kind, selector=selector, template_labels=template_labels, owner=_owner(metadata)
    )


def _parse_service(obj: dict[str, Any]) -> ServiceObj:
    fields = _common(obj, namespaced=True)
    spec = _mapping(obj.get("spec"), "spec")
    ips = list(_list(spec.get("clusterIPs"), "spec.clusterIPs"))
    paths = [f"spec.clusterIPs[{i}]" for i in range(len(ips))]
    if not ips and spec.get("clusterIP") not in (None, ""):
        ips, paths = [spec["clusterIP"]], ["spec.clusterIP"]
    cluster_ips: list[str] = []
    for ip, path in zip(ips, paths, strict=True):
        if ip == "None":  # a headless service has no virtual IP
            continue
        canonical = _ip(ip, path)
        if canonical not in cluster_ips:
            cluster_ips.append(canonical)
    ports: list[ServicePortObj] = []
    for i, item in enumerate(_list(spec.get("ports"), "spec.ports")):
        path = f"spec.ports[{i}]"
        item = _mapping(item, path, required=True)
        port = _port(item.get("port"), f"{path}.port")
        target = item.get("targetPort")
        target_port: int | None = port  # the API defaults targetPort to port
        target_name = ""
        if isinstance(target, str) and target.isdigit():
            target = int(target)
        if isinstance(target, str) and target:
            target_port, target_name = None, target
        elif target is not None and target != "":
            target_port = _port(target, f"{path}.targetPort")
        ports.append(
            ServicePortObj(
                port=port, protocol=_protocol(item.get("protocol"), f"{path}.protocol"),
                name=_str(item.get("name"), f"{path}.name"), target_port=target_port, target_port_name=target_name,
            )
        )
    return ServiceObj(
        **fields, service_type=_str(spec.get("type"), "spec.type") or "ClusterIP",
        selector=_labels(spec.get("selector"), "spec.selector"), cluster_ips=tuple(cluster_ips), ports=tuple(ports),
    )


_SERVICE_NAME_LABEL = "kubernetes.io/service-name"


def _endpoint_port(item: object, path: str) -> tuple[int | None, str, str]:
    item = _mapping(item, path, required=True)
    port = None if item.get("port") is None else _port(item.get("port"), f"{path}.port")
    return port, _protocol(item.get("protocol"), f"{path}.protocol"), _str(item.get("name"), f"{path}.name")


def _cross(ips: Sequence[str], ports: Sequence[tuple[int | None, str, str]]) -> list[EndpointObj]:
    # An address list without ports reaches every port of the address.
    return [EndpointObj(ip, port, proto, name) for ip in ips for port, proto, name in (ports or [(None, "TCP", "")])]


def _parse_endpoint_slice(obj: dict[str, Any]) -> EndpointsObj | None:
    fields = _common(obj, namespaced=True)
    service = fields["labels"].get(_SERVICE_NAME_LABEL, "")
    if not service:
        return None  # a slice that no Service owns (managed by hand for something else)
    address_type = _str(obj.get("addressType"), "addressType")
    ports = [_endpoint_port(p, f"ports[{i}]") for i, p in enumerate(_list(obj.get("ports"), "ports"))]
    ips: list[str] = []
    for i, endpoint in enumerate(_list(obj.get("endpoints"), "endpoints")):
        path = f"endpoints[{i}]"
        endpoint = _mapping(endpoint, path, required=True)
        addresses = _list(endpoint.get("addresses"), f"{path}.addresses")
        if address_type == "FQDN":
            continue  # a name, not an address: nothing a NetworkPolicy can allow by ipBlock
        ips += [_ip(a, f"{path}.addresses[{j}]") for j, a in enumerate(addresses)]
    return EndpointsObj(**fields, kind="EndpointSlice", service=service, endpoints=tuple(_cross(ips, ports)))


def _parse_endpoints(obj: dict[str, Any]) -> EndpointsObj:
    fields = _common(obj, namespaced=True)
    endpoints: list[EndpointObj] = []
    for i, subset in enumerate(_list(obj.get("subsets"), "subsets")):
        path = f"subsets[{i}]"
        subset = _mapping(subset, path, required=True)
        ports = [_endpoint_port(p, f"{path}.ports[{j}]") for j, p in enumerate(_list(subset.get("ports"),
                                                                                      f"{path}.ports"))]
        ips = []
        # Addresses not ready yet still receive traffic once they are: a policy must allow them too.
        for list_name in ("addresses", "notReadyAddresses"):
            for j, address in enumerate(_list(subset.get(list_name), f"{path}.{list_name}")):
                apath = f"{path}.{list_name}[{j}]"
                ips.append(_ip(_mapping(address, apath, required=True).get("ip"), f"{apath}.ip"))
        endpoints += _cross(ips, ports)
    return EndpointsObj(**fields, kind="Endpoints", service=fields["name"], endpoints=tuple(endpoints))


def _container_ports(spec: dict[str, Any]) -> tuple[ContainerPortObj, ...]:
    ports: dict[tuple[int, str], ContainerPortObj] = {}
    for list_name in ("containers", "initContainers"):
        for i, container in enumerate(_list(spec.get(list_name), f"spec.{list_name}")):
            cpath = f"spec.{list_name}[{i}]"
            container = _mapping(container, cpath, required=True)
            # Only init containers that keep running (native sidecars) can listen for connections.
            if list_name == "initContainers" and container.get("restartPolicy") != "Always":
                continue
            for j, item in enumerate(_list(container.get("ports"), f"{cpath}.ports")):
                ppath = f"{cpath}.ports[{j}]"
                item = _mapping(item, ppath, required=True)
                port = ContainerPortObj(
                    port=_port(item.get("containerPort"), f"{ppath}.containerPort"),
                    protocol=_protocol(item.get("protocol"), f"{ppath}.protocol"),
                    name=_str(item.get("name"), f"{ppath}.name"),
                )
                # The same port declared twice (two containers) is one listening port: keep the first.
                ports.setdefault((port.port, port.protocol), port)
    return tuple(ports.values())


def _finished_at(status: dict[str, Any]) -> datetime | None:
    latest: datetime | None = None
    for list_name in ("containerStatuses", "initContainerStatuses"):
        for i, item in enumerate(_list(status.get(list_name), f"status.{list_name}")):
            path = f"status.{list_name}[{i}]"
            state = _mapping(_mapping(item, path, required=True).get("state"), f"{path}.state")
            terminated = _mapping(state.get("terminated"), f"{path}.state.terminated")
            finished = _time(terminated.get("finishedAt"), f"{path}.state.terminated.finishedAt")
            if finished is not None and (latest is None or finished > latest):
                latest = finished
    return latest


def _parse_pod(obj: dict[str, Any]) -> PodObj:
    fields = _common(obj, namespaced=True)
    spec = _mapping(obj.get("spec"), "spec")
    status = _mapping(obj.get("status"), "status")
    return PodObj(
        **fields,
        owner=_owner(obj["metadata"]),
        node_name=_str(spec.get("nodeName"), "spec.nodeName"),
        host_ips=_addresses(status.get("hostIPs"), status.get("hostIP"), "status.hostIPs", "status.hostIP"),
        pod_ips=_addresses(status.get("podIPs"), status.get("podIP"), "status.podIPs", "status.podIP"),
        host_network=_bool(spec.get("hostNetwork"), "spec.hostNetwork"),
        container_ports=_container_ports(spec),
        phase=_str(status.get("phase"), "status.phase"),
        start_time=_time(status.get("startTime"), "status.startTime"),
        finished_at=_finished_at(status),
    )


def _parse_network_policy(obj: dict[str, Any]) -> NetworkPolicyObj:
    fields = _common(obj, namespaced=True)
    spec = _mapping(obj.get("spec"), "spec", required=True)
    _mapping(spec.get("podSelector"), "spec.podSelector", required=True)
    manifest = _plain({k: v for k, v in obj.items() if k != "status"})
    manifest.setdefault("apiVersion", "networking.k8s.io/v1")
    manifest.setdefault("kind", "NetworkPolicy")
    metadata = manifest["metadata"]
    for key in _METADATA_NOISE:
        metadata.pop(key, None)
    annotations = metadata.get("annotations")
    if isinstance(annotations, dict):
        annotations.pop(_LAST_APPLIED, None)
        if not annotations:
            del metadata["annotations"]
    return NetworkPolicyObj(**fields, spec=_plain(spec), manifest=manifest)


def parse_object(obj: object, *, kind: str | None = None) -> InventoryObj | None:
    """One Kubernetes object (a dict in API shape) as a record; None for a kind we do not keep.

    ``kind`` is for callers whose objects lack it (items of a typed list such as `PodList`, or the
    `kubernetes` client's serialised models). Raises FieldError naming the bad field.
    """
    data = _mapping(obj, "", required=True)
    kind = kind or _str(data.get("kind"), "kind", required=True)
    if kind not in _API_GROUPS:
        return None
    api_version = data.get("apiVersion")
    if isinstance(api_version, str) and api_version:
        group = api_version.rpartition("/")[0]
        if group not in _API_GROUPS[kind]:
            return None
    if kind == "Namespace":
        return _parse_namespace(data)
    if kind == "Node":
        return _parse_node(data)
    if kind == "Pod":
        return _parse_pod(data)
    if kind == "Service":
        return _parse_service(data)
    if kind == "EndpointSlice":
        return _parse_endpoint_slice(data)
    if kind == "Endpoints":
        return _parse_endpoints(data)
    if kind == "NetworkPolicy":
        return _parse_network_policy(data)
    return _parse_workload(data, kind)


def _describe(obj: object, kind: str | None) -> str:
    """'Pod shop/cart-1' for an error message, from whatever the (maybe broken) object has."""
    if not isinstance(obj, dict):
        return ""
    kind = kind or (obj.get("kind") if isinstance(obj.get("kind"), str) else "") or "object"
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    name = metadata.get("name") if isinstance(metadata.get("name"), str) else ""
    namespace = metadata.get("namespace") if isinstance(metadata.get("namespace"), str) else ""
    if name:
        return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"
    return f"{kind} in namespace {namespace}" if namespace else kind


def _ignored_key(obj: object, kind: str | None) -> str:
    data = obj if isinstance(obj, dict) else {}
    kind = kind or str(data.get("kind"))
    api_version = data.get("apiVersion")
    if kind in _API_GROUPS and isinstance(api_version, str):
        return f"{kind} ({api_version})"  # a kind we know from another API group
    return kind


# --------------------------------------------------------------------------------------------- documents


@dataclass(slots=True)
class _Document:
    index: int
    data: Any
    item_lines: list[int] | None = None  # YAML: line where each item of `items` (or the sequence) starts
    line: int | None = None


def _yaml_loader() -> type:
    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _too_deep(where: str) -> InventoryError:
    return InventoryError([f"{where}: nested deeper than {MAX_DEPTH} levels, more than any Kubernetes object needs"])


def _where(source: str, node: yaml.Node, index: int) -> str:
    return f"{source}:{node.start_mark.line + 1}: document {index}"


def _check_yaml_node(root: yaml.Node, source: str, index: int) -> None:
    """InventoryError, before construction, for a document nested deeper than MAX_DEPTH or blown up by aliases.

    The composer hands an alias over as the very node its anchor names, so the nodes form a graph. This first
    walk, top-down over the containers only (a loop, not a recursion: a few percent of the load), finds the
    depth and whether any container is reached twice; only then does ``_check_aliases`` look closer.
    """
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, int]] = [(root, 1)]
    shared = False
    while stack:
        node, depth = stack.pop()
        if isinstance(node, yaml.ScalarNode):
            continue
        if id(node) in seen:
            shared = True
            continue
        seen.add(id(node))
        if depth > MAX_DEPTH:
            raise _too_deep(_where(source, node, index))
        if isinstance(node, yaml.MappingNode):
            stack += [(child, depth + 1) for pair in node.value for child in pair]
        else:
            stack += [(child, depth + 1) for child in node.value]
    if shared:
        _check_aliases(root, source, index)


def _check_aliases(root: yaml.Node, source: str, index: int) -> None:
    """InventoryError for aliases that expand the document to more than twice the values it writes out (plus
    ``_ALIAS_ALLOWANCE``), that refer to a value containing them, or that nest it deeper than MAX_DEPTH.

    PyYAML's own dumper writes an anchor and aliases for a value used twice (shared labels), so aliases as such
    are accepted. A billion-laughs bomb is stopped at its first levels, after a few hundred nodes of work: the
    walk visits each node once, bottom-up, with each container's expanded size and height from its children's.
    """
    done: dict[int, tuple[int, int]] = {}  # id(container) -> (expanded values, levels), once walked
    inside: set[int] = set()  # the containers the walk is in
    stack: list[tuple[yaml.Node, list[yaml.Node] | None]] = [(root, None)]
    written = 0  # the distinct values walked so far: what the document writes out
    while stack:
        node, children = stack.pop()
        if children is None:  # on the way down
            if id(node) in done:
                continue
            if id(node) in inside:
                raise InventoryError([f"{_where(source, node, index)}: a YAML alias refers to a value containing it"])
            inside.add(id(node))
            children = [c for pair in node.value for c in pair] if isinstance(node, yaml.MappingNode) else node.value
            stack.append((node, children))
            stack += [(child, None) for child in children if not isinstance(child, yaml.ScalarNode)]
            continue
        inside.discard(id(node))  # on the way up: every child is done
        walked = [done.get(id(child), (1, 0)) for child in children]  # a scalar: one value, no level
        size, levels = 1 + sum(n for n, _ in walked), 1 + max((d for _, d in walked), default=0)
        written += 1 + sum(1 for child in children if isinstance(child, yaml.ScalarNode))
        if size > 2 * written + _ALIAS_ALLOWANCE:
            raise InventoryError([f"{_where(source, node, index)}: YAML aliases expand this value to {size:,} "
                                  f"values from {written:,} written out (an alias bomb?); write the values out, as "
                                  "kubectl does"])
        if levels > MAX_DEPTH:
            raise _too_deep(_where(source, node, index))
        done[id(node)] = size, levels


def _check_json_depth(data: Any, source: str, index: int, line: int | None) -> None:
    """InventoryError when JSON nests deeper than MAX_DEPTH (a loop: deep input cannot exhaust the stack)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
        if children is None:
            continue
        if depth > MAX_DEPTH:
            raise _too_deep(f"{source}:{line}: document {index}" if line else f"{source}: document {index}")
        stack += [(child, depth + 1) for child in children]


def _yaml_documents(text: str, source: str) -> Iterator[_Document]:
    # Compose each document first, so that the line of every item is known (and aliases and depth are
    # checked on the nodes), then construct it.
    loader = _yaml_loader()(text)
    index = 0
    try:
        while loader.check_node():
            node = loader.get_node()
            index += 1
            _check_yaml_node(node, source, index)
            lines: list[int] | None = None
            items_node: yaml.Node | None = None
            if isinstance(node, yaml.SequenceNode):
                items_node = node
            elif isinstance(node, yaml.MappingNode):
                for key, value in node.value:
                    if isinstance(key, yaml.ScalarNode) and key.value == "items":
                        items_node = value
            if isinstance(items_node, yaml.SequenceNode):
                lines = [child.start_mark.line + 1 for child in items_node.value]
            yield _Document(index, loader.construct_document(node), lines, node.start_mark.line + 1)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise InventoryError([f"{where}: document {index + 1}: not valid YAML: {problem}"]) from None
    except RecursionError:
        # Only the pure-Python loader recurses while composing; libyaml stops at 1000 levels by itself.
        raise _too_deep(f"{source}: document {index + 1}") from None
    finally:
        loader.dispose()


def _json_documents(raw: bytes, text: str, source: str) -> Iterator[_Document]:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass  # orjson also refuses more than 1024 levels: the decoder below says which document
    else:
        _check_json_depth(data, source, 1, None)
        yield _Document(1, data)
        return
    # Not one JSON value: maybe several concatenated (`kubectl get a -o json; kubectl get b -o json`).
    decoder = json.JSONDecoder()
    pos, index = 0, 0
    line, counted = 1, 0  # the line of text[counted], counted on as documents go (not from 0 each time)
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return
        index += 1
        line, counted = line + text.count("\n", counted, pos), pos
        try:
            data, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise InventoryError(
                [f"{source}:{exc.lineno}: document {index}: not valid JSON: {exc.msg} (column {exc.colno})"]
            ) from None
        except RecursionError:
            raise _too_deep(f"{source}:{line}: document {index}") from None
        _check_json_depth(data, source, index, line)
        yield _Document(index, data)


def _documents(raw: bytes, source: str) -> Iterator[_Document]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InventoryError([f"{source}: not UTF-8 text (byte {exc.start})"]) from None
    # JSON is YAML too, but orjson reads it many times faster than PyYAML.
    if text.lstrip()[:1] in ("{", "["):
        return _json_documents(raw, text, source)
    return _yaml_documents(text, source)


def parse_bytes(raw: bytes, source: str) -> tuple[list[InventoryObj], Counter[str]]:
    """Every supported object in one file's content, and a count of the skipped kinds.

    Raises InventoryError listing every bad item, each with its location, so that nothing is written.
    """
    objects: list[InventoryObj] = []
    ignored: Counter[str] = Counter()
    problems: list[str] = []
    documents = 0
    # A NUL character can only come from an escape; without one, no item needs the walk that looks for it.
    may_hold_nul = any(escape in raw for escape in (b"\\0", b"\\x00", b"\\u0000", b"\\U00000000"))
    for doc in _documents(raw, source):
        data = doc.data
        if data is None:  # an empty document, e.g. after a trailing '---'
            continue
        documents += 1
        item_kind: str | None = None
        if isinstance(data, list):
            items: list[Any] | None = data
        elif isinstance(data, dict):
            kind = data.get("kind")
            if isinstance(kind, str) and kind.endswith("List") and "items" in data:
                items_value = data.get("items")
                if items_value is not None and not isinstance(items_value, list):
                    problems.append(f"{Location(source, doc.index, line=doc.line)}: items: expected a list")
                    continue
                items = items_value or []
                # A typed list straight from the API (`PodList`) leaves `kind` out of its items.
                item_kind = kind[: -len("List")] or None
            else:
                items = None
        else:
            problems.append(
                f"{Location(source, doc.index, line=doc.line)}: expected a Kubernetes object or a List, "
                f"got {_type_name(data)}"
            )
            continue
        entries = [(None, data, doc.line)] if items is None else [
            (i + 1, item, doc.item_lines[i] if doc.item_lines and i < len(doc.item_lines) else None)
            for i, item in enumerate(items)
        ]
        for item_index, item, line in entries:
            # An explicit kind on the item wins over the one the list's type implies.
            kind_hint = None if isinstance(item, dict) and item.get("kind") else item_kind
            try:
                if may_hold_nul and (where := nul_path(item)) is not None:
                    raise FieldError(where, "a NUL character is not allowed")
                if isinstance(item, dict) and item.get("kind") == "List":
                    raise FieldError("kind", "a List inside a List is not supported")
                parsed = parse_object(item, kind=kind_hint)
            except FieldError as exc:
                described = _describe(item, kind_hint)
                label = f" ({described})" if described else ""
                problems.append(f"{Location(source, doc.index, item_index, line)}{label}: {exc}")
                continue
            if parsed is None:
                ignored[_ignored_key(item, kind_hint)] += 1
            else:
                objects.append(parsed)
    if not documents and not problems:
        problems.append(f"{source}: no document: the file is empty (a cluster without objects is a List with no "
                        "items)")
    if problems:
        raise InventoryError(problems)
    return objects, ignored


def read_sources(paths: Sequence[str | Path], *, stdin: IO[bytes] | IO[str] | None = None) -> Snapshot:
    """Read and parse every file ('-' is standard input) before returning; InventoryError on any problem.

    All problems of all files are collected, so one run shows everything to fix.
    """
    objects: list[InventoryObj] = []
    ignored: Counter[str] = Counter()
    problems: list[str] = []
    for path in paths:
        source = "<stdin>" if str(path) == "-" else str(path)
        try:
            if str(path) == "-":
                stream = stdin if stdin is not None else sys.stdin.buffer
                content = stream.read()
                raw = content.encode() if isinstance(content, str) else content
            else:
                raw = Path(path).read_bytes()
        except OSError as exc:
            problems.append(f"{source}: cannot read: {exc.strerror or exc}")
            continue
        if raw[:2] == b"\x1f\x8b":  # gzip magic: a compressed dump (`kubectl get ... | gzip`)
            try:
                raw = gzip.decompress(raw)
            except (OSError, EOFError) as exc:
                problems.append(f"{source}: cannot decompress: {exc}")
                continue
        try:
            found, skipped = parse_bytes(raw, source)
        except InventoryError as exc:
            problems.extend(exc.problems)
            continue
        objects.extend(found)
        ignored.update(skipped)
    if problems:
        raise InventoryError(problems)
    return Snapshot.of(objects, ignored=ignored)
