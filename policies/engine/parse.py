"""NetworkPolicy manifest (a dict, as the API or YAML gives it) -> ``Policy``.

The parser resolves what the API server defaults (``policyTypes``, ``protocol``) and rejects what it
would reject, so evaluation never has to guess. Every error names the policy and the field path.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn

from policies.engine.model import (
    PROTOCOLS,
    IPBlock,
    Peer,
    Policy,
    PolicyError,
    PolicyType,
    PortSpec,
    Rule,
)
from policies.engine.selectors import parse_selector

# IANA service name, as Kubernetes validates named ports: <=15 chars, lowercase alphanumerics and
# single inner hyphens, at least one letter.
_IANA_SVC_NAME = re.compile(r"^(?=.*[a-z])[a-z0-9]+(-[a-z0-9]+)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SPEC_FIELDS = {"podSelector", "policyTypes", "ingress", "egress"}
_PEER_FIELDS = {"podSelector", "namespaceSelector", "ipBlock"}
_PORT_FIELDS = {"port", "endPort", "protocol"}


class _Context:
    def __init__(self, policy: str) -> None:
        self.policy = policy

    def fail(self, path: str, message: str) -> NoReturn:
        raise PolicyError(self.policy, path, message)

    def mapping(self, data: Any, path: str, allowed: Iterable[str], expected: str) -> Mapping[str, Any]:
        """``data`` as a mapping with only ``allowed`` keys; otherwise fail naming the first bad field."""
        if not isinstance(data, Mapping):
            self.fail(path, expected)
        unknown = sorted(set(data) - set(allowed))
        if unknown:
            self.fail(f"{path}.{unknown[0]}", "unknown field")
        return data


def policy_identity(manifest: Any) -> str:
    """``namespace/name`` as well as can be told from a possibly malformed manifest (for messages)."""
    meta = manifest.get("metadata") if isinstance(manifest, Mapping) else None
    if not isinstance(meta, Mapping):
        return "<unnamed>"
    name = meta.get("name") if isinstance(meta.get("name"), str) and meta.get("name") else "<unnamed>"
    namespace = meta.get("namespace") if isinstance(meta.get("namespace"), str) else "default"
    return f"{namespace}/{name}"


def parse_policy(manifest: Any) -> Policy:
    """Parse one ``networking.k8s.io/v1`` NetworkPolicy; raise ``PolicyError`` on anything invalid."""
    ctx = _Context(policy_identity(manifest))
    if not isinstance(manifest, Mapping):
        ctx.fail("", f"expected a NetworkPolicy mapping, got {type(manifest).__name__}")
    api_version = manifest.get("apiVersion", "networking.k8s.io/v1")
    if api_version != "networking.k8s.io/v1":
        ctx.fail("apiVersion", f"expected networking.k8s.io/v1, got {api_version!r}")
    kind = manifest.get("kind", "NetworkPolicy")
    if kind != "NetworkPolicy":
        ctx.fail("kind", f"expected NetworkPolicy, got {kind!r}")

    meta = manifest.get("metadata")
    if not isinstance(meta, Mapping):
        ctx.fail("metadata", "required mapping with name and namespace")
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        ctx.fail("metadata.name", "required")
    # kubectl puts a manifest without a namespace into "default"; do the same.
    namespace = meta.get("namespace", "default")
    if not isinstance(namespace, str) or not _DNS_LABEL.match(namespace) or len(namespace) > 63:
        ctx.fail("metadata.namespace", f"not a namespace name: {namespace!r}")

    spec = ctx.mapping(manifest.get("spec"), "spec", _SPEC_FIELDS, "required mapping")
    if "podSelector" not in spec:
        ctx.fail("spec.podSelector", "required (use {} to select every pod of the namespace)")
    pod_selector = parse_selector(spec["podSelector"], "spec.podSelector", ctx.fail)

    ingress = _parse_rules(spec.get("ingress"), "spec.ingress", "from", ctx)
    egress = _parse_rules(spec.get("egress"), "spec.egress", "to", ctx)
    policy_types = _policy_types(spec, egress, ctx)
    return Policy(
        name=name,
        namespace=namespace,
        pod_selector=pod_selector,
        policy_types=policy_types,
        ingress=ingress,
        egress=egress,
    )


def _policy_types(spec: Mapping[str, Any], egress: tuple[Rule, ...], ctx: _Context) -> tuple[PolicyType, ...]:
    raw = spec.get("policyTypes")
    if raw is None or raw == []:
        # The API server's defaulting: Ingress always; Egress only when the egress list is non-empty,
        # so a bare "egress: []" isolates nothing.
        return ("Ingress", "Egress") if egress else ("Ingress",)
    if not isinstance(raw, list):
        ctx.fail("spec.policyTypes", "expected a list")
    types: list[PolicyType] = []
    for i, value in enumerate(raw):
        if value not in ("Ingress", "Egress"):
            ctx.fail(f"spec.policyTypes[{i}]", f"must be Ingress or Egress, got {value!r}")
        if value in types:
            ctx.fail(f"spec.policyTypes[{i}]", f"duplicate {value}")
        types.append(value)
    return tuple(sorted(types, key=("Ingress", "Egress").index))


def _parse_rules(data: Any, path: str, peers_field: str, ctx: _Context) -> tuple[Rule, ...]:
    if data is None:
        return ()
    if not isinstance(data, list):
        ctx.fail(path, "expected a list of rules")
    rules: list[Rule] = []
    for i, item in enumerate(data):
        rule_path = f"{path}[{i}]"
        if item is None:
            item = {}  # "- {}" and a bare "-" both mean "every peer, every port"
        item = ctx.mapping(item, rule_path, (peers_field, "ports"), "expected a mapping")
        peers_data = item.get(peers_field) or []
        if not isinstance(peers_data, list):
            ctx.fail(f"{rule_path}.{peers_field}", "expected a list of peers")
        ports_data = item.get("ports") or []
        if not isinstance(ports_data, list):
            ctx.fail(f"{rule_path}.ports", "expected a list of ports")
        peers = tuple(_parse_peer(p, f"{rule_path}.{peers_field}[{j}]", ctx) for j, p in enumerate(peers_data))
        ports = tuple(_parse_port(p, f"{rule_path}.ports[{j}]", ctx) for j, p in enumerate(ports_data))
        rules.append(Rule(peers=peers, ports=ports))
    return tuple(rules)


def _parse_peer(data: Any, path: str, ctx: _Context) -> Peer:
    data = ctx.mapping(data, path, _PEER_FIELDS, "expected a mapping with podSelector, namespaceSelector or ipBlock")
    present = [f for f in ("podSelector", "namespaceSelector", "ipBlock") if data.get(f) is not None]
    # The API server rejects an empty peer and an ipBlock combined with a selector.
    if not present:
        ctx.fail(path, "must specify podSelector, namespaceSelector or ipBlock")
    if "ipBlock" in present and len(present) > 1:
        ctx.fail(path, "ipBlock cannot be combined with podSelector or namespaceSelector")
    if "ipBlock" in present:
        return Peer(ip_block=_parse_ip_block(data["ipBlock"], f"{path}.ipBlock", ctx))
    return Peer(
        pod_selector=(
            parse_selector(data["podSelector"], f"{path}.podSelector", ctx.fail) if "podSelector" in present else None
        ),
        namespace_selector=(
            parse_selector(data["namespaceSelector"], f"{path}.namespaceSelector", ctx.fail)
            if "namespaceSelector" in present
            else None
        ),
    )


def _parse_network(value: Any, path: str, ctx: _Context) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if not isinstance(value, str) or "/" not in value:
        ctx.fail(path, f"not a CIDR: {value!r}")
    try:
        # Host bits are tolerated ("192.168.1.1/24"), as the API server's own parser tolerates them.
        return ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        ctx.fail(path, f"not a CIDR: {value!r}")


def _parse_ip_block(data: Any, path: str, ctx: _Context) -> IPBlock:
    data = ctx.mapping(data, path, ("cidr", "except"), "expected a mapping with cidr and optional except")
    if "cidr" not in data:
        ctx.fail(f"{path}.cidr", "required")
    network = _parse_network(data["cidr"], f"{path}.cidr", ctx)
    excepts_data = data.get("except") or []
    if not isinstance(excepts_data, list):
        ctx.fail(f"{path}.except", "expected a list of CIDRs")
    excepts: list[str] = []
    for i, item in enumerate(excepts_data):
        sub = _parse_network(item, f"{path}.except[{i}]", ctx)
        if sub.version != network.version or not sub.subnet_of(network) or sub.prefixlen <= network.prefixlen:  # type: ignore[arg-type]
            ctx.fail(f"{path}.except[{i}]", f"must be a strict subset of {network}: {item!r}")
        excepts.append(str(sub))
    return IPBlock(cidr=str(network), except_=tuple(excepts))


def _port_number(value: Any, path: str, ctx: _Context) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        ctx.fail(path, f"must be a port number 1-65535, got {value!r}")
    return value


def _parse_port(data: Any, path: str, ctx: _Context) -> PortSpec:
    data = ctx.mapping(data, path, _PORT_FIELDS, "expected a mapping with port, protocol and optional endPort")
    protocol = data.get("protocol")
    if protocol is None:
        protocol = "TCP"  # the API's default
    elif protocol not in PROTOCOLS:
        ctx.fail(f"{path}.protocol", f"must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    port = data.get("port")
    end_port = data.get("endPort")
    if isinstance(port, str):
        if not _IANA_SVC_NAME.match(port) or len(port) > 15:
            ctx.fail(f"{path}.port", f"not a port number or a valid port name: {port!r}")
        if end_port is not None:
            ctx.fail(f"{path}.endPort", "not allowed with a named port")
        return PortSpec(protocol=protocol, port=port)
    if port is None:
        if end_port is not None:
            ctx.fail(f"{path}.endPort", "requires port")
        return PortSpec(protocol=protocol)
    number = _port_number(port, f"{path}.port", ctx)
    if end_port is None:
        return PortSpec(protocol=protocol, port=number)
    end = _port_number(end_port, f"{path}.endPort", ctx)
    if end < number:
        ctx.fail(f"{path}.endPort", f"must be >= port ({number}), got {end}")
    return PortSpec(protocol=protocol, port=number, end_port=end)
