"""Production settings, as a deployment gets them from its environment, for the security tests."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import browser_page, live_stack  # noqa: F401  (the browser test's fixtures)
from tests.conftest import REPO

HOST = "argus.example.com"
# Variables the test run itself sets (tests/settings.py, a developer's shell) that would weaken production.
_LOCAL_ONLY = ("DEBUG", "SECURE_", "ARGUS_HTTPS", "ARGUS_TLS_PROXY", "ARGUS_CSP_", "SESSION_", "CSRF_", "DJANGO_")


def production_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """What a production deployment sets: a real key and host, nothing else (every default stands)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_LOCAL_ONLY)}
    env |= {
        "DJANGO_SETTINGS_MODULE": "monitor.settings",
        "ARGUS_ENV_FILE": str(tmp_path / "absent.env"),  # a developer's .env must not leak in
        "ARGUS_VAR_DIR": str(tmp_path / "var"),
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": HOST,
    }
    return env | overrides


def run_manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


SECURITY_SETTINGS = (
    "DEBUG",
    "SECURE_SSL_REDIRECT",
    "SECURE_PROXY_SSL_HEADER",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_CONTENT_TYPE_NOSNIFF",
    "SECURE_REFERRER_POLICY",
    "SECURE_CROSS_ORIGIN_OPENER_POLICY",
    "X_FRAME_OPTIONS",
    "SESSION_COOKIE_SECURE",
    "SESSION_COOKIE_HTTPONLY",
    "SESSION_COOKIE_SAMESITE",
    "CSRF_COOKIE_SECURE",
    "CSRF_COOKIE_HTTPONLY",
    "CSRF_COOKIE_SAMESITE",
    "SECURE_CSP",
    "SECURE_CSP_REPORT_ONLY",
    "MIDDLEWARE",
)


def production_settings(tmp_path: Path, **overrides: str) -> dict[str, Any]:
    """The security settings monitor/settings.py computes from a production environment."""
    code = (
        "import json, django; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n, None) for n in {SECURITY_SETTINGS!r}}}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=production_env(tmp_path, **overrides),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(out.stdout)


@pytest.fixture(scope="session")
def production_values(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return production_settings(tmp_path_factory.mktemp("production"))


@pytest.fixture
def production(settings: Any, production_values: dict[str, Any]) -> Any:
    """This test process runs with the security settings production would have."""
    for name, value in production_values.items():
        setattr(settings, name, tuple(value) if name == "SECURE_PROXY_SSL_HEADER" and value else value)
    settings.ALLOWED_HOSTS = [HOST]
    return settings
