"""Shared people and places for tests: a site with a camera, zone and rule; owner, operator,
viewer and outsider users; and the real footage the pipeline tests run on."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from monitor.models import AlertRule, Camera, Membership, Role, Site, Zone, ZoneKind

REPO = Path(__file__).resolve().parent.parent
# The fault suite stops and restarts its servers: it runs only on its private ones (`make faults`).
collect_ignore = [] if os.environ.get("ARGUS_FAULT_STACK") else ["faults"]
WHOLE_FRAME = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]


def real_footage_path() -> Path | None:
    """vtest.avi (a plaza with 5-10 people) from ../shared/data, else the copy `make footage` fetched."""
    candidates = [REPO.parent / "shared" / "data" / "vtest.avi", REPO / "var" / "demo" / "vtest.avi"]
    return next((p for p in candidates if p.is_file() and p.stat().st_size > 0), None)


def require_or_skip(reason: str) -> None:
    """Skip outside CI; in CI a missing prerequisite is a failure, never a silent skip."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture
def real_footage() -> Path:
    path = real_footage_path()
    if path is None:
        require_or_skip("no real footage: run `make footage` or provide ../shared/data/vtest.avi")
    assert path is not None
    return path


@pytest.fixture
def site(db: None) -> Site:
    return Site.objects.create(name="North gate", timezone="Europe/Paris")


@pytest.fixture
def other_site(db: None) -> Site:
    return Site.objects.create(name="South depot")


def _member(username: str, site: Site, role: str) -> User:
    user = User.objects.create_user(username, password="pw-for-tests-123")
    Membership.objects.create(user=user, site=site, role=role)
    return user


@pytest.fixture
def owner(site: Site) -> User:
    return _member("owner", site, Role.ADMIN)


@pytest.fixture
def operator(site: Site) -> User:
    return _member("operator", site, Role.OPERATOR)


@pytest.fixture
def viewer(site: Site) -> User:
    return _member("viewer", site, Role.VIEWER)


@pytest.fixture
def outsider(other_site: Site) -> User:
    return _member("outsider", other_site, Role.ADMIN)


@pytest.fixture
def camera(site: Site, tmp_path: Path) -> Camera:
    return Camera.objects.create(site=site, name="Gate cam", stream_url=str(tmp_path / "none.mp4"))


@pytest.fixture
def zone(camera: Camera) -> Zone:
    return Zone.objects.create(camera=camera, name="Everywhere", kind=ZoneKind.POLYGON, points=WHOLE_FRAME)


@pytest.fixture
def rule(site: Site, zone: Zone) -> AlertRule:
    return AlertRule.objects.create(site=site, zone=zone, name="Person at the gate", min_duration_s=1.0, cooldown_s=30)
