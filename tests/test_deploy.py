"""deploy/: every manifest is valid Kubernetes, grants and runs exactly what netsec needs, and names real commands.

The manifests are read as data: a change that breaks one of these promises (a resource the sync lists without the
ClusterRole granting it, a container that may write its root filesystem, an environment variable the settings never
read, a command that does not exist) fails here rather than in a cluster.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import runpy
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import get_commands, load_command_class
from kubernetes_validate.utils import latest_version, validate

from flows.kube.resources import RESOURCES

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
IMAGE = "ghcr.io/example/netsec:0.1.0"  # the documented placeholder
# Validated offline against the newest schemas kubernetes-validate ships, and against an older release still common
# in clusters: nothing here needs a recent API.
VERSIONS = ("1.30.0", latest_version())
POD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}
REQUIRED_ENV = {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS"}


# ----------------------------------------------------------------------------------------------- reading


def manifest_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*.yaml") if p.name != "kustomization.yaml")


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


@functools.cache
def all_documents() -> list[tuple[Path, dict[str, Any]]]:
    return [(path, doc) for path in manifest_files() for doc in documents(path)]


def pod_spec(doc: dict[str, Any]) -> dict[str, Any] | None:
    if doc["kind"] in POD_KINDS:
        return doc["spec"]["template"]["spec"]
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    if doc["kind"] == "Pod":
        return doc["spec"]
    return None


def workloads() -> Iterator[tuple[Path, dict[str, Any], dict[str, Any]]]:
    for path, doc in all_documents():
        spec = pod_spec(doc)
        if spec is not None:
            yield path, doc, spec


def containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def netsec_containers() -> Iterator[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]]:
    """(workload, pod spec, container) for every container that runs netsec's image."""
    for _, doc, spec in workloads():
        for container in containers(spec):
            if container["image"].split(":")[0] == IMAGE.split(":")[0]:
                yield doc, spec, container


def component(doc: dict[str, Any]) -> str:
    return doc["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component", "")


@functools.cache
def config_sources() -> dict[tuple[str, str, str], dict[str, str]]:
    """(kind, namespace, name) -> data, for the ConfigMaps and Secrets of the manifests."""
    found = {}
    for _, doc in all_documents():
        if doc["kind"] in ("ConfigMap", "Secret"):
            data = {**doc.get("data", {}), **doc.get("stringData", {})}
            found[(doc["kind"], doc["metadata"]["namespace"], doc["metadata"]["name"])] = data
    return found


def environment(doc: dict[str, Any], container: dict[str, Any]) -> dict[str, str]:
    """The variables the container gets, with the values of the manifests' ConfigMaps and Secrets."""
    namespace, sources, env = doc["metadata"]["namespace"], config_sources(), {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            kind, ref = "ConfigMap", source["configMapRef"]
        else:
            kind, ref = "Secret", source["secretRef"]
        assert (kind, namespace, ref["name"]) in sources, f"{container['name']}: {kind} {ref['name']} is not in deploy/"
        env.update(sources[(kind, namespace, ref["name"])])
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            ref = item["valueFrom"].get("configMapKeyRef") or item["valueFrom"]["secretKeyRef"]
            kind = "ConfigMap" if "configMapKeyRef" in item["valueFrom"] else "Secret"
            env[item["name"]] = sources[(kind, namespace, ref["name"])][ref["key"]]
    return env


def argv(doc: dict[str, Any], container: dict[str, Any]) -> list[str]:
    """command + args, with $(VAR) expanded from the container's environment as the kubelet does."""
    env = environment(doc, container)
    words = [*container.get("command", []), *container.get("args", [])]
    return [re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m[1], m[0]), str(word)) for word in words]


