"""``python -m bench.engine [--quick]``: the policy engine against IBM's network-config-analyzer.

Figures are printed, never asserted:

1. **Probes/s**: ``policies.engine.bench`` (100,000 pod-to-pod probes with ports, 1,000 policies over 5,000
   pods); target 200,000 probes/s.
2. **Full connectivity**: a synthetic cluster (800 pods, 400 policies; ``--quick``: 100 x 50) made from a seed,
   written as the YAML files both read (a ``kind: List`` of Namespaces, one of Pods, a folder of
   NetworkPolicies). Every ordered pod pair x every (port, protocol) in play: ours is the median of several
   runs of read YAML + parse + ``policies.engine.connectivity``; the peer is one run of
   ``nca --connectivity`` (``network-config-analyzer`` 2.1.0, its own venv under ``.bench/venvs/nca``).
   Target: ours at least 100x faster. The two answers are compared pair by pair, column by column.

Shared semantics: the comparison covers what both implement alike; where the analyzer departs from the
API, the generator does not write the construct, and the difference is named here (each was found by a
mismatch or a targeted run, then read in the spec and in the analyzer's source):

- ipBlock: the analyzer never applies one to pod addresses, our engine does (Kubernetes leaves it to the
  network plugin: "ipBlock ... should be cluster-external IPs"). All generated ipBlocks are
  cluster-external.
- ``egress: []`` without ``policyTypes``: the analyzer takes the bare key to isolate egress; the API
  server defaults ``policyTypes`` to Egress only for a non-empty list (``len(spec.Egress) != 0``), as our
  engine does. Not written.
- ``Exists``/``DoesNotExist`` in a podSelector beside a namespaceSelector: the analyzer matches only pods
  of the policy's own namespace (``In``/``NotIn`` it applies to the namespaces selected, as the API says
  for any requirement). These operators are written in podSelectors standing alone and in policies' own
  podSelectors only.

Every other feature (selectors and their operators, namespaceSelector with and without podSelector,
named ports resolved on the destination, endPort ranges, protocols, policyTypes defaulting) is used on
both sides. A pod's connections to itself are left out (the analyzer does not report them).

Scratch (the YAML, the peer's venv and output, a JSON report) lives in ``.bench/``.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench import _nca
from policies.engine import ContainerPort, Namespace, Pod, Policy, parse_policy
from policies.engine import bench as probe_bench
from policies.engine.connectivity import Connectivity, connectivity

REPO = Path(__file__).resolve().parents[1]
SCRATCH = REPO / ".bench"
NCA_VENV = SCRATCH / "venvs" / "nca"
PROBES_TARGET = 200_000
SPEEDUP_TARGET = 100.0
PROTOCOLS = ("TCP", "UDP", "SCTP")
Column = tuple[int, str]
Manifest = dict[str, Any]

# ---------------------------------------------------------------------------------------------------------
# The synthetic cluster
# ---------------------------------------------------------------------------------------------------------

TEAMS = ("payments", "shop", "search", "platform", "data")
ENVS = ("prod", "staging", "dev")
# Container ports per tier: (name, number, protocol). "http" is 8080 on most web pods and 80 on some, so a
# named port resolves to different numbers on different destinations.
TIER_PORTS: dict[str, tuple[tuple[str, int, str], ...]] = {
    "web": (("http", 8080, "TCP"), ("metrics", 9090, "TCP")),
    "api": (("http", 8080, "TCP"), ("grpc", 50051, "TCP"), ("metrics", 9090, "TCP")),
    "db": (("postgres", 5432, "TCP"), ("metrics", 9187, "TCP")),
    "cache": (("redis", 6379, "TCP"),),
    "dns": (("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"), ("metrics", 9153, "TCP")),
}
TIERS = ("web", "web", "api", "api", "db", "cache")
NUMBERED = ((80, "TCP"), (443, "TCP"), (5432, "TCP"), (6379, "TCP"), (8080, "TCP"), (9090, "TCP"), (50051, "TCP"),
            (53, "UDP"), (53, "TCP"), (3868, "SCTP"), (5000, "UDP"))
NAMED = (("http", "TCP"), ("grpc", "TCP"), ("metrics", "TCP"), ("postgres", "TCP"), ("dns", "UDP"), ("dns", "TCP"))
RANGES = ((8000, 8100), (30000, 32767), (9000, 9200))
# Cluster-external blocks only (see the module docstring); pods are in 10.0.0.0/8.
EXTERNAL_BLOCKS = (
    {"cidr": "203.0.113.0/24"},
    {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]},
    {"cidr": "198.51.100.0/24", "except": ["198.51.100.128/25"]},
)


@dataclass(frozen=True)
class Cluster:
    namespaces: list[Manifest]
    pods: list[Manifest]
    policies: list[Manifest]


def synthesize(n_pods: int, n_policies: int, seed: int = 7) -> Cluster:
    """A cluster of ``n_pods`` pods in workloads of 1-7 replicas and ``n_policies`` policies, from ``seed``."""
    rng = random.Random(seed)
    n_namespaces = max(3, n_pods // 40)
    namespaces = [f"ns-{i:02d}" for i in range(n_namespaces)]
    ns_labels = {
        name: {"kubernetes.io/metadata.name": name, "team": rng.choice(TEAMS), "env": rng.choice(ENVS)}
        for name in namespaces
    }
    namespaces.append("kube-system")
    ns_labels["kube-system"] = {"kubernetes.io/metadata.name": "kube-system"}

    pods: list[Manifest] = []
    apps: dict[str, list[str]] = {name: [] for name in namespaces}

    def add_workload(namespace: str, tier: str, app: str, replicas: int) -> None:
        template_hash = f"{rng.getrandbits(32):08x}"[:8]
        labels = {"app": app, "tier": tier, "version": rng.choice(("v1", "v2")), "pod-template-hash": template_hash}
        ports = [{"name": name, "containerPort": number, "protocol": protocol}
                 for name, number, protocol in TIER_PORTS[tier]]
        if tier == "web" and rng.random() < 0.3:
            ports[0]["containerPort"] = 80
        apps[namespace].append(app)
        for replica in range(replicas):
            index = len(pods)
            ip = f"10.{index // 65536}.{index // 256 % 256}.{index % 256}"
            pods.append({
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": f"{app}-{template_hash}-{replica}", "namespace": namespace,
                             "labels": dict(labels)},
                "spec": {"containers": [{"name": app, "image": f"example/{tier}:1", "ports": ports}]},
                "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]},
            })

    add_workload("kube-system", "dns", "kube-dns", min(2, n_pods))
    workload = 0
    while len(pods) < n_pods:
        tier = rng.choice(TIERS)
        replicas = min(rng.randint(1, 7), n_pods - len(pods))
        add_workload(rng.choice(namespaces[:-1]), tier, f"{tier}-{workload}", replicas)
        workload += 1

    all_apps = [app for listed in apps.values() for app in listed]

    def pod_selector(namespace: str, *, peer: bool = False, with_namespaces: bool = False) -> Manifest:
        roll = rng.random()
        local = apps[namespace] or all_apps
        if with_namespaces and roll >= 0.9:
            roll = rng.random() * 0.9  # no Exists/DoesNotExist beside a namespaceSelector (see the docstring)
        if roll < 0.12:
            return {}
        if roll < 0.55:
            return {"matchLabels": {"app": rng.choice(local if not peer or rng.random() < 0.7 else all_apps)}}
        if roll < 0.7:
            return {"matchLabels": {"tier": rng.choice(TIERS)}}
        if roll < 0.82:
            return {"matchExpressions": [{"key": "tier", "operator": "In",
                                          "values": sorted(set(rng.sample(TIERS, 2)))}]}
        if roll < 0.9:
            return {"matchLabels": {"tier": rng.choice(TIERS)},
                    "matchExpressions": [{"key": "version", "operator": "NotIn", "values": ["v1"]}]}
        return {"matchExpressions": [{"key": "version", "operator": rng.choice(("Exists", "DoesNotExist"))}]}

    def namespace_selector() -> Manifest:
        roll = rng.random()
        if roll < 0.15:
            return {}
        if roll < 0.45:
            return {"matchLabels": {"team": rng.choice(TEAMS)}}
        if roll < 0.7:
            values = sorted({"prod", rng.choice(ENVS)})
            return {"matchExpressions": [{"key": "env", "operator": "In", "values": values}]}
        if roll < 0.85:
            return {"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["dev"]}]}
        return {"matchLabels": {"kubernetes.io/metadata.name": rng.choice(namespaces)}}

    def peer(namespace: str) -> Manifest:
        roll = rng.random()
        if roll < 0.4:
            return {"podSelector": pod_selector(namespace, peer=True)}
        if roll < 0.6:
            return {"namespaceSelector": namespace_selector()}
        if roll < 0.9:
            return {"namespaceSelector": namespace_selector(),
                    "podSelector": pod_selector(namespace, peer=True, with_namespaces=True)}
        return {"ipBlock": dict(rng.choice(EXTERNAL_BLOCKS))}

    def port() -> Manifest:
        roll = rng.random()
        if roll < 0.75:
            value, protocol = rng.choice(NUMBERED) if roll < 0.45 else rng.choice(NAMED)
            # TCP is written out half the time, left to the API's default the other half.
            return {"port": value, "protocol": protocol} if protocol != "TCP" or rng.random() < 0.5 else {"port": value}
        if roll < 0.92:
            low, high = rng.choice(RANGES)
            return {"port": low, "endPort": high}
        return {"protocol": rng.choice(("UDP", "SCTP"))}

    def rule(namespace: str, peers_field: str) -> Manifest:
        out: Manifest = {}
        if rng.random() < 0.9:
            out[peers_field] = [peer(namespace) for _ in range(rng.randint(1, 3))]
        if rng.random() < 0.85:
            out["ports"] = [port() for _ in range(rng.randint(1, 3))]
        return out

    policies: list[Manifest] = []
    for i in range(n_policies):
        namespace = rng.choice(namespaces[:-1])
        spec: Manifest = {"podSelector": pod_selector(namespace)}
        roll = rng.random()
        types = (["Ingress"] if roll < 0.35 else ["Egress"] if roll < 0.6 else ["Ingress", "Egress"] if roll < 0.85
                 else None)
        if types is not None:
            spec["policyTypes"] = types
        if types is None or "Ingress" in types:
            spec["ingress"] = [rule(namespace, "from") for _ in range(rng.choice((0, 1, 1, 2, 2, 3)))]
        if types is None and rng.random() < 0.5 or types is not None and "Egress" in types:
            egress = [rule(namespace, "to") for _ in range(rng.choice((0, 1, 2, 2, 3)))]
            if egress and rng.random() < 0.7:  # what real egress policies carry: the cluster DNS
                egress.append({"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name":
                                                                             "kube-system"}},
                                       "podSelector": {"matchLabels": {"app": "kube-dns"}}}],
                               "ports": [{"port": 53, "protocol": "UDP"}, {"port": "dns-tcp"}]})
            if egress or types is not None:
                # Without policyTypes an empty egress list isolates nothing (the API server defaults Egress
                # only for a non-empty list); the analyzer takes the bare key for Egress: left out here.
                spec["egress"] = egress
        policies.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                         "metadata": {"name": f"policy-{i:04d}", "namespace": namespace}, "spec": spec})

    return Cluster(
        namespaces=[{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": ns_labels[name]}}
                    for name in namespaces],
        pods=pods,
        policies=policies,
    )


def columns_in_play(cluster: Cluster) -> list[Column]:
    """Every port a policy or a container names, the edges of each range and just past them, and port 1
    (named by none), for each protocol."""
    ports = {1}
    for pod in cluster.pods:
        for container in pod["spec"]["containers"]:
            ports.update(p["containerPort"] for p in container.get("ports", ()))
    for policy in cluster.policies:
        for direction in ("ingress", "egress"):
            for rule in policy["spec"].get(direction) or ():
                for entry in rule.get("ports", ()):
                    if isinstance(entry.get("port"), int):
                        low = entry["port"]
                        high = entry.get("endPort", low)
                        ports.update({low, high, (low + high) // 2} | ({low - 1, high + 1} if high > low else set()))
    return [(port, protocol) for port in sorted(ports) for protocol in PROTOCOLS]


# ---------------------------------------------------------------------------------------------------------
# Files both read
# ---------------------------------------------------------------------------------------------------------

DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Files:
    namespaces: Path
    pods: Path
    policies: Path  # a folder


def write(cluster: Cluster, folder: Path) -> Files:
    folder.mkdir(parents=True, exist_ok=True)
    files = Files(folder / "namespaces.yaml", folder / "pods.yaml", folder / "policies")
    files.policies.mkdir(exist_ok=True)
    for path, items in ((files.namespaces, cluster.namespaces), (files.pods, cluster.pods)):
        path.write_text(yaml.dump({"apiVersion": "v1", "kind": "List", "items": items}, Dumper=DUMPER,
                                  sort_keys=False))
    (files.policies / "policies.yaml").write_text(
        yaml.dump_all(cluster.policies, Dumper=DUMPER, sort_keys=False, explicit_start=True))
    return files


def load(files: Files) -> tuple[list[Namespace], list[Pod], list[Policy]]:
    """Our side of reading the same files: YAML -> engine types."""
    namespaces = [Namespace(item["metadata"]["name"], item["metadata"].get("labels") or {})
                  for item in yaml.load(files.namespaces.read_text(), Loader=LOADER)["items"]]
    pods = []
    for item in yaml.load(files.pods.read_text(), Loader=LOADER)["items"]:
        meta = item["metadata"]
        ports = tuple(ContainerPort(p.get("name"), p["containerPort"], p.get("protocol", "TCP"))
                      for container in item["spec"]["containers"] for p in container.get("ports") or ())
        ips = tuple(entry["ip"] for entry in (item.get("status") or {}).get("podIPs") or ())
        pods.append(Pod(meta.get("namespace", "default"), meta["name"], meta.get("labels") or {}, ips, ports))
    policies = [parse_policy(doc) for path in sorted(files.policies.glob("*.yaml"))
                for doc in yaml.load_all(path.read_text(), Loader=LOADER) if doc]
    return namespaces, pods, policies


# ---------------------------------------------------------------------------------------------------------
# Running and comparing
# ---------------------------------------------------------------------------------------------------------


def ours(files: Files, columns: Sequence[Column]) -> Connectivity:
    namespaces, pods, policies = load(files)
    return connectivity(namespaces, pods, policies, columns)


@dataclass
class Comparison:
    compared: int  # (source, destination, column) triples
    both_allow: int
    only_ours: list[tuple[int, int, Column]]
    only_peer: list[tuple[int, int, Column]]
    only_ours_count: int
    only_peer_count: int


def compare(result: Connectivity, peer: dict[Column, list[int]], examples: int = 8) -> Comparison:
    n = len(result.pods)
    comparison = Comparison(n * (n - 1) * len(result.columns), 0, [], [], 0, 0)
    for column in result.columns:
        for source in range(n):
            own = result.destinations(source, column) & ~(1 << source)
            theirs = peer[column][source] & ~(1 << source)
            comparison.both_allow += (own & theirs).bit_count()
            for diff, sink, attr in ((own & ~theirs, comparison.only_ours, "only_ours_count"),
                                     (theirs & ~own, comparison.only_peer, "only_peer_count")):
                if diff:
                    setattr(comparison, attr, getattr(comparison, attr) + diff.bit_count())
                    while diff and len(sink) < examples:
                        low = diff & -diff
                        sink.append((source, low.bit_length() - 1, column))
                        diff ^= low
    return comparison


def median_seconds(action: Callable[[], object], runs: int) -> tuple[float, list[float], object, float]:
    """(median wall seconds, every run's, the last result, median CPU seconds) of ``runs`` runs."""
    timings, cpu, result = [], [], None
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.process_time()
        result = action()
        timings.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return statistics.median(timings), timings, result, statistics.median(cpu)


def verdict(met: bool) -> str:
    return "target met" if met else "target NOT met"


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.engine", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 pods x 50 policies instead of 800 x 400")
    parser.add_argument("--pods", type=int, help="pods in the connectivity cluster")
    parser.add_argument("--policies", type=int, help="policies in the connectivity cluster")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--runs", type=int, default=5, help="runs of ours (the median is reported)")
    parser.add_argument("--no-peer", action="store_true", help="leave the analyzer out (ours only)")
    parser.add_argument("--reuse-peer", action="store_true",
                        help="reuse the analyzer's last run on the same input (its timing and answer) if there is one")
    parser.add_argument("--no-probes", action="store_true", help="leave the probes/s benchmark out")
    args = parser.parse_args(list(argv) if argv is not None else None)
    n_pods = args.pods or (100 if args.quick else 800)
    n_policies = args.policies or (50 if args.quick else 400)
    report: dict[str, Any] = {"pods": n_pods, "policies": n_policies, "seed": args.seed}

    def say(text: str) -> None:
        print(text, flush=True)

    if not args.no_probes:
        say("probes: policies.engine.bench (100,000 pod-to-pod probes, 1,000 policies, 5,000 pods)")
        probes = probe_bench.run(quiet=True)
        rate = probes["probes_per_second"]
        say(f"  {rate:,.0f} probes/s (index built in {probes['setup_seconds']:.2f} s), target "
            f"{PROBES_TARGET:,}: {verdict(rate >= PROBES_TARGET)}")
        report["probes"] = probes

    say(f"connectivity: {n_pods} pods x {n_policies} policies, every ordered pod pair x every port in play")
    cluster = synthesize(n_pods, n_policies, args.seed)
    columns = columns_in_play(cluster)
    folder = SCRATCH / "engine" / f"p{n_pods}-n{n_policies}-s{args.seed}"
    files = write(cluster, folder)
    pairs = n_pods * (n_pods - 1)
    say(f"  input: {folder.relative_to(REPO)} ({len(cluster.namespaces)} namespaces); {len(columns)} columns "
        f"(port, protocol) = {pairs * len(columns):,} (source, destination, column) answers")

    median, timings, result, median_cpu = median_seconds(lambda: ours(files, columns), args.runs)
    assert isinstance(result, Connectivity)
    reading = median_seconds(lambda: load(files), args.runs)[0]
    tracemalloc.start()
    ours(files, columns)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    own_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    allowed = result.count()
    say(f"  ours: median {median:.3f} s of {args.runs} (best {min(timings):.3f}, worst {max(timings):.3f}; CPU "
        f"{median_cpu:.3f} s): read YAML + parse (median {reading:.3f} s alone) + connectivity; {allowed:,} allowed; "
        f"peak {traced_peak / 2**20:.1f} MiB traced (process max RSS {own_rss:.0f} MiB)")
    report["ours"] = {"median_seconds": median, "median_cpu_seconds": median_cpu, "timings": timings,
                      "read_parse_seconds": reading, "allowed": allowed, "traced_peak_mib": traced_peak / 2**20,
                      "max_rss_mib": own_rss}

    if not args.no_peer:
        output, record = folder / "nca-connectivity.txt", folder / "nca-run.json"
        inputs = _nca.digest([files.namespaces, files.pods, files.policies])
        reused = _nca.saved(record, inputs) if args.reuse_peer else None
        if reused is not None:
            peer, when = reused
            say(f"  peer: the run of {when} on the same input is reused (--reuse-peer): its figures and answer")
        else:
            executable = _nca.venv(NCA_VENV, say)
            say(f"  peer: {_nca.PACKAGE} --connectivity (one run; 10 to 15 min at 800 x 400 on this machine) ...")
            peer = _nca.run(executable, files.policies, files.namespaces, files.pods, output)
            (folder / "nca.log").write_text(peer.log)
            _nca.save(peer, record, inputs)
        ratio, cpu_ratio = peer.seconds / median, peer.cpu_seconds / median_cpu
        reported = f", {peer.reported_seconds:.1f} s by its own count" if peer.reported_seconds is not None else ""
        say(f"  peer: {peer.seconds:.1f} s wall{reported}, CPU {peer.cpu_seconds:.1f} s; max RSS "
            f"{peer.max_rss_mb:.0f} MiB")
        say(f"  ratio: peer / ours = {ratio:,.0f}x wall ({cpu_ratio:,.0f}x CPU), target {SPEEDUP_TARGET:.0f}x: "
            f"{verdict(ratio >= SPEEDUP_TARGET)}")
        index = _nca.names((p["metadata"]["namespace"], p["metadata"]["name"]) for p in cluster.pods)
        comparison = compare(result, _nca.allowed(output, index, columns))
        names = [f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in cluster.pods]
        say(f"  answers: {comparison.compared:,} compared; both allow {comparison.both_allow:,}; only ours allow "
            f"{comparison.only_ours_count:,}; only the peer allows {comparison.only_peer_count:,}"
            f"{'  (identical)' if not comparison.only_ours_count + comparison.only_peer_count else ''}")
        for label, examples in (("only ours", comparison.only_ours), ("only the peer", comparison.only_peer)):
            for source, destination, (port, protocol) in examples:
                say(f"    {label}: {names[source]} -> {names[destination]} {port}/{protocol}")
        report["peer"] = {"package": _nca.PACKAGE, "seconds": peer.seconds, "cpu_seconds": peer.cpu_seconds,
                          "reported_seconds": peer.reported_seconds, "max_rss_mib": peer.max_rss_mb, "ratio": ratio,
                          "cpu_ratio": cpu_ratio, "target_met": ratio >= SPEEDUP_TARGET}
        report["answers"] = {"compared": comparison.compared, "both_allow": comparison.both_allow,
                             "only_ours": comparison.only_ours_count, "only_peer": comparison.only_peer_count}
    saved = folder / "report.json"
    saved.write_text(json.dumps(report, indent=2))
    say(f"  report: {saved.relative_to(REPO)}")
    mismatched = report.get("answers", {}).get("only_ours", 0) + report.get("answers", {}).get("only_peer", 0)
    return 1 if mismatched else 0


if __name__ == "__main__":
    sys.exit(main())
