"""Fidelity of generated policies, end to end through the real import paths.

kubectl-shaped dumps go through ``parse_bytes`` and ``apply_snapshot``, raw flows through ``aggregate_cluster``,
policies come out of the service layer (or ``generate_policy``), and the engine's ``Evaluator`` judges them,
also against pods that the controllers have not made yet:

A. every kind of pod owner is selected by labels its next pod carries too, never by controller-made ones, as a
   scope and as a peer;
B. the API server, and any Service without a selector, is its endpoints' addresses on their own port;
C. a ledger namespace: every connection that worked is admitted, a dropped attempt is not.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from io import StringIO
from typing import Any

import kubernetes_validate
import pytest
import yaml
from django.core.management import call_command

from flows.access import SYSTEM
from flows.aggregate import aggregate_cluster
from flows.ingest.inventory import Snapshot, parse_bytes
from flows.models import Cluster
from flows.store.inventory import apply_snapshot
from policies import engine, services
from tests import factories as f
from tests.inventory import builders as b

Labels = Mapping[str, str]
Ports = tuple[tuple[str, int, str], ...]

CLUSTER = "test"  # the conftest fixture's
NS = "ledger"
UNTIL = f.T0 + timedelta(hours=2)
PART_OF = {"app.kubernetes.io/part-of": "ledger"}
HTTP: Ports = (("http", 8080, "TCP"),)
PG: Ports = (("pg", 5432, "TCP"),)
METRICS: Ports = (("metrics", 9100, "TCP"),)
API_CLUSTER_IP = "10.96.0.1"
CONTROL_PLANE = ("172.18.0.3", "172.18.0.4")  # an HA control plane: the API server answers on both, on 6443
SUFFIXES = ("x2k4p", "m7q9z", "b3n8r")  # the random part of a pod's name, as controllers make them
_client_ports = itertools.count(40000)


# ------------------------------------------------------------------------------------------ the dump


def container_ports(ports: Ports) -> tuple[engine.ContainerPort, ...]:
    return tuple(engine.ContainerPort(name, port, protocol) for name, port, protocol in ports)


def engine_pod(item: dict) -> engine.Pod:
    """A kubectl-shaped pod as the engine sees it."""
    meta = item["metadata"]
    ports = tuple((p["name"], p["containerPort"], p["protocol"]) for c in item["spec"]["containers"]
                  for p in c.get("ports", ()))
    return engine.Pod(meta["namespace"], meta["name"], meta.get("labels", {}),
                      tuple(a["ip"] for a in item["status"].get("podIPs", ())), container_ports(ports))


@dataclass(frozen=True, eq=False)
class Owner:
    """A pod owner of the dump: the kind and name a scope selects it by, its objects in the dump (controllers
    and pods), and the labels of the next pod its controller makes: same template, fresh controller labels."""

    kind: str
    name: str
    items: tuple[dict, ...]
    next_labels: Labels
    next_ip: str
    ports: Ports = ()

    @property
    def pods(self) -> list[engine.Pod]:
        return [engine_pod(item) for item in self.items if item["kind"] == "Pod"]

    @property
    def ip(self) -> str:
        """Its first pod's address, where its connections come from."""
        return self.pods[0].ips[0]

    @property
    def next_pod(self) -> engine.Pod:
        return engine.Pod(NS, f"{self.name}-next", self.next_labels, (self.next_ip,), container_ports(self.ports))

    @property
    def policy_name(self) -> str:
        return engine.policy_name(self.kind, self.name)


def _uid(name: str) -> str:
    return f"uid-{NS}-{name}"  # what b.meta gives an object of the namespace


def _template(name: str, labels: Labels | None) -> dict[str, str]:
    return {"app": name, **PART_OF} if labels is None else dict(labels)


def _selected_by(item: dict, selector: Labels) -> dict:
    """A controller whose own selector is narrower than its template's labels, as charts write them."""
    item["spec"]["selector"] = {"matchLabels": dict(selector)}
    return item


def _pods(owner_kind: str, owner: str, ips: Iterable[str], labels: Labels, ports: Ports,
          names: Iterable[str] | None = None) -> list[dict]:
    names = names if names is not None else (f"{owner}-{suffix}" for suffix in SUFFIXES)
    return [b.pod(NS, name, ip, owner=(owner_kind, owner, _uid(owner)), labels=dict(labels), ports=ports)
            for name, ip in zip(names, ips, strict=False)]