def settings_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Every environment variable netsec/settings.py asks for: the module runs again, afresh, with an environment
    that records each name it is asked for (netsec/schedule.py reads the same mapping)."""
    asked: set[str] = set()

    class Recording(dict):
        def get(self, key: Any, default: Any = None) -> Any:
            asked.add(key)
            return super().get(key, default)

        def __getitem__(self, key: Any) -> Any:
            asked.add(key)
            return super().__getitem__(key)

        def __contains__(self, key: object) -> bool:
            asked.add(str(key))
            return super().__contains__(key)

    # No SECRET_KEY, so that the SECRET_KEY_FILE branch runs too (making its key in tmp_path); DEBUG off, so that
    # the production branch does.
    monkeypatch.setattr(os, "environ", Recording({"SECRET_KEY_FILE": str(tmp_path / "key")}))
    runpy.run_path(str(ROOT / "netsec" / "settings.py"), run_name="netsec_settings_probe")
    monkeypatch.undo()
    return asked


# ----------------------------------------------------------------------------------------------- schemas


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_manifest_is_valid_kubernetes(path: Path) -> None:
    docs = documents(path)
    assert docs, f"{path} holds no manifest"
    for doc in docs:
        for version in VERSIONS:
            # strict: a field the API does not know (a typo, a misplaced key) is an error, not silently dropped.
            validate(doc, version, strict=True)


def test_the_kustomizations_list_every_manifest() -> None:
    directories = {path.parent for path in manifest_files()}
    assert directories == {DEPLOY, DEPLOY / "optional", DEPLOY / "hubble-exporter"}
    for directory in directories:
        kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
        assert kustomization["kind"] == "Kustomization"
        listed = kustomization.get("resources", [])
        here = sorted(p.name for p in directory.glob("*.yaml") if p.name != "kustomization.yaml")
        assert sorted(listed) == here, f"{directory}/kustomization.yaml lists {listed}, the directory holds {here}"
        for generator in kustomization.get("configMapGenerator", []):
            for name in generator.get("files", []):
                assert (directory / name).is_file(), f"{directory}: configMapGenerator names a missing {name}"
        if shutil.which("kubectl"):  # kustomize itself, when it is at hand (offline: it only renders)
            built = subprocess.run(["kubectl", "kustomize", str(directory)], capture_output=True, text=True,
                                   timeout=60)
            assert built.returncode == 0, built.stderr
    # PostgreSQL and Redis are external by default: the main kustomization does not pull the optional ones in.
    assert "optional" not in (DEPLOY / "kustomization.yaml").read_text().split("resources:", 1)[1]


def test_netsec_runs_the_documented_placeholder_image() -> None:
    found = list(netsec_containers())
    assert found
    assert {container["image"] for _, _, container in found} == {IMAGE}
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    assert kustomization["images"] == [{"name": IMAGE.split(":")[0], "newTag": IMAGE.split(":")[1]}]


# -------------------------------------------------------------------------------------------------- RBAC


def test_the_cluster_role_grants_exactly_get_list_watch_on_what_the_sync_lists() -> None:
    roles = [doc for _, doc in all_documents() if doc["kind"] in ("ClusterRole", "Role")]
    assert [r["kind"] for r in roles] == ["ClusterRole"], "one role, the sync's, and nothing else"
    rules = roles[0]["rules"]
    groups = [group for rule in rules for group in rule["apiGroups"]]
    assert all(len(rule["apiGroups"]) == 1 for rule in rules), "one API group per rule"
    assert len(groups) == len(set(groups)), "each API group in one rule"
    granted = set()
    for rule in rules:
        assert sorted(rule["verbs"]) == ["get", "list", "watch"], rule
        assert set(rule) == {"apiGroups", "resources", "verbs"}, f"no resourceNames, no nonResourceURLs: {rule}"
        assert "*" not in rule["resources"] and "*" not in rule["apiGroups"]
        granted |= {(rule["apiGroups"][0], resource) for resource in rule["resources"]}
    assert granted == {(r.group, r.plural) for r in RESOURCES}


def test_only_the_syncing_pods_hold_the_roles_token() -> None:
    bindings = [doc for _, doc in all_documents() if doc["kind"] in ("ClusterRoleBinding", "RoleBinding")]
    assert len(bindings) == 1
    binding = bindings[0]
    role = next(doc for _, doc in all_documents() if doc["kind"] == "ClusterRole")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                  "name": role["metadata"]["name"]}
    assert len(binding["subjects"]) == 1
    subject = binding["subjects"][0]
    assert subject["kind"] == "ServiceAccount"
    accounts = {(d["metadata"]["namespace"], d["metadata"]["name"]): d for _, d in all_documents()
                if d["kind"] == "ServiceAccount"}
    assert (subject["namespace"], subject["name"]) in accounts
    for _, doc, spec in workloads():
        account = spec.get("serviceAccountName", "default")
        if (doc["metadata"]["namespace"], account) == (subject["namespace"], subject["name"]):
            assert component(doc) in ("worker", "sync"), f"{doc['metadata']['name']} has the sync's token"
        else:
            # Nothing else talks to the Kubernetes API: no token in the pod at all.
            assert spec.get("automountServiceAccountToken") is False, doc["metadata"]["name"]


# ------------------------------------------------------------------------------------------------- pods


def test_every_container_is_locked_down() -> None:
    checked = 0
    for path, doc, spec in workloads():
        where = f"{path.relative_to(DEPLOY)}: {doc['kind']} {doc['metadata']['name']}"
        pod = spec.get("securityContext", {})
        assert pod.get("seccompProfile") == {"type": "RuntimeDefault"}, where
        assert not any(spec.get(key) for key in ("hostNetwork", "hostPID", "hostIPC")), where
        volumes = {volume["name"]: volume for volume in spec.get("volumes", [])}
        for container in containers(spec):
            name = f"{where}: container {container['name']}"
            security = container.get("securityContext", {})
            assert security.get("runAsNonRoot", pod.get("runAsNonRoot")) is True, name
            assert security.get("runAsUser", pod.get("runAsUser", 1)) != 0, name
            assert security.get("readOnlyRootFilesystem") is True, name
            assert security.get("allowPrivilegeEscalation") is False, name
            assert security.get("capabilities") == {"drop": ["ALL"]}, name
            assert not security.get("privileged"), name
            resources = container.get("resources", {})
            for kind in ("requests", "limits"):
                assert set(resources.get(kind, {})) >= {"cpu", "memory"}, f"{name}: {kind}"
            # A read-only root, and a private /tmp for what has to be written (uploads, gunicorn's heartbeat).
            tmp = [m for m in container.get("volumeMounts", []) if m["mountPath"] == "/tmp"]
            assert tmp and "emptyDir" in volumes[tmp[0]["name"]], f"{name}: no emptyDir on /tmp"
            checked += 1
    assert checked >= 8


def test_netsec_containers_run_as_the_images_user() -> None:
    user = re.search(r"^USER (\d+):(\d+)$", (DEPLOY / "Dockerfile").read_text(), re.M)
    assert user and int(user[1]) != 0
    for doc, spec, _ in netsec_containers():
        assert spec["securityContext"]["runAsUser"] == int(user[1]), doc["metadata"]["name"]
        assert spec["securityContext"]["runAsGroup"] == int(user[2]), doc["metadata"]["name"]


def test_beat_runs_exactly_once_and_each_watcher_once() -> None:
    by_component: dict[str, list[dict[str, Any]]] = {}
    for doc, _, _ in netsec_containers():
        by_component.setdefault(component(doc), []).append(doc)
    beats = by_component["beat"]
    assert len(beats) == 1
    assert beats[0]["kind"] == "Deployment"
    assert beats[0]["spec"]["replicas"] == 1
    assert beats[0]["spec"]["strategy"] == {"type": "Recreate"}, "a rollout must never run two beats"
    for watcher in by_component["sync"]:
        assert watcher["spec"]["replicas"] == 1 and watcher["spec"]["strategy"] == {"type": "Recreate"}
    assert not [doc for _, doc in all_documents() if doc["kind"] == "HorizontalPodAutoscaler"]


@pytest.mark.django_db
def test_the_web_probes_answer_a_kubelet(client: Any, settings: Any) -> None:
    """The probes of the web pods, asked the way a kubelet asks them: by the pod's address over plain HTTP, with
    production's redirect to https on (the tests turn it off) and a Host header ALLOWED_HOSTS does not list."""
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["netsec.example.com"]
    probes = []
    for doc, _, container in netsec_containers():
        if component(doc) == "web":
            ports = {p["name"]: p["containerPort"] for p in container["ports"]}
            for kind in ("readinessProbe", "livenessProbe"):
                probe = container[kind]["httpGet"]
                probes.append((kind, probe["path"], ports.get(probe["port"], probe["port"])))
    assert sorted(probes) == [("livenessProbe", "/healthz", 8000), ("readinessProbe", "/readyz", 8000)]
    for _, path, port in probes:
        response = client.get(path, HTTP_HOST=f"10.244.1.17:{port}")
        assert response.status_code == 200, (path, response.status_code)


