"""Engine benchmark (``python -m policies.engine.bench``): not a test, no assertions on time.

Builds a synthetic cluster (5,000 pods, 1,000 policies by default), evaluates 100,000 pod-to-pod
probes (random pod pairs, ports and protocols; nothing is carried from probe to probe but what the
evaluator works out once per pod, per label set, per policy and per (port, protocol)), and generates
policies for 500 workloads; prints and returns throughput. ``bench/engine.py`` (``python -m
bench.engine``) reports the probes/s figure against its 200,000 target, beside full connectivity
compared with network-config-analyzer.
"""

from __future__ import annotations

import json
import random
import sys
import time
from typing import Any

from policies.engine.evaluate import Evaluator
from policies.engine.generate import Draft, GenerationRequest, generate_policies
from policies.engine.model import Connection, ContainerPort, Endpoint, Namespace, Pod
from policies.engine.parse import parse_policy
from policies.engine.rows import AddressPeer, CommunicationRow, Scope, WorkloadPeer

PORTS = (53, 80, 443, 5432, 6379, 8080, 9090)


def _cluster(rng: random.Random, n_pods: int, n_workloads: int, n_namespaces: int) -> tuple[list[Namespace], list[Pod]]:
    namespaces = [
        Namespace(
            f"ns{i}", {"kubernetes.io/metadata.name": f"ns{i}", "team": f"t{i % 7}", "env": rng.choice(["prod", "dev"])}
        )
        for i in range(n_namespaces)
    ]
    pods: list[Pod] = []
    for i in range(n_pods):
        workload = i % n_workloads
        ports = (ContainerPort("http", 8080), ContainerPort("metrics", 9090), ContainerPort("dns", 53, "UDP"))
        pods.append(
            Pod(
                namespace=f"ns{workload % n_namespaces}",
                name=f"w{workload}-{i}",
                labels={"app": f"w{workload}", "tier": rng.choice(["web", "api", "db"]), "pod-template-hash": f"{i:x}"},
                ips=(f"10.{i // 65536}.{(i // 256) % 256}.{i % 256}",),
                ports=ports[: 1 + workload % 3],
            )
        )
    return namespaces, pods


def _policy(rng: random.Random, i: int, n_workloads: int, n_namespaces: int) -> dict[str, Any]:
    namespace = f"ns{rng.randrange(n_namespaces)}"
    app = f"w{rng.randrange(n_workloads)}"
    peers = [
        {"podSelector": {"matchLabels": {"app": f"w{rng.randrange(n_workloads)}"}}},
        {
            "namespaceSelector": {"matchLabels": {"team": f"t{rng.randrange(7)}"}},
            "podSelector": {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "api"]}]},
        },
        {"namespaceSelector": {"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["dev"]}]}},
        {"ipBlock": {"cidr": "10.0.0.0/8", "except": [f"10.0.{rng.randrange(256)}.0/24"]}},
    ]
    ports = [
        {"port": "http"},
        {"port": rng.choice(PORTS)},
        {"port": 8000, "endPort": 8100},
        {"port": 53, "protocol": "UDP"},
    ]
    rules = [
        {"from" if i % 2 else "to": rng.sample(peers, rng.randint(1, 2)), "ports": rng.sample(ports, rng.randint(1, 2))}
        for _ in range(rng.randint(0, 3))
    ]
    spec: dict[str, Any] = {
        "podSelector": {} if i % 10 == 0 else {"matchLabels": {"app": app}},
        "policyTypes": ["Ingress"] if i % 2 else ["Egress"],
    }
    spec["ingress" if i % 2 else "egress"] = [
        {"from" if i % 2 else "to": r.get("from", r.get("to")), "ports": r["ports"]} for r in rules
    ]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": f"p{i}", "namespace": namespace},
        "spec": spec,
    }


def _generation_requests(
    rng: random.Random, n_workloads: int, n_namespaces: int, rows_each: int
) -> list[GenerationRequest]:
    def peer(w: int) -> WorkloadPeer:
        ns = f"ns{w % n_namespaces}"
        return WorkloadPeer(ns, "Deployment", f"w{w}", {"app": f"w{w}", "pod-template-hash": "x"},
                            namespace_labels={"kubernetes.io/metadata.name": ns})

    requests = []
    for w in range(n_workloads):
        ns = f"ns{w % n_namespaces}"
        scope = Scope("bench", ns, "Deployment", f"w{w}", {"app": f"w{w}", "pod-template-hash": "x"})
        rows = tuple(
            CommunicationRow(
                rng.choice(["ingress", "egress"]),
                AddressPeer(f"203.0.113.{rng.randrange(1, 255)}")
                if rng.random() < 0.1
                else peer(rng.randrange(n_workloads)),
                rng.choice(PORTS),
                rng.choice(["TCP", "TCP", "UDP"]),
                rng.random() < 0.9,
            )
            for _ in range(rows_each)
        )
        requests.append(GenerationRequest(scope, rows, Draft()))
    return requests


def run(
    pods: int = 5_000,
    policies: int = 1_000,
    probes: int = 100_000,
    workloads: int = 500,
    namespaces: int = 50,
    rows_per_workload: int = 20,
    seed: int = 1,
    quiet: bool = False,
) -> dict[str, float]:
    """Build, time and return the figures; also print a short summary unless ``quiet``."""
    rng = random.Random(seed)
    ns_list, pod_list = _cluster(rng, pods, workloads, namespaces)
    manifests = [_policy(rng, i, workloads, namespaces) for i in range(policies)]
    connections = []
    for _ in range(probes):
        source, destination = rng.choice(pod_list), rng.choice(pod_list)
        connections.append(
            Connection(
                Endpoint.of_pod(source), Endpoint.of_pod(destination), rng.choice(PORTS), rng.choice(["TCP", "UDP"])
            )
        )

    start = time.perf_counter()
    parsed = [parse_policy(m) for m in manifests]
    evaluator = Evaluator(ns_list, pod_list, parsed)
    setup = time.perf_counter() - start

    start = time.perf_counter()
    allowed = sum(1 for c in connections if evaluator.evaluate(c).allowed)
    evaluation = time.perf_counter() - start

    requests = _generation_requests(rng, workloads, namespaces, rows_per_workload)
    start = time.perf_counter()
    results, failures = generate_policies(requests)
    generation = time.perf_counter() - start

    report = {
        "pods": pods,
        "policies": policies,
        "probes": probes,
        "allowed": allowed,
        "setup_seconds": round(setup, 3),
        "evaluation_seconds": round(evaluation, 3),
        "probes_per_second": round(probes / evaluation) if evaluation else float("inf"),
        "workloads": workloads,
        "generated": len(results),
        "generation_failures": len(failures),
        "generation_seconds": round(generation, 3),
        "policies_per_second": round(len(results) / generation) if generation else float("inf"),
    }
    if not quiet:
        print(
            f"  evaluation: {probes:,} probes, {policies:,} policies, {pods:,} pods in "
            f"{evaluation:.2f}s = {report['probes_per_second']:,} probes/s (index built in {setup:.2f}s)\n"
            f"  generation: {len(results):,} workloads x {rows_per_workload} rows in "
            f"{generation:.2f}s = {report['policies_per_second']:,} policies/s"
        )
    return report


def main(argv: list[str] | None = None) -> None:
    """``python -m policies.engine.bench [--json]``: a summary, or the figures as JSON."""
    as_json = "--json" in (sys.argv[1:] if argv is None else argv)
    report = run(quiet=as_json)
    if as_json:
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