def deployment(name: str, ips: tuple[str, ...], next_ip: str, ports: Ports = HTTP) -> Owner:
    """A Deployment, its ReplicaSet and pods (``pod-template-hash``). Its next pod comes from the next rollout,
    which changes the hash and, here, the version label too: only the Deployment's own selector survives it."""
    template = {"app": name, **PART_OF, "app.kubernetes.io/version": "1.4.2"}
    rs = f"{name}-7c9d8f5b4"
    items = [_selected_by(b.workload("Deployment", NS, name, template), {"app": name}),
             b.workload("ReplicaSet", NS, rs, template, extra_labels={"pod-template-hash": "7c9d8f5b4"},
                        owner=("Deployment", name, _uid(name))),
             *_pods("ReplicaSet", rs, ips, {**template, "pod-template-hash": "7c9d8f5b4"}, ports)]
    next_labels = {**template, "app.kubernetes.io/version": "1.5.0", "pod-template-hash": "5b8f9c6d4"}
    return Owner("Deployment", name, tuple(items), next_labels, next_ip, ports)


def stateful_set(name: str, ips: tuple[str, ...], next_ip: str, ports: Ports = PG) -> Owner:
    """A StatefulSet and its pods; the next one is of the next revision, with the next ordinal."""
    template = _template(name, None)

    def labels(index: int, revision: str) -> dict[str, str]:
        return {**template, "controller-revision-hash": f"{name}-{revision}",
                "statefulset.kubernetes.io/pod-name": f"{name}-{index}", "apps.kubernetes.io/pod-index": str(index)}

    items = [_selected_by(b.workload("StatefulSet", NS, name, template), {"app": name})]
    for index, ip in enumerate(ips):
        items += _pods("StatefulSet", name, [ip], labels(index, "6c5d9f7b8"), ports, [f"{name}-{index}"])
    return Owner("StatefulSet", name, tuple(items), labels(len(ips), "84b7c6d9f"), next_ip, ports)


def daemon_set(name: str, ips: tuple[str, ...], next_ip: str, ports: Ports = METRICS) -> Owner:
    """A DaemonSet and its pods; the next one is of the next template generation."""
    template = _template(name, None)

    def labels(revision: str, generation: str) -> dict[str, str]:
        return {**template, "controller-revision-hash": revision, "pod-template-generation": generation}

    items = [_selected_by(b.workload("DaemonSet", NS, name, template), {"app": name}),
             *_pods("DaemonSet", name, ips, labels("5f8d6c7b9", "1"), ports)]
    return Owner("DaemonSet", name, tuple(items), labels("7b9c8d6f5", "2"), next_ip, ports)


def cron_job(name: str, ips: tuple[str, ...], next_ip: str, labels: Labels | None = None) -> Owner:
    """A CronJob and one run (a Job ``<cronjob>-<minutes>``, selected by its controller-uid); the next run has
    another name and uid."""
    template = _template(name, labels)
    run, next_run = f"{name}-29170000", f"{name}-29171440"
    items = [b.workload("CronJob", NS, name, template),
             b.job(NS, run, template, uid=_uid(run), owner=("CronJob", name, _uid(name))),
             *_pods("Job", run, ips, {**template, **b.job_labels(run, _uid(run))}, ())]
    return Owner("CronJob", name, tuple(items), {**template, **b.job_labels(next_run, _uid(next_run))}, next_ip)


def job(name: str, ips: tuple[str, ...], next_ip: str, labels: Labels | None = None) -> Owner:
    """A Job on its own, as ``kubectl create job`` makes it; its next pod is of the Job made again under the
    same name (a new uid)."""
    template = _template(name, labels)
    items = [b.job(NS, name, template, uid=_uid(name)),
             *_pods("Job", name, ips, {**template, **b.job_labels(name, _uid(name))}, ())]
    return Owner("Job", name, tuple(items), {**template, **b.job_labels(name, f"{_uid(name)}-again")}, next_ip)


def bare_pod(name: str, ip: str, next_ip: str, labels: Labels) -> Owner:
    """A pod nothing owns (``kubectl run``); its next pod is the same command run again."""
    return Owner("Pod", name, (b.pod(NS, name, ip, labels=dict(labels), ports=()),), labels, next_ip)


