"""Helpers of the ingestion tests: sample lines and one-line parsing."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson

from flows.ingest.reader import Result, parse_lines

DATA = Path(__file__).parent / "data"
HUBBLE_SAMPLE = DATA / "hubble-sample.jsonl"  # lines 1, 2, 5, 6, 9, 10, 12 of the shared sample
NETSEC_SAMPLE = DATA / "netsec-sample.jsonl"
# The shared examples live next to the repository (/work/shared beside /work/main); CI may not have them.
# The repository keeps a copy of ../shared/examples (tests/test_examples.py checks it is current).
SHARED_SAMPLE = Path(__file__).resolve().parents[1] / "data" / "hubble-flows.jsonl"


def sample(index: int) -> dict[str, Any]:
    """A fresh, mutable copy of one line of the Hubble sample (0-based index into the data file)."""
    return copy.deepcopy(orjson.loads(HUBBLE_SAMPLE.read_bytes().splitlines()[index]))


def parse(obj: dict[str, Any] | bytes | str, fmt: str = "hubble") -> Result:
    """Parse one line (or an object serialised to one) and return its single result."""
    line = obj if isinstance(obj, bytes | str) else orjson.dumps(obj)
    [result] = list(parse_lines([line], fmt))
    return result
