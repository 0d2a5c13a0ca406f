"""Real receivers on loopback for notification tests: a webhook endpoint (threaded http.server) that
answers from a script, and an SMTP server (aiosmtpd). Plus an incident with an outbox row per channel."""

from __future__ import annotations

import email
import email.policy
import logging
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from aiosmtpd.controller import Controller
from django.core.files.base import ContentFile

from monitor.models import AlertRule, Camera, Delivery, Incident, NotificationChannel
from monitor.notify.signing import generate_secret
from tests.browser.conftest import free_port

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # sleep before answering (a hanging receiver)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int = 0  # what the receiver answered


class WebhookReceiver:
    """Answers POSTs with the scripted answers in order, then with `default`; records every request."""

    def __init__(self) -> None:
        self.script: list[Answer] = []
        self.default = Answer()
        self.failure_rate = 0.0  # answer this share of requests (beyond the script) with a 500
        self._rng = random.Random(7)
        self.received: list[Received] = []
        self.connections = 0
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _next_answer(self, request: Received) -> Answer:
        with self._lock:
            if self.script:
                answer = self.script.pop(0)
            else:
                answer = Answer(500) if self._rng.random() < self.failure_rate else self.default
            request.status = answer.status
            self.received.append(request)
            return answer

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def setup(self) -> None:
                with receiver._lock:
                    receiver.connections += 1
                super().setup()

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                answer = receiver._next_answer(Received(self.path, headers, body))
                time.sleep(answer.delay_s)
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class Mailbox:
    """aiosmtpd handler: keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        with self._lock:
            self.messages.append(message)  # type: ignore[arg-type]
        return "250 OK"


@pytest.fixture
def receiver(settings) -> Iterator[WebhookReceiver]:
    settings.ARGUS_WEBHOOK_ALLOW_PRIVATE = True  # the receiver is on loopback
    with WebhookReceiver() as running:
        yield running


@pytest.fixture
def mailbox(settings) -> Iterator[Mailbox]:
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP line at INFO
    handler = Mailbox()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    try:
        yield handler
    finally:
        controller.stop()


def jpeg(width: int = 64, height: int = 48) -> bytes:
    image = np.zeros((height, width, 3), np.uint8)
    image[:, : width // 2] = (0, 0, 255)
    ok, encoded = cv2.imencode(".jpg", image)
    assert ok
    return encoded.tobytes()


def make_incident(camera: Camera, rule: AlertRule | None, *, poster: bytes | None = None, n: int = 0) -> Incident:
    incident = Incident.objects.create(
        site=camera.site,
        camera=camera,
        rule=rule,
        title=f"Person at the gate: person in Everywhere #{n}",
        started_at=T0,
        last_seen_at=T0,
        track_ids=[7],
        explanation={
            "rule": "Person at the gate",
            "conditions": [{"name": "duration_s", "value": 2.5, "required": ">= 1.0"}],
        },
    )
    if poster:
        incident.poster.save(f"incident-{incident.pk}.jpg", ContentFile(poster), save=True)
    return incident


@pytest.fixture
def media(settings, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def webhook_channel(camera: Camera, url: str, *, secrets: int = 1) -> NotificationChannel:
    secret = " ".join(generate_secret() for _ in range(secrets))
    return NotificationChannel.objects.create(
        site=camera.site, name="Ops hook", kind="webhook", target=url, secret=secret
    )


def email_channel(camera: Camera) -> NotificationChannel:
    return NotificationChannel.objects.create(
        site=camera.site, name="Ops mail", kind="email", target="ops@example.com, boss@example.com"
    )


def outbox(incident: Incident, channel: NotificationChannel) -> Delivery:
    return Delivery.objects.create(incident=incident, channel=channel)
