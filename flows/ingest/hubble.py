"""Parser of Hubble flows as ``hubble observe -o jsonpb`` (and ``-o json``) prints them.

Two line shapes are read:

* ``-o jsonpb``: an observer ``GetFlowsResponse``, ``{"flow": {...}, "node_name": "...", "time": "..."}``.
  Its siblings ``lost_events``, ``node_status``, ``agent_event`` and ``debug_event`` are well-formed
  lines that are not flows: they are *skipped*, not malformed.
* ``-o json``: the ``Flow`` object itself at the top level (and bare agent/debug/lost events, skipped).

A JSON object that is none of these is malformed, not skipped: a file of another format given with
``--format hubble`` must not import as "0 stored, N skipped" without a word.

Field names follow Cilium's ``api/v1/flow/flow.proto`` as protojson prints them with proto names
(``IP``, ``l4.TCP.flags.SYN``, ``traffic_direction``, ``pod_name``); the lowerCamelCase JSON names
(``trafficDirection``, ``podName`` ...) that other protojson writers use are read too, and so are
enum numbers in place of enum names.

Mapping choices (the why is in the comments below):

* A flow without an ``IP`` layer (ARP, an L7 record without addresses) is skipped; so is an IP flow
  without a TCP/UDP/SCTP/ICMP layer (fragments, GRE ...), which no NetworkPolicy can express.
  A flow with an ``l4`` layer but no ``IP``, or with an ``IP`` layer whose address is missing or
  invalid, is malformed.
* ``is_reply`` is a ``BoolValue``: absent means unknown (None). The deprecated ``reply`` bool is
  only trusted when it is true, since protobuf cannot tell its false from absent.
* The reserved identity (``host``, ``world``, ``kube-apiserver``, ``remote-node`` ...) is taken from
  the numeric ``identity`` when it is a reserved one (that is Cilium's own decision when an address
  carries several reserved labels), else from the ``reserved:`` labels, preferring ``host`` over
  ``kube-apiserver`` over ``remote-node`` as Cilium does. ``world-ipv4``/``world-ipv6`` become ``world``.
* ``node_name`` loses its ``cluster/`` prefix: Kubernetes node names never contain ``/``, and the bare
  name is what a pod's ``spec.nodeName`` holds.
* DNS: ``destination_names`` (names Cilium's DNS proxy saw for the destination IP) are kept on every
  flow. An L7 DNS record (``l7.dns``) is itself a UDP (or TCP) flow between client and DNS server
  and is returned as one, carrying ``dns_query`` and, for a response, ``dns_ips``: the answer
  addresses, from which a later stage can learn IP -> name.
"""

from __future__ import annotations

from typing import Any

from flows.ingest import fields as f
from flows.ingest.fields import FieldError
from flows.ingest.records import Endpoint, FlowRecord, LineError, Skipped

# Response types of GetFlowsResponse (and of the agent/debug event streams) that carry no flow.
_NOT_FLOWS = (
    "lost_events", "lostEvents", "node_status", "nodeStatus", "agent_event", "agentEvent",
    "debug_event", "debugEvent",
)
# Keys by which a top-level object is recognised as a bare Flow (``-o json``).
_FLOW_KEYS = ("IP", "l4", "verdict", "Type", "event_type", "eventType", "ethernet", "uuid", "l7")

