"""show_communications: scopes of every kind, spans, the table and the JSON contract of design §6."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from flows.access import SYSTEM
from flows.aggregate import aggregate_cluster
from flows.classify import IPClassifier
from flows.models import CIDRConfig, IPAlias
from policies import services
from tests import factories as f
from tests.factories import T0

UNTIL = (T0 + timedelta(hours=2)).isoformat()


def show(*args: str) -> str:
    out = StringIO()
    call_command("show_communications", *args, "--until", UNTIL, stdout=out)
    return out.getvalue()


def show_json(*args: str) -> dict:
    return json.loads(show(*args, "--format", "json"))


@pytest.fixture
def world(cluster):
    web = f.workload(cluster, "shop", "Deployment", "web")
    cron = f.workload(cluster, "batch", "CronJob", "rates")
    job_of_cron = f.workload(cluster, "batch", "Job", "rates-123", parent=cron)
    lone_job = f.workload(cluster, "batch", "Job", "migrate")
    db = f.workload(cluster, "data", "StatefulSet", "db")
    f.pod(cluster, web, "web-1", "10.244.1.1", ports=(("http", 8080, "TCP"),))
    f.pod(cluster, web, "web-2", "10.244.1.2", ports=(("http", 8080, "TCP"),))
    cron_pod = f.pod(cluster, cron, "rates-123-x", "10.244.1.3")
    assert job_of_cron.parent == cron and cron_pod.workload == cron
    f.pod(cluster, lone_job, "migrate-x", "10.244.1.4")
    f.pod(cluster, db, "db-0", "10.244.1.5", ports=(("pg", 5432, "TCP"),))
    f.service(cluster, "shop", "web", {"app": "web"}, "10.96.0.8", [(80, "TCP", "http")])
    f.flow(cluster, "10.244.1.3", 40000, "10.244.1.5", 5432)
    f.flow(cluster, "10.244.1.4", 40000, "10.244.1.5", 5432)
    f.flow(cluster, "10.244.1.3", 40001, "203.0.113.9", 443, dst_names=["api.rates.example"])
    f.flow(cluster, "10.244.1.3", 40002, "192.168.7.7", 443)
    f.flow(cluster, "10.244.1.3", 40003, "198.51.100.4", 443)
    f.flow(cluster, "10.244.1.3", 40004, "10.244.200.200", 8080)
    f.flow(cluster, "10.244.1.4", 40005, "10.96.0.8", 80)
    f.flow(cluster, "10.244.1.4", 40006, "10.244.1.1", 8080, time=T0 - timedelta(days=3))
    IPAlias.objects.create(cluster=cluster, name="rates-api", cidr="198.51.100.0/24", allowed=True)
    CIDRConfig.objects.create(cidr="192.168.0.0/16", category="External", label="office")
    aggregate_cluster(cluster)


def test_cronjob_scope_rolls_up_job_pods_and_classifies_ips(world):
    got = show_json("--cluster", "test", "--namespace", "batch", "--kind", "CronJob", "--name", "rates",
                    "--direction", "egress")
    assert got["workload"] == {"cluster": "test", "namespace": "batch", "kind": "CronJob", "name": "rates"}
    peers = {(json.dumps(r["peer"], sort_keys=True), r["port"], r["included"]) for r in got["rows"]}
    assert peers == {
        (json.dumps({"kind": "StatefulSet", "namespace": "data", "name": "db"}, sort_keys=True), 5432, True),
        (json.dumps({"ip": "203.0.113.9", "category": "External", "alias": None,
                     "dns_names": ["api.rates.example"]}, sort_keys=True), 443, False),
        (json.dumps({"ip": "192.168.7.7", "category": "External", "alias": None, "dns_names": []},
                    sort_keys=True), 443, False),
        (json.dumps({"ip": "198.51.100.4", "category": "Aliased", "alias": "rates-api", "dns_names": []},
                    sort_keys=True), 443, True),
        (json.dumps({"ip": "10.244.200.200", "category": "Internal", "alias": None, "dns_names": []},
                    sort_keys=True), 8080, False),
    }
    row = got["rows"][0]
    assert set(row) >= {"peer", "port", "protocol", "connections", "first_seen", "last_seen",
                        "denied_in_cluster", "included"}


def test_job_scope_is_only_for_jobs_without_a_cronjob(world):
    with pytest.raises(CommandError, match="roll up to CronJob rates"):
        show("--cluster", "test", "--namespace", "batch", "--kind", "Job", "--name", "rates-123",
             "--direction", "egress")
    got = show_json("--cluster", "test", "--namespace", "batch", "--kind", "Job", "--name", "migrate",
                    "--direction", "egress")
    assert [(r["peer"].get("name"), r["port"]) for r in got["rows"]] == [("web", 8080), ("db", 5432)]


def test_service_scope_covers_its_backends_and_the_span_matters(world):
    args = ("--cluster", "test", "--namespace", "shop", "--kind", "Service", "--name", "web", "--direction", "ingress")
    got = show_json(*args)
    assert [(r["peer"]["name"], r["port"], r["connections"]) for r in got["rows"]] == [("migrate", 8080, 1)]
    week = show_json(*args, "--since", "7d")
    assert [(r["peer"]["name"], r["port"], r["connections"]) for r in week["rows"]] == [("migrate", 8080, 2)]


def test_table_format_and_empty_state(world):
    table = show("--cluster", "test", "--namespace", "data", "--kind", "StatefulSet", "--name", "db",
                 "--direction", "ingress")
    assert "KIND" in table and "CronJob" in table and "5432/TCP" in table and "2 rows · 2 included" in table
    empty = show("--cluster", "test", "--namespace", "data", "--kind", "StatefulSet", "--name", "db",
                 "--direction", "egress")
    assert "deny" not in empty or "No communications observed" in empty
    assert "No communications observed" in empty


def test_unknown_names_and_bad_spans_are_clear_errors(world):
    with pytest.raises(CommandError, match="cluster 'nope' does not exist"):
        show("--cluster", "nope", "--namespace", "x", "--kind", "Deployment", "--name", "y", "--direction", "egress")
    with pytest.raises(CommandError, match="Deployment shop/nope is not a workload"):
        show("--cluster", "test", "--namespace", "shop", "--kind", "Deployment", "--name", "nope",
             "--direction", "egress")
    with pytest.raises(CommandError, match="time span"):
        show("--cluster", "test", "--namespace", "shop", "--kind", "Deployment", "--name", "web",
             "--direction", "egress", "--since", "forever")


def test_classifier_categories(cluster):
    f.pod(cluster, f.workload(cluster, "a", "Deployment", "x"), "x-1", "10.244.0.9", host_ip="172.18.0.2")
    IPAlias.objects.create(name="global-proxy", cidr="10.10.0.0/16")
    IPAlias.objects.create(cluster=cluster, name="the-proxy", cidr="10.10.0.7")
    CIDRConfig.objects.create(cluster=cluster, cidr="100.64.0.0/10", category="Internal", label="vpn")
    classifier = IPClassifier(cluster)
    got = {ip: (i.category, i.alias, i.label) for ip, i in classifier.classify_many(
        ["10.10.0.7", "10.10.1.1", "100.64.1.1", "172.18.0.2", "10.96.0.1", "8.8.8.8", "192.168.1.1",
         "fd00::1", "2606:4700::1111"]).items()}
    assert got == {
        "10.10.0.7": ("Aliased", "the-proxy", ""),
        "10.10.1.1": ("Aliased", "global-proxy", ""),
        "100.64.1.1": ("Internal", None, "vpn"),
        "172.18.0.2": ("Internal", None, ""),
        "10.96.0.1": ("Internal", None, ""),
        "8.8.8.8": ("External", None, ""),
        "192.168.1.1": ("Unknown", None, ""),
        "fd00::1": ("Unknown", None, ""),
        "2606:4700::1111": ("External", None, ""),
    }


def test_included_follows_the_saved_draft(world):
    args = ("--cluster", "test", "--namespace", "batch", "--kind", "CronJob", "--name", "rates", "--direction",
            "egress")
    scope = services.resolve_scope(SYSTEM, "test", "batch", "CronJob", "rates")
    row = next(r for r in show_json(*args)["rows"] if r["peer"].get("ip") == "203.0.113.9")
    assert row["included"] is False
    services.set_row(SYSTEM, scope, "egress:ip/203.0.113.9:443/TCP", True)
    row = next(r for r in show_json(*args)["rows"] if r["peer"].get("ip") == "203.0.113.9")
    assert row["included"] is True
