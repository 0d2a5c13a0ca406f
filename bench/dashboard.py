"""Dashboard: server time of the incident pages over 100 000 incidents, and live alert delivery to 100
WebSocket clients, each against a limit measured in the same run.

(a) Pages, served in-process by Django's test client (the WSGI handler, the full middleware stack,
    session login, queries and template rendering; no sockets): the incident list (first page, a
    page 50 000 incidents deep, a filtered page) and the incident page (8 events of 240 boxes each),
    over one site's 100 000 incidents. Limit: an empty login-required view through the same stack,
    same client, interleaved with them in every repetition. Ratios are p50 / the empty view's p50.
(b) Live alerts: 100 real WebSocket clients (a small asyncio client, one thread) on a site's socket of a
    Daphne server on 127.0.0.1 (a subprocess), with the Redis channel layer. An alert is opened as the
    worker opens one (services.record_rule_hits: events, incident, audit; the push goes out on
    commit); latency runs from the commit to each client's receipt. Limit: a raw channel-layer
    group_send of an incident event to the same group, from the same process, to the same clients,
    alternating with the alerts. Ratios are alert / raw, of p50 and p95 over every client's receipt.

Everything runs in a scratch database (a temporary SQLite file, or a temporary Postgres database
`argus_bench_<random>` when DATABASE_URL or --database-url names Postgres, dropped at the end) and,
when the virtual environment bundles redis-server, a private Redis on a free port.

Prints one JSON object. Usage: python bench/dashboard.py [--incidents 100000] [--clients 100] [--reps 5]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # `python bench/dashboard.py` from anywhere imports the project
from bench._common import spread  # noqa: E402

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


# --- Scratch database and Redis ---------------------------------------------------------------


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


@contextlib.contextmanager
def scratch_database(admin_url: str, workdir: Path) -> Iterator[tuple[str, str]]:
    """(URL, what it is): a Postgres database made for this run, or an SQLite file in workdir."""
    if not urlsplit(admin_url).scheme.startswith("postgres"):
        yield f"sqlite:///{workdir / 'bench.sqlite3'}", "sqlite (temporary file)"
        return
    import psycopg

    name = f"argus_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        version = admin.execute("SHOW server_version").fetchone()
    try:
        yield _with_database(admin_url, name), f"postgres {version[0] if version else '?'} (temporary database)"
    finally:
        _close_django()
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _close_django() -> None:
    if "django.db" in sys.modules:
        from django.db import connections

        connections.close_all()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited early:\n{log.read_text(errors='replace')[-3000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{proc.args!r} did not listen in {timeout_s} s:\n{log.read_text(errors='replace')[-3000:]}")


@contextlib.contextmanager
def process(args: list[str], log: Path, port: int, env: dict[str, str] | None = None) -> Iterator[None]:
    """A server subprocess, up once its port answers, stopped (then killed) at the end."""
    proc = subprocess.Popen(args, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env, cwd=REPO)
    try:
        _wait_for_port(port, proc, log)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def private_redis(workdir: Path) -> Iterator[tuple[str, str]]:
    """A throw-away redis-server (the one the virtual environment bundles), else REDIS_URL."""
    server = Path(sys.executable).parent / "redis-server"
    if not server.exists():
        yield os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"), "REDIS_URL (shared)"
        return
    port = free_port()
    args = [str(server), "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
    with process([*args, "--dir", str(workdir)], workdir / "redis.log", port):
        yield f"redis://127.0.0.1:{port}/0", "bundled redis-server (private)"


# --- Django, its URLs and the seeded site ------------------------------------------------------


def _empty(request: Any) -> Any:
    from django.http import HttpResponse

    return HttpResponse(b"")


def urlpatterns() -> list[Any]:
    """The project's URLs plus the limit of (a): an empty view behind the same login."""
    from django.contrib.auth.decorators import login_required
    from django.urls import include, path

    return [path("bench/empty/", login_required(_empty)), path("", include("monitor.urls"))]


class BenchUrls:
    urlpatterns: list[Any] = []


