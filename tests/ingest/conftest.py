from __future__ import annotations

from pathlib import Path

import pytest

from tests.ingest.helpers import SHARED_SAMPLE


@pytest.fixture
def shared_sample() -> Path:
    return SHARED_SAMPLE
