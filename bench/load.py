"""Load: live cameras of real footage through the whole stack, with 100 WebSocket clients on the
live wall; analysed frames/s per camera, end-to-end alert latency, CPU and memory of every process.

Each step of a sweep (`--cameras 1,2,4,8`) runs the product as it runs in production, on 127.0.0.1:
Daphne (monitor.asgi), a Celery worker on the analysis queue with a prefork pool of one process per
camera (each camera is one long-running `analyse_camera` task holding the camera's lease), a one-process
worker for beat's short tasks (as `manage.py runstack` and docker-compose run them), Celery beat
(dispatch every 5 s), Redis (broker and channel layer) and the database.
Cameras are files of real footage played as live cameras (paced in real time, looped), at the
camera's own analysis fps. Each has a whole-frame zone and a presence rule (a person, confidence
>= 0.5, for 1 s, cooldown 0) that fires on most of this footage. The bench plays the operator: it
resolves every incident as soon as it is opened, so the next person opens a new one.

Alert latency: a client's receipt (wall clock) of `incident.opened` minus the incident's
`last_seen_at`, which is the wall-clock time of the frame that completed the rule's condition (a file
camera stamps each frame with its start time + media time and is paced in real time, so the stamp is
when a live camera would have delivered that frame). Split at the incident row's `created_at` into
analysis (frame to row: waiting for the CPU, decoding, model, tracker, rules) and delivery (row to
receipt: commit, channel layer, Daphne, the client).

Limits measured in the same run: the camera's target analysis fps, and the machine's capacity for a
bare forward of the model's backbone on one letterboxed frame (bench/model.py's limit), timed before
the stack starts with every core as threads and with one thread: what the machine could analyse if it
did nothing else. `--worker-threads N` sets ARGUS_WORKER_THREADS (torch's and OpenCV's threads per
worker process); by default the product's own default, one.

Everything runs in one scratch database (a temporary SQLite file, or a temporary Postgres database
`argus_bench_<random>` when DATABASE_URL or --database-url names Postgres, dropped at the end) and a
private redis-server when the virtual environment bundles one. Every process is started in its own
process group and the groups are ended on exit, Ctrl-C and failure included.

Prints one JSON object. Usage:
  python bench/load.py [--cameras 4] [--minutes 1] [--clients 100] [--worker-threads N] [--plot PNG]
  python bench/load.py --replot RUN.json... [--labels ...] --plot PNG   (draw earlier results)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import os
import queue
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # `python bench/load.py` from anywhere imports the project
from bench.dashboard import free_port, scratch_database, setup_django, ws_messages, ws_open  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
# Camera k gets footage k: a mix of scenes, sizes, codecs and frame rates that make the rule fire.
FOOTAGE = [
    SHARED / "vtest.avi",
    SHARED / "fight" / "fight" / "fi004.mp4",
    SHARED / "caviar" / "OneStopEnter1front_h264.mp4",
    SHARED / "fight" / "noFight" / "nofi001.mp4",
    SHARED / "bikes.mp4",
    SHARED / "fight" / "fight" / "fi061.mp4",
    SHARED / "fight" / "fight" / "fi001.mp4",
    SHARED / "fight" / "fight" / "fi037.mp4",
]
FALLBACK = REPO / "var" / "demo" / "vtest.avi"
WHOLE_FRAME = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
RULE = {"kind": "presence", "actor_class": "person", "min_confidence": 0.5, "min_duration_s": 1.0, "cooldown_s": 0.0}
TARGET = {"cameras": 4, "alert_p95_ms": 1000.0}
FLAT_GROWTH = 0.10  # RSS growth first vs last minute that still counts as flat
PRODUCT_ROLES = ("web", "worker", "beat", "redis")  # judged for flat memory (not the bench's own clients)
SAMPLE_EVERY_S = 2.0
CAMERAS_EVERY_S = 5.0


def footage(n: int) -> list[Path]:
    present = [p for p in FOOTAGE if p.is_file() and p.stat().st_size > 0]
    if not present and FALLBACK.is_file():
        present = [FALLBACK]
    if not present:
        sys.exit("no footage: provide ../shared/data or run `make footage`")
    return [present[i % len(present)] for i in range(n)]


# --- Processes ---------------------------------------------------------------------------------


def _die_with_parent() -> None:
    """Runs in the child before exec: a bench killed outright (SIGKILL) takes its children along."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


@dataclass
class Child:
    role: str
    proc: subprocess.Popen[bytes]
    log: Path
    stop_signal: int