def setup_django(database_url: str, redis_url: str, workdir: Path) -> None:
    os.environ.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        ARGUS_VAR_DIR=str(workdir),
        MEDIA_ROOT=str(workdir / "media"),
        DJANGO_SETTINGS_MODULE="monitor.settings",
    )
    os.environ.setdefault("SECRET_KEY", "bench-only-key")
    os.environ.update(ARGUS_HTTPS="0", SECURE_COOKIES="0")  # plain HTTP on the loopback
    (workdir / "static").mkdir(exist_ok=True)  # STATIC_ROOT, so WhiteNoise does not warn
    import django
    from django.apps import apps
    from django.conf import settings
    from django.core.management import call_command

    django.setup()
    settings.MIGRATION_MODULES = {app.label: None for app in apps.get_app_configs()}
    call_command("migrate", run_syncdb=True, verbosity=0)  # tables straight from the models
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]  # the test client's host name
    BenchUrls.urlpatterns = urlpatterns()
    settings.ROOT_URLCONF = BenchUrls


@dataclass
class World:
    site: Any
    user: Any
    alert_rule: Any
    alert_camera: Any
    busy_incident: Any  # the newest incident, with the heavy event list
    deep_cursor: str
    seeded_s: float
    counts: dict[str, int] = field(default_factory=dict)


STATUSES = ["resolved"] * 6 + ["false_alarm"] * 2 + ["acknowledged", "open"]
SEVERITIES = ["low", "medium", "medium", "high", "critical"]


INCIDENT_COLUMNS = (
    "site_id, camera_id, rule_id, kind, title, severity, status, started_at, last_seen_at, track_ids, "
    "explanation, poster, clip, clip_status, clip_error, clip_started_at, assignee_id, notes, acknowledged_at, "
    "resolved_at, created_at"
)


def _incident_rows(n: int, site: Any, cameras: list[Any], rules: list[Any]) -> Iterator[tuple[Any, ...]]:
    """Rows as the worker's incidents look: a rule and camera each, mostly closed, about 2 months."""
    from django.utils import timezone

    now = timezone.now()
    for i in range(n):
        rule = rules[i % len(rules)]
        at = T0 - timedelta(seconds=53 * i)  # newest first
        explanation = {"rule": rule.name, "conditions": [{"name": "duration_s", "value": 12, "required": ">= 1"}]}
        notes = "[2026-11-24 12:00 UTC] guard: seen" if i % 7 == 0 else ""
        yield (
            (site.pk, cameras[i % len(cameras)].pk, rule.pk, "rule", f"{rule.name}: person in {rule.zone.name}")
            + (SEVERITIES[i % len(SEVERITIES)], STATUSES[i % len(STATUSES)], at, at + timedelta(seconds=12))
            + (json.dumps([i]), json.dumps(explanation), "", "", "none", "", None, None, notes, None, None, now)
        )