def orphan_pods(replica_set: str, ips: tuple[str, ...], next_ip: str) -> Owner:
    """Pods whose ReplicaSet ``<name>-<hash>`` is missing from the dump (nor is there a Deployment ``<name>``):
    a placeholder owner, known only by the labels its pods share."""
    name, hash_ = replica_set.rsplit("-", 1)
    template = _template(name, None)
    items = _pods("ReplicaSet", replica_set, ips, {**template, "pod-template-hash": hash_}, HTTP)
    return Owner("ReplicaSet", replica_set, tuple(items), {**template, "pod-template-hash": "9d7c5b8f6"}, next_ip,
                 HTTP)


def import_dump(cluster: Cluster, *items: dict) -> None:
    """Read a kubectl dump of the ledger namespace (plus ``items``) as ``import_inventory`` does; apply it whole."""
    text = b.to_json([b.namespace(NS, {"team": "payments"}), *items])
    objects, ignored = parse_bytes(text.encode(), "dump.json")
    apply_snapshot(cluster, Snapshot.of(objects, ignored=ignored), observed_at=b.T0, full=True)


def items_of(owners: Iterable[Owner]) -> list[dict]:
    return [item for owner in owners for item in owner.items]


# ----------------------------------------------------------------------------- flows, policies, verdicts


def connect(cluster: Cluster, source_ip: str, ip: str, port: int, *, verdict: str = "FORWARDED") -> None:
    """One connection as Hubble reports it at the source: a SYN, forwarded (or dropped by a policy)."""
    f.flow(cluster, source_ip, next(_client_ports), ip, port, verdict=verdict)


def scope_of(owner: Owner) -> engine.Scope:
    return services.resolve_scope(SYSTEM, CLUSTER, NS, owner.kind, owner.name)


def generate(owner: Owner, **options: Any) -> services.Generated:
    return services.generate(SYSTEM, scope_of(owner), until=UNTIL, **options)


def manifest_of(owner: Owner, **options: Any) -> dict:
    generated = generate(owner, **options)
    assert generated.result is not None, generated.error
    return generated.result.policy


def probe(evaluator: engine.Evaluator, source: engine.Pod, destination: engine.Pod | str, port: int
          ) -> engine.ProbeResult:
    """The engine's verdict on a connection from a pod to a pod or an address (source egress AND destination
    ingress)."""
    target = engine.Endpoint.of_pod(destination) if isinstance(destination, engine.Pod) else engine.Endpoint.of_ip(
        destination)
    return evaluator.evaluate(engine.Connection(engine.Endpoint.of_pod(source), target, port))


def egress_blocks(manifest: dict) -> tuple[set[str], set[int]]:
    """The ipBlock CIDRs of a policy's egress rules, and the ports of those rules."""
    rules = [rule for rule in manifest["spec"]["egress"] if any("ipBlock" in peer for peer in rule["to"])]
    return ({peer["ipBlock"]["cidr"] for rule in rules for peer in rule["to"]},
            {port["port"] for rule in rules for port in rule["ports"]})


# ------------------------------------------------------------------------- A. stable selectors, every kind


@pytest.fixture
def owners(cluster: Cluster) -> dict[str, Owner]:
    """One namespace with a pod owner of every kind, imported; by scope name."""
    found = [
        deployment("api", ("10.244.1.10",), "10.244.2.10"),
        stateful_set("db", ("10.244.1.11",), "10.244.2.11"),
        daemon_set("agent", ("10.244.1.12",), "10.244.2.12"),
        cron_job("report", ("10.244.1.13",), "10.244.2.13"),
        job("db-migrate", ("10.244.1.14",), "10.244.2.14"),
        job("cleanup", ("10.244.1.15",), "10.244.2.15", labels={}),  # no user label at all
        bare_pod("debug", "10.244.1.16", "10.244.2.16", {"run": "debug"}),
        orphan_pods("legacy-5f6d7", ("10.244.1.17", "10.244.1.18"), "10.244.2.17"),
        cron_job("purge", ("10.244.1.19",), "10.244.2.19", labels={}),  # only controller labels
    ]
    import_dump(cluster, *items_of(found))
    return {owner.name: owner for owner in found}


def with_policies(owners: Mapping[str, Owner]) -> list[Owner]:
    return [owner for name, owner in owners.items() if name != "purge"]