class Stack:
    """The product's processes, each the leader of its own process group; `stop` ends every group."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.children: list[Child] = []

    def spawn(
        self, role: str, argv: list[str], *, stop_signal: int = signal.SIGTERM, env: dict[str, str] | None = None
    ) -> Child:
        log = self.workdir / f"{role}.log"
        proc = subprocess.Popen(
            argv,
            env={**os.environ, **(env or {})},
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            cwd=REPO,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        child = Child(role, proc, log, stop_signal)
        self.children.append(child)
        return child

    def check(self) -> None:
        for child in self.children:
            if child.proc.poll() is not None:
                raise RuntimeError(f"{child.role} exited ({child.proc.returncode}):\n{tail(child.log)}")

    def stop(self) -> None:
        """Stop signal to each group (Celery: QUIT, a cold shutdown), then KILL whatever is left.
        A second Ctrl-C or TERM meanwhile must not cut this short."""
        handlers = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            for child in reversed(self.children):
                _signal_group(child.proc.pid, child.stop_signal)
            deadline = time.monotonic() + 5
            for child in self.children:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            for child in self.children:  # the group may outlive its leader (pool processes)
                _signal_group(child.proc.pid, signal.SIGKILL)
                child.proc.wait()
            self.children = []
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)

    def pid(self, role: str) -> int | None:
        return next((c.proc.pid for c in self.children if c.role == role), None)


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def tail(log: Path, chars: int = 3000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else "(no log)"


def wait_for_port(port: int, stack: Stack, timeout_s: float = 60) -> None:
    import socket

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        stack.check()
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.2)
    raise RuntimeError(f"nothing listened on {port} after {timeout_s:.0f} s")


def start_redis(stack: Stack) -> tuple[str, str]:
    """A private redis-server (the virtual environment's) for the run, else REDIS_URL."""
    server = Path(sys.executable).parent / "redis-server"
    if not server.exists():
        return os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"), "REDIS_URL (shared)"
    port = free_port()
    argv = [str(server), "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
    stack.spawn("redis", [*argv, "--dir", str(stack.workdir)])
    wait_for_port(port, stack, 10)
    return f"redis://127.0.0.1:{port}/0", "bundled redis-server (private)"


def start_product(stack: Stack, cameras: int, worker_threads: int | None) -> int:
    """Daphne, the analysis worker (one pool process per camera), the ops worker and beat; returns
    the web port. worker_threads: ARGUS_WORKER_THREADS; None leaves the product's default."""
    python, port = sys.executable, free_port()
    stack.spawn("web", [python, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "monitor.asgi:application"])
    celery = [python, "-m", "celery", "-A", "monitor", "worker", "-l", "INFO"]
    analysis = ["-Q", "analysis", "-P", "prefork", "--concurrency", str(cameras), "-n", f"load-{os.getpid()}@%h"]
    threads = {} if worker_threads is None else {"ARGUS_WORKER_THREADS": str(worker_threads)}
    stack.spawn("worker", [*celery, *analysis], stop_signal=signal.SIGQUIT, env=threads)
    ops = ["-Q", "celery", "-P", "solo", "-n", f"load-ops-{os.getpid()}@%h"]
    stack.spawn("ops-worker", [*celery, *ops], stop_signal=signal.SIGQUIT)
    schedule = stack.workdir / f"celerybeat-schedule-{cameras}"
    stack.spawn("beat", [python, "-m", "celery", "-A", "monitor", "beat", "-l", "INFO", "-s", str(schedule)])
    wait_for_port(port, stack)
    return port


# --- The site: cameras, rules, operators -------------------------------------------------------


@dataclass
class World:
    site: Any
    cameras: dict[int, str]  # id -> name
    operator: Any


def seed(n_cameras: int, users: list[Any], fps: float | None, clips: bool) -> World:
    from monitor.models import AlertRule, Camera, Membership, Role, Site, Zone

    site = Site.objects.create(name=f"Load site {n_cameras} cameras {time.time_ns()}", timezone="UTC")
    Membership.objects.bulk_create([Membership(user=u, site=site, role=Role.OPERATOR) for u in users])
    cameras = {}
    for k, path in enumerate(footage(n_cameras), start=1):
        camera = Camera(site=site, name=f"cam{k} {path.name}", stream_url=str(path), loop=True)
        if fps is not None:
            camera.analysis_fps = fps
        if not clips:
            camera.pre_roll_s = camera.post_roll_s = 0.0
        camera.full_clean()
        camera.save()
        zone = Zone.objects.create(camera=camera, name="Whole frame", points=WHOLE_FRAME)
        rule = AlertRule(site=site, zone=zone, name="Person in view", **RULE)
        rule.full_clean()
        rule.save()
        cameras[camera.pk] = camera.name
    return World(site, cameras, users[0])


def make_users(n: int) -> tuple[list[Any], list[str]]:
    """n operators, each with a session of their own (one browser each)."""
    from django.contrib.auth.models import User
    from django.test import Client

    users = User.objects.bulk_create([User(username=f"load-operator-{i}") for i in range(n)])
    cookies = []
    for user in users:
        client = Client()
        client.force_login(user)
        cookies.append(f"sessionid={client.cookies['sessionid'].value}")
    return users, cookies


def retire(world: World) -> None:
    """A finished step's cameras are turned off, so the next step's dispatcher leaves them alone."""
    from monitor.models import Camera

    Camera.objects.filter(site=world.site).update(enabled=False, lease_owner="", lease_expires_at=None)


# --- The live wall: WebSocket clients -----------------------------------------------------------


@dataclass
class Receipt:
    incident_id: int
    camera_id: int
    frame_at: float  # the incident's last_seen_at (epoch seconds): the frame that completed the rule
    received: float  # time.time() when a client read the message


class LiveWall:
    """N WebSocket clients on one asyncio loop in a thread of their own. A client reads every message
    (as a browser does) but parses only incident events; the first receipt of each opened incident is
    handed to `opened` (the bench's operator)."""

    def __init__(self, url: str, cookies: list[str], origin: str, opened: Callable[[int], None]) -> None:
        self.url, self.cookies, self.origin, self.opened = url, cookies, origin, opened
        self.receipts: list[Receipt] = []
        self.messages = 0
        self.seen: set[int] = set()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="live-wall")
        self.writers: list[asyncio.StreamWriter] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.closed_early = 0

    async def _listen(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async for payload in ws_messages(reader, writer):
            received = time.time()
            self.messages += 1
            if b'"incident.opened"' not in payload[:64]:
                continue
            event = json.loads(payload)
            incident_id = int(event["incident_id"])
            frame_at = datetime.fromisoformat(event["last_seen_at"]).timestamp()
            self.receipts.append(Receipt(incident_id, int(event["camera_id"]), frame_at, received))
            if incident_id not in self.seen:
                self.seen.add(incident_id)
                self.opened(incident_id)
        self.closed_early += 1

    async def _connect_all(self) -> None:
        async def one(cookie: str) -> None:
            reader, writer = await ws_open(self.url, {"Origin": self.origin, "Cookie": cookie})
            self.writers.append(writer)
            self.tasks.append(self.loop.create_task(self._listen(reader, writer)))

        await asyncio.gather(*(one(c) for c in self.cookies))

    def connect(self, timeout_s: float = 60) -> float:
        started = time.monotonic()
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._connect_all(), self.loop).result(timeout_s)
        return time.monotonic() - started

    async def _close_all(self) -> None:
        for task in self.tasks:
            task.cancel()
        for writer in self.writers:
            writer.close()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    def close(self) -> None:
        if self.thread.is_alive():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._close_all(), self.loop).result(10)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=5)


