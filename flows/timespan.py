"""Time spans ('12h', '7d') and points in time as every command, page and API takes them.

One parser for all: a time without an offset means UTC, ``Z`` and ``+02:00`` are accepted, and a bad
value is a usage error whose message names the option and shows the accepted forms.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from django.core.management.base import CommandError

_SPAN = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
USAGE = 2  # the exit code of a malformed option (design §6)
MAX_SPAN = timedelta(weeks=520)  # ten years: more than any retention, and far from datetime's limits
EARLIEST, LATEST = datetime(1970, 1, 1, tzinfo=UTC), datetime(9000, 1, 1, tzinfo=UTC)


def parse_span(text: str) -> timedelta:
    """'12h', '7d', '30m', '2w' → timedelta; ValueError with the accepted forms otherwise."""
    match = _SPAN.match(text or "")
    if not match or int(match.group(1)) <= 0:
        raise ValueError(f"time span {text!r}: use a positive number and a unit m, h, d or w, e.g. 12h or 7d")
    if len(match.group(1)) > 7 or (span := timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})) > MAX_SPAN:
        raise ValueError(f"time span {text!r}: at most {MAX_SPAN.days // 7}w (ten years)")
    return span


def check_time(value: datetime, what: str = "time") -> datetime:
    """``value`` if it lies between 1970 and 9000 (a window before it must still be a date); ValueError if not."""
    if not EARLIEST <= value <= LATEST:
        raise ValueError(f"{what} {value.isoformat()}: give a time between 1970 and 9000")
    return value


def parse_time(text: str) -> datetime:
    """An ISO 8601 time as an aware datetime: '2026-12-01T21:00:00' (UTC), '...Z', '...+02:00'."""
    try:
        value = datetime.fromisoformat((text or "").strip())
    except ValueError:
        raise ValueError(
            f"time {text!r}: use ISO 8601, e.g. 2026-12-01T21:00:00Z or 2026-12-01T23:00:00+02:00 "
            "(without an offset it is UTC)"
        ) from None
    return check_time(value if value.tzinfo is not None else value.replace(tzinfo=UTC))


def span_option(value: str, flag: str) -> timedelta:
    """A command's span option; a bad value exits 2 with a message naming the option."""
    try:
        return parse_span(value)
    except ValueError as exc:
        raise CommandError(f"{flag}: {exc}", returncode=USAGE) from None


def time_option(value: str | None, flag: str) -> datetime | None:
    """A command's time option (None when not given); a bad value exits 2 with a message naming it."""
    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError as exc:
        raise CommandError(f"{flag}: {exc}", returncode=USAGE) from None