# AgentEventType and DebugEventType names, by which a bare agent or debug event is recognised.
_BARE_EVENT_TYPES = ("AGENT_", "POLICY_", "ENDPOINT_", "IPCACHE_", "SERVICE_", "DBG_")
_VERDICT_NUMBERS = {
    0: "UNKNOWN", 1: "FORWARDED", 2: "DROPPED", 3: "ERROR", 4: "AUDIT", 5: "REDIRECTED", 6: "TRACED",
    7: "TRANSLATED",
}
_DIRECTIONS = {
    "INGRESS": "INGRESS", "EGRESS": "EGRESS", "TRAFFIC_DIRECTION_UNKNOWN": "UNKNOWN",
    1: "INGRESS", 2: "EGRESS", 0: "UNKNOWN",
}
# Cilium's reserved numeric identities (pkg/identity/numericidentity.go).
_RESERVED_IDENTITIES = {
    1: "host", 2: "world", 3: "unmanaged", 4: "health", 5: "init", 6: "remote-node", 7: "kube-apiserver",
    8: "ingress", 9: "world", 10: "world",
}
# When labels name several reserved identities, the one Cilium itself would assign wins.
_RESERVED_PRIORITY = {"host": 0, "kube-apiserver": 1, "remote-node": 2}
_L4_PROTOCOLS = ("TCP", "UDP", "SCTP", "ICMPv4", "ICMPv6")


def _get(obj: dict[str, Any], name: str, camel: str | None = None) -> Any:
    """A field by its proto name, falling back to its lowerCamelCase JSON name."""
    value = obj.get(name)
    if value is None and camel is not None:
        value = obj.get(camel)
    return value


def _object(value: Any, field: str) -> dict[str, Any] | None:
    if value is None or isinstance(value, dict):
        return value
    raise FieldError(field, "expected an object")


def parse_object(obj: Any, line: int) -> FlowRecord | LineError | Skipped:
    """Map one decoded JSON line to a flow record, a skip, or the error that names the bad field."""
    if not isinstance(obj, dict):
        return LineError(line, "", "expected a JSON object")
    try:
        if "flow" in obj:
            flow = _object(obj["flow"], "flow")
            if flow is None:
                return LineError(line, "flow", "expected an object")
            return _flow(flow, "flow.", obj, line)
        for key in _NOT_FLOWS:
            if key in obj:
                return Skipped(line, key)
        if any(key in obj for key in _FLOW_KEYS):
            return _flow(obj, "", {}, line)
        # `hubble observe agent-events|debug-events -o json` print their events bare, too.
        kind = obj.get("type")
        if isinstance(kind, str) and kind.startswith(_BARE_EVENT_TYPES):
            return Skipped(line, "debug_event" if kind.startswith("DBG_") else "agent_event")
        if "num_events_lost" in obj:
            return Skipped(line, "lost_events")
    except FieldError as exc:
        return LineError(line, exc.field, exc.message)
    source = obj.get("source")
    if "protocol" in obj and isinstance(source, dict) and "ip" in source:
        return LineError(line, "", "not a Hubble flow; this looks like the netsec format (--format netsec)")
    return LineError(line, "", "not a Hubble flow: no 'flow' object and no flow fields (IP, l4, verdict)")


# The paths of the fields that ``_flow`` reads, spelt out once per shape ("flow." of jsonpb, "" of the bare flow)
# rather than for every line: error messages name them, the hot path only passes them on.
_FLOW_FIELDS = ("IP", "l4", "IP.source", "IP.destination", "time", "is_reply", "node_name", "l7", "source",
                "destination", "verdict", "traffic_direction", "destination_service", "destination_names", "uuid")
_PATHS = {prefix: {name: prefix + name for name in _FLOW_FIELDS} for prefix in ("flow.", "")}
# (prefix, protocol) -> paths of the L4 layer, its ports and its flags.
_L4_PATHS = {
    (prefix, protocol): (f"{prefix}l4.{protocol}", f"{prefix}l4.{protocol}.source_port",
                         f"{prefix}l4.{protocol}.destination_port", f"{prefix}l4.{protocol}.flags")
    for prefix in ("flow.", "") for protocol in _L4_PROTOCOLS
}