class Operator:
    """Resolves every incident as soon as it is opened, in a thread: the next person opens a new one."""

    def __init__(self, user: Any) -> None:
        self.user = user
        self.todo: queue.Queue[int | None] = queue.Queue()
        self.resolved = 0
        self.thread = threading.Thread(target=self._run, daemon=True, name="operator")

    def _run(self) -> None:
        from django.db import connection

        from monitor import services

        while (incident_id := self.todo.get()) is not None:
            with contextlib.suppress(services.ServiceError):
                services.resolve_incident(incident_id, self.user, "resolved by the load bench")
                self.resolved += 1
        connection.close()

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        if self.thread.is_alive():
            self.todo.put(None)
            self.thread.join(timeout=30)


# --- Sampling: processes and cameras -------------------------------------------------------------


@dataclass
class RoleSample:
    at: float  # seconds into the window
    cpu_pct: float  # of one core (200 = both cores of a 2-core machine)
    rss_mb: float
    processes: int


class ProcessSampler:
    """CPU and RSS of each role's processes (a role's leader and all its descendants)."""

    def __init__(self, roots: dict[str, int], postgres_pids: Callable[[], list[int]]) -> None:
        self.roots, self.postgres_pids = roots, postgres_pids
        self.cpu: dict[int, float] = {}
        self.samples: dict[str, list[RoleSample]] = {role: [] for role in [*roots, "postgres"]}
        self.machine_cpu: list[float] = []
        self.last = time.monotonic()
        # RSS (MB) of each process of a role at the window's first and latest sample: which one grew
        self.first_rss: dict[str, dict[int, float]] = {}
        self.last_rss: dict[str, dict[int, float]] = {}
        psutil.cpu_percent()

    def _processes(self, role: str) -> list[psutil.Process]:
        if role == "clients":  # the bench process alone: every other role is its descendant
            return [p for p in [_process(self.roots[role])] if p is not None]
        if role == "postgres":
            pids = self.postgres_pids()
            return [p for p in (_process(pid) for pid in pids) if p is not None]
        root = _process(self.roots[role])
        if root is None:
            return []
        with contextlib.suppress(psutil.Error):
            return [root, *root.children(recursive=True)]
        return [root]

    def sample(self, at: float) -> None:
        now = time.monotonic()
        elapsed, self.last = max(now - self.last, 1e-3), now
        for role, samples in self.samples.items():
            cpu_s, rss, procs = 0.0, {}, self._processes(role)
            for proc in procs:
                with contextlib.suppress(psutil.Error):
                    times = proc.cpu_times()
                    total = times.user + times.system
                    cpu_s += total - self.cpu.get(proc.pid, total if at <= 0 else 0.0)
                    self.cpu[proc.pid] = total
                    rss[proc.pid] = proc.memory_info().rss / 2**20
            samples.append(RoleSample(at, 100 * cpu_s / elapsed, sum(rss.values()), len(procs)))
            self.first_rss.setdefault(role, rss)
            self.last_rss[role] = rss
        self.machine_cpu.append(psutil.cpu_percent())


