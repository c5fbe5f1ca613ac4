"""The retention settings: read from the environment, refused at start-up when they make no sense."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from flows.retention import RetentionPolicy
from netsec.settings import _retention_days

REPO = Path(__file__).resolve().parents[2]


def test_defaults_and_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NETSEC_KEEP_RAW_FLOWS_DAYS", raising=False)
    assert _retention_days("NETSEC_KEEP_RAW_FLOWS_DAYS", 7) == 7
    monkeypatch.setenv("NETSEC_KEEP_RAW_FLOWS_DAYS", " 14 ")
    assert _retention_days("NETSEC_KEEP_RAW_FLOWS_DAYS", 7) == 14


@pytest.mark.parametrize("value", ["", "seven", "7.5", "0", "-3", "1e3", "٣"])
def test_a_value_that_is_not_a_positive_whole_number_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("NETSEC_KEEP_DAILY_DAYS", value)
    with pytest.raises(ImproperlyConfigured, match="NETSEC_KEEP_DAILY_DAYS=.*positive whole number"):
        _retention_days("NETSEC_KEEP_DAILY_DAYS", 400)


def test_hourly_shorter_than_raw_flows_stops_start_up() -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("NETSEC_KEEP_")}
    done = subprocess.run([sys.executable, "manage.py", "check"], cwd=REPO, capture_output=True, text=True, timeout=60,
                          env={**clean, "NETSEC_KEEP_RAW_FLOWS_DAYS": "10", "NETSEC_KEEP_HOURLY_DAYS": "3"})
    assert done.returncode != 0
    assert "NETSEC_KEEP_HOURLY_DAYS=3 is less than NETSEC_KEEP_RAW_FLOWS_DAYS=10" in done.stderr


def test_the_policy_checks_itself() -> None:
    assert RetentionPolicy() == RetentionPolicy(raw_flows_days=7, hourly_days=90, daily_days=400, batch=10000)
    with pytest.raises(ValueError, match="at least as long as the raw flows"):
        RetentionPolicy(raw_flows_days=30, hourly_days=10)
    with pytest.raises(ValueError, match="at least as long as hourly"):
        RetentionPolicy(hourly_days=90, daily_days=30)
    with pytest.raises(ValueError, match="batch=0"):
        RetentionPolicy(batch=0)


def test_the_policy_comes_from_the_settings(settings) -> None:  # type: ignore[no-untyped-def]
    settings.NETSEC_KEEP_RAW_FLOWS_DAYS, settings.NETSEC_KEEP_HOURLY_DAYS = 3, 30
    settings.NETSEC_KEEP_DAILY_DAYS, settings.NETSEC_RETENTION_BATCH = 365, 500
    assert RetentionPolicy.from_settings() == RetentionPolicy(3, 30, 365, 500)
