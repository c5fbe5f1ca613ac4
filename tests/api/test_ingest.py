"""Ingestion over HTTP: ``POST /api/v1/clusters/<c>/flows`` and ``.../inventory``, through the test client with real
tokens. Lines land and are aggregated, malformed ones are reported by line, a retried batch adds nothing, and
hostile bodies (too large, gzip bombs, not UTF-8, alias bombs, deep nesting) are refused with nothing written."""

from __future__ import annotations

import gzip
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client

from flows.access import SYSTEM, Role
from flows.models import Cluster, Communication, IngestBatch, Namespace, NamespaceGrant, Pod, RawFlow
from policies import services
from policies.models import AuditEvent

DATA = Path(__file__).resolve().parents[1] / "data"
HUBBLE = (DATA / "hubble-flows.jsonl").read_bytes()
INVENTORY = (DATA / "inventory.yaml").read_bytes()
UNTIL = datetime(2026, 11, 27, 17, tzinfo=UTC)
FLOWS, INV = "/api/v1/clusters/sample/flows", "/api/v1/clusters/sample/inventory"


def netsec_line(port: int, **extra: Any) -> bytes:
    return orjson.dumps({
        "time": "2026-11-27T16:30:00Z", "protocol": "TCP", "tcp_flags": ["SYN"],
        "source": {"ip": "10.0.1.9", "port": 40000 + port, "namespace": "ns-001", "pod": "api-001-8bsht5lgjx-q4jr6",
                   "workload": {"kind": "Deployment", "name": "api-001"}},
        "destination": {"ip": "10.0.1.8", "port": port, "namespace": "ns-001", "pod": "web-000-hphbqw7nn9-bb2wb",
                        "workload": {"kind": "Deployment", "name": "web-000"}},
        **extra,
    })


@pytest.fixture
def sample(db) -> Cluster:
    return Cluster.objects.create(name="sample")


def _user(name: str, *groups: str) -> Any:
    user = get_user_model().objects.create_user(name, password="x")
    user.groups.add(*(Group.objects.get(name=group) for group in groups))
    return user


def _client(user: Any) -> Client:
    secret = services.create_token(user, "t").secret
    return Client(headers={"Authorization": f"Bearer {secret}"})


@pytest.fixture
def admin(sample) -> Client:
    return _client(_user("ada", "Admins"))


def post(client: Client, url: str, body: bytes, *, content_type: str = "application/x-ndjson", **headers: str) -> Any:
    return client.post(url, body, content_type=content_type, headers=headers)


def stored() -> tuple[int, int, int, int]:
    """What ingestion may have written: raw flows, namespaces, pods, batch records."""
    return RawFlow.objects.count(), Namespace.objects.count(), Pod.objects.count(), IngestBatch.objects.count()


# ------------------------------------------------------------------------------------------------- flows


def test_hubble_lines_land_and_are_aggregated(admin):
    assert post(admin, INV, INVENTORY, content_type="application/yaml").status_code == 200
    response = post(admin, FLOWS, HUBBLE)
    assert response.status_code == 200, response.content
    assert response.json() == {"lines": 12, "stored": 12, "duplicates": 0, "skipped": 0, "malformed": 0,
                               "errors": [], "replayed": False, "aggregation": "done"}
    scope = services.resolve_scope(SYSTEM, "sample", "ns-001", "Deployment", "api-001")
    got = sorted((r.peer.as_json().get("name") or r.peer.as_json()["ip"], r.port, r.protocol)
                 for r in services.rows(SYSTEM, scope, "egress", until=UNTIL))
    assert got == [("93.184.147.180", 443, "TCP"), ("coredns", 53, "UDP"), ("web-000", 3000, "TCP")]
    event = AuditEvent.objects.get(action="flows.ingested")
    assert (event.via, event.actor, event.cluster, event.details["stored"]) == ("api", "ada", "sample", 12)