def _process(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except psutil.Error:
        return None


def postgres_backends() -> Callable[[], list[int]]:
    from django.db import connection

    if connection.vendor != "postgresql":
        return list

    def pids() -> list[int]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return [row[0] for row in cursor.fetchall()]

    return pids


@dataclass
class CameraSamples:
    fps: dict[int, list[float]] = field(default_factory=dict)
    lag_s: dict[int, list[float]] = field(default_factory=dict)
    states: dict[int, set[str]] = field(default_factory=dict)


def sample_cameras(world: World, into: CameraSamples) -> None:
    """The worker's own figures, as it stores them about once a second: measured fps and last frame."""
    from monitor.models import Camera

    now = time.time()
    for row in Camera.objects.filter(site=world.site).values("pk", "measured_fps", "last_frame_at", "health_state"):
        into.fps.setdefault(row["pk"], []).append(row["measured_fps"] or 0.0)
        last = row["last_frame_at"]
        if last is not None:
            into.lag_s.setdefault(row["pk"], []).append(now - last.timestamp())
        into.states.setdefault(row["pk"], set()).add(row["health_state"])


def wait_until_streaming(world: World, stack: Stack, timeout_s: float) -> float:
    """Every camera analysing frames (online, or degraded when the CPU is short); returns how long it took."""
    from monitor.models import Camera

    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        stack.check()
        cameras = Camera.objects.filter(site=world.site)
        if all(c.health_state in ("online", "degraded") and (c.measured_fps or 0) > 0 for c in cameras):
            return time.monotonic() - started
        time.sleep(1)
    states = list(Camera.objects.filter(site=world.site).values_list("name", "health_state", "health_reason"))
    worker = next((c for c in stack.children if c.role == "worker"), None)
    raise RuntimeError(f"cameras not streaming after {timeout_s:.0f} s: {states}\n{tail(worker.log) if worker else ''}")


# --- One step: N cameras ----------------------------------------------------------------------


def percentile(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def _latency(values_s: list[float]) -> dict[str, Any]:
    if not values_s:
        return {"count": 0}
    ms = [1000 * v for v in values_s]
    return {
        "count": len(ms),
        "p50": round(percentile(ms, 50), 1),
        "p95": round(percentile(ms, 95), 1),
        "max": round(max(ms), 1),
    }


def alert_figures(wall: LiveWall, world: World, window: tuple[float, float], clients: int) -> dict[str, Any]:
    """Latency over every client's receipt of the alerts opened in the window (their first receipt
    inside it), split at the incident row's created_at; rule incidents only."""
    from monitor.models import Incident

    receipts = list(wall.receipts)
    first: dict[int, Receipt] = {}
    for r in receipts:
        if r.incident_id not in first or r.received < first[r.incident_id].received:
            first[r.incident_id] = r
    in_window = {i for i, r in first.items() if window[0] <= r.received <= window[1]}
    rows = Incident.objects.filter(pk__in=in_window).values("pk", "kind", "created_at")
    created = {row["pk"]: row["created_at"].timestamp() for row in rows if row["kind"] == "rule"}
    mine = [r for r in receipts if r.incident_id in created]
    per_camera: dict[str, int] = {}
    for i in created:
        name = world.cameras.get(first[i].camera_id, "?")
        per_camera[name] = per_camera.get(name, 0) + 1
    return {
        "alerts": len(created),
        "other_incidents": len(in_window) - len(created),  # camera-offline incidents: a sign of trouble
        "receipts": len(mine),
        "lost_receipts": clients * len(created) - len(mine),
        "latency_ms": _latency([r.received - r.frame_at for r in mine]),
        "first_receipt_ms": _latency([first[i].received - first[i].frame_at for i in created]),
        "analysis_ms": _latency([created[i] - first[i].frame_at for i in created]),
        "delivery_ms": _latency([r.received - created[r.incident_id] for r in mine]),
        "alerts_per_camera": dict(sorted(per_camera.items())),
    }


def _mean(values: list[float]) -> float:
    return round(statistics.fmean(values), 2) if values else float("nan")


def camera_figures(world: World, samples: CameraSamples, capacity_fps: float | None) -> dict[str, Any]:
    from monitor.models import Camera

    target = {c.pk: c.analysis_fps for c in Camera.objects.filter(site=world.site)}
    per_camera: dict[str, dict[str, Any]] = {
        world.cameras[pk]: {
            "fps": _mean(v),
            "target_fps": target[pk],
            "lag_s": {"median": round(statistics.median(samples.lag_s.get(pk, [0])), 2)}
            | {"max": round(max(samples.lag_s.get(pk, [0])), 2)},
            "states": sorted(samples.states.get(pk, set())),
        }
        for pk, v in sorted(samples.fps.items())
    }
    means: list[float] = [c["fps"] for c in per_camera.values()]
    total = sum(means)
    return {
        "per_camera": per_camera,
        "fps_per_camera": {"mean": _mean(means), "min": round(min(means), 2), "max": round(max(means), 2)},
        "ratio_to_target": round(statistics.fmean([c["fps"] / c["target_fps"] for c in per_camera.values()]), 3),
        "total_fps": round(total, 2),
        "ratio_total_to_capacity": round(total / capacity_fps, 3) if capacity_fps else None,
    }


def _edge_mean(samples: list[RoleSample], start: float, end: float, key: str) -> float:
    values = [getattr(s, key) for s in samples if start <= s.at <= end]
    return statistics.fmean(values) if values else float("nan")


def process_figures(sampler: ProcessSampler, window_s: float) -> dict[str, Any]:
    """Per role: mean CPU, RSS in the first and last minute (a third of the window when shorter)."""
    edge = min(60.0, window_s / 3)
    roles: dict[str, Any] = {}
    for role, samples in sampler.samples.items():
        inside = [s for s in samples if s.at > 0]
        if not inside or not any(s.processes for s in inside):
            continue
        first = _edge_mean(inside, 0, edge, "rss_mb")
        last = _edge_mean(inside, window_s - edge, window_s, "rss_mb")
        roles[role] = {
            "cpu_pct": {"mean": round(statistics.fmean(s.cpu_pct for s in inside), 1)}
            | {"max": round(max(s.cpu_pct for s in inside), 1)},
            "rss_mb": {"first": round(first, 1), "last": round(last, 1), "growth": round(last / first - 1, 3)},
            "processes": max(s.processes for s in inside),
        }
        if role == "worker":  # pool processes one by one: a step is often one more process holding the model
            roles[role]["rss_mb_by_process"] = {
                edge: sorted(round(v) for v in rss[role].values())
                for edge, rss in (("first", sampler.first_rss), ("last", sampler.last_rss))
            }
        if role == "postgres":  # backends' RSS counts the shared buffers they touch: not a leak figure
            roles[role]["rss_mb"]["note"] = "includes shared buffers; not judged"
    judged = {r: v["rss_mb"]["growth"] for r, v in roles.items() if r in PRODUCT_ROLES}
    machine = statistics.fmean(sampler.machine_cpu[1:] or [0])
    ours = sum(v["cpu_pct"]["mean"] for v in roles.values())
    return {
        "edge_s": round(edge, 1),
        "roles": roles,
        "rss_flat": all(abs(g) <= FLAT_GROWTH for g in judged.values()),
        "machine_cpu_pct_of_all_cores": round(machine, 1),
        # On a shared machine: what this run's processes used, and what other jobs took (of one core).
        "cpu_pct_of_one_core": {
            "this_run": round(ours, 1),
            "other_jobs": round(max(0.0, machine * (psutil.cpu_count() or 1) - ours), 1),
        },
        "timeline": _timeline(sampler, window_s),
    }


def _timeline(sampler: ProcessSampler, window_s: float) -> list[dict[str, Any]]:
    """Every 30 s (or 10 s in short runs): RSS and CPU per role, to see whether anything grows."""
    step = 30.0 if window_s >= 180 else 10.0
    out = []
    t = 0.0
    while t < window_s:
        point: dict[str, Any] = {"t_s": t + step}
        for role, samples in sampler.samples.items():
            chunk = [s for s in samples if t < s.at <= t + step]
            if chunk and any(s.processes for s in chunk):
                point[role] = {
                    "cpu_pct": round(statistics.fmean(s.cpu_pct for s in chunk), 1),
                    "rss_mb": round(statistics.fmean(s.rss_mb for s in chunk), 1),
                }
        out.append(point)
        t += step
    return out


@dataclass
class Run:
    args: argparse.Namespace
    workdir: Path
    users: list[Any]
    cookies: list[str]
    redis_url: str
    redis_pid: int | None
    capacity_fps: float | None


def run_step(run: Run, n: int) -> dict[str, Any]:
    world = seed(n, run.users, run.args.fps, run.args.clips)
    stack = Stack(run.workdir)
    operator = Operator(world.operator)
    wall: LiveWall | None = None
    try:
        boot = time.monotonic()
        port = start_product(stack, n, run.args.worker_threads)
        log(f"{n} camera(s): stack up on port {port}")
        operator.start()
        origin = f"http://127.0.0.1:{port}"
        wall = LiveWall(f"ws://127.0.0.1:{port}/ws/sites/{world.site.pk}/", run.cookies, origin, operator.todo.put)
        connect_s = wall.connect()
        streaming_s = wait_until_streaming(world, stack, run.args.warmup_timeout)
        time.sleep(run.args.settle)
        log(f"{n} camera(s): streaming after {time.monotonic() - boot:.0f} s; measuring {run.args.minutes:g} min")
        return measure(run, world, stack, wall) | {
            "cameras": n,
            "footage": [name.split(" ", 1)[1] for name in world.cameras.values()],
            "startup_s": {"clients_connect": round(connect_s, 2), "cameras_streaming": round(streaming_s, 1)},
            "operator_resolved": operator.resolved,
        }
    finally:
        if wall is not None:
            wall.close()
        stack.stop()
        operator.stop()
        retire(world)
        _flush_redis(run.redis_url)


def measure(run: Run, world: World, stack: Stack, wall: LiveWall) -> dict[str, Any]:
    roots = {c.role: c.proc.pid for c in stack.children} | {"clients": os.getpid()}
    if run.redis_pid:
        roots["redis"] = run.redis_pid
    sampler = ProcessSampler(roots, postgres_backends())
    cameras = CameraSamples()
    window_s = 60 * run.args.minutes
    sampler.sample(0.0)
    started, messages0 = time.time(), wall.messages
    next_cameras = 0.0
    while (at := time.time() - started) < window_s:
        stack.check()
        time.sleep(min(SAMPLE_EVERY_S, max(0.0, window_s - at)))
        at = time.time() - started
        sampler.sample(at)
        if at >= next_cameras:
            sample_cameras(world, cameras)
            next_cameras = at + CAMERAS_EVERY_S
    ended, messages = time.time(), wall.messages - messages0
    time.sleep(run.args.drain)  # alerts opened at the very end still reach every client
    frames, processes = camera_figures(world, cameras, run.capacity_fps), process_figures(sampler, window_s)
    worker = processes["roles"].get("worker")
    if worker and frames["total_fps"] > 0:  # the whole camera path: decode, model, tracker, rules, writes, clips
        frames["worker_cpu_ms_per_analysed_frame"] = round(10 * worker["cpu_pct"]["mean"] / frames["total_fps"], 1)
    return {
        "window_s": round(ended - started, 1),
        "frames": frames,
        "alerts": alert_figures(wall, world, (started, ended), len(run.cookies)),
        "messages_per_s_all_clients": round(messages / (ended - started), 1),
        "clients_closed_early": wall.closed_early,
        "processes": processes,
    }


def _flush_redis(url: str) -> None:
    import redis

    with contextlib.suppress(redis.RedisError):
        redis.Redis.from_url(url).flushdb()


# --- Limit, machine, plot -------------------------------------------------------------------


def bare_forward(seconds: float) -> dict[str, Any]:
    """bench/model.py's limit, the backbone on one letterboxed frame already in a tensor, timed with
    every core as one process's threads and with one thread; `capacity_fps` is the better of all
    threads and one thread times the cores (one camera process per core): what the machine's cores
    could put through the backbone if they did nothing else."""
    import torch

    from bench.model import backbone_limit, frames, load_model, per_second
    from detection.localizer.backend import LocalizerBackend

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    model, weights, _ = load_model()
    backend = LocalizerBackend(model, {}, device=torch.device("cpu"))
    images, clip = frames()
    step = backbone_limit(backend, images, 1)
    timed = {}
    for threads in sorted({cores, 1}, reverse=True):
        torch.set_num_threads(threads)
        for i in range(3):
            step(i)
        timed[threads] = per_second(step, seconds)
    cfg = model.config
    return {
        "what": "model.backbone_maps on one letterboxed frame already in a tensor, in this process before the "
        "stack starts: the per-frame work no camera can skip",
        "fps_all_threads": round(timed[cores][0], 1),
        "fps_one_thread": round(timed[1][0], 1),
        "cpu_ms_per_frame": {"all_threads": round(timed[cores][1], 1), "one_thread": round(timed[1][1], 1)},
        "capacity_fps": round(max(timed[cores][0], cores * timed[1][0]), 1),
        "cores": cores,
        "input": [cfg.infer_width, cfg.infer_height],
        "weights": weights["weights"],
        "footage": clip["frames"],
    }


def machine() -> dict[str, Any]:
    from bench.ingest import machine as base

    return base() | {"memory_gb": round(psutil.virtual_memory().total / 2**30, 1)}


def series_label(run: dict[str, Any]) -> str:
    if "label" in run:
        return str(run["label"])
    threads = run["config"].get("worker_threads")
    return "worker threads: default" if threads is None else f"worker threads: {threads}"


def plot(runs: list[dict[str, Any]], path: Path) -> str:
    """Alert latency (p50, p95) and analysed frames/s per camera against the number of cameras, one
    line per run (their results as this bench prints them)."""
    try:
        import matplotlib
    except ImportError:
        return "skipped: matplotlib is not installed"
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5.2 + 0.32 * len(runs)))
    for k, run in enumerate(runs):
        _plot_run(left, right, run, f"C{k}")
    first = runs[0]
    xs = sorted({s["cameras"] for r in runs for s in r["steps"]})
    target = next(iter(first["steps"][0]["frames"]["per_camera"].values()))["target_fps"]
    left.axhline(TARGET["alert_p95_ms"] / 1000, color="grey", linestyle="--", label="target: p95 1 s at 4 cameras")
    left.set(xlabel="cameras", ylabel="alert latency, frame to browser (s)", yscale="log", xticks=xs)
    left.grid(True, which="both", alpha=0.3)
    # One legend under both plots: each run's colour is the same on the right.
    fig.legend(*left.get_legend_handles_labels(), fontsize=8, loc="lower center", ncol=2, frameon=False)
    right.axhline(target, color="grey", linestyle="--", label="camera's target fps")
    right.set(xlabel="cameras", ylabel="analysed frames/s per camera (mean, min-max)", xticks=xs)
    right.set_ylim(0, target * 1.3)
    right.grid(True, alpha=0.3)
    right.legend([right.get_lines()[-1]], ["camera's target fps"], fontsize=8, loc="lower left")
    info, clients = first["machine"], first["config"]["clients"]
    title = f"Argus load, {first['date']}: {info['cpu']}, {info['usable_cpus']} cores, {clients} WebSocket clients"
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.075 * len(runs) / 2 + 0.04, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def _plot_run(left: Any, right: Any, run: dict[str, Any], color: str) -> None:
    steps, label = run["steps"], series_label(run)
    xs = [s["cameras"] for s in steps]
    lat = [s["alerts"]["latency_ms"] for s in steps]
    left.plot(xs, [v.get("p50", float("nan")) / 1000 for v in lat], "o-", color=color, label=f"p50, {label}")
    left.plot(xs, [v.get("p95", float("nan")) / 1000 for v in lat], "s--", color=color, label=f"p95, {label}")
    fps = [s["frames"]["fps_per_camera"] for s in steps]
    means = [f["mean"] for f in fps]
    errors = [
        [m - f["min"] for m, f in zip(means, fps, strict=True)],
        [f["max"] - m for m, f in zip(means, fps, strict=True)],
    ]
    right.errorbar(xs, means, yerr=errors, fmt="o-", color=color, capsize=4, label=label)