# ---------------------------------------------------------------------------------------------- commands


def test_the_commands_are_real(tmp_path: Path) -> None:
    """Every netsec container's command exists and takes its arguments: manage.py commands are parsed by the
    command's own parser, celery and gunicorn check their options and load the app (with the manifests' own
    environment, so the settings load with the ConfigMap's values too)."""
    bin_dir = Path(sys.executable).parent
    seen: dict[str, list[list[str]]] = {}
    commands = get_commands()
    for doc, _, container in netsec_containers():
        words = argv(doc, container)
        seen.setdefault(component(doc), []).append(words)
        env = {**environment(doc, container), "PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT),
               "HOME": str(tmp_path)}
        if words[:2] == ["python", "manage.py"]:
            name, args = words[2], words[3:]
            assert name in commands, f"manage.py {name}: no such command"
            command = load_command_class(commands[name], name)
            command.create_parser("manage.py", name).parse_args(args)  # CommandError on an unknown option
        elif words[0] == "gunicorn":
            assert (bin_dir / "gunicorn").exists()
            assert "netsec.wsgi" in words
            assert importlib.util.find_spec("netsec.wsgi") is not None
            ran = subprocess.run([str(bin_dir / "gunicorn"), "--check-config", *words[1:]], cwd=ROOT, env=env,
                                 capture_output=True, text=True, timeout=120)
            assert ran.returncode == 0, ran.stdout + ran.stderr
        elif words[0] == "celery":
            assert (bin_dir / "celery").exists()
            # --help after the options: click parses them all first (an unknown one is an error), and -A loads the
            # app.
            ran = subprocess.run([sys.executable, "-m", "celery", *words[1:], "--help"], cwd=ROOT, env=env,
                                 capture_output=True, text=True, timeout=120)
            assert ran.returncode == 0, ran.stdout + ran.stderr
        else:
            pytest.fail(f"{doc['metadata']['name']}: an unknown command {words}")
    # And the commands are the ones each component is there for.
    assert seen["web"] == [["gunicorn", "netsec.wsgi", "--bind=0.0.0.0:8000", "--workers=3", "--timeout=120",
                            "--access-logfile=-"]]
    assert [w[:4] for w in seen["worker"]] == [["celery", "-A", "netsec", "worker"]]
    assert [w[:4] for w in seen["beat"]] == [["celery", "-A", "netsec", "beat"]]
    assert [w[2:4] for w in seen["migrate"]] == [["check", "--deploy"], ["migrate", "--noinput"],
                                                 ["collectstatic", "--noinput"]]
    assert seen["sync"] == [["python", "manage.py", "sync_cluster", "--cluster", "prod", "--watch"]]


