"""The pure parser: formats, typed records, NetworkPolicy manifests, and error locations. No database."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
from datetime import UTC, datetime

import pytest
import yaml

from flows.ingest.inventory import (
    EndpointObj,
    EndpointsObj,
    InventoryError,
    NetworkPolicyObj,
    PodObj,
    ServiceObj,
    WorkloadObj,
    parse_bytes,
    parse_object,
    read_sources,
)
from tests.inventory import builders as b


def _by_name(objects: list) -> dict:
    return {(o.kind, o.name): o for o in objects}


def test_parser_does_not_import_django() -> None:
    code = "import sys, flows.ingest.inventory; sys.exit(any(m.startswith('django') for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@pytest.mark.parametrize("render", [b.to_yaml, b.to_multidoc_yaml, b.to_json], ids=["list", "multidoc", "json"])
def test_every_format_gives_the_same_records(render) -> None:
    objects, ignored = parse_bytes(render(b.shop()).encode(), "dump")
    reference, _ = parse_bytes(b.to_yaml(b.shop()).encode(), "dump")
    assert objects == reference
    assert len(objects) == len(b.shop()) and not ignored


def test_json_array_and_concatenated_json_documents() -> None:
    items = b.shop()
    array, _ = parse_bytes(json.dumps(items).encode(), "a.json")
    concatenated, _ = parse_bytes("\n".join(json.dumps(i, indent=1) for i in items).encode(), "c.json")
    assert array == concatenated and len(array) == len(items)


def test_typed_list_from_the_api_whose_items_have_no_kind() -> None:
    pods = [b.pod("shop", "a", "10.0.0.1"), b.pod("shop", "b", "10.0.0.2")]
    for p in pods:
        del p["kind"], p["apiVersion"]
    objects, _ = parse_bytes(json.dumps({"kind": "PodList", "apiVersion": "v1", "items": pods}).encode(), "x")
    assert [type(o) for o in objects] == [PodObj, PodObj]


def test_pod_record() -> None:
    item = b.pod("shop", "web-1", "10.244.1.10", owner=("ReplicaSet", "web-5d9f8", "rs-uid"),
                 ports=(("http", 8080, "TCP"), ("dns", 53, "UDP")))
    item["spec"]["containers"].append({"name": "sidecar", "ports": [{"containerPort": 9000}, {"containerPort": 8080}]})
    item["spec"]["initContainers"] = [
        {"name": "native-sidecar", "restartPolicy": "Always", "ports": [{"containerPort": 15001}]},
        {"name": "init", "ports": [{"containerPort": 1}]},  # runs to completion: never listens
    ]
    item["status"]["podIPs"].append({"ip": "fd00::0a"})
    p = parse_object(item)
    assert isinstance(p, PodObj)
    assert p.owner is not None and (p.owner.kind, p.owner.name, p.owner.uid) == ("ReplicaSet", "web-5d9f8", "rs-uid")
    assert p.pod_ips == ("10.244.1.10", "fd00::a")  # canonical text
    assert p.host_ip == "172.18.0.2" and p.node_name == "node-1" and not p.host_network
    assert [(c.name, c.port, c.protocol) for c in p.container_ports] == [
        ("http", 8080, "TCP"), ("dns", 53, "UDP"), ("", 9000, "TCP"), ("", 15001, "TCP")]
    assert p.phase == "Running" and p.start_time == datetime(2026, 11, 1, 11, 0, tzinfo=UTC)


def test_pod_ip_falls_back_to_pod_ip_field_and_unquoted_timestamps_are_accepted() -> None:
    text = """
