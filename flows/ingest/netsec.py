"""Parser of netsec's own flow format: JSON lines, one flow event per line.

For sources other than Hubble (a CNI's flow logs, conntrack, a capture turned into events): convert
them to this shape and import with ``manage.py import_flows --format netsec``.

Fields
------
=================  ========  ==================================================================
field              required  meaning
=================  ========  ==================================================================
``time``           yes       RFC 3339 time with an offset (``Z`` or ``+02:00``); fractions to ns
``protocol``       yes       ``TCP``, ``UDP``, ``SCTP``, ``ICMPv4`` or ``ICMPv6`` (any case)
``source``         yes       endpoint object, see below
``destination``    yes       endpoint object
``verdict``        no        ``FORWARDED`` (default), ``DROPPED``, ``ERROR``, ``AUDIT``,
                             ``REDIRECTED``, ``TRACED``, ``TRANSLATED``
``is_reply``       no        true for a reply packet, false for the initiator's; absent/null = unknown
``tcp_flags``      no        list of ``SYN``, ``ACK``, ``FIN``, ``RST``, ``PSH``, ``URG``, ``ECE``,
                             ``CWR``, ``NS`` (TCP only)
``direction``      no        ``ingress`` or ``egress``: where the observer saw it; absent = unknown
``node``           no        name of the node that observed the event
``service``        no        ``namespace/name`` of the Service the destination was reached through
``names``          no        list of DNS names of the destination address
``id``             no        the event's unique id; re-importing an event with the same id adds
                             nothing (without one, the 5-tuple, time and flags identify it)
=================  ========  ==================================================================

Endpoint: ``ip`` (required, IPv4 or IPv6), ``port`` (TCP/UDP/SCTP only, 0-65535), ``namespace``,
``pod``, ``workload`` (``{"kind": "Deployment", "name": "api"}``: the pod's top-level owner), and
``reserved`` (an identity of the observer such as ``host``, ``world``, ``kube-apiserver``).
Unknown fields are ignored, so that a producer can add its own.

Example::

    {"time": "2026-11-27T16:00:00Z", "protocol": "TCP", "tcp_flags": ["SYN"], "is_reply": false,
     "source": {"ip": "10.0.1.9", "port": 32857, "namespace": "shop", "pod": "api-7d9f-x2",
                "workload": {"kind": "Deployment", "name": "api"}},
     "destination": {"ip": "10.0.1.8", "port": 3000}, "direction": "egress", "node": "node-1"}
"""

from __future__ import annotations

from typing import Any

from flows.ingest import fields as f
from flows.ingest.fields import FieldError
from flows.ingest.records import Endpoint, FlowRecord, LineError

_PROTOCOLS = {name.lower(): name for name in f.PROTOCOLS}
_DIRECTIONS = {"ingress": "INGRESS", "egress": "EGRESS"}


def parse_object(obj: Any, line: int) -> FlowRecord | LineError:
    """Map one decoded JSON line to a flow record, or the error that names the bad field."""
    if not isinstance(obj, dict):
        return LineError(line, "", "expected a JSON object")
    try:
        return _flow(obj)
    except FieldError as exc:
        return LineError(line, exc.field, exc.message)


def _flow(obj: dict[str, Any]) -> FlowRecord:
    # Required fields first, in the order the schema lists them, so the first error named is the first.
    time = f.timestamp(obj.get("time"), "time")
    protocol_value = obj.get("protocol")
    if not isinstance(protocol_value, str) or protocol_value.lower() not in _PROTOCOLS:
        if protocol_value is None:
            raise FieldError("protocol", "missing")
        raise FieldError("protocol", f"expected one of {', '.join(f.PROTOCOLS)}")
    protocol = _PROTOCOLS[protocol_value.lower()]

    source = _endpoint(obj.get("source"), "source", protocol)
    destination = _endpoint(obj.get("destination"), "destination", protocol)

    flags: tuple[str, ...] = ()
    if obj.get("tcp_flags") is not None:
        flags = _flags(obj["tcp_flags"], protocol)

    verdict = obj.get("verdict")
    if verdict is None:
        verdict = "FORWARDED"
    elif not isinstance(verdict, str) or verdict.upper() not in f.VERDICTS:
        raise FieldError("verdict", f"expected one of {', '.join(sorted(f.VERDICTS))}")

    direction = obj.get("direction")
    if direction is None:
        traffic_direction = "UNKNOWN"
    elif isinstance(direction, str) and direction.lower() in _DIRECTIONS:
        traffic_direction = _DIRECTIONS[direction.lower()]
    else:
        raise FieldError("direction", "expected ingress or egress")

    return FlowRecord(
        time=time,
        protocol=protocol,
        source=source,
        destination=destination,
        verdict=verdict.upper(),
        is_reply=f.optional_bool(obj.get("is_reply"), "is_reply"),
        tcp_flags=flags,
        traffic_direction=traffic_direction,
        node_name=f.text(obj.get("node"), "node"),
        destination_service=f.text(obj.get("service"), "service", f.MAX_SERVICE),
        destination_names=f.dns_names(obj.get("names"), "names"),
        event_id=f.text(obj.get("id"), "id", 200),
    )


def _flags(value: Any, protocol: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise FieldError("tcp_flags", "expected a list such as [\"SYN\", \"ACK\"]")
    if value and protocol != "TCP":
        raise FieldError("tcp_flags", f"TCP flags on a {protocol} flow")
    flags: set[str] = set()
    for index, flag in enumerate(value):
        if not isinstance(flag, str) or flag.upper() not in f.TCP_FLAGS:
            raise FieldError(f"tcp_flags[{index}]", f"not a TCP flag: {flag!r:.20}")
        flags.add(flag.upper())
    return tuple(sorted(flags))


def _endpoint(value: Any, field: str, protocol: str) -> Endpoint:
    if value is None:
        raise FieldError(field, "missing")
    if not isinstance(value, dict):
        raise FieldError(field, "expected an object")
    port = f.port(value.get("port"), field + ".port")
    if port is not None and protocol not in f.PORT_PROTOCOLS:
        raise FieldError(field + ".port", f"{protocol} flows have no ports")
    kind = name = ""
    workload = value.get("workload")
    if workload is not None:
        if not isinstance(workload, dict):
            raise FieldError(field + ".workload", "expected an object {kind, name}")
        kind = f.text(workload.get("kind"), field + ".workload.kind", f.MAX_KIND)
        name = f.text(workload.get("name"), field + ".workload.name")
        if not (kind and name):
            raise FieldError(field + ".workload", "needs both kind and name")
    return Endpoint(
        ip=f.ip(value.get("ip"), field + ".ip"),
        port=port,
        namespace=f.text(value.get("namespace"), field + ".namespace"),
        pod=f.text(value.get("pod"), field + ".pod"),
        workload_kind=kind,
        workload_name=name,
        reserved=f.text(value.get("reserved"), field + ".reserved", f.MAX_RESERVED),
    )
