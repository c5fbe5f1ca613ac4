"""The Hubble parser: every field of FlowRecord from `hubble observe -o jsonpb` / `-o json` lines."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from flows.ingest.reader import parse_lines
from flows.ingest.records import Endpoint, FlowRecord, LineError, Skipped
from tests.ingest.helpers import HUBBLE_SAMPLE, parse, sample

# Indexes into tests/ingest/data/hubble-sample.jsonl
SYN_EGRESS, DNS_QUERY, SYN_ACK_REPLY, DNS_REPLY, WORLD_REPLY, DROPPED, TO_WORLD = range(7)


def record(obj: dict[str, Any] | bytes) -> FlowRecord:
    result = parse(obj)
    assert isinstance(result, FlowRecord), result
    return result


def error(obj: dict[str, Any] | bytes | str) -> LineError:
    result = parse(obj)
    assert isinstance(result, LineError), result
    return result


def test_request_maps_every_field() -> None:
    assert record(sample(SYN_EGRESS)) == FlowRecord(
        time=datetime(2026, 11, 27, 16, 0, tzinfo=UTC),
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
        node_name="node-000",  # "default/node-000": the cluster prefix is not part of a node's name
        event_id="22168d79-0000-4000-8000-b6589fc6ab0d",
    )


def test_udp_dns_query_to_kube_dns() -> None:
    flow = record(sample(DNS_QUERY))
    assert (flow.protocol, flow.tcp_flags, flow.is_reply, flow.traffic_direction) == ("UDP", (), False, "INGRESS")
    assert flow.source == Endpoint(
        ip="10.0.1.7", port=38496, namespace="ns-001", pod="web-000-hphbqw7nn9-kxfnb",
        workload_kind="Deployment", workload_name="web-000",
    )
    assert (flow.destination.ip, flow.destination.port) == ("10.0.0.10", 53)
    assert (flow.destination.namespace, flow.destination.workload_name) == ("kube-system", "coredns")
    assert flow.time == datetime(2026, 11, 27, 16, 0, 0, 1000, tzinfo=UTC)


def test_dns_reply_is_a_reply_from_port_53() -> None:
    flow = record(sample(DNS_REPLY))
    assert (flow.protocol, flow.is_reply, flow.source.port, flow.destination.port) == ("UDP", True, 53, 45478)
    assert flow.source.workload_name == "coredns"


def test_syn_ack_reply_keeps_both_flags_sorted() -> None:
    flow = record(sample(SYN_ACK_REPLY))
    assert flow.is_reply is True
    assert flow.tcp_flags == ("ACK", "SYN")
    assert (flow.source.port, flow.destination.port) == (5432, 39930)


def test_only_set_flags_are_kept_sorted() -> None:
    obj = sample(SYN_EGRESS)
    obj["flow"]["l4"]["TCP"]["flags"] = {"SYN": True, "ACK": True, "FIN": False, "PSH": True, "BOGUS": True}
    assert record(obj).tcp_flags == ("ACK", "PSH", "SYN")


def test_no_flags_is_empty() -> None:
    obj = sample(SYN_EGRESS)
    del obj["flow"]["l4"]["TCP"]["flags"]
    assert record(obj).tcp_flags == ()


def test_missing_is_reply_is_unknown() -> None:
    obj = sample(SYN_EGRESS)
    del obj["flow"]["is_reply"]
    assert record(obj).is_reply is None


def test_deprecated_reply_is_trusted_only_when_true() -> None:
    obj = sample(SYN_EGRESS)
    del obj["flow"]["is_reply"]
    obj["flow"]["reply"] = False  # protobuf cannot tell false from absent: still unknown
    assert record(obj).is_reply is None
    obj["flow"]["reply"] = True
    assert record(obj).is_reply is True


def test_world_source_of_a_reply() -> None:
    flow = record(sample(WORLD_REPLY))
    assert flow.source == Endpoint(ip="93.184.153.127", port=443, reserved="world")
    assert flow.destination.workload_name == "api-001"
    assert (flow.is_reply, flow.tcp_flags) == (True, ("ACK", "SYN"))


def test_world_destination() -> None:
    flow = record(sample(TO_WORLD))
    assert flow.destination == Endpoint(ip="93.184.147.180", port=443, reserved="world")
    assert flow.source.reserved == ""


def test_dropped() -> None:
    flow = record(sample(DROPPED))
    assert (flow.verdict, flow.traffic_direction, flow.is_reply) == ("DROPPED", "INGRESS", False)
    assert (flow.destination.pod, flow.destination.port) == ("api-001-8bsht5lgjx-bvk7s", 5432)


@pytest.mark.parametrize(
    ("labels", "identity", "expected"),
    [
        (["reserved:host"], 1, "host"),
        (["reserved:host", "reserved:kube-apiserver"], None, "host"),  # the API server on this node
        (["reserved:remote-node", "reserved:kube-apiserver"], None, "kube-apiserver"),
        (["reserved:kube-apiserver", "reserved:remote-node"], 7, "kube-apiserver"),
        (["reserved:remote-node"], None, "remote-node"),
        (["reserved:world-ipv4"], None, "world"),
        (["reserved:world", "cidr:93.184.0.0/16"], 16777217, "world"),  # a CIDR identity of a world IP
        (None, 6, "remote-node"),  # no labels: the numeric reserved identity speaks
        (None, 8, "ingress"),
        (["reserved:health"], 4, "health"),
        (["k8s:app=api"], 10004, ""),
    ],
)
def test_reserved_identities(labels: list[str] | None, identity: int | None, expected: str) -> None:
    obj = sample(SYN_EGRESS)
    obj["flow"]["source"] = {k: v for k, v in (("labels", labels), ("identity", identity)) if v is not None}
    flow = record(obj)
    assert flow.source.reserved == expected
    assert (flow.source.namespace, flow.source.pod, flow.source.workload_kind) == ("", "", "")


def test_kubelet_probe_from_host_in_bare_json_shape() -> None:
    flow = sample(SYN_EGRESS)["flow"]
    flow["source"] = {"ID": 0, "identity": 1, "labels": ["reserved:host"]}
    flow["IP"]["source"] = "172.18.0.2"
    parsed = record(flow)
    assert parsed.source == Endpoint(ip="172.18.0.2", port=32857, reserved="host")


def test_bare_json_shape_equals_jsonpb_shape() -> None:
    for index in range(7):
        obj = sample(index)
        assert record(obj["flow"]) == record(obj)


def test_service_and_destination_names() -> None:
    obj = sample(TO_WORLD)
    obj["flow"]["destination_service"] = {"name": "web-000", "namespace": "ns-001"}
    obj["flow"]["destination_names"] = ["API.Example.com.", "api.example.com", "cdn.example.net"]
    flow = record(obj)
    assert flow.destination_service == "ns-001/web-000"
    assert flow.destination_names == ("api.example.com", "cdn.example.net")


def test_l7_dns_response_carries_the_answer() -> None:
    obj = sample(DNS_REPLY)
    obj["flow"].update(
        Type="L7",
        event_type={"type": 129},
        l7={"type": "RESPONSE", "latency_ns": 1000, "dns": {
            "query": "api.example.com.", "ips": ["93.184.147.180", "2606:2800:0220:0001::1"], "ttl": 30,
            "rcode": 0, "qtypes": ["A"], "rrtypes": ["A", "AAAA"], "observation_source": "proxy",
        }},
    )
    flow = record(obj)
    assert (flow.protocol, flow.source.port, flow.is_reply) == ("UDP", 53, True)
    assert flow.dns_query == "api.example.com"
    assert flow.dns_ips == ("93.184.147.180", "2606:2800:220:1::1")


def test_node_name_and_time_fall_back_to_the_response() -> None:
    obj = sample(SYN_EGRESS)
    del obj["flow"]["node_name"], obj["flow"]["time"]
    obj["node_name"], obj["time"] = "other/node-7", "2026-11-27T18:30:00+02:00"
    flow = record(obj)
    assert flow.node_name == "node-7"
    assert flow.time == datetime(2026, 11, 27, 16, 30, tzinfo=UTC)


def test_nanosecond_time_is_truncated_to_microseconds() -> None:
    obj = sample(SYN_EGRESS)
    obj["flow"]["time"] = "2026-11-27T16:00:00.123456789Z"
    assert record(obj).time == datetime(2026, 11, 27, 16, 0, 0, 123456, tzinfo=UTC)


def test_camel_case_json_names_and_enum_numbers() -> None:
    obj = sample(SYN_EGRESS)
    flow = obj["flow"]
    tcp = flow["l4"]["TCP"]
    tcp["sourcePort"], tcp["destinationPort"] = tcp.pop("source_port"), tcp.pop("destination_port")
    flow["trafficDirection"] = 2
    flow["isReply"] = flow.pop("is_reply")
    flow["nodeName"] = flow.pop("node_name")
    flow["verdict"] = 1
    for side in ("source", "destination"):
        flow[side]["podName"] = flow[side].pop("pod_name")
    assert record(obj) == record(sample(SYN_EGRESS))


def test_absent_enums_are_unknown() -> None:
    obj = sample(SYN_EGRESS)
    del obj["flow"]["verdict"], obj["flow"]["traffic_direction"]
    flow = record(obj)
    assert (flow.verdict, flow.traffic_direction) == ("UNKNOWN", "UNKNOWN")
    obj["flow"]["verdict"], obj["flow"]["traffic_direction"] = "VERDICT_UNKNOWN", "TRAFFIC_DIRECTION_UNKNOWN"
    assert (record(obj).verdict, record(obj).traffic_direction) == ("UNKNOWN", "UNKNOWN")


def test_ipv6_is_canonical_and_icmp_has_no_ports() -> None:
    obj = sample(SYN_EGRESS)
    obj["flow"]["IP"] = {"source": "FD00:0:0:0::A", "destination": "fd00::b", "ipVersion": "IPv6"}
    obj["flow"]["l4"] = {"ICMPv6": {"type": 128}}
    flow = record(obj)
    assert (flow.source.ip, flow.destination.ip, flow.protocol) == ("fd00::a", "fd00::b", "ICMPv6")
    assert (flow.source.port, flow.destination.port, flow.tcp_flags) == (None, None, ())


def test_echo_reply_with_every_field_omitted_is_still_icmp() -> None:
    obj = sample(SYN_EGRESS)
    obj["flow"]["l4"] = {"ICMPv4": {}}  # type 0, code 0: protojson omits both
    assert record(obj).protocol == "ICMPv4"


def test_sctp() -> None:
    obj = sample(SYN_EGRESS)
    obj["flow"]["l4"] = {"SCTP": {"source_port": 5000, "destination_port": 36412}}
    flow = record(obj)
    assert (flow.protocol, flow.source.port, flow.destination.port) == ("SCTP", 5000, 36412)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ({"lost_events": {"source": "HUBBLE_RING_BUFFER", "num_events_lost": "7"}, "node_name": "n",
          "time": "2026-11-27T16:00:00Z"}, "lost_events"),
        ({"node_status": {"state_change": "NODE_CONNECTED", "node_names": ["n"]},
          "time": "2026-11-27T16:00:00Z"}, "node_status"),
        ({"agent_event": {"type": "POLICY_UPDATED"}}, "agent_event"),
        # ARP: an ethernet layer, no IP.
        ({"flow": {"time": "2026-11-27T16:00:00Z", "verdict": "FORWARDED",
                   "ethernet": {"source": "02:42:ac:11:00:02", "destination": "ff:ff:ff:ff:ff:ff"},
                   "Type": "L3_L4", "event_type": {"type": 4}}}, "not an IP flow"),
        # An L7 record without addresses.
        ({"flow": {"time": "2026-11-27T16:00:00Z", "Type": "L7",
                   "l7": {"type": "REQUEST", "http": {"method": "GET", "url": "http://x/"}}}}, "not an IP flow"),
        # IP without a TCP/UDP/SCTP/ICMP layer (e.g. fragments): no policy can say anything about it.
        ({"flow": {"time": "2026-11-27T16:00:00Z", "verdict": "DROPPED",
                   "IP": {"source": "10.0.0.1", "destination": "10.0.0.2", "ipVersion": "IPv4"}}},
         "no TCP, UDP, SCTP or ICMP layer"),
        (b"   ", "blank line"),
        # Bare events of `hubble observe agent-events|debug-events -o json`.
        ({"type": "POLICY_UPDATED", "policy_update": {"labels": ["k8s:a=b"], "revision": "3"}}, "agent_event"),
        ({"type": "DBG_CT_LOOKUP4", "source": {"ID": 1}, "message": "x"}, "debug_event"),
        ({"source": "PERF_EVENT_RING_BUFFER", "num_events_lost": "12"}, "lost_events"),
    ],
)
def test_well_formed_lines_that_are_not_flows_are_skipped(line: dict[str, Any] | bytes, reason: str) -> None:
    assert parse(line) == Skipped(1, reason)


@pytest.mark.parametrize(
    ("path", "value", "field", "message"),
    [
        (("IP", "source"), None, "flow.IP.source", "missing"),
        (("IP", "source"), "10.0.1.300", "flow.IP.source", "not an IP address: '10.0.1.300'"),
        (("IP", "destination"), 7, "flow.IP.destination", "expected an address string"),
        (("IP",), None, "flow.IP", "missing in a flow with an l4 layer"),
        (("IP",), "10.0.0.1", "flow.IP", "expected an object"),
        (("l4", "TCP", "destination_port"), 70000, "flow.l4.TCP.destination_port", "port 70000 is outside"),
        (("l4", "TCP", "source_port"), "80", "flow.l4.TCP.source_port", "expected an integer port"),
        (("l4", "TCP", "source_port"), True, "flow.l4.TCP.source_port", "expected an integer port"),
        (("l4", "TCP", "flags"), ["SYN"], "flow.l4.TCP.flags", "expected an object"),
        (("time",), "yesterday", "flow.time", "not an RFC 3339 time"),
        (("time",), "2026-11-27T16:00:00", "flow.time", "no UTC offset"),
        (("time",), "2999-01-01T00:00:00Z", "flow.time", "more than a day in the future"),
        (("time",), 1764259200, "flow.time", "expected an RFC 3339 string"),
        (("is_reply",), "yes", "flow.is_reply", "expected true, false or null"),
        (("traffic_direction",), "SIDEWAYS", "flow.traffic_direction", "unknown traffic direction"),
        (("verdict",), 99, "flow.verdict", "unknown verdict number 99"),
        (("source", "workloads"), [{"kind": "K" * 21, "name": "x"}], "flow.source.workloads[0].kind",
         "longer than 20"),
        (("destination", "namespace"), 5, "flow.destination.namespace", "expected a string"),
        (("destination_names",), "example.com", "flow.destination_names", "expected a list"),
        (("l7",), {"dns": {"query": "x.", "ips": ["nope"]}}, "flow.l7.dns.ips[0]", "not an IP address"),
    ],
)
def test_malformed_fields_are_named(path: tuple[str, ...], value: Any, field: str, message: str) -> None:
    obj = sample(SYN_EGRESS)
    target = obj["flow"]
    for key in path[:-1]:
        target = target[key]
    if value is None:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    problem = error(obj)
    assert (problem.line, problem.field) == (1, field)
    assert message in problem.message


def test_missing_time_everywhere() -> None:
    obj = sample(SYN_EGRESS)
    del obj["flow"]["time"], obj["time"]
    assert (error(obj).field, error(obj).message) == ("flow.time", "missing")


def test_bare_shape_errors_have_no_flow_prefix() -> None:
    flow = sample(SYN_EGRESS)["flow"]
    flow["IP"]["destination"] = "::g"
    assert error(flow).field == "IP.destination"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b'{"flow": {"IP": ', "invalid JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"flow": "x"}', "expected an object"),
        (b'{"hello": "world"}', "not a Hubble flow"),
        (b'{"time": "2026-11-27T16:00:00Z", "protocol": "TCP", "source": {"ip": "10.0.0.1"}, '
         b'"destination": {"ip": "10.0.0.2"}}', "--format netsec"),
    ],
)
def test_lines_that_are_not_hubble_events(line: bytes, message: str) -> None:
    assert message in error(line).message


def test_line_numbers_are_exact_in_a_mixed_stream() -> None:
    good = orjson.dumps(sample(SYN_EGRESS))
    bad_ip = sample(DROPPED)
    bad_ip["flow"]["IP"]["source"] = "999.1.1.1"
    lines = [good, b"not json", b"", orjson.dumps(bad_ip), orjson.dumps({"lost_events": {}}), good]
    results = list(parse_lines(lines, "hubble"))
    assert [type(r).__name__ for r in results] == [
        "FlowRecord", "LineError", "Skipped", "LineError", "Skipped", "FlowRecord",
    ]
    assert (results[1].line, results[1].field) == (2, "")
    assert (results[3].line, results[3].field) == (4, "flow.IP.source")
    assert results[4] == Skipped(5, "lost_events")


def test_data_copy_matches_the_shared_sample(shared_sample: Path) -> None:
    shared = shared_sample.read_bytes().splitlines()
    copied = HUBBLE_SAMPLE.read_bytes().splitlines()
    assert copied == [shared[i] for i in (0, 1, 4, 5, 8, 9, 11)]


def test_every_line_of_the_shared_sample(shared_sample: Path) -> None:
    """Each field of each record against the raw JSON it came from."""
    with shared_sample.open("rb") as stream:
        results = list(parse_lines(stream, "hubble"))
    raws = [orjson.loads(line)["flow"] for line in shared_sample.read_bytes().splitlines()]
    assert len(results) == len(raws) == 12
    for flow, raw in zip(results, raws, strict=True):
        assert isinstance(flow, FlowRecord)
        (protocol, l4), = raw["l4"].items()
        assert flow.protocol == protocol
        assert flow.time == datetime.fromisoformat(raw["time"])
        assert flow.verdict == raw["verdict"]
        assert flow.is_reply is raw["is_reply"]
        assert flow.traffic_direction == raw["traffic_direction"]
        assert flow.node_name == raw["node_name"].split("/")[-1]
        assert flow.event_id == raw["uuid"]
        assert flow.tcp_flags == tuple(sorted(l4.get("flags", {})))
        for side, port_key in (("source", "source_port"), ("destination", "destination_port")):
            endpoint, raw_side = getattr(flow, side), raw[side]
            assert (endpoint.ip, endpoint.port) == (raw["IP"][side], l4[port_key])
            assert endpoint.namespace == raw_side.get("namespace", "")
            assert endpoint.pod == raw_side.get("pod_name", "")
            workload = (raw_side.get("workloads") or [{}])[0]
            assert (endpoint.workload_kind, endpoint.workload_name) == (
                workload.get("kind", ""), workload.get("name", "")
            )
            assert endpoint.reserved == ("world" if "reserved:world" in raw_side["labels"] else "")
    assert sum(r.verdict == "DROPPED" for r in results) == 2
    assert sum(r.is_reply is True for r in results) == 5
    assert len({r.fingerprint for r in results}) == 12
