"""The probe-case format of ``manage.py probe_policies`` (see ``shared/examples/probe-case.yaml``).

``load_case`` turns the parsed YAML into engine types, raising ``CaseError`` with the field path
(``probes[2].port``) or, for a bad policy, ``policies[i]: policy ns/name: <field>: <problem>``.
``run_case`` evaluates every probe, in order, into the documented JSON shape.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from policies.engine.evaluate import Evaluator
from policies.engine.model import (
    PROTOCOLS,
    CaseError,
    Connection,
    ContainerPort,
    Endpoint,
    Namespace,
    Pod,
    Policy,
    PolicyError,
    ProbeResult,
)
from policies.engine.parse import parse_policy
from policies.engine.selectors import parse_labels

_TOP_FIELDS = {"namespaces", "pods", "policies", "probes"}


@dataclass(frozen=True)
class Probe:
    source: str  # as written in the case, echoed in the output
    destination: str
    connection: Connection


@dataclass(frozen=True)
class Case:
    namespaces: tuple[Namespace, ...]
    pods: tuple[Pod, ...]
    policies: tuple[Policy, ...]
    probes: tuple[Probe, ...]


def _fail(path: str, message: str) -> NoReturn:
    raise CaseError(path, message)


def _list(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        _fail(key, f"expected a list, got {type(value).__name__}")
    return value


def _mapping(item: Any, path: str, fields: set[str]) -> Mapping[str, Any]:
    if not isinstance(item, Mapping):
        _fail(path, f"expected a mapping, got {type(item).__name__}")
    unknown = sorted(str(k) for k in set(item) - fields)
    if unknown:
        _fail(f"{path}.{unknown[0]}" if path else unknown[0], "unknown field")
    return item


def _name(item: Mapping[str, Any], key: str, path: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value:
        _fail(f"{path}.{key}", f"required non-empty string, got {value!r}")
    return value


def _port(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        _fail(path, f"must be a port number 1-65535, got {value!r}")
    return value


def _protocol(value: Any, path: str) -> str:
    if value is None:
        return "TCP"
    if value not in PROTOCOLS:
        _fail(path, f"must be one of {', '.join(PROTOCOLS)}, got {value!r}")
    return value


def _ip(value: Any, path: str) -> str:
    try:
        return str(ipaddress.ip_address(str(value).strip()))
    except ValueError:
        _fail(path, f"not an IP address: {value!r}")


def _parse_pod(item: Any, path: str, namespaces: Mapping[str, Namespace]) -> Pod:
    data = _mapping(item, path, {"namespace", "name", "labels", "ip", "ips", "ports"})
    namespace = _name(data, "namespace", path)
    if namespace not in namespaces:
        _fail(f"{path}.namespace", f"unknown namespace {namespace!r} (declare it under namespaces)")
    name = _name(data, "name", path)
    labels = parse_labels(data.get("labels"), f"{path}.labels", _fail)
    ips: list[str] = []
    if data.get("ip") is not None:
        ips.append(_ip(data["ip"], f"{path}.ip"))
    raw_ips = data.get("ips") or []
    if not isinstance(raw_ips, list):
        _fail(f"{path}.ips", "expected a list of IP addresses")
    ips.extend(_ip(v, f"{path}.ips[{i}]") for i, v in enumerate(raw_ips))
    raw_ports = data.get("ports") or []
    if not isinstance(raw_ports, list):
        _fail(f"{path}.ports", "expected a list")
    ports: list[ContainerPort] = []
    for i, raw in enumerate(raw_ports):
        port_path = f"{path}.ports[{i}]"
        port_data = _mapping(raw, port_path, {"name", "containerPort", "protocol"})
        port_name = port_data.get("name")
        if port_name is not None and (not isinstance(port_name, str) or not port_name):
            _fail(f"{port_path}.name", f"must be a non-empty string, got {port_name!r}")
        ports.append(
            ContainerPort(
                name=port_name,
                port=_port(port_data.get("containerPort"), f"{port_path}.containerPort"),
                protocol=_protocol(port_data.get("protocol"), f"{port_path}.protocol"),
            )
        )
    return Pod(namespace=namespace, name=name, labels=labels, ips=tuple(dict.fromkeys(ips)), ports=tuple(ports))


def _endpoint(value: Any, path: str, pods: Mapping[tuple[str, str], Pod]) -> Endpoint:
    if not isinstance(value, str) or not value.strip():
        _fail(path, f"expected 'namespace/pod' or an IP address, got {value!r}")
    text = value.strip()
    if "/" in text:
        namespace, _, name = text.partition("/")
        pod = pods.get((namespace, name))
        if pod is None:
            _fail(path, f"unknown pod {text!r}")
        return Endpoint.of_pod(pod)
    return Endpoint.of_ip(_ip(text, path))


def load_case(data: Any) -> Case:
    """Parse and check a probe case (the YAML document as Python data)."""
    if not isinstance(data, Mapping):
        _fail("", f"a probe case is a mapping with namespaces, pods, policies and probes, got {type(data).__name__}")
    _mapping(data, "", _TOP_FIELDS)

    namespaces: dict[str, Namespace] = {}
    for i, item in enumerate(_list(data, "namespaces")):
        path = f"namespaces[{i}]"
        ns_data = _mapping(item, path, {"name", "labels"})
        name = _name(ns_data, "name", path)
        if name in namespaces:
            _fail(f"{path}.name", f"duplicate namespace {name!r}")
        namespaces[name] = Namespace(name, parse_labels(ns_data.get("labels"), f"{path}.labels", _fail))

    pods: dict[tuple[str, str], Pod] = {}
    owners: dict[str, str] = {}
    for i, item in enumerate(_list(data, "pods")):
        path = f"pods[{i}]"
        pod = _parse_pod(item, path, namespaces)
        if pod.key in pods:
            _fail(f"{path}.name", f"duplicate pod {pod}")
        for ip in pod.ips:
            if ip in owners:
                _fail(f"{path}.ip", f"{ip} already belongs to pod {owners[ip]}")
            owners[ip] = str(pod)
        pods[pod.key] = pod

    policies: list[Policy] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(_list(data, "policies")):
        try:
            policy = parse_policy(item)
        except PolicyError as exc:
            raise CaseError(f"policies[{i}]", str(exc)) from exc
        if policy.key in seen:
            _fail(f"policies[{i}].metadata.name", f"duplicate policy {policy.key} (also policies[{seen[policy.key]}])")
        seen[policy.key] = i
        policies.append(policy)

    probes: list[Probe] = []
    for i, item in enumerate(_list(data, "probes")):
        path = f"probes[{i}]"
        probe_data = _mapping(item, path, {"from", "to", "port", "protocol"})
        for key in ("from", "to", "port"):
            if key not in probe_data:
                _fail(f"{path}.{key}", "required")
        source = _endpoint(probe_data["from"], f"{path}.from", pods)
        destination = _endpoint(probe_data["to"], f"{path}.to", pods)
        connection = Connection(
            source=source,
            destination=destination,
            port=_port(probe_data["port"], f"{path}.port"),
            protocol=_protocol(probe_data.get("protocol"), f"{path}.protocol"),
        )
        probes.append(Probe(str(probe_data["from"]).strip(), str(probe_data["to"]).strip(), connection))

    return Case(tuple(namespaces.values()), tuple(pods.values()), tuple(policies), tuple(probes))


def evaluate_case(case: Case) -> list[ProbeResult]:
    evaluator = Evaluator(case.namespaces, case.pods, case.policies)
    return [evaluator.evaluate(probe.connection) for probe in case.probes]


def run_case(case: Case) -> dict[str, list[dict[str, Any]]]:
    """The documented output: ``{"results": [...]}`` in probe order."""
    results = []
    for probe, result in zip(case.probes, evaluate_case(case), strict=True):
        results.append(
            {
                "from": probe.source,
                "to": probe.destination,
                "port": probe.connection.port,
                "protocol": probe.connection.protocol,
                "allowed": result.allowed,
                "egress": result.egress.status,
                "ingress": result.ingress.status,
            }
        )
    return {"results": results}