def test_selectors_are_user_labels_and_a_label_less_job_is_selected_by_its_job_name(owners) -> None:
    selectors = {owner.name: manifest_of(owner)["spec"]["podSelector"] for owner in with_policies(owners)}
    assert selectors == {
        # The controller's own selector, made of user labels: the version label of the template stays out.
        "api": {"matchLabels": {"app": "api"}},
        "db": {"matchLabels": {"app": "db"}},
        "agent": {"matchLabels": {"app": "agent"}},
        # The template's labels: a CronJob has no selector, a created Job's is its controller-uid alone.
        "report": {"matchLabels": {"app": "report", **PART_OF}},
        "db-migrate": {"matchLabels": {"app": "db-migrate", **PART_OF}},
        "cleanup": {"matchLabels": {"batch.kubernetes.io/job-name": "cleanup"}},
        "debug": {"matchLabels": {"run": "debug"}},
        # The labels the placeholder's pods share, but their hash.
        "legacy-5f6d7": {"matchLabels": {"app": "legacy", **PART_OF}},
    }


def test_each_policy_selects_the_next_pod_of_its_owner_and_no_pod_of_another(owners) -> None:
    manifests = [manifest_of(owner) for owner in with_policies(owners)]
    pods = {pod: owner for owner in owners.values() for pod in (*owner.pods, owner.next_pod)}
    evaluator = engine.Evaluator(pods=pods, policies=[engine.parse_policy(m) for m in manifests])
    selected = {pod.name: [policy.name for policy in evaluator.selecting(pod, "ingress")] for pod in pods}
    assert selected == {pod.name: [] if owner.name == "purge" else [owner.policy_name] for pod, owner in pods.items()}


def test_a_cronjob_with_only_controller_labels_gets_a_clear_error_and_no_policy(owners) -> None:
    generated = generate(owners["purge"])
    assert generated.result is None and generated.yaml == ""
    assert "CronJob ledger/purge has no usable label to select its pods" in generated.error
    # Its pods carry labels (job-name, controller-uid, ...), but only ones the Job controller made.
    assert "only controller-made labels" in generated.error, generated.error


def test_every_owner_is_a_peer_that_admits_its_next_pod(cluster, owners) -> None:
    db, api, purge = owners["db"], owners["api"], owners["purge"]
    clients = [owner for owner in with_policies(owners) if owner is not db]
    for client in clients:
        connect(cluster, client.ip, db.ip, 5432)
    connect(cluster, db.ip, api.ip, 8080)
    aggregate_cluster(cluster)

    # The default draft: workload peers are included.
    policies = [engine.parse_policy(manifest_of(owner)) for owner in with_policies(owners)]
    stranger = engine.Pod(NS, "stranger", {"app": "stranger", **PART_OF}, ("10.244.2.99",))
    evaluator = engine.Evaluator(pods=[*(o.next_pod for o in owners.values()), stranger], policies=policies)
    to_db = {owner.name: probe(evaluator, owner.next_pod, db.next_pod, 5432).allowed
             for owner in [*clients, purge]}
    assert to_db == {owner.name: owner is not purge for owner in [*clients, purge]}
    assert probe(evaluator, db.next_pod, api.next_pod, 8080).allowed
    assert not probe(evaluator, stranger, db.next_pod, 5432).allowed
    assert not probe(evaluator, api.next_pod, db.next_pod, 5433).allowed


# ------------------------------------------------------------- B. the API server and selectorless Services


def api_server_with_slices() -> list[dict]:
    return b.api_server(CONTROL_PLANE)


def api_server_as_static_pods() -> list[dict]:
    return [*b.api_server(with_endpoints=False), b.namespace("kube-system"),
            *(b.api_server_static_pod(f"cp-{i}", ip) for i, ip in enumerate(CONTROL_PLANE, 1))]


@pytest.fixture
def operator() -> Owner:
    """A workload that talks to the API server and to an external database."""
    return deployment("operator", ("10.244.1.30",), "10.244.2.30")


@pytest.mark.parametrize("api_server", [api_server_with_slices, api_server_as_static_pods],
                         ids=["endpoint-slices", "static-pods"])
