"""parse_lines: one result per line, whatever the line's encoding quirks."""

from __future__ import annotations

import pytest

from flows.ingest.reader import FORMATS, parse_lines
from flows.ingest.records import FlowRecord, LineError, Skipped
from tests.ingest.helpers import HUBBLE_SAMPLE, NETSEC_SAMPLE

HUBBLE_LINE = HUBBLE_SAMPLE.read_bytes().splitlines()[0]


def test_formats() -> None:
    assert sorted(FORMATS) == ["hubble", "netsec"]
    with pytest.raises(ValueError, match="unknown flow format 'pcap'"):
        next(parse_lines([], "pcap"))


def test_str_and_bytes_lines_give_the_same_record() -> None:
    [from_bytes] = parse_lines([HUBBLE_LINE], "hubble")
    [from_str] = parse_lines([HUBBLE_LINE.decode()], "hubble")
    assert isinstance(from_bytes, FlowRecord)
    assert from_bytes == from_str


def test_line_endings_and_byte_order_mark() -> None:
    lines = [b"\xef\xbb\xbf" + HUBBLE_LINE + b"\r\n", HUBBLE_LINE + b"\n", b"\r\n", b"\n"]
    results = list(parse_lines(lines, "hubble"))
    assert [type(r) for r in results] == [FlowRecord, FlowRecord, Skipped, Skipped]
    [from_text] = parse_lines(["\ufeff" + HUBBLE_LINE.decode()], "hubble")
    assert isinstance(from_text, FlowRecord)


def test_first_line_number_and_laziness() -> None:
    def endless():
        while True:
            yield b"{}"

    results = parse_lines(endless(), "netsec", first_line=10)
    assert next(results).line == 10
    assert next(results).line == 11  # an endless input is fine: nothing is read ahead


def test_reading_a_file_streams_it() -> None:
    with NETSEC_SAMPLE.open("rb") as stream:
        assert sum(isinstance(r, FlowRecord) for r in parse_lines(stream, "netsec")) == 4


@pytest.mark.parametrize("fmt", ["netsec", "hubble"])
def test_a_nul_character_makes_the_line_malformed_naming_the_field(fmt: str) -> None:
    line = (b'{"time": "2026-11-27T16:00:00Z", "protocol": "TCP", "source": {"ip": "10.0.0.1", "port": 1,'
            b' "namespace": "a\\u0000b"}, "destination": {"ip": "10.0.0.2", "port": 80}}') if fmt == "netsec" else (
            b'{"flow": {"time": "2026-11-27T16:00:00Z", "IP": {"source": "10.0.0.1", "destination": "10.0.0.2"},'
            b' "l4": {"TCP": {"source_port": 1, "destination_port": 80}}, "source": {"pod_name": "p\\u0000"}}}')
    [result] = parse_lines([line], fmt)
    assert isinstance(result, LineError) and result.line == 1
    assert result.field in ("source.namespace", "flow.source.pod_name")
    assert "NUL" in result.message