kind: Pod
apiVersion: v1
metadata: {name: p, namespace: ns, creationTimestamp: 2026-11-01T10:00:00Z}
status: {podIP: 10.0.0.9, hostIP: 172.18.0.3, startTime: 2026-11-01T10:00:05Z, phase: Running}
"""
    [p], _ = parse_bytes(text.encode(), "p.yaml")
    assert p.pod_ips == ("10.0.0.9",) and p.host_ips == ("172.18.0.3",)
    assert p.created_at == datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    assert p.start_time == datetime(2026, 11, 1, 10, 0, 5, tzinfo=UTC)


def test_owner_without_controller_flag_is_taken_when_it_is_a_workload() -> None:
    item = b.pod("shop", "p", "10.0.0.1", owner=("ReplicaSet", "rs", "u"))
    del item["metadata"]["ownerReferences"][0]["controller"]
    item["metadata"]["ownerReferences"].insert(0, {"apiVersion": "v1", "kind": "ConfigMap", "name": "c", "uid": "x"})
    p = parse_object(item)
    assert p.owner is not None and p.owner.kind == "ReplicaSet"  # type: ignore[union-attr]


def test_workload_records() -> None:
    objects = _by_name(parse_bytes(b.to_yaml(b.shop()).encode(), "d")[0])
    rs = objects[("ReplicaSet", "web-5d9f8")]
    assert isinstance(rs, WorkloadObj) and rs.owner is not None and rs.owner.kind == "Deployment"
    assert rs.selector == {"matchLabels": {"app": "web", "pod-template-hash": "5d9f8"}}
    cron = objects[("CronJob", "report")]
    assert cron.template_labels == {"app": "report"} and cron.selector == {}  # a CronJob has no selector
    job = objects[("Job", "report-29000000")]
    assert job.owner is not None and job.owner.kind == "CronJob"


def test_cron_job_has_no_selector_and_keeps_its_job_templates_labels() -> None:
    item = b.workload("CronJob", "ns", "c", {"app": "c", "controller-uid": "x", "job-name": "y"})
    obj = parse_object(item)
    # The inventory keeps what Kubernetes says; which labels make a stable selector is the engine's rule.
    assert isinstance(obj, WorkloadObj) and obj.selector == {}
    assert obj.template_labels == {"app": "c", "controller-uid": "x", "job-name": "y"}


def test_service_record() -> None:
    svc = parse_object(b.service("shop", "web", {"app": "web"}, "10.96.0.20", [
        {"name": "http", "port": 80, "targetPort": "http"}, {"port": 53, "protocol": "UDP"},
        {"port": 9090, "targetPort": 9091, "protocol": "TCP"}]))
    assert isinstance(svc, ServiceObj)
    assert svc.cluster_ips == ("10.96.0.20",) and svc.selector == {"app": "web"}
    assert [(p.port, p.protocol, p.target_port, p.target_port_name) for p in svc.ports] == [
        (80, "TCP", None, "http"), (53, "UDP", 53, ""), (9090, "TCP", 9091, "")]
    headless = b.service("shop", "db", {"app": "db"}, "None", [])
    headless["spec"]["clusterIPs"] = ["None"]
    assert parse_object(headless).cluster_ips == ()  # type: ignore[union-attr]


def test_endpoint_slice_and_legacy_endpoints_records() -> None:
    slice_, legacy = parse_object(b.api_server(("172.18.0.2", "172.18.0.3"))[2]), parse_object(
        b.endpoints("shop", "db", ["192.168.10.5"], [{"name": "pg", "port": 5432}, {"port": 53, "protocol": "UDP"}],
                    not_ready=["192.168.10.6"]))
    assert isinstance(slice_, EndpointsObj) and (slice_.kind, slice_.namespace, slice_.service) == (
        "EndpointSlice", "default", "kubernetes")
    assert slice_.endpoints == (EndpointObj("172.18.0.2", 6443, "TCP", "https"),
                                EndpointObj("172.18.0.3", 6443, "TCP", "https"))
    # Every address with every port of its subset; addresses not ready yet are kept: they will be.
    assert isinstance(legacy, EndpointsObj) and legacy.service == "db" and len(legacy.endpoints) == 4
    assert EndpointObj("192.168.10.6", 53, "UDP", "") in legacy.endpoints
    # A slice without ports reaches every port; a slice of names (FQDN) has no address to allow.
    assert parse_object(b.endpoint_slice("a", "s", ["10.0.0.1"], [])).endpoints == (  # type: ignore[union-attr]
        EndpointObj("10.0.0.1", None, "TCP", ""),)
    fqdn = b.endpoint_slice("a", "s", ["db.example.com"], [], address_type="FQDN")
    assert parse_object(fqdn).endpoints == ()  # type: ignore[union-attr]


def test_a_slice_that_no_service_owns_is_ignored_and_a_bad_address_named() -> None:
    orphan = b.endpoint_slice("a", "s", ["10.0.0.1"], [])
    del orphan["metadata"]["labels"]["kubernetes.io/service-name"]
    objects, ignored = parse_bytes(b.to_json([orphan]).encode(), "d")
    assert objects == [] and ignored == {"EndpointSlice (discovery.k8s.io/v1)": 1}
    bad = b.endpoint_slice("a", "s", ["10.0.0.300"], [{"port": 80}])
    assert _error(b.to_json([bad]), "d.json") == (
        "d.json: document 1, item 1 (EndpointSlice a/s-abcde): endpoints[0].addresses[0]: "
        "not an IP address: '10.0.0.300'")


def test_network_policy_manifest_is_stripped_of_noise() -> None:
    item = b.network_policy("shop", "db-ingress", "db")
    item["status"] = {"conditions": []}
    policy = parse_object(item)
    assert isinstance(policy, NetworkPolicyObj)
    assert policy.spec == item["spec"]
    assert policy.manifest == {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "db-ingress", "namespace": "shop", "annotations": {"owner": "team-a"}},
        "spec": item["spec"],
    }
    assert "status" in item and "uid" in item["metadata"]  # the input is not modified


def test_other_kinds_and_other_api_groups_are_counted_as_ignored() -> None:
    calico = {"apiVersion": "projectcalico.org/v3", "kind": "NetworkPolicy",
              "metadata": {"name": "x", "namespace": "shop"}, "spec": {}}
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "shop"}}
    objects, ignored = parse_bytes(b.to_yaml([cm, cm, calico, b.namespace("shop")]).encode(), "d")
    assert len(objects) == 1
    assert ignored == {"ConfigMap": 2, "NetworkPolicy (projectcalico.org/v3)": 1}


def test_stdin_and_gzip(tmp_path) -> None:
    text = b.to_yaml(b.shop())
    from_stdin = read_sources(["-"], stdin=io.BytesIO(text.encode()))
    zipped = tmp_path / "dump.yaml.gz"
    zipped.write_bytes(gzip.compress(text.encode()))
    assert read_sources([zipped]).objects == from_stdin.objects
    assert from_stdin.kinds == {"Namespace", "Node", "Deployment", "ReplicaSet", "CronJob", "Job", "StatefulSet",
                                "DaemonSet", "Pod", "Service", "NetworkPolicy"}


# ------------------------------------------------------------------------------------------------ errors


def _error(text: str, source: str = "dump.yaml") -> str:
    with pytest.raises(InventoryError) as info:
        parse_bytes(text.encode(), source)
    return str(info.value)


def test_error_names_file_line_document_item_object_and_field() -> None:
    items = b.shop()
    items[6]["metadata"]["name"] = ""  # the 7th item, a Pod in shop
    text = b.to_yaml(items)
    message = _error(text)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if t.startswith("- ") and i > 1 and
                 sum(1 for u in text.splitlines()[:i] if u.startswith("- ")) == 7)
    assert message == f"dump.yaml:{line}: document 1, item 7 (Pod in namespace shop): metadata.name: missing"


def test_error_in_second_document_of_multidoc_yaml() -> None:
    items = [b.namespace("shop"), b.pod("shop", "cart-1", "10.0.0.1")]
    items[1]["spec"]["containers"][0]["ports"][0]["containerPort"] = "http"
    message = _error(b.to_multidoc_yaml(items))
    assert "dump.yaml:" in message and "document 2 (Pod shop/cart-1): " in message
    assert "spec.containers[0].ports[0].containerPort: expected a port number, got a string 'http'" in message


def test_every_bad_item_is_reported_in_json() -> None:
    items = b.shop()
    items[3]["metadata"]["labels"]["version"] = 1.0
    items[5]["status"]["podIP"] = "10.0.0.300"
    items[5]["status"]["podIPs"] = [{"ip": "10.0.0.300"}]
    message = _error(b.to_json(items), "dump.json")
    assert message.splitlines() == [
        "dump.json: document 1, item 4 (Deployment shop/web): metadata.labels.version: "
        "expected a string, got float 1.0 (quote it)",
        "dump.json: document 1, item 6 (Pod shop/web-5d9f8-aaaaa): status.podIPs[0].ip: "
        "not an IP address: '10.0.0.300'",
    ]


@pytest.mark.parametrize(("text", "expected"), [
    ("kind: List\nitems:\n- kind: Pod\n  metadata: {namespace: a, name: p}\n- 42\n",
     "dump.yaml:5: document 1, item 2: expected a mapping, got int"),
    ("kind: List\nitems:\n- metadata: {name: p}\n", "dump.yaml:3: document 1, item 1 (object p): kind: missing"),
    ("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n",
     "dump.yaml:1: document 1 (Pod p): metadata.namespace: missing"),
    ("kind: Pod\nmetadata: {name: p, namespace: a, creationTimestamp: yesterday}\n",
     "dump.yaml:1: document 1 (Pod a/p): metadata.creationTimestamp: not an RFC 3339 time: 'yesterday'"),
    ("kind: NetworkPolicy\nmetadata: {name: n, namespace: a}\n",
     "dump.yaml:1: document 1 (NetworkPolicy a/n): spec: missing"),
    ("- just\n- strings\n", "dump.yaml:1: document 1, item 1: expected a mapping, got a string"),
    ("42\n", "dump.yaml:1: document 1: expected a Kubernetes object or a List, got int"),
    ("kind: Pod\nmetadata: {name: [\n", "dump.yaml:3: document 1: not valid YAML"),
    ("kind: Service\nmetadata: {name: s, namespace: a}\nspec: {ports: [{port: 70000}]}\n",
     "dump.yaml:1: document 1 (Service a/s): spec.ports[0].port: port 70000 out of range 1-65535"),
])
def test_error_messages(text: str, expected: str) -> None:
    assert _error(text).startswith(expected)


def test_json_syntax_error_names_the_line() -> None:
    assert _error('{"kind": "List",\n "items": [\n  {"kind": "Pod",}\n]}', "d.json").startswith(
        "d.json:3: document 1: not valid JSON"
    )


def test_problems_of_all_files_are_collected(tmp_path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(b.to_yaml(b.shop()))
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"kind": "Namespace", "metadata": {"labels": {"a": "b"}}}))
    with pytest.raises(InventoryError) as info:
        read_sources([good, bad, tmp_path / "missing.yaml"])
    assert info.value.problems == [
        f"{bad}:1: document 1 (Namespace): metadata.name: missing",
        f"{tmp_path / 'missing.yaml'}: cannot read: No such file or directory",
    ]