# --- Main ---------------------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[load] {message}", file=sys.stderr, flush=True)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", default="4", help="camera counts, one step each: 1,2,4,8")
    parser.add_argument("--minutes", type=float, default=1.0, help="measured window per step")
    parser.add_argument("--clients", type=int, default=100, help="WebSocket clients on the live wall")
    parser.add_argument("--fps", type=float, help="analysis fps of every camera (default: the camera's own)")
    parser.add_argument(
        "--worker-threads", type=int, help="ARGUS_WORKER_THREADS of the camera worker (default: the product's, 1)"
    )
    parser.add_argument(
        "--no-clips", dest="clips", action="store_false", help="cameras record no incident clips (default: they do)"
    )
    parser.add_argument("--settle", type=float, default=10.0, help="seconds between streaming and measuring")
    parser.add_argument("--drain", type=float, default=5.0, help="seconds to wait for the window's last alerts")
    parser.add_argument("--warmup-timeout", type=float, default=180.0)
    parser.add_argument("--limit-seconds", type=float, default=3.0, help="how long to time the bare forward")
    parser.add_argument("--plot", type=Path, help="write the latency/throughput plot (PNG) here")
    parser.add_argument(
        "--replot", type=Path, nargs="+", metavar="JSON", help="only draw --plot from earlier results, one line each"
    )
    parser.add_argument("--labels", nargs="+", help="with --replot: each run's label, in order")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    args = parser.parse_args()
    args.camera_counts = [int(c) for c in args.cameras.split(",")]
    return args


