"""Sessions: a new key at login (no fixation), gone at logout, and gone everywhere when an account
is disabled, whether in the admin or by code."""

from __future__ import annotations

from importlib import import_module

from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from monitor.models import AuditLog

PASSWORD = "pw-for-tests-123"


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def is_signed_in(client: Client) -> bool:
    response = client.get("/")
    return not (response.status_code == 302 and "/login/" in response["Location"])


def test_logging_in_replaces_a_planted_session_key(operator: User) -> None:
    planted = import_module(settings.SESSION_ENGINE).SessionStore()
    planted["seen"] = True
    planted.save()
    client = Client()
    client.cookies["sessionid"] = planted.session_key
    response = client.post("/login/", {"username": "operator", "password": PASSWORD})
    assert response.status_code == 302
    new_key = client.cookies["sessionid"].value
    assert new_key != planted.session_key
    assert not Session.objects.filter(session_key=planted.session_key).exists()
    assert is_signed_in(client)


def test_logging_out_deletes_the_session_so_its_cookie_is_worthless(operator: User) -> None:
    client = signed_in(operator)
    key = client.cookies["sessionid"].value
    assert client.post("/logout/").status_code == 302
    assert not Session.objects.filter(session_key=key).exists()
    replay = Client()
    replay.cookies["sessionid"] = key
    assert not is_signed_in(replay)


def test_disabling_a_user_in_the_admin_signs_them_out_everywhere_for_good(operator: User, viewer: User) -> None:
    laptop, phone, bystander = signed_in(operator), signed_in(operator), signed_in(viewer)
    admin = signed_in(User.objects.create_superuser("root", "root@example.com", PASSWORD))
    joined = timezone.localtime(operator.date_joined)
    form = {"username": "operator", "date_joined_0": joined.date().isoformat(), "date_joined_1": "00:00:00"}
    response = admin.post(f"/admin/auth/user/{operator.pk}/change/", form)  # is_active left unticked
    assert response.status_code == 302, response.content.decode()[:3000]
    assert not is_signed_in(laptop) and not is_signed_in(phone)
    assert is_signed_in(bystander)
    User.objects.filter(pk=operator.pk).update(is_active=True)  # re-enabled: old sessions stay dead
    assert not is_signed_in(laptop)
    entry = AuditLog.objects.get(action="user.signed_out")
    assert entry.target_id == str(operator.pk) and entry.details["sessions"] == 2


def test_disabling_a_user_in_code_signs_them_out_too(operator: User) -> None:
    client = signed_in(operator)
    operator.is_active = False
    operator.save(update_fields=["is_active"])
    operator.is_active = True
    operator.save(update_fields=["is_active"])
    assert not is_signed_in(client)


def test_sockets_are_rechecked_well_within_a_minute_by_default() -> None:
    assert settings.ARGUS_WS_RECHECK_SECONDS <= 30
