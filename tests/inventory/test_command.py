"""manage.py import_inventory: the command-line contract of design §6 (exit codes, messages, stdin)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from flows.management.commands.import_inventory import Command
from flows.models import Cluster, Namespace, NetworkPolicy, Pod, PodAddress, Service, Workload
from tests.inventory import builders as b
from tests.inventory.test_store import all_rows

MANAGE = Path(__file__).resolve().parents[2] / "manage.py"


def run(monkeypatch, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    """Run the command as the shell does (exit code, stdout, stderr), inside the test's transaction."""
    # run_from_argv closes every connection when it is done, which would end the test's transaction.
    monkeypatch.setattr("django.db.connections.close_all", lambda: None)
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode())))
    out, err = io.StringIO(), io.StringIO()
    command = Command(stdout=out, stderr=err)
    code = 0
    try:
        command.run_from_argv(["manage.py", "import_inventory", *args])
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def counts(out: str) -> dict[str, tuple[int, ...]]:
    """The summary table as kind -> (created, updated, deleted, unchanged)."""
    table = {}
    for line in out.splitlines():
        *kind, created, updated, deleted, unchanged = line.split() or ["-"] * 5
        if all(n.isdigit() for n in (created, updated, deleted, unchanged)):
            table[" ".join(kind)] = (int(created), int(updated), int(deleted), int(unchanged))
    return table


@pytest.fixture
def dump(tmp_path) -> Path:
    path = tmp_path / "dump.yaml"
    path.write_text(b.to_yaml(b.shop()))
    return path


def test_import_prints_a_summary_per_kind(cluster, monkeypatch, dump) -> None:
    code, out, err = run(monkeypatch, "--cluster", "test", str(dump))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].startswith("imported 21 objects into cluster 'test' (full, observed at ")
    assert lines[1].split() == ["kind", "created", "updated", "deleted", "unchanged"]
    assert counts(out)["Pod"] == (8, 0, 0, 0) and counts(out)["Deployment"] == (1, 0, 0, 0)
    assert "pod addresses: 7 opened, 0 closed" in lines
    assert Pod.objects.filter(cluster=cluster).count() == 8

    code, out, _ = run(monkeypatch, "--cluster", "test", str(dump))
    assert code == 0 and counts(out)["Pod"] == (0, 0, 0, 8)


def test_unknown_cluster_is_exit_1_and_writes_nothing(db, monkeypatch, dump) -> None:
    code, out, err = run(monkeypatch, "--cluster", "prod", str(dump))
    assert code == 1 and out == ""
    assert err.strip() == "CommandError: cluster 'prod' does not exist; create it in the admin or with --create"
    assert not Cluster.objects.exists() and not Namespace.objects.exists()


def test_create_makes_the_cluster(db, monkeypatch, dump) -> None:
    code, out, _ = run(monkeypatch, "--cluster", "prod", "--create", str(dump))
    assert code == 0 and out.startswith("created cluster 'prod'\n")
    assert Pod.objects.filter(cluster__name="prod").count() == 8


def test_bad_input_is_exit_1_names_the_place_and_writes_nothing(cluster, monkeypatch, dump, tmp_path) -> None:
    run(monkeypatch, "--cluster", "test", str(dump))
    before = all_rows()
    items = b.shop()
    items[1]["metadata"]["labels"]["tier"] = 2  # kube-system Namespace, 2nd item
    del items[5]["metadata"]["namespace"]  # a Pod, 6th item
    bad = tmp_path / "bad.json"
    bad.write_text(b.to_json(items))
    good = tmp_path / "more.yaml"
    good.write_text(b.to_yaml([b.namespace("new"), b.pod("new", "p", "10.244.9.9")]))
    code, out, err = run(monkeypatch, "--cluster", "test", str(good), str(bad))
    assert code == 1 and out == ""
    assert err.splitlines() == [
        "CommandError: nothing imported:",
        f"{bad}: document 1, item 2 (Namespace kube-system): metadata.labels.tier: expected a string, got int 2 "
        "(quote it)",
        f"{bad}: document 1, item 6 (Pod web-5d9f8-aaaaa): metadata.namespace: missing",
    ]
    assert all_rows() == before  # not even the good file's objects


