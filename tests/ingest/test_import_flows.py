"""manage.py import_flows: the command-line contract of design §6."""

from __future__ import annotations

import gzip
import io
import sys
from pathlib import Path

import orjson
import pytest
from django.core.management import call_command, execute_from_command_line
from django.core.management.base import CommandError

from flows.management.commands import import_flows
from flows.models import Cluster, RawFlow
from tests.ingest.helpers import HUBBLE_SAMPLE, NETSEC_SAMPLE, sample

pytestmark = pytest.mark.django_db

SAMPLE_LINES = HUBBLE_SAMPLE.read_bytes().splitlines()


def run(*args: str, stdin: io.BytesIO | None = None) -> tuple[str, str]:
    """call_command with captured stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    options = {"stdout": out, "stderr": err}
    if stdin is not None:
        options["stdin"] = stdin
    call_command("import_flows", *args, **options)
    return out.getvalue(), err.getvalue()


def cli(*args: str) -> int:
    """The command as a shell runs it: returns the exit code."""
    with pytest.raises(SystemExit) as exit_info:
        execute_from_command_line(["manage.py", "import_flows", *args])
        sys.exit(0)
    return exit_info.value.code


def summary(name: str, lines: int, stored: int, duplicates: int = 0, skipped: int = 0, malformed: int = 0) -> str:
    return (
        f"{name}: {lines} lines read, {stored} flows stored, {duplicates} duplicates, {skipped} skipped, "
        f"{malformed} malformed"
    )


def test_import_and_summary(cluster: Cluster) -> None:
    out, err = run("--cluster", "test", str(HUBBLE_SAMPLE))
    assert out.splitlines() == [summary(str(HUBBLE_SAMPLE), 7, 7), summary("total", 7, 7)]
    assert err == ""
    assert RawFlow.objects.filter(cluster=cluster).count() == 7


def test_importing_the_same_file_twice_adds_nothing(cluster: Cluster) -> None:
    run("--cluster", "test", str(HUBBLE_SAMPLE))
    out, _ = run("--cluster", "test", str(HUBBLE_SAMPLE))
    assert out.splitlines()[-1] == summary("total", 7, 0, duplicates=7)
    assert RawFlow.objects.count() == 7


def test_the_shared_sample(cluster: Cluster, shared_sample: Path) -> None:
    out, err = run("--cluster", "test", str(shared_sample))
    assert out.splitlines()[-1] == summary("total", 12, 12)
    assert RawFlow.objects.filter(verdict="DROPPED").count() == 2
    assert RawFlow.objects.filter(dst_reserved="world").count() == 1


def test_several_files_stdin_and_gzip(cluster: Cluster, tmp_path: Path) -> None:
    zipped = tmp_path / "flows.jsonl.gz"
    zipped.write_bytes(gzip.compress(b"\n".join(SAMPLE_LINES[:4]) + b"\n"))
    stdin = io.BytesIO(b"\n".join(SAMPLE_LINES[2:]) + b"\n")
    out, _ = run("--cluster", "test", str(zipped), "-", stdin=stdin)
    assert out.splitlines() == [
        summary(str(zipped), 4, 4),
        summary("<stdin>", 5, 3, duplicates=2),
        summary("total", 9, 7, duplicates=2),
    ]


def test_stdin_from_the_shell(cluster: Cluster, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    stream = io.TextIOWrapper(io.BytesIO(HUBBLE_SAMPLE.read_bytes()), encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", stream)
    assert cli("--cluster", "test", "-") == 0
    assert capsys.readouterr().out.splitlines()[-1] == summary("total", 7, 7)


def test_netsec_format(cluster: Cluster) -> None:
    out, _ = run("--cluster", "test", "--format", "netsec", str(NETSEC_SAMPLE))
    assert out.splitlines()[-1] == summary("total", 4, 4)
    assert RawFlow.objects.get(fingerprint="id:netsec-0001").dst_service == "ns-001/web-000"


def test_malformed_lines_are_reported_with_file_line_and_field(cluster: Cluster, tmp_path: Path) -> None:
    bad_ip = sample(1)
    bad_ip["flow"]["IP"]["source"] = "10.0.1.300"
    bad_port = sample(2)
    bad_port["flow"]["l4"]["TCP"]["destination_port"] = 70000
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join([
        SAMPLE_LINES[0], orjson.dumps(bad_ip), b"{oops", b"", orjson.dumps(bad_port), SAMPLE_LINES[3],
    ]) + b"\n")
    out, err = run("--cluster", "test", str(path))
    ip_error, json_error, port_error = err.splitlines()
    assert ip_error == f"{path}:2: flow.IP.source: not an IP address: '10.0.1.300'"
    assert json_error.startswith(f"{path}:3: invalid JSON: ")  # the rest is orjson's wording
    assert port_error == f"{path}:5: flow.l4.TCP.destination_port: port 70000 is outside 0-65535"
    assert out.splitlines()[-1] == summary("total", 6, 2, skipped=1, malformed=3)
    assert RawFlow.objects.count() == 2  # every good line landed


def test_printed_errors_are_capped_across_files(cluster: Cluster, tmp_path: Path) -> None:
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_bytes(b"x\n" * 15 + SAMPLE_LINES[0] + b"\n")
    second.write_bytes(b"x\n" * 15)
    out, err = run("--cluster", "test", str(first), str(second))
    lines = err.splitlines()
    assert len(lines) == 21
    assert lines[0].startswith(f"{first}:1: invalid JSON")
    assert lines[15].startswith(f"{second}:1: invalid JSON")
    assert lines[19].startswith(f"{second}:5: ")
    assert lines[20] == "… and 10 more malformed lines"
    assert out.splitlines()[-1] == summary("total", 31, 1, malformed=30)


def test_unknown_cluster_exits_1(cluster: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(CommandError, match="cluster 'nope' does not exist") as info:
        run("--cluster", "nope", str(HUBBLE_SAMPLE))
    assert info.value.returncode == 1
    assert cli("--cluster", "nope", str(HUBBLE_SAMPLE)) == 1
    assert "cluster 'nope' does not exist" in capsys.readouterr().err


def test_a_file_that_cannot_be_opened_exits_1_before_anything_is_stored(cluster: Cluster, tmp_path: Path) -> None:
    missing = tmp_path / "missing.jsonl"
    with pytest.raises(CommandError) as info:
        run("--cluster", "test", str(HUBBLE_SAMPLE), str(missing), str(tmp_path))
    assert info.value.returncode == 1
    assert str(info.value).splitlines() == [
        f"{missing}: cannot open: No such file or directory",
        f"{tmp_path}: cannot open: Is a directory",
    ]
    assert RawFlow.objects.count() == 0


def test_a_truncated_gzip_keeps_the_lines_before_and_exits_1(cluster: Cluster, tmp_path: Path) -> None:
    path = tmp_path / "cut.jsonl.gz"
    whole = gzip.compress(b"\n".join(SAMPLE_LINES) + b"\n")
    path.write_bytes(whole[: len(whole) - 30])
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match="could not be read to the end") as info:
        call_command("import_flows", "--cluster", "test", str(path), stdout=out, stderr=err)
    assert info.value.returncode == 1
    assert f"{path}: reading stopped after line" in err.getvalue()
    assert out.getvalue().splitlines()[-1].startswith("total: ")
    assert RawFlow.objects.count() >= 1


@pytest.mark.parametrize(
    "args",
    [
        ["--format", "pcap", "x"],  # unknown format
        [],  # no file
        ["--batch-size", "0", "x"],
        ["-", "-"],  # stdin twice
    ],
)
def test_bad_arguments_exit_2(cluster: Cluster, args: list[str]) -> None:
    assert cli("--cluster", "test", *args) == 2


def test_missing_cluster_option_exits_2(cluster: Cluster) -> None:
    assert cli(str(HUBBLE_SAMPLE)) == 2


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_on_a_terminal(cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(import_flows, "PROGRESS_INTERVAL", 0.0)
    path = tmp_path / "many.jsonl"
    template = sample(0)
    with path.open("wb") as stream:
        for i in range(3000):
            template["flow"]["uuid"] = f"uuid-{i}"
            stream.write(orjson.dumps(template) + b"\n")
    out, err = io.StringIO(), Terminal()
    call_command("import_flows", "--cluster", "test", str(path), stdout=out, stderr=err)
    progress = err.getvalue()
    assert f"\r{path}: 1,024 lines, " in progress and f"\r{path}: 2,048 lines, " in progress
    assert "lines/s" in progress
    assert progress.endswith("\r\x1b[K")  # erased before the summary
    assert out.getvalue().splitlines()[-1] == summary("total", 3000, 3000)


def test_no_progress_when_not_a_terminal(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(import_flows, "PROGRESS_INTERVAL", 0.0)
    _, err = run("--cluster", "test", str(HUBBLE_SAMPLE))
    assert err == ""


def test_aggregation_is_not_run(cluster: Cluster) -> None:
    from flows.models import AggregationState, Communication

    run("--cluster", "test", str(HUBBLE_SAMPLE))
    assert not Communication.objects.exists()
    assert not AggregationState.objects.exists()
