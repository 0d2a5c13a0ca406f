"""Web processes never import the heavy video and model libraries: they load only in workers."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO

WEB_MODULES = [
    "monitor.asgi",
    "monitor.urls",
    "monitor.services",
    "dashboard.views",
    "dashboard.editor",
    "dashboard.api.views",
]


def test_the_web_stack_imports_no_pyav_opencv_or_torch() -> None:
    code = (
        "import django, sys; django.setup(); "
        + "; ".join(f"import {m}" for m in WEB_MODULES)
        + "; print(','.join(m for m in ('av', 'cv2', 'torch') if m in sys.modules))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "", f"heavy modules imported by the web stack: {done.stdout.strip()}"
