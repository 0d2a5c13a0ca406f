"""Settings helpers: bad values fail loudly; .env files are read the way people write them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from monitor.env import env_bool, env_choice, env_float, env_int, env_secret, load_env_file


def test_booleans_and_integers_refuse_nonsense(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLAG", "maybe")
    monkeypatch.setenv("COUNT", "three")
    with pytest.raises(ImproperlyConfigured, match="FLAG must be a boolean"):
        env_bool("FLAG")
    with pytest.raises(ImproperlyConfigured, match="COUNT must be an integer"):
        env_int("COUNT", 1)
    monkeypatch.setenv("COUNT", "0")
    with pytest.raises(ImproperlyConfigured, match="at least 1"):
        env_int("COUNT", 1, minimum=1)


def test_numbers_below_their_minimum_and_unknown_choices_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECONNECT", "0.01")
    with pytest.raises(ImproperlyConfigured, match="RECONNECT must be at least 0.1, got 0.01"):
        env_float("RECONNECT", 3.0, minimum=0.1)
    monkeypatch.setenv("TRANSPORT", "sctp")
    with pytest.raises(ImproperlyConfigured, match="TRANSPORT must be one of tcp, udp, got 'sctp'"):
        env_choice("TRANSPORT", "tcp", ("tcp", "udp"))
    monkeypatch.setenv("TRANSPORT", " UDP ")
    assert env_choice("TRANSPORT", "tcp", ("tcp", "udp")) == "udp"


def test_a_secret_can_come_from_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "key").write_text("s3cret\n")
    monkeypatch.setenv("API_KEY_FILE", str(tmp_path / "key"))
    assert env_secret("API_KEY") == "s3cret"
    monkeypatch.setenv("API_KEY_FILE", str(tmp_path / "missing"))
    with pytest.raises(ImproperlyConfigured, match="cannot be read"):
        env_secret("API_KEY")


def test_an_env_file_allows_comments_and_quotes_and_never_overrides(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = tmp_path / ".env"
    env.write_text("# comment\nA_ONE=1   # inline note\nA_TWO='x # not a comment'\n\nA_THREE=from-file\n")
    for key in ("A_ONE", "A_TWO"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("A_THREE", "from-environment")
    load_env_file(env)
    assert (os.environ["A_ONE"], os.environ["A_TWO"], os.environ["A_THREE"]) == (
        "1",
        "x # not a comment",
        "from-environment",
    )


def test_a_malformed_env_line_names_its_place(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("GOOD=1\nthis is not a setting\n")
    with pytest.raises(ImproperlyConfigured, match=r"\.env:2"):
        load_env_file(env)
