"""Loaded with `-p tests.testenv` before pytest-django reads the settings: the environment of a test run."""

import os

# Tests run with DEBUG off, as production does; the key only signs test sessions.
os.environ.setdefault("NETSEC_ALLOW_INSECURE_KEY", "1")
