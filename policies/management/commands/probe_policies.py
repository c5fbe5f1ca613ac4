"""``manage.py probe_policies CASE.yaml``: the engine's verdicts for a probe case, as JSON on stdout.

Exit codes: 0 success, 1 malformed case or policy (the message names the file and the field), 2 usage.
"""

from __future__ import annotations

import json
import sys
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

import yaml
from django.core.management.base import BaseCommand, CommandError

from policies.engine.model import EngineError
from policies.engine.probe import load_case, run_case


class Command(BaseCommand):
    help = "Evaluate the probes of a case file against its policies; print JSON verdicts ('-' = stdin)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("case", help="probe case YAML (see shared/examples/probe-case.yaml), or '-'")

    def handle(self, *args: Any, **options: Any) -> None:
        path: str = options["case"]
        text = self._read(path)
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f":{mark.line + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc)
            raise CommandError(f"{path}{where}: not valid YAML: {problem}", returncode=1) from exc
        try:
            output = run_case(load_case(data))
        except EngineError as exc:
            raise CommandError(f"{path}: {exc}", returncode=1) from exc
        self.stdout.write(json.dumps(output, indent=2))

    def _read(self, path: str) -> str:
        if path == "-":
            return sys.stdin.read()
        # A file that cannot be read is bad input (exit 1), as in import_inventory and import_flows.
        try:
            return Path(path).read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise CommandError(f"{path}: no such file", returncode=1) from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"{path}: cannot read: {exc}", returncode=1) from exc
