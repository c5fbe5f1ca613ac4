"""The one entry point of the parsers: lines in, records out, one result per line, streaming."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import orjson

from flows.ingest import hubble, netsec
from flows.ingest.fields import nul_path
from flows.ingest.records import FlowRecord, LineError, Skipped

Result = FlowRecord | LineError | Skipped

# Format name (as ``import_flows --format`` takes it) -> parser of one decoded JSON line.
FORMATS: dict[str, Callable[[Any, int], Result]] = {
    "hubble": hubble.parse_object,
    "netsec": netsec.parse_object,
}

_BOM = b"\xef\xbb\xbf"


def parse_lines(
    lines: Iterable[bytes | str], fmt: str, *, first_line: int = 1, start_of_input: bool = True
) -> Iterator[Result]:
    """Yield exactly one result per input line, so that the caller can count lines by results.

    ``first_line`` numbers the first of ``lines``; ``start_of_input`` says that it begins the input (a byte
    order mark is allowed there only), false for a later part of an input parsed on its own.

    Lines are decoded one at a time (never the whole input), so memory does not grow with the input.
    A blank line is a ``Skipped``; a line that is not JSON is a ``LineError`` without a field.
    """
    try:
        parse_object = FORMATS[fmt]
    except KeyError:
        raise ValueError(f"unknown flow format {fmt!r}; known: {', '.join(sorted(FORMATS))}") from None
    for number, raw in enumerate(lines, start=first_line):
        if not raw or raw.isspace():
            yield Skipped(number, "blank line")
            continue
        if number == first_line and start_of_input:
            # Editors on Windows write a byte order mark, which orjson refuses.
            raw = raw.removeprefix(_BOM) if isinstance(raw, bytes) else raw.removeprefix("\ufeff")
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            yield LineError(number, "", f"invalid JSON: {exc}")
            continue
        # No name, label or address holds a NUL character (and PostgreSQL stores none): the whole line is bad.
        if (b"\\u0000" if isinstance(raw, bytes) else "\\u0000") in raw and (where := nul_path(obj)) is not None:
            yield LineError(number, where, "a NUL character (\\u0000) is not allowed")
            continue
        yield parse_object(obj, number)

