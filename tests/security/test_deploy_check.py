"""`manage.py check --deploy` passes with nothing but a production deployment's own variables."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import REPO
from tests.security.conftest import production_env, run_manage


def test_check_deploy_finds_nothing_with_production_defaults(tmp_path: Path) -> None:
    result = run_manage(production_env(tmp_path), "check", "--deploy", "--fail-level", "WARNING")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues (0 silenced)." in output


def test_check_deploy_names_what_a_plain_http_setup_lacks(tmp_path: Path) -> None:
    """The same check fails loudly once HTTPS is switched off, so the test above can fail."""
    result = run_manage(production_env(tmp_path, ARGUS_HTTPS="0"), "check", "--deploy", "--fail-level", "WARNING")
    found = set(re.findall(r"security\.W\d+", result.stdout + result.stderr))
    assert result.returncode != 0
    # HSTS, HTTPS redirect, secure session cookie, secure CSRF cookie.
    assert {"security.W004", "security.W008", "security.W012", "security.W016"} <= found


def test_production_refuses_to_start_without_a_secret_key(tmp_path: Path) -> None:
    env = production_env(tmp_path)
    del env["SECRET_KEY"]
    result = run_manage(env, "check", "--deploy")
    assert result.returncode != 0 and "SECRET_KEY (or SECRET_KEY_FILE) must be set" in result.stderr


def test_every_security_variable_is_documented_in_the_example_env() -> None:
    settings_source = (REPO / "monitor" / "settings.py").read_text()
    example = (REPO / ".env.example").read_text()
    security = re.findall(r'env_\w+\("((?:ARGUS_HTTPS|ARGUS_TLS|ARGUS_CSP|ARGUS_WS|SECURE_)\w*)"', settings_source)
    assert len(set(security)) >= 8
    assert [name for name in security if f"{name}=" not in example] == []
