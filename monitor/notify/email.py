"""Email transport: one multipart message per delivery (text + HTML, the poster inline).

The Message-ID is derived from the delivery, so a message re-sent after a relay crash carries the
same id and mail clients (and the crash test) can tell it is the same message.
"""

from __future__ import annotations

import smtplib
from email.mime.image import MIMEImage
from email.utils import formatdate

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.template.loader import render_to_string

from monitor.models import Delivery, Incident
from monitor.notify.base import TransportError
from monitor.notify.payload import incident_payload

POSTER_CID = "poster"


def message_id(delivery: Delivery) -> str:
    domain = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2].strip(">") or "argus.invalid"
    return f"<{delivery.message_id}@{domain}>"


def _poster(incident: Incident) -> bytes | None:
    """Best effort: a poster removed by retention (or never written) must not block the alert."""
    if not incident.poster:
        return None
    try:
        with incident.poster.open("rb") as handle:
            return handle.read()
    except OSError:
        return None


class _WithInlineImages(EmailMultiAlternatives):
    # multipart/related keeps the image beside the HTML that shows it (cid:poster).
    mixed_subtype = "related"


def build_message(incident: Incident, delivery: Delivery) -> EmailMultiAlternatives:
    poster = _poster(incident)
    context = {"incident": incident, "payload": incident_payload(incident)["data"], "poster_cid": poster and POSTER_CID}
    message_cls = _WithInlineImages if poster else EmailMultiAlternatives
    message = message_cls(
        subject=f"[Argus] {incident.get_severity_display()}: {incident.title}",
        body=render_to_string("notify/incident_email.txt", context),
        to=delivery.channel.recipients,
        headers={"Message-ID": message_id(delivery), "Date": formatdate(localtime=False)},
        connection=get_connection(timeout=settings.EMAIL_TIMEOUT),
    )
    message.attach_alternative(render_to_string("notify/incident_email.html", context), "text/html")
    if poster:
        image = MIMEImage(poster, "jpeg")
        image.add_header("Content-ID", f"<{POSTER_CID}>")
        image.add_header("Content-Disposition", "inline", filename=f"incident-{incident.pk or 'test'}.jpg")
        message.attach(image)
    return message


class EmailTransport:
    def notify(self, incident: Incident, delivery: Delivery) -> None:
        message = build_message(incident, delivery)
        try:
            message.send()
        except smtplib.SMTPRecipientsRefused as exc:
            raise TransportError(f"recipients refused: {exc.recipients}", permanent=True) from exc
        except smtplib.SMTPResponseException as exc:
            # 5xx is the server's final word on this message; 4xx is "try again later".
            raise TransportError(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}", permanent=exc.smtp_code >= 500) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise TransportError(f"SMTP failed: {exc}") from exc
