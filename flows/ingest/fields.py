"""Field checks shared by the flow parsers: each raises FieldError naming the offending field's path.

The length limits mirror the RawFlow columns. They are checked here, at parse time, because on
PostgreSQL one over-long value would make a whole bulk INSERT fail, long after its line was read.
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta
from functools import lru_cache

# Column widths of flows.models.RawFlow (kept here so that the parsers stay free of Django).
MAX_NAME = 253  # namespace, pod, workload name, node name: Kubernetes object names
MAX_KIND = 20
MAX_RESERVED = 40
MAX_SERVICE = 510
MAX_VERDICT = 20

# How far ahead of this host's clock a flow's time may be (clocks of nodes drift; days do not).
FUTURE_SLACK = timedelta(days=1)

PROTOCOLS = ("TCP", "UDP", "SCTP", "ICMPv4", "ICMPv6")
PORT_PROTOCOLS = frozenset({"TCP", "UDP", "SCTP"})
TCP_FLAGS = frozenset({"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR", "NS"})
VERDICTS = frozenset({"FORWARDED", "DROPPED", "ERROR", "AUDIT", "REDIRECTED", "TRACED", "TRANSLATED"})


class FieldError(ValueError):
    """A field that cannot be read; ``field`` is its path in the line, e.g. ``flow.IP.source``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def timestamp(value: object, field: str) -> datetime:
    """An RFC 3339 time with an offset, as an aware UTC datetime (digits past microseconds dropped)."""
    if not isinstance(value, str) or not value:
        raise FieldError(field, "missing" if value is None else "expected an RFC 3339 string")
    try:
        # Python 3.11 reads 'Z' and any number of fraction digits, so Hubble's nanoseconds pass.
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise FieldError(field, f"not an RFC 3339 time: {value[:40]!r}") from None
    if parsed.tzinfo is None:
        # A time without offset is ambiguous by hours: refuse it rather than guess the zone.
        raise FieldError(field, f"no UTC offset in {value[:40]!r}")
    parsed = parsed.astimezone(UTC)
    if parsed > datetime.now(UTC) + FUTURE_SLACK:
        # A clock far off, or a made-up time: stored, it would sit outside every span and, on PostgreSQL,
        # make a day partition of its own that retention never reaches.
        raise FieldError(field, f"{value[:40]!r} is more than a day in the future (a clock off?)")
    return parsed


@lru_cache(maxsize=65536)
def _canonical_ip(value: str) -> str | None:
    # Flows repeat the same few thousand addresses: parse each once. Bounded, so memory stays flat.
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def ip(value: object, field: str) -> str:
    """The canonical text of an IPv4 or IPv6 address."""
    if not isinstance(value, str) or not value:
        raise FieldError(field, "missing" if value in (None, "") else "expected an address string")
    canonical = _canonical_ip(value)
    if canonical is None:
        raise FieldError(field, f"not an IP address: {value[:60]!r}")
    return canonical


def port(value: object, field: str) -> int | None:
    """A port number, None when absent. 0 is what protobuf omits, so it also means 'no port'."""
    if value is None:
        return None
    # bool is an int in Python; a JSON true is never a port.
    if not isinstance(value, int) or isinstance(value, bool):
        raise FieldError(field, f"expected an integer port, got {value!r:.40}")
    if not 0 <= value <= 65535:
        raise FieldError(field, f"port {value} is outside 0-65535")
    return value or None


def text(value: object, field: str, max_length: int = MAX_NAME) -> str:
    """An optional string ("" when absent) that fits its column."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise FieldError(field, "expected a string")
    if len(value) > max_length:
        raise FieldError(field, f"longer than {max_length} characters")
    return value


def optional_bool(value: object, field: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise FieldError(field, "expected true, false or null")


def dns_names(value: object, field: str) -> tuple[str, ...]:
    """DNS names, lower-cased, without the root dot, de-duplicated and sorted (stable fingerprints)."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise FieldError(field, "expected a list of names")
    names: set[str] = set()
    for index, name in enumerate(value):
        if not isinstance(name, str):
            raise FieldError(f"{field}[{index}]", "expected a string")
        name = name.strip().rstrip(".").lower()
        if name:
            names.add(name)
    return tuple(sorted(names))


def ip_list(value: object, field: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise FieldError(field, "expected a list of addresses")
    return tuple(ip(item, f"{field}[{index}]") for index, item in enumerate(value))


def nul_path(value: object, path: str = "") -> str | None:
    """The path of the first string (key or value) holding a NUL character, or None. No name, label or address
    holds one, and PostgreSQL stores none: such an input is refused where it is read."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if "\x00" in key:
                return here
            if (found := nul_path(item, here)) is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if (found := nul_path(item, f"{path}[{index}]")) is not None:
                return found
    return None
