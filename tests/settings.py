"""Settings for the test run: production settings (DEBUG off) with a throw-away key.

Set in the environment, so the servers and workers that tests start in subprocesses inherit it.
"""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-never-used-in-production")
os.environ.setdefault("SECURE_COOKIES", "0")

from monitor.settings import *  # noqa: E402, F403
