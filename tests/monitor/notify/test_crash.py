"""A relay SIGKILLed at random moments loses no notification: 1,000 incidents, an email and a webhook
channel each, two relay processes (`manage.py relay_notifications`) killed and restarted several
times, against a real SMTP server and a real (sometimes failing) webhook receiver on loopback."""

from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from standardwebhooks.webhooks import Webhook

from monitor.models import AlertRule, Camera, Delivery, Incident
from tests.browser.conftest import database_url, free_port
from tests.conftest import REPO
from tests.monitor.notify.conftest import T0, Mailbox, WebhookReceiver, email_channel, webhook_channel

INCIDENTS = int(os.environ.get("ARGUS_CRASH_INCIDENTS", "1000"))
KILLS = 8
DEADLINE_S = 240
LEASE_S = 3  # a killed relay's rows come back after this


def start_relay(name: str, tmp_path: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "manage.py", "relay_notifications", "--interval", "0.2"],
        cwd=REPO,
        env=env,
        stdout=(tmp_path / f"{name}.log").open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def kill(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def seed(camera: Camera, rule: AlertRule, channels: list) -> None:
    incidents = Incident.objects.bulk_create(
        Incident(site=camera.site, camera=camera, rule=rule, title=f"crash #{n}", started_at=T0, last_seen_at=T0)
        for n in range(INCIDENTS)
    )
    Delivery.objects.bulk_create(Delivery(incident=i, channel=c) for i in incidents for c in channels)


def unfinished() -> int:
    return Delivery.objects.exclude(status__in=[Delivery.Status.DELIVERED, Delivery.Status.DEAD]).count()


@pytest.mark.slow
@pytest.mark.timeout(DEADLINE_S + 120)
def test_relays_killed_at_random_moments_lose_no_notification(
    transactional_db: None, camera: Camera, rule: AlertRule, tmp_path: Path
) -> None:
    rng = random.Random(20261124)
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP line at INFO
    mailbox = Mailbox()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    with WebhookReceiver() as hook:
        hook.failure_rate = 0.05  # some 500s, so retries happen between the kills too
        hooks, mails = webhook_channel(camera, hook.url), email_channel(camera)
        seed(camera, rule, [hooks, mails])
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "DATABASE_URL": database_url(),
            "ARGUS_WEBHOOK_ALLOW_PRIVATE": "1",
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(smtp.port),
            "EMAIL_TIMEOUT": "2",
            "ARGUS_WEBHOOK_CONNECT_TIMEOUT_SECONDS": "1",
            "ARGUS_WEBHOOK_READ_TIMEOUT_SECONDS": "1",
            "ARGUS_NOTIFY_LEASE_SECONDS": str(LEASE_S),
            "ARGUS_NOTIFY_RETRY_BASE_SECONDS": "0.2",
            "ARGUS_NOTIFY_RETRY_MAX_SECONDS": "1",
        }
        started = time.monotonic()
        relays = [start_relay(f"relay-{i}", tmp_path, env) for i in range(2)]
        kills = 0
        try:
            for kills in range(1, KILLS + 1):  # noqa: B007  (counted for the report)
                time.sleep(rng.uniform(1.5, 4.0))  # start-up takes ~1 s: most kills land mid-work
                victim = rng.randrange(len(relays))
                kill(relays[victim])
                relays[victim] = start_relay(f"relay-{victim}", tmp_path, env)
            while unfinished() and time.monotonic() - started < DEADLINE_S:
                time.sleep(0.5)
        finally:
            for proc in relays:
                kill(proc)
            smtp.stop()
        elapsed = time.monotonic() - started
        logs = "\n".join((tmp_path / f"relay-{i}.log").read_text(errors="replace")[-1500:] for i in range(2))
        assert unfinished() == 0, logs

    statuses = Counter(Delivery.objects.values_list("status", flat=True))
    assert statuses == {Delivery.Status.DELIVERED: 2 * INCIDENTS}, statuses

    webhook_ids = set(f"msg_{u.hex}" for u in Delivery.objects.filter(channel=hooks).values_list("uuid", flat=True))
    accepted = [r for r in hook.received if 200 <= r.status < 300]
    seen = Counter(r.headers["webhook-id"] for r in accepted)
    assert set(seen) == webhook_ids  # every id at least once, nothing else
    verifier = Webhook(hooks.secret)
    for request in accepted:
        verifier.verify(request.body, request.headers)

    mail_ids = Counter(str(m["Message-ID"]) for m in mailbox.messages)
    mail_uuids = Delivery.objects.filter(channel=mails).values_list("uuid", flat=True)
    expected = {f"<msg_{u.hex}@localhost>" for u in mail_uuids}
    assert set(mail_ids) == expected and len(expected) == INCIDENTS  # one distinct email per incident

    attempts = sum(Delivery.objects.values_list("attempts", flat=True))
    print(
        f"\ncrash test: {INCIDENTS} incidents, {kills} SIGKILLs, {elapsed:.1f} s;"
        f" webhook requests {len(hook.received)} ({len(hook.received) - len(accepted)} answered 500),"
        f" duplicate webhook deliveries {sum(seen.values()) - len(seen)};"
        f" emails {len(mailbox.messages)}, duplicate emails {len(mailbox.messages) - len(mail_ids)};"
        f" attempts {attempts} for {2 * INCIDENTS} deliveries"
    )
