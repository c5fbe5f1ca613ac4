"""Small builders so each evaluation test reads as the rule it checks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from policies.engine import (
    Connection,
    ContainerPort,
    Endpoint,
    Evaluator,
    Namespace,
    Pod,
    ProbeResult,
    parse_policy,
)


def ns(name: str, **labels: str) -> Namespace:
    return Namespace(name, {"kubernetes.io/metadata.name": name, **labels})


def pod(
    namespace: str,
    name: str,
    labels: Mapping[str, str] | None = None,
    ip: str | None = None,
    ports: Iterable[tuple[str | None, int, str]] = (),
    ips: tuple[str, ...] = (),
) -> Pod:
    return Pod(
        namespace=namespace,
        name=name,
        labels=dict(labels or {}),
        ips=((ip,) if ip else ()) + ips,
        ports=tuple(ContainerPort(n, p, proto) for n, p, proto in ports),
    )


def netpol(namespace: str, name: str = "p", **spec: Any) -> dict[str, Any]:
    """A manifest; ``spec`` keys are written as in YAML (podSelector, policyTypes, ingress, egress)."""
    spec.setdefault("podSelector", {})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


class World:
    """A cluster with policies; ``probe`` evaluates one connection between named endpoints."""

    def __init__(self, namespaces: Iterable[Namespace], pods: Iterable[Pod], policies: Iterable[dict[str, Any]]):
        self.pods = {str(p): p for p in pods}
        self.evaluator = Evaluator(namespaces, self.pods.values(), [parse_policy(p) for p in policies])

    def endpoint(self, text: str) -> Endpoint:
        return Endpoint.of_pod(self.pods[text]) if "/" in text else Endpoint.of_ip(text)

    def probe(self, source: str, destination: str, port: int, protocol: str = "TCP") -> ProbeResult:
        return self.evaluator.evaluate(Connection(self.endpoint(source), self.endpoint(destination), port, protocol))

    def sides(self, source: str, destination: str, port: int, protocol: str = "TCP") -> tuple[str, str, bool]:
        result = self.probe(source, destination, port, protocol)
        return (result.egress.status, result.ingress.status, result.allowed)