def test_netsec_lines_and_a_malformed_line_in_between(admin):
    body = b"\n".join([netsec_line(3000), b'{"time": "2026-11-27T16:30:00Z", "protocol": "TCP"}', b"{not json",
                       netsec_line(3001)])
    response = post(admin, FLOWS + "?format=netsec", body)
    assert response.status_code == 200, response.content
    answer = response.json()
    assert {k: answer[k] for k in ("lines", "stored", "malformed", "duplicates")} == {
        "lines": 4, "stored": 2, "malformed": 2, "duplicates": 0}
    assert [e["line"] for e in answer["errors"]] == [2, 3]
    assert answer["errors"][1]["field"] == "" and "invalid JSON" in answer["errors"][1]["message"]
    assert answer["errors"][0]["field"] and answer["errors"][0]["message"]
    assert RawFlow.objects.count() == 2
    assert Communication.objects.filter(cluster__name="sample").exists()  # aggregated, inventory or not


def test_aggregation_is_queued_when_celery_has_workers(admin, sample, monkeypatch):
    from flows.tasks import aggregate_flows

    queued: list[int] = []
    monkeypatch.setitem(aggregate_flows.app.conf, "task_always_eager", False)
    monkeypatch.setattr(aggregate_flows, "delay", queued.append)
    answer = post(admin, FLOWS, HUBBLE).json()
    assert (answer["stored"], answer["aggregation"], queued) == (12, "queued", [sample.id])
    assert not Communication.objects.exists()


def test_errors_are_capped_but_all_malformed_lines_counted(admin):
    answer = post(admin, FLOWS, b"oops\n" * 50).json()
    assert (answer["malformed"], len(answer["errors"])) == (50, 20)
    assert answer["errors"][-1]["line"] == 20


def test_a_retried_batch_adds_nothing_and_answers_the_first_answer(admin):
    body = HUBBLE + b"garbage\n"
    first = post(admin, FLOWS, body, **{"Idempotency-Key": "batch-0001"})
    assert first.status_code == 200 and first.json()["stored"] == 12
    before = stored()
    again = post(admin, FLOWS, body, **{"Idempotency-Key": "batch-0001"})
    assert again.status_code == 200
    assert again.json() == {**first.json(), "replayed": True}
    assert stored() == before and AuditEvent.objects.filter(action="flows.ingested").count() == 1
    # The batch id in the query string is the same key.
    assert post(admin, FLOWS + "?batch=batch-0001", body).json()["replayed"] is True
    # Without a key, the events themselves are not stored twice either: the answer says so.
    assert post(admin, FLOWS, body).json() | {"errors": []} == {
        "lines": 13, "stored": 0, "duplicates": 12, "skipped": 0, "malformed": 1, "errors": [], "replayed": False,
        "aggregation": "done"}


def test_a_key_used_again_for_another_batch_is_refused(admin):
    assert post(admin, FLOWS, HUBBLE, **{"Idempotency-Key": "k1"}).status_code == 200
    before = stored()
    response = post(admin, FLOWS + "?format=netsec", netsec_line(3000), **{"Idempotency-Key": "k1"})
    assert response.status_code == 400 and "Idempotency-Key" in response.json()["detail"]
    assert stored() == before
    mismatch = post(admin, FLOWS + "?batch=k2", HUBBLE, **{"Idempotency-Key": "k3"})
    assert mismatch.status_code == 400 and mismatch.json()["detail"].startswith("batch: ")
    assert post(admin, FLOWS, HUBBLE, **{"Idempotency-Key": "x" * 201}).status_code == 400


def test_gzip_bodies(admin):
    response = post(admin, FLOWS, gzip.compress(HUBBLE), **{"Content-Encoding": "gzip"})
    assert response.status_code == 200 and response.json()["stored"] == 12
    # A .gz file sent as it is, without the header, is unzipped all the same.
    sent = post(admin, FLOWS + "?format=netsec", gzip.compress(netsec_line(3000)), content_type="application/gzip")
    assert sent.status_code == 200 and sent.json()["stored"] == 1
    broken = post(admin, FLOWS, gzip.compress(HUBBLE)[:-20], **{"Content-Encoding": "gzip"})
    assert broken.status_code == 400 and "gzip" in broken.json()["detail"]
    assert post(admin, FLOWS, HUBBLE, **{"Content-Encoding": "gzip"}).status_code == 400
    other = post(admin, FLOWS, HUBBLE, **{"Content-Encoding": "br"})
    assert other.status_code == 415 and "gzip" in other.json()["detail"]


