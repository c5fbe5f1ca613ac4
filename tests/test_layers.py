"""The layers of the design, checked: pure packages stay pure, and the data never depends on the policies.

- ``policies/engine`` (evaluation and generation) and ``flows/ingest`` (the readers of every input format)
  are plain Python: no Django, no ORM, no DRF; checked by reading every module and by importing them all
  with Django blocked.
- ``flows`` never imports ``policies``: the data layer knows nothing of drafts or of the engine.
- Pages, the API and the policy commands call the service layer (``services``, ``pages``, ``ingestion``)
  and nothing under it: no models, no adapter, no ORM, no writers of ``flows``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PURE_PACKAGES = ("policies/engine", "flows/ingest")
FORBIDDEN_IN_PURE = ("django", "rest_framework", "celery")


def imported_names(path: Path) -> list[str]:
    """Every module a file imports, including ``importlib.import_module("...")`` with a literal name."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) in {
            "import_module",
            "__import__",
        }:
            names += [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    return names


def _top(name: str) -> str:
    return name.split(".", 1)[0]


@pytest.mark.parametrize("package", PURE_PACKAGES)
def test_no_module_of_a_pure_package_mentions_django(package: str) -> None:
    offenders = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for name in imported_names(path)
        if _top(name) in FORBIDDEN_IN_PURE or name.startswith(("flows.models", "policies.models"))
    ]
    assert offenders == []


def test_flows_never_imports_policies() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in sorted((ROOT / "flows").rglob("*.py"))
        for name in imported_names(path)
        if _top(name) == "policies"
    ]
    assert offenders == []


TOP_LAYER = ("policies/views.py", "policies/api", "policies/management/commands")
UNDER_THE_SERVICE_LAYER = ("flows.models", "policies.models", "policies.adapter", "flows.store", "flows.aggregate",
                           "flows.ingest", "flows.tasks", "django.db")


def test_pages_api_and_commands_call_the_service_layer_only() -> None:
    paths = [p for entry in TOP_LAYER for p in ([ROOT / entry] if entry.endswith(".py") else
                                                 sorted((ROOT / entry).rglob("*.py")))]
    assert len(paths) > 5
    offenders = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in paths
        for name in imported_names(path)
        if name.startswith(tuple(f"{layer}." for layer in UNDER_THE_SERVICE_LAYER))
        or name in UNDER_THE_SERVICE_LAYER
    ]
    assert offenders == []


BLOCKED_IMPORT = """
import importlib, importlib.abc, pkgutil, sys

FORBIDDEN = {forbidden!r}

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".", 1)[0] in FORBIDDEN:
            raise ImportError(f"a pure package imported {{name}}")
        return None

sys.meta_path.insert(0, Block())
package = importlib.import_module({package!r})
for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
    importlib.import_module(module.name)
assert not any(m.split(".", 1)[0] in FORBIDDEN for m in sys.modules)
print("ok")
"""


@pytest.mark.parametrize("package", PURE_PACKAGES)
def test_every_module_of_a_pure_package_imports_with_django_blocked(package: str) -> None:
    code = BLOCKED_IMPORT.format(forbidden=FORBIDDEN_IN_PURE, package=package.replace("/", "."))
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