def test_the_api_server_is_one_row_of_its_addresses_on_6443(cluster, operator,
                                                              api_server: Callable[[], list[dict]]) -> None:
    import_dump(cluster, *operator.items, *api_server())
    connect(cluster, operator.ip, API_CLUSTER_IP, 443)
    aggregate_cluster(cluster)

    [row] = services.rows(SYSTEM, scope_of(operator), "egress", until=UNTIL)
    peer = row.peer
    assert isinstance(peer, engine.AddressPeer)
    assert (peer.category, peer.service, peer.cidrs) == ("APIServer", "default/kubernetes",
                                                         tuple(f"{ip}/32" for ip in CONTROL_PLANE))
    assert peer.ip in CONTROL_PLANE and (row.port, row.protocol, row.included) == (6443, "TCP", True)

    manifest = manifest_of(operator)
    assert {"to": [{"ipBlock": {"cidr": f"{ip}/32"}} for ip in CONTROL_PLANE],
            "ports": [{"port": 6443, "protocol": "TCP"}]} in manifest["spec"]["egress"]
    assert egress_blocks(manifest) == ({f"{ip}/32" for ip in CONTROL_PLANE}, {6443})
    evaluator = engine.Evaluator(pods=[operator.next_pod], policies=[engine.parse_policy(manifest)])
    admitted = {(ip, port): probe(evaluator, operator.next_pod, ip, port).allowed
                for ip in (*CONTROL_PLANE, API_CLUSTER_IP) for port in (6443, 443)}
    assert admitted == {(ip, port): ip in CONTROL_PLANE and port == 6443 for ip, port in admitted}

    # Seen after translation (Cilium's socket load balancing), on the other address: the same row.
    connect(cluster, operator.ip, CONTROL_PLANE[1], 6443)
    aggregate_cluster(cluster)
    [merged] = services.rows(SYSTEM, scope_of(operator), "egress", until=UNTIL)
    assert (merged.key, merged.connections) == (row.key, 2)


def test_an_api_server_of_unknown_address_is_shown_but_left_out_with_a_warning(cluster, operator) -> None:
    import_dump(cluster, *operator.items, *b.api_server(with_endpoints=False))
    connect(cluster, operator.ip, API_CLUSTER_IP, 443)
    aggregate_cluster(cluster)

    out = StringIO()
    call_command("show_communications", "--cluster", CLUSTER, "--namespace", NS, "--kind", "Deployment",
                 "--name", "operator", "--direction", "egress", "--format", "json", "--until", UNTIL.isoformat(),
                 stdout=out)
    [row] = json.loads(out.getvalue())["rows"]
    assert row["peer"]["category"] == "APIServer" and row["peer"]["service"] == "default/kubernetes"
    assert row["peer"]["addresses"] == [] and row["included"]

    generated = generate(operator)
    [warning] = generated.warnings
    assert warning.code == "unknown-addresses"
    assert "unknown" in warning.message and "import the cluster's EndpointSlices" in warning.message
    assert generated.result is not None and generated.result.omitted_rows == (warning.row_index,)
    assert egress_blocks(generated.result.policy) == (set(), set())  # only the DNS rule is left


def test_a_service_without_selector_is_one_row_allowing_each_of_its_endpoints(cluster, operator) -> None:
    pg = [{"name": "pg", "port": 5432, "protocol": "TCP"}]
    endpoints = ("192.168.50.10", "192.168.50.11")
    import_dump(cluster, *operator.items, b.selectorless_service(NS, "billing-db", "10.96.0.40", pg),
                b.endpoint_slice(NS, "billing-db", list(endpoints), pg))
    connect(cluster, operator.ip, "10.96.0.40", 5432)
    connect(cluster, operator.ip, endpoints[1], 5432)  # seen after translation
    aggregate_cluster(cluster)

    # An address outside the cluster: excluded by default (design §4), so every observed row is asked for.
    [row] = services.rows(SYSTEM, scope_of(operator), "egress", until=UNTIL, all_observed=True)
    assert isinstance(row.peer, engine.AddressPeer)
    assert (row.peer.service, row.peer.cidrs) == ("ledger/billing-db", tuple(f"{ip}/32" for ip in endpoints))
    assert (row.port, row.connections, row.included) == (5432, 2, True)

    manifest = manifest_of(operator, all_observed=True)
    assert egress_blocks(manifest) == ({f"{ip}/32" for ip in endpoints}, {5432})
    evaluator = engine.Evaluator(pods=[operator.next_pod], policies=[engine.parse_policy(manifest)])
    admitted = {ip: probe(evaluator, operator.next_pod, ip, 5432).allowed
                for ip in (*endpoints, "192.168.50.12", "10.96.0.40")}
    assert admitted == {ip: ip in endpoints for ip in admitted}


