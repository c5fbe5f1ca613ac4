"""import_flows --workers N: several processes parse and store one input, with the very result of one process."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from django.core.management import call_command
from django.db import connection

from flows.ingest import fields
from flows.models import Cluster, RawFlow
from tests.ingest.helpers import sample
from tests.retention.conftest import postgres_only

# The workers commit their own batches: the test cannot hide them in a transaction it rolls back.
pytestmark = pytest.mark.django_db(transaction=True)

LINES = 1_300
BATCH = 100  # 13 blocks: more blocks than workers, and blocks in flight while others are stored
MALFORMED = {3: b"{not json", 77: None, 150: None, **{n: b'{"flow": {"IP": 7}}' for n in range(900, 923)}}
REPEATS = {640: 12, 1250: 640}  # line -> the earlier line it repeats (same event: a duplicate)


def _input(path: Path) -> Path:
    """A Hubble input of LINES lines: distinct events, malformed lines (more than the 20 reported), repeats of
    events in other blocks, a byte order mark at the start and one in the middle (malformed there)."""
    lines: dict[int, bytes] = {}
    for number in range(1, LINES + 1):
        if number in REPEATS:
            lines[number] = lines[REPEATS[number]]
            continue
        if number in MALFORMED and MALFORMED[number] is not None:
            lines[number] = MALFORMED[number]
            continue
        obj = sample(number % 7)
        flow = obj["flow"]
        flow["uuid"] = f"parallel-{number:05d}"
        when = fields.timestamp(flow["time"], "time") + timedelta(seconds=number)
        flow["time"] = when.isoformat().replace("+00:00", "Z")
        if number in MALFORMED:
            flow["IP"]["source"] = "10.0.0.999"
        lines[number] = orjson.dumps(obj)
    lines[1] = b"\xef\xbb\xbf" + lines[1]
    lines[600] = b"\xef\xbb\xbf" + lines[600]
    path.write_bytes(b"\n".join(lines[n] for n in range(1, LINES + 1)) + b"\n")
    return path


def _import(cluster: str, path: Path, workers: int) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_flows", "--cluster", cluster, "--batch-size", str(BATCH), "--workers", str(workers),
                 str(path), stdout=out, stderr=err)
    return out.getvalue().replace(str(path), "FILE"), err.getvalue().replace(str(path), "FILE")


def _rows(cluster: Cluster) -> list[tuple]:
    columns = [f.column for f in RawFlow._meta.concrete_fields if f.column not in ("id", "cluster_id")]
    return sorted(RawFlow.objects.filter(cluster=cluster).values_list(*columns), key=repr)


@postgres_only
def test_workers_store_and_report_what_one_process_does(tmp_path: Path) -> None:
    path = _input(tmp_path / "flows.jsonl")
    one, many = Cluster.objects.create(name="one"), Cluster.objects.create(name="many")

    serial = _import("one", path, workers=1)
    parallel = _import("many", path, workers=3)

    assert parallel == serial
    out, err = parallel
    malformed = len(MALFORMED) + 1  # and the byte order mark in the middle of the input
    stored = LINES - malformed - len(REPEATS)
    assert out.splitlines()[-1] == (f"total: {LINES} lines read, {stored} flows stored, {len(REPEATS)} duplicates, "
                                    f"0 skipped, {malformed} malformed")
    reported = [line.split(":")[1] for line in err.splitlines() if line.startswith("FILE:")]
    assert reported == [str(n) for n in sorted([*MALFORMED, 600])][:20]  # the first 20 by line
    assert f"… and {malformed - 20} more malformed lines" in err
    assert _rows(many) == _rows(one)
    assert len(_rows(many)) == stored
    # The reading process's connection was closed before the workers were forked; it opens again on use.
    assert Cluster.objects.filter(name="many").exists()
    assert connection.connection is None or not connection.connection.closed


@postgres_only
def test_workers_find_what_another_import_stored(tmp_path: Path) -> None:
    path = _input(tmp_path / "flows.jsonl")
    Cluster.objects.create(name="again")
    first, _ = _import("again", path, workers=2)
    second, _ = _import("again", path, workers=2)
    stored = int(first.splitlines()[-1].split(", ")[1].split()[0])
    assert second.splitlines()[-1].startswith(f"total: {LINES} lines read, 0 flows stored, "
                                              f"{stored + len(REPEATS)} duplicates")


def test_workers_in_an_open_transaction_or_on_sqlite_store_from_this_process(tmp_path: Path) -> None:
    """Where other processes could not see or write what this one does, the import stays in this process."""
    from django.db import transaction

    path = _input(tmp_path / "flows.jsonl")
    Cluster.objects.create(name="inline")
    with transaction.atomic():
        out, _ = _import("inline", path, workers=2)
        assert RawFlow.objects.filter(cluster__name="inline").count() == int(out.splitlines()[-1].split(", ")[1]
                                                                             .split()[0])