def test_an_oversized_body_is_413_and_stores_nothing(admin, settings):
    settings.NETSEC_MAX_UPLOAD_BYTES = len(HUBBLE) - 1
    response = post(admin, FLOWS, HUBBLE)
    assert response.status_code == 413
    assert f"{len(HUBBLE) - 1:,} bytes" in response.json()["detail"]
    assert stored() == (0, 0, 0, 0)
    settings.NETSEC_MAX_UPLOAD_BYTES = len(HUBBLE)
    assert post(admin, FLOWS, HUBBLE).status_code == 200  # the limit itself is allowed


def test_a_gzip_bomb_is_413_without_inflating_it(admin, settings):
    import tracemalloc

    settings.NETSEC_MAX_UPLOAD_BYTES = 1024 * 1024
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = b"\n" * (1024 * 1024)
    bomb = b"".join(packer.compress(zeros) for _ in range(1024)) + packer.flush()  # 1 GiB in about 1 MB
    assert len(bomb) < settings.NETSEC_MAX_UPLOAD_BYTES
    tracemalloc.start()
    try:
        response = post(admin, FLOWS, bomb, **{"Content-Encoding": "gzip"})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert response.status_code == 413 and "decompresses to more than" in response.json()["detail"]
    assert peak < 32 * 1024 * 1024, peak
    assert stored() == (0, 0, 0, 0)


