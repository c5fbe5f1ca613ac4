"""Settings that come from the environment, and the embedded SQLite set up for two writers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_service

REPO = Path(__file__).resolve().parents[1]


def _settings_in_child(env: dict[str, str], expression: str) -> str:
    code = f"import django, django.db, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'netsec.settings'; django.setup(); " \
           f"from django.conf import settings as s; print({expression})"
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DEBUG", "ALLOWED_HOSTS"}}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**clean, **env}, capture_output=True,
                          text=True, timeout=60, check=True)
    return done.stdout.strip()


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path):
    # The web process and the worker both write the embedded database.
    got = _settings_in_child(
        {"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"},
        "[django.db.connection.cursor().execute(q).fetchone()[0] for q in "
        "('PRAGMA journal_mode', 'PRAGMA busy_timeout')], s.DATABASES['default']['OPTIONS']['transaction_mode']",
    )
    assert got == "['wal', 30000] IMMEDIATE"


def test_environment_variables_drive_the_settings(tmp_path):
    assert _settings_in_child({}, "s.CELERY_TASK_ALWAYS_EAGER, s.DATABASES['default']['ENGINE'], s.DEBUG") == \
        "True django.db.backends.sqlite3 False"
    assert _settings_in_child(
        {"REDIS_URL": "redis://example:6379/1", "DATABASE_URL": "postgres://u@db:5432/n", "DEBUG": "1",
         "ALLOWED_HOSTS": "a.example,b.example", "SECRET_KEY_FILE": str(tmp_path / "key")},
        "s.CELERY_TASK_ALWAYS_EAGER, s.CELERY_BROKER_URL, s.DATABASES['default']['HOST'], s.DEBUG, s.ALLOWED_HOSTS",
    ) == "False redis://example:6379/1 db True ['a.example', 'b.example']"


def test_secret_key_is_made_once_per_installation(tmp_path):
    key_file = tmp_path / "key"
    first = _settings_in_child({"SECRET_KEY_FILE": str(key_file)}, "s.SECRET_KEY")
    again = _settings_in_child({"SECRET_KEY_FILE": str(key_file)}, "s.SECRET_KEY")
    assert first == again == key_file.read_text() and len(first) >= 50
    assert key_file.stat().st_mode & 0o077 == 0
    assert _settings_in_child({"SECRET_KEY": "from-the-environment"}, "s.SECRET_KEY") == "from-the-environment"


@pytest.mark.redis
def test_with_redis_the_cache_and_so_the_api_throttle_counts_are_shared_by_every_process():
    from tests.test_celery import REDIS_URL, _redis_available

    if not _redis_available():
        require_service("Redis", f"no answer at {REDIS_URL}")
    key = f"netsec-test-{os.getpid()}"
    env = {"REDIS_URL": REDIS_URL}
    assert _settings_in_child(env, "s.CACHES['default']['BACKEND']") == "django.core.cache.backends.redis.RedisCache"
    _settings_in_child(env, f"__import__('django.core.cache').core.cache.cache.set({key!r}, 41, 60)")
    assert _settings_in_child(env, f"__import__('django.core.cache').core.cache.cache.incr({key!r})") == "42"
    assert _settings_in_child({}, "s.CACHES['default']['BACKEND']") == \
        "django.core.cache.backends.locmem.LocMemCache"  # embedded: one process