def test_bad_input_with_create_does_not_create_the_cluster(db, monkeypatch, tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: List\nitems:\n- kind: Pod\n  metadata: {name: p, namespace: a}\n"
                   "  spec: {hostNetwork: maybe}\n")
    code, _, err = run(monkeypatch, "--cluster", "prod", "--create", str(bad))
    assert code == 1 and not Cluster.objects.exists()
    assert f"{bad}:3: document 1, item 1 (Pod a/p): spec.hostNetwork: expected true or false, got 'maybe'" in err


def test_stdin(cluster, monkeypatch) -> None:
    code, _, _ = run(monkeypatch, "--cluster", "test", "-", stdin=b.to_multidoc_yaml(b.shop()))
    assert code == 0 and Pod.objects.count() == 8


def test_stdin_through_call_command(cluster) -> None:
    out = io.StringIO()
    call_command("import_inventory", "--cluster", "test", "-", stdin=io.BytesIO(b.to_json(b.shop()).encode()),
                 stdout=out)
    assert NetworkPolicy.objects.count() == 1 and "NetworkPolicy" in out.getvalue()


def test_several_files_form_one_snapshot(cluster, monkeypatch, tmp_path) -> None:
    items = b.shop()
    first, second = tmp_path / "ns.yaml", tmp_path / "rest.json"
    first.write_text(b.to_yaml(items[:3]))
    second.write_text(b.to_json(items[3:]))
    code, _, _ = run(monkeypatch, "--cluster", "test", str(first), str(second))
    assert code == 0 and Pod.objects.count() == 8 and Namespace.objects.count() == 2


def test_partial_and_observed_at(cluster, monkeypatch, dump, tmp_path) -> None:
    run(monkeypatch, "--cluster", "test", str(dump))
    fewer = tmp_path / "fewer.yaml"
    fewer.write_text(b.to_yaml([i for i in b.shop() if i["metadata"]["name"] != "db-0"]))
    code, out, _ = run(monkeypatch, "--cluster", "test", "--partial", str(fewer))
    assert code == 0 and "(partial," in out and Pod.objects.get(name="db-0").deleted_at is None
    code, out, _ = run(monkeypatch, "--cluster", "test", "--observed-at", "2026-11-02T08:00:00Z", str(fewer))
    gone = Pod.objects.get(name="db-0")
    assert code == 0 and gone.deleted_at is not None and gone.deleted_at.isoformat() == "2026-11-02T08:00:00+00:00"
    assert PodAddress.objects.get(pod=gone).valid_to == gone.deleted_at


@pytest.mark.parametrize("args", [
    ["--cluster", "test"],  # no file
    ["--cluster", "test", "-", "-"],
    ["--cluster", "test", "--observed-at", "yesterday", "x.yaml"],
    ["--cluster", "Not A Slug", "--create", "x.yaml"],
])
def test_usage_errors_are_exit_2(cluster, monkeypatch, args) -> None:
    code, _, _ = run(monkeypatch, *args)
    assert code == 2


def test_usage_error_from_the_shell(tmp_path) -> None:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}"}
    done = subprocess.run([sys.executable, str(MANAGE), "import_inventory", "x.yaml"], env=env, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 2 and "--cluster" in done.stderr


def test_the_shared_example_through_the_command(cluster, monkeypatch) -> None:
    code, out, _ = run(monkeypatch, "--cluster", "test", str(b.SAMPLE))
    assert code == 0 and counts(out)["NetworkPolicy"] == (6, 0, 0, 0)
    assert Workload.objects.filter(kind="Deployment").count() == 7 and not Service.objects.exists()