def main() -> None:
    args = parse_args()
    if args.replot:
        runs = [json.loads(p.read_text()) for p in args.replot]
        for run, label in zip(runs, args.labels or [], strict=False):
            run["label"] = label
        print(plot(runs, args.plot or Path("load.png")))
        return
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)  # also when started with SIGINT ignored (a script's background job)
    started = time.monotonic()
    info = machine()
    log("timing the bare forward (limit)")
    limit = bare_forward(args.limit_seconds)
    result: dict[str, Any] = {
        "bench": "load",
        "what": "live cameras of real footage (realtime, looped) through Daphne + Celery worker + beat + Redis + "
        "database on 127.0.0.1, WebSocket clients on the site's live wall; alert latency from the frame that "
        "completed the rule to each client's receipt",
        "config": {k: v for k, v in vars(args).items() if k not in ("database_url", "camera_counts", "plot")}
        | {"rule": RULE, "zone": "whole frame", "operator": "resolves every incident as soon as it opens"},
        "targets": TARGET | {"rss_growth_max": FLAT_GROWTH},
        "limit": limit,
    }
    workdir = Path(tempfile.mkdtemp(prefix="argus-load-"))
    base = Stack(workdir)
    try:
        with scratch_database(args.database_url, workdir) as (db_url, db):
            redis_url, redis_kind = start_redis(base)
            setup_django(db_url, redis_url, workdir)
            os.environ.setdefault("ARGUS_DETECTOR", "localizer")  # the product's model, or fail loudly
            users, cookies = make_users(args.clients)
            run = Run(args, workdir, users, cookies, redis_url, base.pid("redis"), limit["capacity_fps"])
            result["data"] = {"database": db, "redis": redis_kind, "detector": os.environ["ARGUS_DETECTOR"]}
            steps = []
            for n in args.camera_counts:
                steps.append(run_step(run, n) | {"clients": args.clients})
            result["steps"] = steps
            _close_django()
    finally:
        base.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    result["meets_target"] = _target(steps)
    info["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
    result["machine"] = info
    result["date"] = datetime.now(tz=UTC).strftime("%Y-%m-%d")
    if args.plot:
        result["plot"] = plot([result], args.plot)
    result["elapsed_s"] = round(time.monotonic() - started, 1)
    print(json.dumps(result, indent=2))


def _target(steps: list[dict[str, Any]]) -> dict[str, Any]:
    at = next((s for s in steps if s["cameras"] == TARGET["cameras"]), None)
    if at is None:
        return {"alert_p95_at_4_cameras": "not measured in this run"}
    p95 = at["alerts"]["latency_ms"].get("p95")
    return {"alert_p95_at_4_cameras": p95 is not None and p95 <= TARGET["alert_p95_ms"]}


def _close_django() -> None:
    from django.db import connections

    connections.close_all()


if __name__ == "__main__":
    main()