def insert_incidents(rows: Iterator[tuple[Any, ...]]) -> None:
    """Postgres: COPY; SQLite: executemany of plain INSERTs (building model objects costs more)."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY monitor_incident ({INCIDENT_COLUMNS}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        adapt = connection.ops.adapt_datetimefield_value
        marks = ", ".join(["%s"] * len(INCIDENT_COLUMNS.split(",")))
        sql = f"INSERT INTO monitor_incident ({INCIDENT_COLUMNS}) VALUES ({marks})"  # noqa: S608  (fixed names)
        cursor.executemany(sql, [[adapt(v) if isinstance(v, datetime) else v for v in row] for row in rows])


def _busy_events(incident: Any) -> list[Any]:
    """8 tubes of 240 boxes (the rule engine's cap per segment), as on a long incident."""
    from monitor.models import Event

    def boxes(track: int) -> list[list[float]]:
        return [[round(0.25 * k, 2), 0.1 + 0.002 * k, 0.2, 0.2 + 0.002 * k, 0.6] for k in range(240)]

    return [
        Event(
            camera=incident.camera,
            rule=incident.rule,
            incident=incident,
            track_id=str(track),
            segment_start=incident.started_at + timedelta(seconds=track),
            segment_end=incident.started_at + timedelta(seconds=track + 60),
            actor_class="person",
            action="present",
            score=0.9,
            boxes=boxes(track),
        )
        for track in range(8)
    ]


def seed(n: int) -> World:
    from django.contrib.auth.models import User
    from django.db import connection

    from dashboard.review import Cursor
    from monitor.models import AlertRule, Camera, Event, Incident, Membership, Role, Site, Zone

    started = time.perf_counter()
    site = Site.objects.create(name="Bench site", timezone="Europe/Paris")
    cameras = [Camera.objects.create(site=site, name=f"Cam {i}", stream_url="/dev/null") for i in range(4)]
    whole = [[0, 0], [1, 0], [1, 1], [0, 1]]
    zones = [Zone.objects.create(camera=c, name=f"Zone {c.name}", points=whole) for c in cameras]
    rules = [AlertRule.objects.create(site=site, zone=z, name=f"Rule {z.name}") for z in zones]
    alert_rule = AlertRule.objects.create(site=site, zone=zones[0], name="Live alert", cooldown_s=0, min_duration_s=0)
    user = User.objects.create_user("bench-operator")
    Membership.objects.create(user=user, site=site, role=Role.OPERATOR)
    insert_incidents(_incident_rows(n, site, cameras, rules))
    newest = Incident.objects.select_related("camera", "rule").order_by("-started_at", "-pk").first()
    Event.objects.bulk_create(_busy_events(newest))
    deep = Incident.objects.order_by("-started_at", "-pk")[n // 2]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    counts = {"incidents": Incident.objects.count(), "events": Event.objects.count()}
    elapsed = time.perf_counter() - started
    return World(site, user, alert_rule, cameras[0], newest, Cursor.of(deep).encode(), elapsed, counts)


# --- (a) Pages ---------------------------------------------------------------------------------


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def page_urls(world: World) -> dict[str, str]:
    from django.urls import reverse

    listing = reverse("dashboard:incidents", args=[world.site.pk])
    return {
        "empty_view": "/bench/empty/",
        "incident_list": listing,
        "incident_list_deep": f"{listing}?after={world.deep_cursor}",
        "incident_list_filtered": f"{listing}?status=active&severity=high&camera={world.alert_camera.pk}",
        "incident_page": world.busy_incident.get_absolute_url(),
    }


def _check_and_count(client: Any, urls: dict[str, str]) -> dict[str, int]:
    """Warm every view once, check it answers with what it should, and count its queries."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    queries = {}
    for name, url in urls.items():
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        if name.startswith("incident_list"):
            assert response.content.count(b'href="/incidents/') >= 1, url
        queries[name] = len(captured)
    return queries


def bench_pages(world: World, reps: int, requests: int) -> dict[str, Any]:
    from django.test import Client

    client = Client()
    client.force_login(world.user)
    urls = page_urls(world)
    queries = _check_and_count(client, urls)
    runs: dict[str, dict[str, list[float]]] = {name: {"p50_ms": [], "p95_ms": []} for name in urls}
    for _ in range(reps):
        times: dict[str, list[float]] = {name: [] for name in urls}
        for _ in range(requests):  # interleaved: machine load hits every view alike
            for name, url in urls.items():
                started = time.perf_counter()
                response = client.get(url)
                times[name].append(1000 * (time.perf_counter() - started))
                assert response.status_code == 200
        for name, values in times.items():
            runs[name]["p50_ms"].append(statistics.median(values))
            runs[name]["p95_ms"].append(percentile(values, 95))
    empty = runs["empty_view"]["p50_ms"]
    return {
        "what": f"GET through django.test.Client in-process, {requests} requests per view per repetition, "
        "interleaved; the site holds every seeded incident",
        "server": "django.test.Client in-process: WSGI handler, full middleware stack, session auth, "
        "queries and templates; no sockets",
        "limit": "empty_view: an empty login-required view through the same stack and client",
        "urls": {k: v.replace(world.deep_cursor, "<cursor of incident 50%>") for k, v in urls.items()},
        "queries_per_request": queries,
        "views": {name: {k: spread(v) for k, v in r.items()} for name, r in runs.items()},
        "ratio_p50_vs_empty": {
            name: spread([v / e for v, e in zip(r["p50_ms"], empty, strict=True)])
            for name, r in runs.items()
            if name != "empty_view"
        },
    }


# --- (b) Live alerts ---------------------------------------------------------------------------


class Receipts:
    """Receipt times per incident id, filled by the client thread, awaited by the main thread.

    Kept for any id as it arrives: an alert's push may beat the sender to learning its id."""

    def __init__(self, clients: int) -> None:
        self.clients = clients
        self.lock = threading.Lock()
        self.times: dict[int, list[float]] = {}
        self.done: dict[int, threading.Event] = {}
        self.closed: list[Any] = []

    def _done(self, marker: int) -> threading.Event:
        with self.lock:
            return self.done.setdefault(marker, threading.Event())

    def received(self, marker: int, at: float) -> None:
        done = self._done(marker)
        with self.lock:
            self.times.setdefault(marker, []).append(at)
            if len(self.times[marker]) == self.clients:
                done.set()

    def wait(self, marker: int, timeout_s: float) -> list[float]:
        self._done(marker).wait(timeout_s)
        with self.lock:
            self.done.pop(marker, None)
            return self.times.pop(marker, [])


async def ws_open(url: str, headers: dict[str, str]) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A WebSocket client handshake (RFC 6455), as a browser opens the site's socket."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    lines = [f"GET {parts.path} HTTP/1.1", f"Host: {parts.netloc}", "Upgrade: websocket", "Connection: Upgrade"]
    lines += [f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}", "Sec-WebSocket-Version: 13"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    answer = await reader.readuntil(b"\r\n\r\n")
    if not answer.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(f"socket refused: {answer.splitlines()[0]!r}")
    return reader, writer


def _masked(opcode: int, payload: bytes) -> bytes:
    """A client frame (clients must mask); only short control frames are ever sent."""
    mask = os.urandom(4)
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def ws_messages(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Any:
    """Text messages as they arrive; pings answered (Daphne drops clients that do not)."""
    while True:
        head = await reader.readexactly(2)
        opcode, length = head[0] & 0x0F, head[1] & 0x7F
        if length >= 126:
            length = int.from_bytes(await reader.readexactly(2 if length == 126 else 8), "big")
        payload = await reader.readexactly(length)
        if opcode == 0x8:  # close
            return
        if opcode == 0x9:  # ping
            writer.write(_masked(0xA, payload))
        elif opcode == 0x1:
            yield payload


class WsClients:
    """N WebSocket clients in one asyncio loop on a thread of their own. A small client of its own:
    this process runs Django, whose Daphne app already bound autobahn to Twisted."""

    def __init__(self, url: str, n: int, headers: dict[str, str]) -> None:
        self.url, self.n, self.headers = url, n, headers
        self.receipts = Receipts(n)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.writers: list[asyncio.StreamWriter] = []
        self.listeners: list[asyncio.Task[None]] = []

    async def _listen(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async for payload in ws_messages(reader, writer):
            at = time.monotonic()
            event = json.loads(payload)
            if event.get("type") == "incident.opened":
                self.receipts.received(int(event["incident_id"]), at)
        self.receipts.closed.append(writer.get_extra_info("peername"))

    async def _connect_all(self) -> None:
        opened = await asyncio.gather(*(ws_open(self.url, self.headers) for _ in range(self.n)))
        for reader, writer in opened:
            self.writers.append(writer)
            self.listeners.append(self.loop.create_task(self._listen(reader, writer)))

    def connect(self, timeout_s: float = 60) -> float:
        started = time.monotonic()
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._connect_all(), self.loop).result(timeout_s)
        return time.monotonic() - started

    async def _close_all(self) -> None:
        for task in self.listeners:
            task.cancel()
        for writer in self.writers:
            writer.close()
        await asyncio.gather(*self.listeners, return_exceptions=True)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._close_all(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


def open_alert(world: World, k: int) -> tuple[int, float]:
    """Open an incident as the camera worker does; returns its id and the moment its commit ended."""
    from django.db import transaction
    from django.utils import timezone

    from detection.rules import RuleHit
    from monitor import services

    now = timezone.now()
    box = (0.0, 0.1, 0.2, 0.3, 0.6)
    hit = RuleHit(
        rule_id=world.alert_rule.pk,
        track_id=1_000_000 + k,
        label="person",
        started_at=now,
        last_seen_at=now,
        score=0.9,
        dwell_s=0.0,
        boxes=(box,),
        closed=False,
    )
    committed: list[float] = []
    with transaction.atomic():
        # Registered first, so it runs first after COMMIT, before the push the service queued.
        transaction.on_commit(lambda: committed.append(time.monotonic()))
        (incident_id,) = services.record_rule_hits(world.alert_camera.pk, [hit])
    return incident_id, committed[0]


def raw_send(world: World, k: int) -> tuple[int, float]:
    """The limit: an incident event straight into the channel layer, as publish_now sends it."""
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from monitor.live import site_group

    marker = -(k + 1)  # never an incident id
    event = {"type": "incident.opened", "incident_id": marker, "title": "raw", "status": "open"}
    started = time.monotonic()
    async_to_sync(get_channel_layer().group_send)(site_group(world.site.pk), event)
    return marker, started


def _deliver(clients: WsClients, send: Any, world: World, k: int, timeout_s: float) -> tuple[list[float], int]:
    """Latencies (ms) of one message to every client, and how many clients never got it."""
    marker, at = send(world, k)
    got = clients.receipts.wait(marker, timeout_s)
    return [1000 * (t - at) for t in got], clients.n - len(got)


def bench_live(world: World, clients_n: int, alerts: int, reps: int, workdir: Path) -> dict[str, Any]:
    from django.test import Client

    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    daphne = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "monitor.asgi:application"]
    login = Client()
    login.force_login(world.user)
    cookie = f"sessionid={login.cookies['sessionid'].value}"
    with process(daphne, workdir / "daphne.log", port, env):
        headers = {"Origin": f"http://127.0.0.1:{port}", "Cookie": cookie}
        clients = WsClients(f"ws://127.0.0.1:{port}/ws/sites/{world.site.pk}/", clients_n, headers)
        connect_s = clients.connect()
        try:
            reps_out = [_live_rep(clients, world, alerts, rep) for rep in range(reps)]
        finally:
            clients.close()
    return _live_summary(reps_out, clients_n, alerts, connect_s)


def _live_rep(clients: WsClients, world: World, alerts: int, rep: int) -> dict[str, Any]:
    lat: dict[str, list[float]] = {"alert": [], "raw": []}
    lost = {"alert": 0, "raw": 0}
    pair = (("raw", raw_send), ("alert", open_alert))
    for k in range(alerts):  # alternate, and which goes first, so machine load hits both alike
        for kind, send in pair if k % 2 == 0 else pair[::-1]:
            got, missing = _deliver(clients, send, world, rep * alerts + k, timeout_s=10)
            lat[kind] += got
            lost[kind] += missing
    if not lat["alert"] or not lat["raw"]:
        raise RuntimeError(f"no client received anything (lost: {lost}); is Daphne refusing the sockets?")
    return {
        kind: {"p50": statistics.median(v), "p95": percentile(v, 95), "lost": lost[kind]} for kind, v in lat.items()
    }


def _live_summary(reps: list[dict[str, Any]], clients: int, alerts: int, connect_s: float) -> dict[str, Any]:
    def series(kind: str, key: str) -> list[float]:
        return [r[kind][key] for r in reps]

    return {
        "what": f"{clients} WebSocket clients on one site's socket; {alerts} alerts and {alerts} raw sends per "
        "repetition, alternating; latency from the commit (alert) or the send (raw) to each client's receipt",
        "transport": "real WebSockets (RFC 6455 clients of this bench, asyncio, one thread, with the session "
        "cookie and Origin a browser sends) -> Daphne subprocess on 127.0.0.1 (monitor.asgi) -> channels_redis",
        "alert_path": "services.record_rule_hits in a transaction (event, incident, audit); publish_on_commit",
        "limit": "raw: async_to_sync(channel_layer.group_send) of an incident event to the same group",
        "connect_all_s": round(connect_s, 2),
        "alert_ms": {"p50": spread(series("alert", "p50")), "p95": spread(series("alert", "p95"))},
        "raw_group_send_ms": {"p50": spread(series("raw", "p50")), "p95": spread(series("raw", "p95"))},
        "ratio": {
            "p50": spread([a / r for a, r in zip(series("alert", "p50"), series("raw", "p50"), strict=True)]),
            "p95": spread([a / r for a, r in zip(series("alert", "p95"), series("raw", "p95"), strict=True)]),
        },
        "lost_receipts": {"alert": sum(series("alert", "lost")), "raw": sum(series("raw", "lost"))},
    }


# --- Main ------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), "")
    except OSError:
        cpu = platform.processor()
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "load_avg_before": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=20, help="per view and repetition")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--alerts", type=int, default=20, help="per repetition (and as many raw sends)")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    args = parser.parse_args()
    started = time.monotonic()
    info = machine()
    result: dict[str, Any] = {
        "bench": "dashboard",
        "config": {k: v for k, v in vars(args).items() if k != "database_url"},
    }
    workdir = Path(tempfile.mkdtemp(prefix="argus-bench-"))
    try:
        with scratch_database(args.database_url, workdir) as (db_url, db), private_redis(workdir) as (redis_url, redis):
            setup_django(db_url, redis_url, workdir)
            world = seed(args.incidents)
            result["data"] = {
                "database": db,
                "redis": redis,
                "seeded": world.counts,
                "seed_s": round(world.seeded_s, 1),
            }
            result["pages"] = bench_pages(world, args.reps, args.requests)
            result["live"] = bench_live(world, args.clients, args.alerts, args.reps, workdir)
            _close_django()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    info["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
    result["machine"] = info
    result["elapsed_s"] = round(time.monotonic() - started, 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
