from __future__ import annotations

from pathlib import Path

import pytest

from tests.ingest.helpers import SHARED_SAMPLE


@pytest.fixture
def shared_sample() -> Path:
    if not SHARED_SAMPLE.exists():
        pytest.skip(f"shared sample not present at {SHARED_SAMPLE}")
    return SHARED_SAMPLE
