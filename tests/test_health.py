"""/healthz and /readyz: no sign-in, no host check, no HTTPS redirect, and no detail of what failed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client, override_settings

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/readyz/"])
def test_probes_answer_a_kubelet(path: str):
    # A kubelet probes the pod's IP over plain HTTP: a Host that ALLOWED_HOSTS does not list, no TLS.
    with override_settings(SECURE_SSL_REDIRECT=True, ALLOWED_HOSTS=["netsec.example.com"]):
        response = Client().get(path, headers={"Host": "10.244.3.7:8000"})
    assert response.status_code == 200
    assert response.content == (b"ok\n" if path == "/healthz" else b"ready\n")
    assert response["Content-Type"].startswith("text/plain") and response["Cache-Control"] == "no-store"


@pytest.mark.django_db
def test_a_probe_takes_only_get_and_head():
    assert Client().head("/healthz").status_code == 200
    # A POST is not a probe: it goes the normal way, where the CSRF check refuses it.
    assert Client(enforce_csrf_checks=True).post("/healthz").status_code == 403


@pytest.mark.django_db
def test_not_ready_when_the_broker_is_down_says_nothing_more(caplog):
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):
        response = Client().get("/readyz")
    assert (response.status_code, response.content) == (503, b"not ready\n")
    assert "broker" in caplog.text  # the reason is in the log, for the operator


def _readyz_in_a_process(database_url: str) -> str:
    code = ("import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'netsec.settings'; django.setup()\n"
            "from django.test import Client\n"
            "r = Client().get('/readyz'); print(r.status_code, r.content.decode().strip())")
    env = {**os.environ, "DATABASE_URL": database_url, "DEBUG": "1", "REDIS_URL": ""}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_not_ready_before_migrations_and_without_a_database(tmp_path: Path):
    assert _readyz_in_a_process(f"sqlite:///{tmp_path / 'empty.sqlite3'}") == "503 not ready"
    assert _readyz_in_a_process("postgres://postgres@127.0.0.1:1/nothing") == "503 not ready"
