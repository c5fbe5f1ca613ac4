"""IP addresses and ranges stored portably (SQLite and PostgreSQL alike).

An address is kept as canonical text; a range as canonical CIDR text plus fixed-width hex keys of its
first and last address, so that text order is numeric order and "which ranges contain this IP" is two
plain comparisons. IPv4 keys are IPv4-mapped IPv6 (``::ffff:a.b.c.d``) so both families share one width.
"""

from __future__ import annotations

import bisect
import ipaddress
from dataclasses import dataclass, field
from typing import Generic, TypeVar

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

T = TypeVar("T")


def canonical_ip(text: str) -> str:
    """The canonical text of an address ('10.0.0.1', '2001:db8::1'); ValueError if it is not one."""
    return str(ipaddress.ip_address(text.strip()))


def canonical_cidr(text: str) -> str:
    """Canonical CIDR text; a bare address becomes /32 or /128. ValueError on host bits or garbage."""
    return str(ipaddress.ip_network(text.strip(), strict=True))


def ip_key(address: str | IPAddress) -> str:
    """32 hex digits; IPv4 is mapped into IPv6 space so that one width orders both families."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    value = int(ip) + (0xFFFF << 32) if ip.version == 4 else int(ip)
    return f"{value:032x}"


def range_keys(cidr: str | IPNetwork) -> tuple[str, str]:
    net = ipaddress.ip_network(cidr, strict=False) if isinstance(cidr, str) else cidr
    return ip_key(net.network_address), ip_key(net.broadcast_address)


def parse_cidr_list(text: str) -> list[IPNetwork]:
    """Parse a comma/space/newline separated list of CIDRs, as the cluster form stores them."""
    nets: list[IPNetwork] = []
    for part in text.replace(",", " ").split():
        nets.append(ipaddress.ip_network(part, strict=False))
    return nets


@dataclass
class RangeTable(Generic[T]):
    """Longest-prefix match over a set of CIDRs, loaded once, queried in memory (never a query per IP)."""

    _by_prefix: dict[tuple[int, int], dict[int, T]] = field(default_factory=dict)
    _prefixes: list[tuple[int, int]] = field(default_factory=list)

    def add(self, cidr: str | IPNetwork, value: T) -> None:
        net = ipaddress.ip_network(cidr, strict=False) if isinstance(cidr, str) else cidr
        key = (net.version, net.prefixlen)
        if key not in self._by_prefix:
            self._by_prefix[key] = {}
            bisect.insort(self._prefixes, key, key=lambda k: (k[0], -k[1]))
        self._by_prefix[key][int(net.network_address)] = value

    def lookup(self, address: str | IPAddress) -> T | None:
        """The value of the most specific range containing the address, or None."""
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
        width = 32 if ip.version == 4 else 128
        n = int(ip)
        for version, prefix in self._prefixes:
            if version != ip.version:
                continue
            mask = ((1 << prefix) - 1) << (width - prefix) if prefix else 0
            hit = self._by_prefix[(version, prefix)].get(n & mask)
            if hit is not None:
                return hit
        return None

    def __bool__(self) -> bool:
        return bool(self._prefixes)
