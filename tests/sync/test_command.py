"""manage.py sync_cluster: the contract of design §6 (options, exit codes, messages), the API settings it
uses and saves, the client's default kubeconfig and in-cluster configuration, and the admin's view."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse

from flows.kube.api import KubeConfigError, Target, configuration
from flows.kube.sync import sync_cluster, target_for
from flows.management.commands.sync_cluster import Command
from flows.models import Cluster, Namespace, Pod
from tests.sync.conftest import FAST
from tests.sync.fakeapi import event, kubeconfig

pytestmark = pytest.mark.django_db

FAST_FLAGS = ("--timeout", "0.5", "--retry-delay", "0.001", "--attempts", "2", "--page-size", "5")


def run(monkeypatch, *args: str) -> tuple[int, str, str]:
    """Run the command as the shell does (exit code, stdout, stderr), inside the test's transaction."""
    # run_from_argv closes every connection when it is done, which would end the test's transaction.
    monkeypatch.setattr("django.db.connections.close_all", lambda: None)
    out, err = io.StringIO(), io.StringIO()
    code = 0
    try:
        Command(stdout=out, stderr=err).run_from_argv(["manage.py", "sync_cluster", *args])
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def listed(out: str) -> dict[str, list[str]]:
    """The table of the lists (kind, listed, pages, retries, status), before the one of what was written."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == ["kind", "listed"]) + 1
    end = next(i for i, line in enumerate(lines) if line.split()[:2] == ["kind", "created"])
    return {line.split()[0]: line.split()[1:] for line in lines[start:end]}


def test_sync_prints_what_it_listed_and_wrote(monkeypatch, live, server) -> None:
    code, out, err = run(monkeypatch, "--cluster", "test", *FAST_FLAGS)

    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].startswith(f"listed 54 objects of cluster 'test' from {server.url} (kubeconfig ")
    assert lines[0].endswith("(full)")
    assert lines[1].split() == ["kind", "listed", "pages", "retries", "status"]
    assert listed(out)["Pod"] == ["18", "4", "0", "ok"]
    assert "pod addresses: 16 opened, 0 closed" in lines  # the summary of import_inventory
    assert any(line.split()[:2] == ["kind", "created"] for line in lines)


def test_create_makes_the_cluster_and_saves_its_api_settings(monkeypatch, db, server, config_file) -> None:
    code, out, err = run(monkeypatch, "--cluster", "prod", "--create", "--kubeconfig", str(config_file),
                         "--context", "fake", *FAST_FLAGS)

    assert (code, err) == (0, "")
    assert out.startswith("created cluster 'prod'\n")
    cluster = Cluster.objects.get(name="prod")
    assert (cluster.kubeconfig, cluster.context) == (str(config_file), "fake")
    assert cluster.last_sync is not None
    assert Pod.objects.filter(cluster=cluster).count() == 18


def test_settings_are_saved_on_a_cluster_that_has_none_and_kept_on_one_that_has(
        monkeypatch, cluster, server, config_file, tmp_path) -> None:
    code, out, _ = run(monkeypatch, "--cluster", "test", "--kubeconfig", str(config_file), *FAST_FLAGS)
    assert code == 0 and "saved the API settings on cluster 'test'" in out
    cluster.refresh_from_db()
    assert cluster.kubeconfig == str(config_file)

    # Another kubeconfig for one run: used, not saved over the cluster's own.
    other = kubeconfig(tmp_path / "other", server.url, context="other")
    code, out, _ = run(monkeypatch, "--cluster", "test", "--kubeconfig", str(other), "--context", "other",
                       *FAST_FLAGS)
    assert code == 0 and "saved the API settings" not in out and f"kubeconfig {other}, context other" in out
    cluster.refresh_from_db()
    assert (cluster.kubeconfig, cluster.context) == (str(config_file), "")


def test_a_relative_kubeconfig_is_saved_as_an_absolute_path(monkeypatch, db, server, config_file) -> None:
    monkeypatch.chdir(config_file.parent)
    code, _, _ = run(monkeypatch, "--cluster", "prod", "--create", "--kubeconfig", config_file.name, *FAST_FLAGS)
    assert code == 0
    assert Cluster.objects.get(name="prod").kubeconfig == str(config_file)


def test_unknown_cluster_is_exit_1(monkeypatch, db) -> None:
    code, out, err = run(monkeypatch, "--cluster", "prod")
    assert (code, out) == (1, "")
    assert err.strip() == "CommandError: cluster 'prod' does not exist; create it in the admin or with --create"


def test_a_bad_cluster_name_is_a_usage_error(monkeypatch, db) -> None:
    code, _, err = run(monkeypatch, "--cluster", "Prod_1", "--create")
    assert code == 2 and "a cluster name is lower-case letters, digits and '-'" in err
    assert not Cluster.objects.exists()


@pytest.mark.parametrize("args", [("--watch-seconds", "0"), ("--attempts", "x"), ("--bogus",)])
def test_bad_options_are_usage_errors(monkeypatch, cluster, args) -> None:
    code, _, _ = run(monkeypatch, "--cluster", "test", *args)
    assert code == 2


def test_a_missing_kubeconfig_is_exit_1_and_recorded(monkeypatch, cluster, tmp_path) -> None:
    missing = tmp_path / "nope"
    code, out, err = run(monkeypatch, "--cluster", "test", "--kubeconfig", str(missing))
    assert (code, out) == (1, "")
    assert err.strip() == f"CommandError: cluster 'test': kubeconfig {missing}: no such file"
    cluster.refresh_from_db()
    assert cluster.last_sync_error == f"kubeconfig {missing}: no such file"
    assert cluster.kubeconfig == ""  # a path that does not work is not saved


def test_create_with_a_bad_kubeconfig_creates_nothing(monkeypatch, db, tmp_path) -> None:
    broken = tmp_path / "broken"
    broken.write_text("apiVersion: v1\nkind: Config\nclusters: []\n")
    code, _, err = run(monkeypatch, "--cluster", "prod", "--create", "--kubeconfig", str(broken))
    assert code == 1 and f"kubeconfig {broken}, its current context: " in err
    assert not Cluster.objects.exists()


def test_an_unknown_context_is_exit_1(monkeypatch, live, config_file) -> None:
    code, _, err = run(monkeypatch, "--cluster", "test", "--context", "staging")
    assert code == 1
    assert f"kubeconfig {config_file}, context staging: " in err and "staging" in err.split(": ", 2)[2]


def test_an_api_failure_is_exit_1_with_the_reason_on_stderr(monkeypatch, live, server) -> None:
    server.fail("jobs", 503, times=-1, message="the server is shutting down")
    code, out, err = run(monkeypatch, "--cluster", "test", *FAST_FLAGS)

    assert code == 1
    assert "(partial: nothing deleted)" in out.splitlines()[0]
    assert listed(out)["Job"][-1] == "FAILED"
    assert err.startswith("CommandError: cluster 'test': listing Job from http://127.0.0.1:")
    assert "Job: 503 Service Unavailable on GET /apis/batch/v1/jobs?limit=5 (the server is shutting down) " \
           "(after 2 attempts)" in err
    assert Namespace.objects.filter(cluster=live).count() == 4


def test_the_client_default_kubeconfig_is_used_without_settings(monkeypatch, cluster, server, config_file) -> None:
    monkeypatch.setenv("KUBECONFIG", str(config_file))
    code, out, err = run(monkeypatch, "--cluster", "test", *FAST_FLAGS)
    assert (code, err) == (0, "")
    assert "(the default kubeconfig, its current context)" in out.splitlines()[0]
    assert Pod.objects.filter(cluster=cluster).count() == 18


def test_in_cluster_settings_use_the_service_account(monkeypatch, tmp_path) -> None:
    token, cert = tmp_path / "token", tmp_path / "ca.crt"
    token.write_text("in-cluster-token")
    cert.write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setattr("kubernetes.config.incluster_config.SERVICE_TOKEN_FILENAME", str(token))
    monkeypatch.setattr("kubernetes.config.incluster_config.SERVICE_CERT_FILENAME", str(cert))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")

    config = configuration(Target(in_cluster=True))
    assert config.host == "https://10.96.0.1:443"
    assert config.api_key["BearerToken"].lower() == "bearer in-cluster-token"  # the loader writes it "bearer"
    assert config.ssl_ca_cert == str(cert)


def test_in_cluster_outside_a_pod_is_a_clear_failure(monkeypatch, cluster) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    cluster.in_cluster = True
    cluster.save()
    with pytest.raises(KubeConfigError, match="^the in-cluster service account: Service host/port is not set"):
        configuration(Target(in_cluster=True))
    result = sync_cluster(cluster)
    assert not result.ok and result.error == "the in-cluster service account: Service host/port is not set."
    cluster.refresh_from_db()
    assert cluster.last_sync_error == result.error and cluster.last_sync_attempt is not None


def test_watch_through_call_command(live, server) -> None:
    gone = next(i for i in server.items("pods") if i["metadata"]["name"] == "cache-0")
    server.watches = [[event("DELETED", gone, "1001")]]
    out = io.StringIO()
    call_command("sync_cluster", "--cluster", "test", "--watch-seconds", "0.5", api_options=FAST, stdout=out)

    text = out.getvalue()
    assert "watched pods: 1 DELETED in 1 writes; pods 0 created, 0 updated, 1 deleted; addresses 0 opened, " \
           "1 closed" in text
    assert Pod.objects.get(name="cache-0").deleted_at is not None


def test_a_watch_that_stops_for_good_is_exit_1(monkeypatch, live, server) -> None:
    server.watches = [403]
    code, _, err = run(monkeypatch, "--cluster", "test", "--watch-seconds", "2", *FAST_FLAGS)
    assert code == 1
    assert err.startswith("CommandError: cluster 'test': the watch of pods stopped: 403 Forbidden on GET /api/v1/pods?"
                          "watch=true&resourceVersion=1000")
    assert "missing permission to watch pods" in err


def test_the_admin_shows_how_the_last_sync_went(admin_client, live, server) -> None:
    server.fail("pods", 500, times=-1)
    sync_cluster(live, options=FAST)

    page = admin_client.get(reverse("admin:flows_cluster_changelist")).content.decode()
    assert "failed: listing Pod from" in page
    page = admin_client.get(reverse("admin:flows_cluster_change", args=[live.pk])).content.decode()
    assert "Last sync" in page and "500 Internal Server Error" in page
    assert json.dumps(live.last_sync_summary["kinds"]["Pod"], indent=2, sort_keys=True).splitlines()[1] in \
        page.replace("&quot;", '"')
    # The record of the sync is read-only.
    assert 'name="last_sync_error"' not in page and 'name="last_sync_summary"' not in page


def test_the_kubeconfig_written_by_the_tests_is_what_the_client_reads(config_file: Path, server) -> None:
    config = configuration(Target(str(config_file)))
    assert config.host == server.url and config.api_key["BearerToken"] == "Bearer netsec-test-token"


def test_which_settings_a_run_uses() -> None:
    saved = Cluster(name="c", kubeconfig="/etc/netsec/kubeconfig", context="prod")
    assert target_for(saved) == Target("/etc/netsec/kubeconfig", "prod")
    assert target_for(saved, context="staging") == Target("/etc/netsec/kubeconfig", "staging")
    assert target_for(saved, kubeconfig="/tmp/other") == Target("/tmp/other", "")
    assert target_for(Cluster(name="c", in_cluster=True)) == Target(in_cluster=True)
    assert target_for(Cluster(name="c", in_cluster=True), kubeconfig="/tmp/k") == Target("/tmp/k")
    assert target_for(Cluster(name="c")) == Target()
    assert str(Target()) == "the default kubeconfig, its current context"