def test_the_environment_is_what_the_settings_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reads = settings_reads(tmp_path, monkeypatch)
    assert reads >= REQUIRED_ENV and "NETSEC_AGGREGATE_EVERY" in reads  # the probe saw the schedule's reads too
    for doc, _, container in netsec_containers():
        env = environment(doc, container)
        own = set(re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", " ".join(container.get("command", [])
                                                                         + container.get("args", []))))
        unread = set(env) - reads - own
        assert not unread, f"{doc['metadata']['name']}/{container['name']} sets {unread}, which settings.py never reads"
        assert set(env) >= REQUIRED_ENV, f"{doc['metadata']['name']}/{container['name']}"
        assert "DEBUG" not in env, "production runs with DEBUG off"


def test_the_readme_documents_every_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", readme, re.M))
    missing = settings_reads(tmp_path, monkeypatch) - documented
    assert not missing, f"README.md's Configuration table lacks {sorted(missing)}"


def load_exporter() -> Any:
    """deploy/hubble-exporter/netsec_hubble_export.py as a module (it is a script, not part of a package)."""
    name = "netsec_hubble_export"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, DEPLOY / "hubble-exporter" / f"{name}.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # before it runs: its dataclasses look their module up
        spec.loader.exec_module(module)
    return sys.modules[name]


