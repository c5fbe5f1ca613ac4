"""manage.py import_flows --cluster C [--format hubble|netsec] [--workers N] FILE...   (design §6)

Exit codes: 0 when every file was read (malformed lines are counted, reported and skipped; the
summary says how many), 1 when the cluster does not exist or a file cannot be opened or read,
2 on bad arguments. Flows are only stored: aggregation is ``aggregate_flows``.
"""

from __future__ import annotations

import gzip
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper

from flows.ingest.reader import FORMATS
from flows.ingest.records import IngestSummary
from flows.models import Cluster
from flows.store.raw_flows import DEFAULT_BATCH_SIZE, ingest_lines

MAX_PRINTED_ERRORS = 20
PROGRESS_INTERVAL = 0.5  # seconds between two progress lines on a terminal
STDIN_NAME = "<stdin>"


class Command(BaseCommand):
    help = (
        "Import flow events as raw flows of a cluster: Hubble `observe -o jsonpb` / `-o json` lines, or "
        "netsec JSON lines. Importing the same events twice adds nothing."
    )
    # Lets tests (and callers of call_command) hand in what '-' reads.
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--cluster", required=True, help="name of the cluster the flows were seen in")
        parser.add_argument(
            "--format", dest="fmt", choices=sorted(FORMATS), default="hubble",
            help="hubble: `hubble observe -o jsonpb` or `-o json` lines (default); netsec: netsec JSON lines",
        )
        parser.add_argument(
            "--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="rows per INSERT (bounds memory)"
        )
        parser.add_argument(
            "--workers", type=int, default=1,
            help="processes that parse and store (PostgreSQL; SQLite stores from one process): about one per "
                 "core the database server can spare",
        )
        parser.add_argument("files", nargs="+", metavar="FILE", help="'-' reads stdin; a .gz file is unzipped")

    def handle(
        self, *args: Any, cluster: str, fmt: str, batch_size: int, workers: int, files: list[str], **options: Any
    ) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1", returncode=2)
        if workers < 1:
            raise CommandError("--workers must be at least 1", returncode=2)
        if files.count("-") > 1:
            raise CommandError("'-' (stdin) can be given only once", returncode=2)
        try:
            target = Cluster.objects.get(name=cluster)
        except Cluster.DoesNotExist:
            raise CommandError(f"cluster {cluster!r} does not exist", returncode=1) from None
        # Every file is opened once before anything is stored, so that a typo in the last name does
        # not leave the first files imported and the command failed.
        unreadable = [message for message in map(_check_readable, files) if message]
        if unreadable:
            raise CommandError("\n".join(unreadable), returncode=1)

        stdin = options.get("stdin") or sys.stdin
        total = IngestSummary()
        printed = 0
        read_failures = 0
        for path in files:
            name = STDIN_NAME if path == "-" else path
            # Progress only on a terminal: in logs and pipes it would be noise.
            progress = _Progress(self.stderr, name) if self.stderr.isatty() else None
            with _open(path, stdin) as stream:
                summary = ingest_lines(
                    target, stream, fmt, batch_size=batch_size,
                    max_errors=MAX_PRINTED_ERRORS - printed, progress=progress, workers=workers,
                )
            if progress is not None:
                progress.finish()
            for error in summary.errors:
                self.stderr.write(f"{name}:{error.line}: " + (f"{error.field}: " if error.field else "")
                                  + error.message)
            printed += len(summary.errors)
            if summary.read_error:
                read_failures += 1
                self.stderr.write(f"{name}: reading stopped after line {summary.lines}: {summary.read_error}")
            self.stdout.write(_summary_line(name, summary))
            for counter in ("lines", "stored", "duplicates", "skipped", "malformed"):
                setattr(total, counter, getattr(total, counter) + getattr(summary, counter))
        if total.malformed > printed:
            self.stderr.write(f"… and {total.malformed - printed} more malformed lines")
        self.stdout.write(_summary_line("total", total))
        if read_failures:
            raise CommandError(f"{read_failures} file(s) could not be read to the end", returncode=1)


class _Progress:
    """Lines read and lines per second on one terminal line, redrawn at most every PROGRESS_INTERVAL."""

    def __init__(self, out: OutputWrapper, name: str) -> None:
        self.out = out
        self.name = name
        self.start = self.last = time.monotonic()
        self.shown = False

    def __call__(self, summary: IngestSummary) -> None:
        now = time.monotonic()
        if now - self.last < PROGRESS_INTERVAL:
            return
        self.last = now
        rate = summary.lines / (now - self.start) if now > self.start else 0.0
        # Plain text: stderr's default style is the red of errors, and progress is not one.
        self.out.write(f"\r{self.name}: {summary.lines:,} lines, {rate:,.0f} lines/s", _plain, ending="")
        self.out.flush()
        self.shown = True

    def finish(self) -> None:
        if self.shown:
            self.out.write("\r\x1b[K", _plain, ending="")  # erase the progress line before the summary
            self.out.flush()


def _plain(text: str) -> str:
    return text


def _summary_line(name: str, summary: IngestSummary) -> str:
    return (
        f"{name}: {summary.lines} lines read, {summary.stored} flows stored, {summary.duplicates} duplicates, "
        f"{summary.skipped} skipped, {summary.malformed} malformed"
    )


def _check_readable(path: str) -> str:
    """'' if the file opens, else the message that names it."""
    if path == "-":
        return ""
    try:
        with open(path, "rb"):
            return ""
    except OSError as exc:
        return f"{path}: cannot open: {exc.strerror or exc}"


@contextmanager
def _open(path: str, stdin: IO[Any]) -> Iterator[IO[Any]]:
    """The lines of a file as bytes (gzip by its .gz suffix); stdin is read but never closed."""
    if path == "-":
        # Bytes when the stream has them: orjson reads UTF-8 bytes without a decoding step.
        yield getattr(stdin, "buffer", stdin)
        return
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as stream:
        yield stream
