"""The README's API examples work as written: its shell block runs with curl against the live server, with
the sample files of ../shared/examples standing in for ``hubble observe`` and ``kubectl get``."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from flows.models import Cluster
from policies import services

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT.parent / "shared" / "examples"
pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")]


def readme_commands() -> list[str]:
    """The commands of the API section's shell block, continuation lines joined, comments left out."""
    section = ROOT.joinpath("README.md").read_text().split("\n## API\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "the README's API section has no sh block"
    text = re.sub(r"\\\n\s*", "", block.group(1))
    return [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def answers(text: str) -> list[Any]:
    """The JSON documents curl printed one after the other (no newline between them)."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while at < len(text.rstrip()):
        value, at = decoder.raw_decode(text, at)
        found.append(value)
        while at < len(text) and text[at].isspace():
            at += 1
    return found


def test_the_readme_examples_run(live_server: Any, tmp_path: Path) -> None:
    assert EXAMPLES.is_dir(), f"{EXAMPLES} is missing"
    Cluster.objects.create(name="prod", pod_cidrs="10.0.0.0/16")
    admin = get_user_model().objects.create_user("ops")
    admin.groups.add(Group.objects.get_or_create(name="Admins")[0])
    token = services.create_token(admin, "readme").secret
    commands = readme_commands()
    assert commands[0].startswith("TOKEN=")
    script = "\n".join(["set -euo pipefail", f"TOKEN={token}", *commands[1:]])
    script = (script.replace("https://netsec.example.com", live_server.url)
              .replace("hubble observe -o jsonpb --since 5m", f"cat {EXAMPLES / 'hubble-flows.jsonl'}")
              .replace("shop/Deployment/api", "ns-001/Deployment/api-001"))
    script = re.sub(r"kubectl get \S+ -A -o yaml", f"cat {EXAMPLES / 'inventory.yaml'}", script)
    assert "example.com" not in script and "kubectl" not in script and "hubble observe" not in script
    ran = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    flows, inventory = answers(ran.stdout)
    lines = len(EXAMPLES.joinpath("hubble-flows.jsonl").read_text().splitlines())
    assert flows["lines"] == lines and flows["stored"] > 0 and flows["malformed"] == 0, flows
    assert inventory["objects"] > 0 and inventory["mode"] == "full", inventory
    policy = yaml.safe_load(tmp_path.joinpath("api.yaml").read_text())
    assert policy["kind"] == "NetworkPolicy" and policy["metadata"]["namespace"] == "ns-001"