def test_the_exporter_manifest_sets_only_what_the_script_reads() -> None:
    module = load_exporter()
    (doc,) = [doc for _, doc, _ in workloads() if doc["metadata"]["name"] == "netsec-hubble-exporter"]
    (container,) = doc["spec"]["template"]["spec"]["containers"]
    env = {item["name"] for item in container["env"]}
    assert env <= module.ENVIRONMENT, env - module.ENVIRONMENT
    assert container["command"] == ["python", "/opt/netsec/netsec_hubble_export.py"]
    module.parse_args([], environ={item["name"]: item["value"] for item in container["env"]})
    assert doc["spec"]["replicas"] == 1 and doc["spec"]["strategy"] == {"type": "Recreate"}
    volumes = {v["name"]: v for v in doc["spec"]["template"]["spec"]["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
    state_dir = os.path.dirname(next(i["value"] for i in container["env"] if i["name"] == "NETSEC_EXPORT_STATE"))
    assert "persistentVolumeClaim" in mounts[state_dir], "the cursor must outlive the pod"
    token_dir = os.path.dirname(next(i["value"] for i in container["env"] if i["name"] == "NETSEC_TOKEN_FILE"))
    assert "secret" in mounts[token_dir]


# --------------------------------------------------------------------------------------------- policies


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if not all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In"
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True


def test_the_network_policies_allow_only_what_netsec_needs() -> None:
    policies = [doc for path, doc in all_documents() if doc["kind"] == "NetworkPolicy" and path.parent == DEPLOY]
    deny = [p for p in policies if p["spec"]["podSelector"] == {} and not p["spec"].get("ingress")
            and not p["spec"].get("egress")]
    assert len(deny) == 1 and sorted(deny[0]["spec"]["policyTypes"]) == ["Egress", "Ingress"]
    for doc, _, _ in netsec_containers():
        labels = doc["spec"]["template"]["metadata"]["labels"]
        selecting = [p for p in policies if _selects(p["spec"]["podSelector"], labels)]
        egress = [(port["protocol"], port["port"]) for p in selecting for rule in p["spec"].get("egress", [])
                  for port in rule["ports"]]
        assert {("UDP", 53), ("TCP", 53), ("TCP", 5432), ("TCP", 6379)} <= set(egress), labels
        api = {("TCP", 6443), ("TCP", 443)} & set(egress)
        assert bool(api) == (component(doc) in ("worker", "sync")), f"API server egress for {labels}"
        ingress = [(port["protocol"], port["port"]) for p in selecting for rule in p["spec"].get("ingress", [])
                   for port in rule["ports"]]
        assert ingress == ([("TCP", 8000)] if component(doc) == "web" else []), labels


# -------------------------------------------------------------------------------------------------- image


def test_the_dockerfile_builds_what_the_manifests_run() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    instructions = [line for line in dockerfile.splitlines() if line and not line.startswith(("#", " "))]
    assert instructions[0] == "FROM python:3.11-slim"
    assert re.search(r"^RUN pip install /app\b", dockerfile, re.M)
    assert re.search(r"^RUN .*manage\.py collectstatic --noinput", dockerfile, re.M)
    runs = [i for i, line in enumerate(instructions) if line.startswith("RUN")]
    users = [i for i, line in enumerate(instructions) if line.startswith("USER")]
    assert users and users[-1] > runs[-1], "the image ends as the unprivileged user"
    # The build context never carries this machine's key or databases into the image.
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    assert {".secret_key", "db.sqlite3*", ".venv", ".git"} <= set(ignored)
