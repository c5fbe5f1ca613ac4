"""The netsec JSON-lines format: mapping, defaults, and a named field for every kind of mistake."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from flows.ingest.reader import parse_lines
from flows.ingest.records import Endpoint, FlowRecord, LineError
from tests.ingest.helpers import NETSEC_SAMPLE, parse

LINES = NETSEC_SAMPLE.read_bytes().splitlines()
MINIMAL = {
    "time": "2026-11-27T16:00:00Z", "protocol": "TCP",
    "source": {"ip": "10.0.0.1", "port": 40000}, "destination": {"ip": "10.0.0.2", "port": 80},
}


def test_sample_file_maps_every_field() -> None:
    results = list(parse_lines(LINES, "netsec"))
    assert all(isinstance(r, FlowRecord) for r in results)
    full, minimal, dropped, icmp = results
    assert full == FlowRecord(
        time=datetime(2026, 11, 27, 16, 0, 0, 250000, tzinfo=UTC),
        protocol="TCP",
        source=Endpoint(
            ip="10.0.1.9", port=32857, namespace="ns-001", pod="api-001-8bsht5lgjx-q4jr6",
            workload_kind="Deployment", workload_name="api-001",
        ),
        destination=Endpoint(
            ip="10.0.1.8", port=3000, namespace="ns-001", pod="web-000-hphbqw7nn9-bb2wb",
            workload_kind="Deployment", workload_name="web-000",
        ),
        verdict="FORWARDED",
        is_reply=False,
        tcp_flags=("SYN",),
        traffic_direction="EGRESS",
        node_name="node-000",
        destination_service="ns-001/web-000",
        event_id="netsec-0001",
    )
    # Defaults; a +01:00 time is converted to UTC; protocol names are case-insensitive.
    assert minimal == FlowRecord(
        time=datetime(2026, 11, 27, 16, 0, tzinfo=UTC), protocol="UDP",
        source=Endpoint(ip="10.0.1.7", port=38496), destination=Endpoint(ip="10.0.0.10", port=53),
        verdict="FORWARDED", is_reply=None, traffic_direction="UNKNOWN",
    )
    assert (dropped.verdict, dropped.tcp_flags, dropped.traffic_direction) == ("DROPPED", ("SYN",), "EGRESS")
    assert dropped.destination == Endpoint(ip="93.184.147.180", port=443, reserved="world")
    assert dropped.destination_names == ("example.com",)
    assert (icmp.protocol, icmp.source.ip, icmp.destination.ip, icmp.is_reply) == (
        "ICMPv6", "fd00::1", "fd00::2", None,
    )


def test_flags_are_deduplicated_and_sorted() -> None:
    obj = dict(MINIMAL, tcp_flags=["ack", "SYN", "ACK"], is_reply=True)
    flow = parse(obj, "netsec")
    assert isinstance(flow, FlowRecord)
    assert (flow.tcp_flags, flow.is_reply) == (("ACK", "SYN"), True)


def test_unknown_fields_are_ignored() -> None:
    assert isinstance(parse(dict(MINIMAL, bytes=1234, producer="x"), "netsec"), FlowRecord)


def _with(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    obj = copy.deepcopy(MINIMAL)
    target = obj
    for key in path[:-1]:
        target = target[key]
    if value is None:
        target.pop(path[-1], None)
    else:
        target[path[-1]] = value
    return obj


@pytest.mark.parametrize(
    ("path", "value", "field", "message"),
    [
        (("time",), None, "time", "missing"),
        (("time",), "2026-11-27 16:00", "time", "no UTC offset"),
        (("time",), "27/11/2026", "time", "not an RFC 3339 time"),
        (("time",), "2999-01-01T00:00:00+02:00", "time", "more than a day in the future"),
        (("protocol",), None, "protocol", "missing"),
        (("protocol",), "HTTP", "protocol", "expected one of TCP, UDP, SCTP, ICMPv4, ICMPv6"),
        (("source",), None, "source", "missing"),
        (("destination",), ["10.0.0.2"], "destination", "expected an object"),
        (("source", "ip"), None, "source.ip", "missing"),
        (("destination", "ip"), "10.0.0", "destination.ip", "not an IP address"),
        (("destination", "port"), -1, "destination.port", "outside 0-65535"),
        (("destination", "port"), 80.5, "destination.port", "expected an integer port"),
        (("source", "workload"), {"kind": "Deployment"}, "source.workload", "needs both kind and name"),
        (("source", "workload"), "api", "source.workload", "expected an object"),
        (("tcp_flags",), "SYN", "tcp_flags", "expected a list"),
        (("tcp_flags",), ["SYN", "PUSH"], "tcp_flags[1]", "not a TCP flag"),
        (("direction",), "inbound", "direction", "expected ingress or egress"),
        (("verdict",), "ALLOWED", "verdict", "expected one of"),
        (("is_reply",), "no", "is_reply", "expected true, false or null"),
        (("names",), "example.com", "names", "expected a list"),
        (("names",), ["example.com", 7], "names[1]", "expected a string"),
        (("node",), "n" * 254, "node", "longer than 253"),
    ],
)
def test_malformed_fields_are_named(path: tuple[str, ...], value: Any, field: str, message: str) -> None:
    result = parse(_with(path, value), "netsec")
    assert isinstance(result, LineError), result
    assert (result.line, result.field) == (1, field)
    assert message in result.message


def test_ports_and_flags_only_where_the_protocol_has_them() -> None:
    icmp = dict(MINIMAL, protocol="ICMPv4")
    result = parse(icmp, "netsec")
    assert isinstance(result, LineError)
    assert (result.field, result.message) == ("source.port", "ICMPv4 flows have no ports")
    udp = dict(MINIMAL, protocol="UDP", tcp_flags=["SYN"])
    result = parse(udp, "netsec")
    assert isinstance(result, LineError)
    assert (result.field, result.message) == ("tcp_flags", "TCP flags on a UDP flow")


def test_line_numbers_in_a_mixed_stream() -> None:
    lines = [LINES[0], b"{", orjson.dumps(_with(("source", "ip"), "x")), b"", b"[]", LINES[1]]
    results = list(parse_lines(lines, "netsec"))
    errors = [(r.line, r.field) for r in results if isinstance(r, LineError)]
    assert errors == [(2, ""), (3, "source.ip"), (5, "")]
    assert [r.line for r in results if not isinstance(r, FlowRecord | LineError)] == [4]
