"""Email notifications through a real SMTP server on loopback (aiosmtpd)."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.models import AlertRule, Camera, Delivery
from monitor.notify import relay
from tests.browser.conftest import free_port
from tests.monitor.notify.conftest import Mailbox, email_channel, jpeg, make_incident, outbox


def run(delivery: Delivery) -> Delivery:
    relay.run_once(now=delivery.next_attempt_at)
    delivery.refresh_from_db()
    return delivery


def test_an_incident_email_has_text_html_the_poster_inline_and_a_stable_message_id(
    camera: Camera, rule: AlertRule, mailbox: Mailbox, media: Path, settings
) -> None:
    settings.ARGUS_PUBLIC_URL = "https://argus.example.com/"
    poster = jpeg()
    delivery = outbox(make_incident(camera, rule, poster=poster), email_channel(camera))
    assert run(delivery).status == Delivery.Status.DELIVERED
    (message,) = mailbox.messages
    assert message["Message-ID"] == f"<msg_{delivery.uuid.hex}@localhost>"
    assert message["To"] == "ops@example.com, boss@example.com"
    assert message["Subject"] == f"[Argus] Medium: {delivery.incident.title}"
    assert message.get_content_type() == "multipart/related"
    link = f"https://argus.example.com/incidents/{delivery.incident_id}/"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert link in text and "duration_s: 2.5 (required >= 1.0)" in text
    assert f'href="{link}"' in html and 'src="cid:poster"' in html
    (image,) = [part for part in message.walk() if part.get_content_maintype() == "image"]
    assert image["Content-ID"] == "<poster>" and image.get_content() == poster


def test_an_incident_whose_poster_file_is_gone_is_still_emailed_without_it(
    camera: Camera, rule: AlertRule, mailbox: Mailbox, media: Path
) -> None:
    incident = make_incident(camera, rule, poster=jpeg())
    Path(incident.poster.path).unlink()  # retention removed it meanwhile
    assert run(outbox(incident, email_channel(camera))).status == Delivery.Status.DELIVERED
    (message,) = mailbox.messages
    assert message.get_content_type() == "multipart/alternative"
    assert "cid:poster" not in message.get_body(("html",)).get_content()


def test_an_unreachable_smtp_server_is_retried(camera: Camera, rule: AlertRule, settings) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()  # nobody listens there
    delivery = run(outbox(make_incident(camera, rule), email_channel(camera)))
    assert delivery.status == Delivery.Status.FAILED and delivery.last_error.startswith("SMTP failed")


@pytest.fixture
def refusing_mailbox(mailbox: Mailbox) -> Mailbox:
    async def refuse(server, session, envelope, address, rcpt_options):  # noqa: ANN001
        return "550 no such user"

    mailbox.handle_RCPT = refuse  # type: ignore[attr-defined]
    return mailbox


def test_recipients_the_server_refuses_are_a_permanent_failure(
    camera: Camera, rule: AlertRule, refusing_mailbox: Mailbox
) -> None:
    delivery = run(outbox(make_incident(camera, rule), email_channel(camera)))
    assert delivery.status == Delivery.Status.DEAD and "recipients refused" in delivery.last_error