def _flow(flow: dict[str, Any], p: str, outer: dict[str, Any], line: int) -> FlowRecord | Skipped:
    """``p`` is the path prefix of the flow's fields in the line ("flow." or "" for the bare shape)."""
    at = _PATHS[p]
    ip_layer = _object(flow.get("IP"), at["IP"])
    l4 = _object(flow.get("l4"), at["l4"])
    if ip_layer is None:
        if l4:
            raise FieldError(at["IP"], "missing in a flow with an l4 layer")
        return Skipped(line, "not an IP flow")
    src_ip = f.ip(ip_layer.get("source"), at["IP.source"])
    dst_ip = f.ip(ip_layer.get("destination"), at["IP.destination"])

    protocol = ""
    layer: dict[str, Any] = {}
    src_port = dst_port = None
    tcp_flags: tuple[str, ...] = ()
    layers = l4 or {}
    for name in _L4_PROTOCOLS:
        if layers.get(name) is not None:
            protocol = name
            break
    if not protocol:
        return Skipped(line, "no TCP, UDP, SCTP or ICMP layer")
    layer_path, src_port_path, dst_port_path, flags_path = _L4_PATHS[(p, protocol)]
    layer = _object(layers[protocol], layer_path) or {}
    if protocol in f.PORT_PROTOCOLS:
        src_port = f.port(_get(layer, "source_port", "sourcePort"), src_port_path)
        dst_port = f.port(_get(layer, "destination_port", "destinationPort"), dst_port_path)
        if protocol == "TCP":
            tcp_flags = _tcp_flags(layer.get("flags"), flags_path)

    # The flow's own time is when the packet was seen; the response's time is only a fallback.
    if "time" in flow or "time" not in outer:
        time = f.timestamp(flow.get("time"), at["time"])
    else:
        time = f.timestamp(outer["time"], "time")

    is_reply = f.optional_bool(_get(flow, "is_reply", "isReply"), at["is_reply"])
    if is_reply is None and flow.get("reply") is True:
        is_reply = True

    node = _get(flow, "node_name", "nodeName") or _get(outer, "node_name", "nodeName")
    node_name = f.text(node, at["node_name"]).rpartition("/")[2]

    dns_query, dns_ips = _dns(flow.get("l7"), at["l7"])
    return FlowRecord(
        time=time,
        protocol=protocol,
        source=_endpoint(flow.get("source"), src_ip, src_port, at["source"]),
        destination=_endpoint(flow.get("destination"), dst_ip, dst_port, at["destination"]),
        verdict=_verdict(flow.get("verdict"), at["verdict"]),
        is_reply=is_reply,
        tcp_flags=tcp_flags,
        traffic_direction=_direction(_get(flow, "traffic_direction", "trafficDirection"), at["traffic_direction"]),
        node_name=node_name,
        destination_service=_service(_get(flow, "destination_service", "destinationService"),
                                     at["destination_service"]),
        destination_names=f.dns_names(_get(flow, "destination_names", "destinationNames"),
                                      at["destination_names"]),
        event_id=f.text(flow.get("uuid"), at["uuid"], 200),
        dns_query=dns_query,
        dns_ips=dns_ips,
    )


# The flag sets seen so far (as the items of Hubble's flags object) and what they mean: a handful repeat.
_FLAG_SETS: dict[tuple[tuple[str, Any], ...], tuple[str, ...]] = {}


def _tcp_flags(value: Any, field: str) -> tuple[str, ...]:
    flags = _object(value, field)
    if not flags:
        return ()
    try:
        key = tuple(flags.items())
        return _FLAG_SETS[key]
    except KeyError:
        found = tuple(sorted(name for name, on in flags.items() if on is True and name in f.TCP_FLAGS))
        if len(_FLAG_SETS) < 4096:  # bounded: memory stays flat whatever the input holds
            _FLAG_SETS[key] = found
        return found
    except TypeError:  # a value that cannot be a key (a list, an object): never a flag that is on
        return tuple(sorted(name for name, on in flags.items() if on is True and name in f.TCP_FLAGS))


def _name(obj: dict[str, Any], key: str, field: str, suffix: str, max_length: int = f.MAX_NAME) -> str:
    """An optional string field of ``obj``; the field's path is only spelt out for the error (the hot path)."""
    value = obj.get(key)
    if value.__class__ is str and len(value) <= max_length:
        return value
    return f.text(value, field + suffix, max_length)


