"""What every flow parser returns: plain records, no Django. The database writing is in flows.store.raw_flows."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime


# The two records below are built once or twice per flow line, a million times per large import: they are plain
# slotted dataclasses, not frozen ones, whose __init__ sets every field through object.__setattr__ (2.5x the cost,
# about 3.5 µs of the ~38 µs of CPU a Hubble line takes). Nothing changes a record once a parser has made it.
@dataclass(slots=True)
class Endpoint:
    ip: str
    port: int | None = None
    namespace: str = ""
    pod: str = ""
    workload_kind: str = ""
    workload_name: str = ""
    reserved: str = ""  # Cilium reserved identity without prefix: host, world, kube-apiserver, remote-node...


@dataclass(slots=True)
class FlowRecord:
    """One observed flow event (a packet summary), as a parser understood it."""

    time: datetime  # timezone-aware UTC
    protocol: str  # TCP, UDP, SCTP, ICMPv4, ICMPv6
    source: Endpoint
    destination: Endpoint
    verdict: str = "FORWARDED"  # FORWARDED, DROPPED, ERROR, AUDIT, REDIRECTED, TRACED, TRANSLATED, UNKNOWN
    is_reply: bool | None = None  # None: the observer did not say
    tcp_flags: tuple[str, ...] = ()  # sorted, e.g. ("ACK", "SYN")
    traffic_direction: str = "UNKNOWN"  # INGRESS, EGRESS, UNKNOWN
    node_name: str = ""
    destination_service: str = ""  # "namespace/name" when the observer named the service
    destination_names: tuple[str, ...] = ()  # DNS names seen for the destination IP
    event_id: str = ""  # the observer's own id (Hubble's uuid) when present
    # A DNS message seen by the observer (Hubble's l7.dns): the name asked for and, in a response, the
    # addresses it resolved to, so that a later stage can learn IP -> name. Not part of the fingerprint:
    # the uuid already tells such events apart.
    dns_query: str = ""
    dns_ips: tuple[str, ...] = ()

    @property
    def fingerprint(self) -> str:
        """Same event, same fingerprint: re-sending a batch adds nothing."""
        if self.event_id:
            return "id:" + self.event_id[:61]
        parts = (
            self.time.isoformat(), self.protocol, self.source.ip, str(self.source.port), self.destination.ip,
            str(self.destination.port), self.verdict, str(self.is_reply), ",".join(self.tcp_flags),
            self.traffic_direction, self.node_name,
        )
        return hashlib.sha256("|".join(parts).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class LineError:
    """A line that could not be read: where, which field, and why."""

    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


@dataclass(frozen=True, slots=True)
class Skipped:
    """A well-formed line that is not an IP flow (lost events, node status, ARP, ...): counted only."""

    line: int
    reason: str


@dataclass(slots=True)
class IngestSummary:
    lines: int = 0
    stored: int = 0
    duplicates: int = 0
    skipped: int = 0  # well-formed events that are not flows (e.g. non-IP), counted, not stored
    malformed: int = 0
    errors: list[LineError] = field(default_factory=list)  # the first few, not all: memory stays bounded
    read_error: str = ""  # why reading stopped early (I/O error, truncated gzip); the lines before it count
