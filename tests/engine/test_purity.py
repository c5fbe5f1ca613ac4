"""The engine is pure Python: no Django import anywhere in policies/engine (design, style guide)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[2] / "policies" / "engine"


def test_no_module_of_the_engine_mentions_django() -> None:
    offenders = []
    for path in sorted(ENGINE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) in {
                "import_module",
                "__import__",
            }:
                names = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            offenders += [
                f"{path.name}: {n}" for n in names if n == "django" or n.startswith(("django.", "rest_framework"))
            ]
    assert offenders == []


BLOCKED_IMPORT = """
import importlib, importlib.abc, pkgutil, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "django" or name.startswith(("django.", "rest_framework")):
            raise ImportError(f"the engine imported {name}")
        return None

sys.meta_path.insert(0, Block())
import policies.engine
for module in pkgutil.walk_packages(policies.engine.__path__, "policies.engine."):
    importlib.import_module(module.name)
assert not any(m == "django" or m.startswith("django.") for m in sys.modules)
print("ok")
"""


def test_every_engine_module_imports_with_django_blocked() -> None:
    result = subprocess.run(
        [sys.executable, "-c", BLOCKED_IMPORT],
        cwd=ENGINE.parents[1],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
