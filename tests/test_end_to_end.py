"""The embedded path as a user runs it: real `manage.py` processes on the test database.

demo → import_inventory → import_flows → aggregate_flows → show_communications / generate_policy, with
the exit codes of the command-line contract. Runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from flows.models import Communication, RawFlow
from tests.test_celery import _database_url

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"


def manage(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": _database_url()}
    env.pop("DEBUG", None)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=env, input=stdin,
                          capture_output=True, timeout=300)


@pytest.mark.django_db(transaction=True)
def test_demo_then_sample_inventory_and_flows():
    first = manage("demo", "--users")
    assert first.returncode == 0, first.stderr.decode()
    assert b"user admin: password " in first.stdout
    raw, comms = RawFlow.objects.count(), Communication.objects.count()
    assert raw > 50_000 and comms > 1_000
    again = manage("demo", "--users")
    assert again.returncode == 0, again.stderr.decode()
    assert b"0 flows stored" in again.stdout and b"exists, password unchanged" in again.stdout
    assert (RawFlow.objects.count(), Communication.objects.count()) == (raw, comms)

    shown = manage("show_communications", "--cluster", "prod", "--namespace", "shop", "--kind", "Deployment",
                   "--name", "checkout", "--direction", "egress", "--since", "7d", "--format", "json")
    assert shown.returncode == 0, shown.stderr.decode()
    rows = json.loads(shown.stdout)["rows"]
    postgres = [r for r in rows if r["peer"].get("name") == "postgres"]
    assert postgres and all(r["denied_in_cluster"] and not r["included"] for r in postgres)

    # A user's own dump and flows, through stdin for one of them.
    inv = manage("import_inventory", "--cluster", "sample", "--create", str(DATA / "inventory.yaml"))
    assert inv.returncode == 0, inv.stderr.decode()
    flows = manage("import_flows", "--cluster", "sample", "-", stdin=(DATA / "hubble-flows.jsonl").read_bytes())
    assert flows.returncode == 0, flows.stderr.decode()
    assert b"12 flows stored" in flows.stdout
    assert manage("aggregate_flows", "--cluster", "sample").returncode == 0
    shown = manage("show_communications", "--cluster", "sample", "--namespace", "ns-001", "--kind", "Deployment",
                   "--name", "api-001", "--direction", "egress", "--until", "2026-11-27T17:00:00+00:00",
                   "--format", "json")
    assert shown.returncode == 0, shown.stderr.decode()
    got = sorted((r["peer"].get("name") or r["peer"]["ip"], r["port"], r["protocol"])
                 for r in json.loads(shown.stdout)["rows"])
    assert got == [("93.184.147.180", 443, "TCP"), ("coredns", 53, "UDP"), ("web-000", 3000, "TCP")]

    generated = manage("generate_policy", "--cluster", "prod", "--namespace", "shop", "--all", "--since", "7d")
    assert generated.returncode == 0, generated.stderr.decode()
    names = [d["metadata"]["name"] for d in yaml.safe_load_all(generated.stdout) if d]
    assert "netsec-deployment-frontend" in names and len(names) == 9
    assert b"namespace legacy" in generated.stderr, generated.stderr  # use case 5: reported


@pytest.mark.django_db(transaction=True)
def test_exit_codes_of_the_contract(tmp_path):
    usage = manage("show_communications", "--cluster", "x")
    assert usage.returncode == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: Pod\nmetadata: {namespace: a}\n")
    broken = manage("import_inventory", "--cluster", "c", "--create", str(bad))
    assert broken.returncode == 1 and b"bad.yaml" in broken.stderr and b"metadata.name" in broken.stderr
