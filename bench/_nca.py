"""IBM's network-config-analyzer (``nca``, PyPI 2.1.0) as the peer of ``bench.engine``: its own venv under
``.bench/venvs/nca`` (made once, never our venv), one timed run of its connectivity query, and its answer
read back as allowed (source pod, destination pod, column) sets.

Its ``txt_no_fw_rules`` output has one line per connected pair and set of connections::

    ns-01/web-3-a1b2-0 => ns-04/db-7-c3d4-1 : {protocols:TCP,dst_ports:5432,8000-8100},{protocols:UDP}
    ns-01/web-3-a1b2-0 => 203.0.113.0-203.0.113.255 : All connections

``All connections``, ``All but {...}`` (the complement) and cubes of ``protocols`` (names joined by ", ",
``*`` or ``all but ...``) and ``dst_ports`` (numbers and ranges; absent = every port). Lines naming an IP
range instead of a pod are left out: the comparison is pod to pod. The analyzer never lists a pod's
connections to itself.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "network-config-analyzer==2.1.0"
PROTOCOLS = ("TCP", "UDP", "SCTP")
Column = tuple[int, str]


def venv(root: Path, say: Callable[[str], None]) -> Path:
    """The ``nca`` executable, in its own venv under ``root`` (created and installed on first use)."""
    executable = root / "bin" / "nca"
    if executable.exists():
        return executable
    # The interpreter our venv was made from, not our venv: the peer must not see our packages.
    base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    python = str(base) if base.exists() else sys.executable
    say(f"  installing {PACKAGE} into {root} (once) ...")
    subprocess.run([python, "-m", "venv", "--clear", str(root)], check=True)
    subprocess.run([str(root / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", PACKAGE],
                   check=True)
    return executable


@dataclass(frozen=True)
class Run:
    seconds: float  # wall clock of the whole process
    cpu_seconds: float  # user + system time of the process (what a busy machine does not inflate)
    reported_seconds: float | None  # its own "Total run time"
    max_rss_mb: float  # peak resident memory of the process
    output: Path
    log: str


# Runs the analyzer and reports its own resource use. It is a small process of its own because a child's
# peak RSS on Linux includes the image it was forked (or vforked) from: measured from our process, the peer
# would be charged with our memory.
_LAUNCHER = """
import os, sys, time
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
code = os.waitstatus_to_exitcode(status)
print(f"\\nNCA-USAGE {code} {time.perf_counter() - started} {usage.ru_utime + usage.ru_stime} {usage.ru_maxrss}")
sys.exit(code)
"""
_USAGE = re.compile(r"^NCA-USAGE (-?\d+) ([\d.]+) ([\d.]+) (\d+)$", re.MULTILINE)


def run(executable: Path, policies: Path, namespaces: Path, pods: Path, output: Path) -> Run:
    """One connectivity query, timed; the answer is written to ``output``."""
    cmd = [str(executable), "--connectivity", str(policies), "--ns_list", str(namespaces), "--pod_list", str(pods),
           "--output_format", "txt_no_fw_rules", "--output_endpoints", "pods", "--file_out", str(output)]
    output.unlink(missing_ok=True)  # nca appends to --file_out: a previous answer would be read twice
    python = executable.parent / "python"
    done = subprocess.run([str(python), "-c", _LAUNCHER, *cmd], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, check=False)
    log = done.stdout
    usage = _USAGE.search(log)
    if done.returncode != 0 or usage is None:
        raise RuntimeError(f"nca failed (exit {done.returncode}):\n{log[-2000:]}")
    reported = re.search(r"Total run time:\s*([\d.]+) seconds", log)
    return Run(
        seconds=float(usage.group(2)),
        cpu_seconds=float(usage.group(3)),
        reported_seconds=float(reported.group(1)) if reported else None,
        max_rss_mb=int(usage.group(4)) / 1024,  # KiB on Linux
        output=output,
        log=log[: usage.start()],
    )


def digest(paths: Iterable[Path]) -> str:
    """What a saved run is valid for: the package and the bytes of every input file."""
    sha = hashlib.sha256(PACKAGE.encode())
    for path in paths:
        for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if file.is_file():
                sha.update(file.name.encode() + b"\0" + file.read_bytes())
    return sha.hexdigest()


def save(result: Run, path: Path, inputs: str) -> None:
    record = {"inputs": inputs, "when": time.strftime("%Y-%m-%d %H:%M:%S"), "seconds": result.seconds,
              "cpu_seconds": result.cpu_seconds, "reported_seconds": result.reported_seconds,
              "max_rss_mb": result.max_rss_mb, "output": result.output.name}
    path.write_text(json.dumps(record, indent=2))


def saved(path: Path, inputs: str) -> tuple[Run, str] | None:
    """A run saved by ``save`` for the same inputs (and its date), when its answer is still there."""
    if not path.exists():
        return None
    record = json.loads(path.read_text())
    output = path.parent / record["output"]
    if record.get("inputs") != inputs or not output.exists():
        return None
    result = Run(record["seconds"], record["cpu_seconds"], record["reported_seconds"], record["max_rss_mb"], output,
                 "")
    return result, record["when"]


# --------------------------------------------------------------------------------------------- its answer

_LINE = re.compile(r"^(\S+) => (\S+) : (.+)$")
_ITEM = re.compile(r",(?=[a-z_]+:)")


def _ranges(text: str) -> list[tuple[int, int]]:
    out = []
    for part in text.split(","):
        low, _, high = part.strip().partition("-")
        out.append((int(low), int(high or low)))
    return out


def _protocols(text: str) -> set[str]:
    text = text.strip()
    if text == "*":
        return set(PROTOCOLS)
    if text.startswith("all but "):
        return set(PROTOCOLS) - {p.strip().upper() for p in text[len("all but "):].split(",")}
    return {p.strip().upper() for p in text.split(",")}


def column_mask(connections: str, columns: Sequence[Column]) -> int:
    """Bit k set: ``connections`` (the text after ``:``) allows ``columns[k]``."""
    text = connections.strip()
    every = (1 << len(columns)) - 1
    if text in ("All connections", "All"):
        return every
    if text == "No connections":
        return 0
    if text.startswith("All but "):
        return every & ~column_mask(text[len("All but "):], columns)
    cubes = text[1:-1].split("},{") if text.startswith("{") else [f"dst_ports:{text}"]
    mask = 0
    for cube in cubes:
        protocols, ports = set(PROTOCOLS), None
        for item in _ITEM.split(cube):
            key, _, value = item.partition(":")
            if key == "protocols":
                protocols = _protocols(value)
            elif key == "dst_ports":
                ports = _ranges(value)
            else:
                raise ValueError(f"unexpected dimension {key!r} in {connections!r}")
        for k, (port, protocol) in enumerate(columns):
            if protocol in protocols and (ports is None or any(low <= port <= high for low, high in ports)):
                mask |= 1 << k
    return mask


def allowed(output: Path, pods: Mapping[str, int], columns: Sequence[Column]) -> dict[Column, list[int]]:
    """Per column, per source pod index, the destination pods the analyzer allows (bit masks)."""
    masks: dict[str, int] = {}
    grouped: dict[tuple[int, int], int] = {}  # (source, column mask) -> destinations
    with output.open() as lines:
        for line in lines:
            match = _LINE.match(line.rstrip("\n"))
            if not match:
                continue
            source, destination = pods.get(match.group(1)), pods.get(match.group(2))
            if source is None or destination is None:
                continue  # an IP range, not a pod
            text = match.group(3)
            mask = masks.get(text)
            if mask is None:
                mask = masks[text] = column_mask(text, columns)
            key = (source, mask)
            grouped[key] = grouped.get(key, 0) | 1 << destination
    rows = {column: [0] * len(pods) for column in columns}
    for (source, mask), destinations in grouped.items():
        for k, column in enumerate(columns):
            if mask >> k & 1:
                rows[column][source] |= destinations
    return rows


def names(pods: Iterable[tuple[str, str]]) -> dict[str, int]:
    """``namespace/name`` -> index, as the analyzer names pods."""
    return {f"{namespace}/{name}": i for i, (namespace, name) in enumerate(pods)}
