"""``make bench`` (``python -m bench [--quick]``): every benchmark, one after the other, each in its own process.

1. ``bench.ingest``: ingest + aggregate against hubble-audit2policy and the bare COPY floor;
2. ``bench.web``, when it exists: the pages under load;
3. ``bench.engine``, when it exists: the policy engine against its peer.

``--quick`` is passed on to each. Figures are printed, never asserted. One that fails is reported and the next
one still runs; the exit status is 1 when any failed.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODULES = ("bench.ingest", "bench.web", "bench.engine")


def _exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the short version of each benchmark")
    args = parser.parse_args()
    results: list[tuple[str, str, float]] = []
    for module in MODULES:
        if not _exists(module):
            results.append((module, "absent", 0.0))
            continue
        cmd = [sys.executable, "-m", module, *(["--quick"] if args.quick else [])]
        print(f"\n=== {module}: {' '.join(cmd[1:])}", flush=True)
        started = time.perf_counter()
        code = subprocess.run(cmd, cwd=REPO).returncode
        seconds = time.perf_counter() - started
        if code != 0:
            print(f"=== {module} FAILED (exit {code}); going on", flush=True)
        results.append((module, "ok" if code == 0 else f"FAILED (exit {code})", seconds))
    print("\n=== summary")
    for module, outcome, seconds in results:
        print(f"  {module:14} {outcome:18} {seconds:6.0f} s")
    return 0 if all(outcome in ("ok", "absent") for _, outcome, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