def _endpoint(value: Any, ip: str, port: int | None, field: str) -> Endpoint:
    obj = _object(value, field)
    if not obj:
        return Endpoint(ip=ip, port=port)
    kind = name = ""
    workloads = obj.get("workloads")
    if workloads:
        if not isinstance(workloads, list):
            raise FieldError(field + ".workloads", "expected a list")
        # A pod has one top-level owner; Hubble lists it first.
        first = _object(workloads[0], field + ".workloads[0]") or {}
        kind = _name(first, "kind", field, ".workloads[0].kind", f.MAX_KIND)
        name = _name(first, "name", field, ".workloads[0].name")
    pod = obj.get("pod_name")
    if pod is None:
        pod = obj.get("podName")
    if pod.__class__ is not str or len(pod) > f.MAX_NAME:
        pod = f.text(pod, field + ".pod_name")
    return Endpoint(
        ip=ip,
        port=port,
        namespace=_name(obj, "namespace", field, ".namespace"),
        pod=pod,
        workload_kind=kind,
        workload_name=name,
        reserved=_reserved(obj, field),
    )


def _reserved(obj: dict[str, Any], field: str) -> str:
    identity = obj.get("identity")
    if isinstance(identity, int) and identity in _RESERVED_IDENTITIES:
        return _RESERVED_IDENTITIES[identity]
    labels = obj.get("labels")
    if not labels:
        return ""
    if not isinstance(labels, list):
        raise FieldError(field + ".labels", "expected a list of strings")
    try:
        # Most endpoints are pods, whose labels name no reserved identity: one pass in C tells.
        if "reserved:" not in "\n".join(labels):
            return ""
    except TypeError:
        pass  # an item that is not a string: looked at one by one below
    found = ""
    for label in labels:
        if isinstance(label, str) and label.startswith("reserved:"):
            name = label[9:]
            if name.startswith("world"):
                name = "world"
            if not found or _RESERVED_PRIORITY.get(name, 9) < _RESERVED_PRIORITY.get(found, 9):
                found = name
    return f.text(found, field + ".labels", f.MAX_RESERVED)


_VERDICT_NAMES = {name: name for name in f.VERDICTS} | {"VERDICT_UNKNOWN": "UNKNOWN", "UNKNOWN": "UNKNOWN"}


def _verdict(value: Any, field: str) -> str:
    if value is None:
        return "UNKNOWN"  # protojson omits the zero value, VERDICT_UNKNOWN
    if value.__class__ is str and value in _VERDICT_NAMES:
        return _VERDICT_NAMES[value]
    if isinstance(value, int) and not isinstance(value, bool):
        if value in _VERDICT_NUMBERS:
            return _VERDICT_NUMBERS[value]
        raise FieldError(field, f"unknown verdict number {value}")
    if not isinstance(value, str) or not value:
        raise FieldError(field, "expected a verdict name")
    if value == "VERDICT_UNKNOWN":
        return "UNKNOWN"
    # A verdict a newer Cilium adds is kept as it is: rejecting it would lose the flow.
    return f.text(value, field, f.MAX_VERDICT)


def _direction(value: Any, field: str) -> str:
    if value is None:
        return "UNKNOWN"
    try:
        return _DIRECTIONS[value]
    except (KeyError, TypeError):
        raise FieldError(field, f"unknown traffic direction {value!r:.40}") from None


def _service(value: Any, field: str) -> str:
    service = _object(value, field)
    if not service:
        return ""
    name = f.text(service.get("name"), field + ".name")
    namespace = f.text(service.get("namespace"), field + ".namespace")
    if not name:
        return ""
    return f"{namespace}/{name}" if namespace else name


def _dns(value: Any, field: str) -> tuple[str, tuple[str, ...]]:
    l7 = _object(value, field)
    if not l7:
        return "", ()
    dns = _object(l7.get("dns"), field + ".dns")
    if not dns:
        return "", ()
    query = f.text(dns.get("query"), field + ".dns.query").strip().rstrip(".").lower()
    return query, f.ip_list(dns.get("ips"), field + ".dns.ips")
