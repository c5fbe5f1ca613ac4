"""``manage.py probe_policies CASE.yaml``: JSON on stdout, exit 1 on bad input, 2 on usage."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

REPO = Path(__file__).resolve().parents[1]
# In CI the shared folder sits next to the repository.
# The repository keeps a copy of ../shared/examples (tests/test_examples.py checks it is current).
SHARED_EXAMPLE = Path(__file__).resolve().parent / "data" / "probe-case.yaml"

# The shared example, inlined so that the tests do not depend on the folder being there.
EXAMPLE = """\
namespaces:
  - name: shop
    labels: {kubernetes.io/metadata.name: shop, team: web}
  - name: payments
    labels: {kubernetes.io/metadata.name: payments}
pods:
  - namespace: shop
    name: frontend-7d9f-abcde
    labels: {app: frontend}
    ip: 10.244.1.10
    ports: [{name: http, containerPort: 8080, protocol: TCP}]
  - namespace: shop
    name: cart-5c4b-fghij
    labels: {app: cart}
    ip: 10.244.1.11
    ports: [{name: grpc, containerPort: 7070, protocol: TCP}]
  - namespace: payments
    name: payment-0
    labels: {app: payment}
    ip: 10.244.2.20
    ports: [{name: grpc, containerPort: 50051, protocol: TCP}]
policies:
  - apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: cart-ingress, namespace: shop}
    spec:
      podSelector: {matchLabels: {app: cart}}
      policyTypes: [Ingress]
      ingress:
        - from: [{podSelector: {matchLabels: {app: frontend}}}]
          ports: [{port: grpc, protocol: TCP}]
probes:
  - {from: shop/frontend-7d9f-abcde, to: shop/cart-5c4b-fghij, port: 7070, protocol: TCP}  # allowed
  - {from: payments/payment-0, to: shop/cart-5c4b-fghij, port: 7070, protocol: TCP}        # denied by ingress
  - {from: shop/cart-5c4b-fghij, to: payments/payment-0, port: 50051, protocol: TCP}       # not isolated
  - {from: 203.0.113.9, to: shop/frontend-7d9f-abcde, port: 8080, protocol: TCP}           # not isolated
"""

EXPECTED = {
    "results": [
        {
            "from": "shop/frontend-7d9f-abcde",
            "to": "shop/cart-5c4b-fghij",
            "port": 7070,
            "protocol": "TCP",
            "allowed": True,
            "egress": "not-isolated",
            "ingress": "allowed",
        },
        {
            "from": "payments/payment-0",
            "to": "shop/cart-5c4b-fghij",
            "port": 7070,
            "protocol": "TCP",
            "allowed": False,
            "egress": "not-isolated",
            "ingress": "denied",
        },
        {
            "from": "shop/cart-5c4b-fghij",
            "to": "payments/payment-0",
            "port": 50051,
            "protocol": "TCP",
            "allowed": True,
            "egress": "not-isolated",
            "ingress": "not-isolated",
        },
        {
            "from": "203.0.113.9",
            "to": "shop/frontend-7d9f-abcde",
            "port": 8080,
            "protocol": "TCP",
            "allowed": True,
            "egress": "not-isolated",
            "ingress": "not-isolated",
        },
    ]
}


@pytest.fixture
def example(tmp_path: Path) -> Path:
    path = tmp_path / "probe-case.yaml"
    shutil.copy(SHARED_EXAMPLE, path)
    return path


def run(*args: str) -> Any:
    out = io.StringIO()
    call_command("probe_policies", *args, stdout=out)
    return json.loads(out.getvalue())


def test_example_case(example: Path) -> None:
    assert run(str(example)) == EXPECTED


def test_inlined_example_matches_expected(tmp_path: Path) -> None:
    path = tmp_path / "case.yaml"
    path.write_text(EXAMPLE)
    assert run(str(path)) == EXPECTED


def test_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(EXAMPLE))
    assert run("-") == EXPECTED


def error_of(tmp_path: Path, text: str) -> CommandError:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(CommandError) as info:
        run(str(path))
    return info.value


def test_malformed_probe_names_file_and_field(tmp_path: Path) -> None:
    error = error_of(tmp_path, EXAMPLE.replace("port: 50051, protocol: TCP}", "port: fifty, protocol: TCP}"))
    assert error.returncode == 1
    assert str(error).endswith("bad.yaml: probes[2].port: must be a port number 1-65535, got 'fifty'")


def test_malformed_policy_names_policy_and_field(tmp_path: Path) -> None:
    error = error_of(
        tmp_path, EXAMPLE.replace("- from: [{podSelector: {matchLabels: {app: frontend}}}]", "- from: [{}]")
    )
    assert error.returncode == 1
    assert str(error).endswith(
        "bad.yaml: policies[0]: policy shop/cart-ingress: spec.ingress[0].from[0]: "
        "must specify podSelector, namespaceSelector or ipBlock"
    )


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    error = error_of(tmp_path, "namespaces:\n  - name: shop\n   bad: [\n")
    assert error.returncode == 1
    assert "bad.yaml:3: not valid YAML" in str(error)


def test_missing_file_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(CommandError) as info:
        run(str(tmp_path / "nope.yaml"))
    assert info.value.returncode == 1
    assert "nope.yaml: no such file" in str(info.value)


def manage(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ}
    return subprocess.run(
        [sys.executable, "manage.py", "probe_policies", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_command_line(example: Path, tmp_path: Path) -> None:
    ok = manage(str(example))
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout) == EXPECTED

    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE.replace("ip: 10.244.2.20", "ip: 10.244.2.300"))
    failed = manage(str(bad))
    assert failed.returncode == 1
    assert failed.stdout == ""
    assert "pods[2].ip: not an IP address: '10.244.2.300'" in failed.stderr

    usage = manage()
    assert usage.returncode == 2
    assert "the following arguments are required: case" in usage.stderr
