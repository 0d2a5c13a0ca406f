"""A disabled account is signed out everywhere: its sessions are deleted and its open WebSockets close.

Hooked to every save of a user (the admin, a service, the shell), so no way of disabling someone can
forget it, and in the same transaction as the save. A bulk `update(is_active=False)` sends no
signal: Django refuses inactive users on their next request anyway, and each socket re-checks its
user every ARGUS_WS_RECHECK_SECONDS (dashboard/consumers.py).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.utils import timezone

from monitor.live import publish_on_commit, user_group
from monitor.services import audit


def end_sessions(user_id: int) -> int:
    """Delete the user's live sessions (Argus keeps sessions in the database, Django's default engine)
    and close their sockets after commit; how many sessions."""
    # Sessions are not indexed by user; disabling is rare and a scan of the live ones is cheap.
    live = Session.objects.filter(expire_date__gt=timezone.now())
    keys = [s.session_key for s in live.iterator() if s.get_decoded().get(SESSION_KEY) == str(user_id)]
    with transaction.atomic():
        Session.objects.filter(session_key__in=keys).delete()
        publish_on_commit(user_group(user_id), {"type": "account.disabled", "user_id": user_id})
    return len(keys)


@receiver(post_save, sender=User, dispatch_uid="argus-sign-out-disabled-users")
def sign_out_when_disabled(sender: type[User], instance: User, created: bool, **kwargs: Any) -> None:
    if instance.is_active or created:
        return
    ended = end_sessions(instance.pk)
    if ended:
        audit(None, None, "user.signed_out", instance, reason="account disabled", sessions=ended)
