"""The repository's copies of the shared examples are current, so that tests read what users read."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent / "data"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "examples"


@pytest.mark.parametrize("name", ["inventory.yaml", "hubble-flows.jsonl", "probe-case.yaml"])
def test_copy_matches_the_shared_example(name: str) -> None:
    # ../shared sits beside the checkout on developer machines and in CI.
    assert (DATA / name).read_bytes() == (SHARED / name).read_bytes(), f"refresh tests/data/{name}"
