"""One parser for span and time options, for every command: naive means UTC, ``Z`` and offsets are
accepted, and a bad value is a usage error (exit 2) with a message naming the option."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from flows.timespan import parse_span, parse_time
from tests import factories as f

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-12-01T21:00:00", datetime(2026, 12, 1, 21, tzinfo=UTC)),
    ("2026-12-01T21:00:00Z", datetime(2026, 12, 1, 21, tzinfo=UTC)),
    ("2026-12-01T23:00:00+02:00", datetime(2026, 12, 1, 21, tzinfo=UTC)),
    ("2026-12-01 21:00", datetime(2026, 12, 1, 21, tzinfo=UTC)),
    ("2026-12-01", datetime(2026, 12, 1, tzinfo=UTC)),
])
def test_times(text: str, expected: datetime) -> None:
    parsed = parse_time(text)
    assert parsed == expected and parsed.tzinfo is not None
    # An offset is kept, not converted away: the moment is the same.
    assert parse_time("2026-12-01T23:00:00+02:00").utcoffset() == timedelta(hours=2)


@pytest.mark.parametrize(("text", "expected"), [
    ("30m", timedelta(minutes=30)), ("12h", timedelta(hours=12)), ("7d", timedelta(days=7)), ("2w", timedelta(weeks=2)),
    (" 24h ", timedelta(hours=24)),
])
def test_spans(text: str, expected: timedelta) -> None:
    assert parse_span(text) == expected


@pytest.mark.parametrize("text", ["0h", "12", "h", "-1d", "1y", "forever", ""])
def test_bad_spans(text: str) -> None:
    with pytest.raises(ValueError, match="use a positive number and a unit"):
        parse_span(text)


@pytest.mark.parametrize("text", ["521w", "3641d", "510943695413804692d", "99999999999m"])
def test_spans_past_ten_years_are_refused(text: str) -> None:
    # A window that long reaches before any data, and a huge one past what a date can be (once a 500).
    with pytest.raises(ValueError, match="at most 520w"):
        parse_span(text)
    assert parse_span("520w") == timedelta(weeks=520)


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00Z", "1969-12-31T23:59:59Z", "9999-12-31T00:00:00Z"])
def test_times_far_from_now_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="between 1970 and 9000"):
        parse_time(text)


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01T00:00:00", "21:00"])
def test_bad_times(text: str) -> None:
    with pytest.raises(ValueError, match="use ISO 8601"):
        parse_time(text)


@pytest.fixture
def world(cluster):
    web = f.workload(cluster, "shop", "Deployment", "web")
    f.pod(cluster, web, "web-1", "10.244.1.1")
    return cluster


SHOW = ("show_communications", "--cluster", "test", "--namespace", "shop", "--kind", "Deployment", "--name", "web",
        "--direction", "egress")
GENERATE = ("generate_policy", "--cluster", "test", "--namespace", "shop", "--kind", "Deployment", "--name", "web")


@pytest.mark.parametrize("command", [SHOW, GENERATE], ids=["show_communications", "generate_policy"])
@pytest.mark.parametrize("until", ["2026-12-01T21:00:00", "2026-12-01T21:00:00Z", "2026-12-01T23:00:00+02:00"])
def test_every_form_of_until_works(world, command: tuple[str, ...], until: str) -> None:
    out = StringIO()
    call_command(*command, "--until", until, stdout=out, stderr=StringIO())
    if command is GENERATE:
        assert "netsec/observed-to: '2026-12-01T21:00:00Z'" in out.getvalue()


@pytest.mark.parametrize(("args", "option"), [
    (("show_communications", *SHOW[1:], "--until", "tomorrow"), "--until"),
    (("show_communications", *SHOW[1:], "--since", "forever"), "--since"),
    ((*GENERATE, "--until", "2026-12-01T25:00"), "--until"),
    ((*GENERATE, "--since", "0h"), "--since"),
    (("aggregate_flows", "--rebuild", "a week"), "--rebuild"),
    (("import_inventory", "--cluster", "test", "--observed-at", "noon", "x.yaml"), "--observed-at"),
])
def test_a_bad_value_is_a_usage_error_naming_the_option(world, args: tuple[str, ...], option: str) -> None:
    with pytest.raises(CommandError, match=f"^{option}: ") as info:
        call_command(*args, stdout=StringIO(), stderr=StringIO())
    assert info.value.returncode == 2


def test_the_command_line_exits_2_on_a_bad_time() -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "show_communications", *SHOW[1:], "--until", "tomorrow"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert "--until: time 'tomorrow': use ISO 8601" in result.stderr