# ------------------------------------------------------------------------------- C. a ledger, end to end


@dataclass(frozen=True)
class Seen:
    """A connection of the ledger: from a pod to the address and port it dialled, and every place NetworkPolicy
    may see it land (a pod or an address, on the translated port): any of them may take the next one."""

    source: engine.Pod
    ip: str
    port: int
    lands: tuple[tuple[engine.Pod | str, int], ...]
    verdict: str = "FORWARDED"


def test_the_ledger_policies_admit_every_connection_that_worked_and_not_the_dropped_one(cluster) -> None:
    db = stateful_set("ledger-db", ("10.244.3.10", "10.244.3.11"), "10.244.4.10")
    api = deployment("ledger-api", ("10.244.3.20",), "10.244.4.20")
    statements = cron_job("statements", ("10.244.3.30",), "10.244.4.30")
    migrate = job("ledger-migrate", ("10.244.3.40",), "10.244.4.40")
    psql = bare_pod("psql", "10.244.3.50", "10.244.4.50", {"run": "psql"})
    owners = (db, api, statements, migrate, psql)
    import_dump(cluster, *items_of(owners), *b.api_server(CONTROL_PLANE),
                b.service(NS, "ledger-db", {"app": "ledger-db"}, "10.96.0.50",
                          [{"name": "pg", "port": 5432, "targetPort": "pg", "protocol": "TCP"}]),
                b.service(NS, "ledger-api", {"app": "ledger-api"}, "10.96.0.51",
                          [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]))

    [api_pod], [statements_pod], [migrate_pod], [psql_pod] = api.pods, statements.pods, migrate.pods, psql.pods
    to_db = tuple((pod, 5432) for pod in db.pods)
    to_api_server = tuple((ip, 6443) for ip in CONTROL_PLANE)
    worked = [
        Seen(api_pod, "10.96.0.50", 5432, to_db),  # through the ledger-db Service
        Seen(api_pod, API_CLUSTER_IP, 443, to_api_server),  # leader election
        Seen(statements_pod, "10.96.0.51", 80, ((api_pod, 8080),)),
        Seen(statements_pod, API_CLUSTER_IP, 443, to_api_server),
        Seen(migrate_pod, "10.96.0.50", 5432, to_db),
        Seen(migrate_pod, CONTROL_PLANE[1], 6443, ((CONTROL_PLANE[1], 6443),)),  # seen after translation
        Seen(psql_pod, db.ip, 5432, ((db.pods[0], 5432),)),
    ]
    dropped = Seen(psql_pod, api.ip, 8080, ((api_pod, 8080),), verdict="DROPPED")
    for seen in (*worked, dropped):
        connect(cluster, seen.source.ips[0], seen.ip, seen.port, verdict=seen.verdict)
    aggregate_cluster(cluster)

    out, err = StringIO(), StringIO()
    call_command("generate_policy", "--cluster", CLUSTER, "--namespace", NS, "--all", "--all-observed",
                 "--until", UNTIL.isoformat(), stdout=out, stderr=err)
    manifests = [doc for doc in yaml.safe_load_all(out.getvalue()) if doc]
    assert err.getvalue() == ""
    assert sorted(m["metadata"]["name"] for m in manifests) == sorted(o.policy_name for o in owners)
    for manifest in manifests:
        kubernetes_validate.validate(manifest, "1.31", strict=True)

    evaluator = engine.Evaluator(pods=[pod for owner in owners for pod in owner.pods],
                                 policies=[engine.parse_policy(m) for m in manifests])

    def sides(seen: Seen) -> dict[tuple[str, str, int], tuple[str, str]]:
        verdicts = {}
        for destination, port in seen.lands:
            result = probe(evaluator, seen.source, destination, port)
            verdicts[(seen.source.name, str(destination), port)] = (result.egress.status, result.ingress.status)
        return verdicts

    verdicts = {key: verdict for seen in worked for key, verdict in sides(seen).items()}
    # Isolated on both sides and admitted by both; an address has no ingress side.
    assert verdicts == {key: ("allowed", "not-isolated" if key[1] in CONTROL_PLANE else "allowed") for key in verdicts}
    assert sides(dropped) == {("psql", f"{NS}/{api_pod.name}", 8080): ("denied", "denied")}