def test_a_body_past_the_limit_without_content_length_is_cut_where_it_passes_it(sample, settings):
    """A chunked upload declares no length: the service stops reading at the limit."""
    from policies import ingestion

    settings.NETSEC_MAX_UPLOAD_BYTES = 1000

    class Endless:
        read_bytes = 0

        def read(self, size: int = -1) -> bytes:
            self.read_bytes += size
            return b"{}\n" * (size // 3 + 1)

    stream = Endless()
    with pytest.raises(ingestion.TooLarge, match="1,000 bytes"):
        ingestion.ingest_flows(SYSTEM, "sample", stream, fmt="hubble")
    assert stream.read_bytes < 100_000 and stored() == (0, 0, 0, 0)


def test_non_utf8_is_400_naming_line_and_byte_and_stores_nothing(admin):
    body = HUBBLE + b'{"flow": "caf\xe9"}\n'
    response = post(admin, FLOWS, body)
    assert response.status_code == 400
    assert response.json()["detail"] == f"body: not UTF-8 text (line 13, byte {len(HUBBLE) + 13})"
    assert stored() == (0, 0, 0, 0)


def test_bad_queries(admin):
    assert post(admin, FLOWS + "?format=pcap", HUBBLE).status_code == 400
    assert post(admin, "/api/v1/clusters/nowhere/flows", HUBBLE).status_code == 404
    empty = post(admin, FLOWS, b"")
    assert empty.status_code == 200 and empty.json()["lines"] == 0


# ------------------------------------------------------------------------------------------- who may


def test_only_admins_ingest(sample):
    elsewhere = Cluster.objects.create(name="elsewhere")
    limited = _user("lim")
    grant = NamespaceGrant.objects.create(user=limited, role=Role.ADMIN)
    grant.namespaces.add(Namespace.objects.create(cluster=elsewhere, name="team"))
    for url in (FLOWS, INV):
        assert post(Client(), url, HUBBLE).status_code == 401
        for who in ("Viewers", "Editors"):
            response = post(_client(_user(f"{who}-{url[-4:]}", who)), url, HUBBLE)
            assert response.status_code == 403 and "Admin" in response.json()["detail"]
        # A cluster the namespace-limited user may not see does not exist for them; one they see is not theirs.
        assert post(_client(limited), url, HUBBLE).status_code == 404
        assert post(_client(limited), url.replace("sample", "elsewhere"), HUBBLE).status_code == 403
    assert stored() == (0, 1, 0, 0)


# --------------------------------------------------------------------------------------------- inventory


def test_inventory_full_then_partial(admin):
    response = post(admin, INV, INVENTORY, content_type="application/yaml")
    assert response.status_code == 200, response.content
    answer = response.json()
    assert (answer["mode"], answer["replayed"], answer["kinds"]["Namespace"]) == (
        "full", False, {"created": 3, "updated": 0, "deleted": 0, "unchanged": 0})
    assert answer["objects"] > 20 and answer["kinds"]["Pod"]["created"] == Pod.objects.count() > 0
    event = AuditEvent.objects.get(action="inventory.imported")
    assert (event.via, event.details["mode"]) == ("api", "full")

    one = b"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns-000\n  labels: {team: team-0}\n"
    partial = post(admin, INV + "?partial=true", one, content_type="application/yaml").json()
    assert partial["mode"] == "partial" and partial["kinds"]["Namespace"]["deleted"] == 0
    assert Namespace.objects.filter(deleted_at__isnull=True).count() == 3
    full = post(admin, INV, one, content_type="application/yaml").json()
    assert full["kinds"]["Namespace"]["deleted"] == 2  # a full dump of one namespace: the others are gone


def test_inventory_gzip_json_and_replay(admin):
    import yaml

    body = gzip.compress(orjson.dumps(yaml.safe_load(INVENTORY)))
    first = post(admin, INV, body, content_type="application/json", **{"Content-Encoding": "gzip",
                                                                        "Idempotency-Key": "dump-1"})
    assert first.status_code == 200, first.content
    again = post(admin, INV, body, content_type="application/json", **{"Content-Encoding": "gzip",
                                                                        "Idempotency-Key": "dump-1"})
    assert again.json() == {**first.json(), "replayed": True}
    assert IngestBatch.objects.get().kind == "inventory"


def test_a_bad_item_is_400_naming_file_line_and_field_and_writes_nothing(admin):
    bad = INVENTORY.replace(b"    name: ns-001\n", b"    nome: ns-001\n", 1)
    response = post(admin, INV, bad, content_type="application/yaml")
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert detail.startswith("upload:20: document 1, item 2 (Namespace): metadata.name: missing"), detail
    assert stored() == (0, 0, 0, 0) and not AuditEvent.objects.filter(action="inventory.imported").exists()


@pytest.mark.parametrize(("body", "says"), [
    (b"kind: List\nitems:\n- &a {kind: Namespace, metadata: {name: a, labels: {x: y}}}\n"
     + b"".join(b"- &%s [%s]\n" % (b"l%d" % i, b", ".join([b"*a" if i == 0 else b"*l%d" % (i - 1)] * 9))
                for i in range(9)), "YAML aliases expand"),
    (b"kind: Namespace\nmetadata: {name: a}\nx: " + b"[" * 100 + b"]" * 100 + b"\n", "nested deeper than 64"),
    (b'{"kind": "Namespace", "metadata": {"name": "a"}, "x": ' + b"[" * 2000 + b"]" * 2000 + b"}",
     "nested deeper than 64"),
    (b"kind: Namespace\nmetadata: {name: caf\xe9}\n", "not UTF-8 text (byte 36)"),
], ids=["alias-bomb", "deep-yaml", "deep-json", "not-utf8"])
def test_hostile_dumps_are_400_and_write_nothing(admin, body, says):
    response = post(admin, INV, body, content_type="application/yaml")
    assert response.status_code == 400, response.content
    assert response.json()["detail"].startswith("upload:") and says in response.json()["detail"]
    assert stored() == (0, 0, 0, 0)


def test_an_oversized_dump_is_413(admin, settings):
    settings.NETSEC_MAX_UPLOAD_BYTES = 1000
    assert post(admin, INV, INVENTORY, content_type="application/yaml").status_code == 413
    bomb = gzip.compress(b"#" * 100_000)
    assert post(admin, INV, bomb, **{"Content-Encoding": "gzip"}).status_code == 413
    assert stored() == (0, 0, 0, 0)
