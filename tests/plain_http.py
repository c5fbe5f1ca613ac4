"""A pytest plugin (``-p tests.plain_http`` in pyproject.toml), loaded before Django's settings: the test
client and the live server speak plain HTTP, so production's redirect to https is off in tests unless a
test's environment says otherwise. Everything else of the production settings stays as it is."""

import os

os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
