"""Rules: the rule engine's evaluations per second, and the batched event writer against COPY.

(a) ZoneRuleEngine.step over 50 zones (a mix of every kind: area and line) x 200 moving tracks,
    against the limit: the same number of bare point_in_polygon calls (one per zone x track, anchors
    computed beforehand) in a tight loop, measured in the same repetition. The engine does that test
    too, plus filters, anchors, segments and speed/heading, so its ratio says what all that costs.
(b) services.write_events (on Postgres: COPY into a temporary table, then INSERT ... ON CONFLICT,
    per batch; idempotent on camera x track x segment start) into Postgres, against a raw psycopg
    COPY of the same rows into the same table, in a scratch database this bench creates and drops.
    Skipped, with the reason, without a Postgres URL.

Prints one JSON object. Usage: DATABASE_URL=postgres://... python bench/rules.py [--reps 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # `python bench/rules.py` from anywhere imports the project
from bench._common import spread  # noqa: E402
from detection.geometry import Point, point_in_polygon  # noqa: E402
from detection.rules import RuleKind, ZoneRuleEngine, ZoneRuleSpec, anchor_point  # noqa: E402
from detection.tracker import Track  # noqa: E402

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
W, H = 1280, 720


# --- (a) the engine -------------------------------------------------------------------------

# 50 zones: mostly presence, as sites configure them, and some of every other kind.
KINDS = [RuleKind.PRESENCE] * 30 + [RuleKind.LOITERING] * 5 + [RuleKind.SPEED] * 5
KINDS += [RuleKind.WRONG_WAY] * 4 + [RuleKind.CROWD] * 3 + [RuleKind.CROSSING] * 3


def quad(rng: random.Random) -> list[Point]:
    x, y, w, h = rng.uniform(0, 0.7), rng.uniform(0, 0.7), rng.uniform(0.1, 0.3), rng.uniform(0.1, 0.3)
    return [(x, y), (x + w, y + h * 0.1), (x + w * 0.9, y + h), (x - w * 0.1, y + h * 0.9)]


def make_spec(rule_id: int, kind: str, rng: random.Random) -> tuple[ZoneRuleSpec, list[Point]]:
    """A rule of this kind and the polygon the bare limit tests (for a line: a quad of its size)."""
    area = quad(rng)
    extras: dict[str, dict[str, Any]] = {
        RuleKind.LOITERING: {"dwell_s": 5.0},
        RuleKind.SPEED: {"min_speed": 200.0},
        RuleKind.WRONG_WAY: {"direction_deg": 0.0},
        RuleKind.CROWD: {"min_count": 3},
        RuleKind.CROSSING: {"line": [area[0], area[2]]},
    }
    extra = dict(extras.get(kind, {}))
    if kind != RuleKind.CROSSING:
        extra["polygon"] = area
    spec = ZoneRuleSpec(rule_id=rule_id, kind=kind, actor_class="any", min_duration_s=1.0, **extra)
    return spec, area


def walkers(n: int, frames: int, rng: random.Random) -> list[list[Track]]:
    """n tracks on random straight walks, one list of tracks per frame (0.5 s apart)."""
    starts = [(rng.uniform(0, W), rng.uniform(0, H), rng.uniform(-40, 40), rng.uniform(-25, 25)) for _ in range(n)]
    out = []
    for f in range(frames):
        at = T0 + timedelta(seconds=0.5 * f)
        tracks = []
        for i, (x, y, dx, dy) in enumerate(starts):
            cx, cy = (x + dx * f) % W, (y + dy * f) % H
            box = (cx - 20, cy - 60, cx + 20, cy + 60)
            tracks.append(Track(i + 1, "person", box, 0.9, T0, at))
        out.append(tracks)
    return out


def engine_rate(specs: list[ZoneRuleSpec], frames: list[list[Track]]) -> tuple[float, int]:
    engine = ZoneRuleEngine(specs)
    hits = 0
    started = time.perf_counter()
    for f, tracks in enumerate(frames):
        hits += len(engine.step(tracks, T0 + timedelta(seconds=0.5 * f), W, H))
    elapsed = time.perf_counter() - started
    return len(specs) * len(frames[0]) * len(frames) / elapsed, hits


def limit_rate(polygons: list[list[Point]], frames: list[list[Track]]) -> float:
    anchors = [[anchor_point(t.box, W, H) for t in tracks] for tracks in frames]
    inside = 0
    started = time.perf_counter()
    for points in anchors:
        for polygon in polygons:
            for p in points:
                inside += point_in_polygon(p, polygon)
    elapsed = time.perf_counter() - started
    return len(polygons) * len(frames[0]) * len(frames) / elapsed


def bench_engine(zones: int, tracks: int, frames: int, reps: int) -> dict[str, Any]:
    rng = random.Random(7)  # the same zones and walks in every run
    built = [make_spec(i + 1, KINDS[i % len(KINDS)], rng) for i in range(zones)]
    specs, polygons = [s for s, _ in built], [p for _, p in built]
    walks = walkers(tracks, frames, rng)
    engine_runs, limit_runs, hits = [], [], 0
    for _ in range(reps):  # alternate, so machine load hits both
        rate, hits = engine_rate(specs, walks)
        engine_runs.append(rate)
        limit_runs.append(limit_rate(polygons, walks))
    return {
        "what": f"ZoneRuleEngine.step: {zones} zones x {tracks} tracks x {frames} frames",
        "zone_kinds": {str(k): [specs[i].kind for i in range(zones)].count(k) for k in RuleKind},
        "limit": "the same number of bare detection.geometry.point_in_polygon calls, anchors precomputed",
        "engine_evaluations_per_s": spread(engine_runs),
        "limit_evaluations_per_s": spread(limit_runs),
        "ratio": spread([e / lim for e, lim in zip(engine_runs, limit_runs, strict=True)]),
        "frame_ms_at_this_load": round(1000 * zones * tracks / statistics.median(engine_runs), 2),
        "hits_per_run": hits,
    }


# --- (b) the event writer -------------------------------------------------------------------

COLUMNS = "camera_id, rule_id, incident_id, track_id, segment_start, segment_end, actor_class, action, score, boxes"


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _setup_django() -> tuple[Any, Any]:
    """Django on the scratch database, its tables made straight from the models (no migrations)."""
    import django
    from django.apps import apps
    from django.conf import settings
    from django.core.management import call_command

    django.setup()
    settings.MIGRATION_MODULES = {app.label: None for app in apps.get_app_configs()}
    call_command("migrate", run_syncdb=True, verbosity=0)
    from monitor.models import AlertRule, Camera, Site, Zone

    site = Site.objects.create(name="Bench")
    camera = Camera.objects.create(site=site, name="Bench cam", stream_url="/dev/null")
    zone = Zone.objects.create(camera=camera, name="All", points=[[0, 0], [1, 0], [1, 1], [0, 1]])
    rule = AlertRule.objects.create(site=site, zone=zone, name="Bench rule")
    return camera, rule


def rows(n: int, camera_id: int, rule_id: int) -> list[tuple[Any, ...]]:
    boxes = json.dumps([[round(0.5 * i, 1), 0.1, 0.2, 0.3, 0.6] for i in range(8)])  # 8 sampled boxes
    return [
        (camera_id, rule_id, None, str(i), T0 + timedelta(seconds=i), T0 + timedelta(seconds=i + 4))
        + ("person", "present", 0.9, boxes)
        for i in range(n)
    ]


def _timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def bench_writer(admin_url: str, n: int, batch: int, reps: int) -> dict[str, Any]:
    import psycopg

    name = f"argus_bench_{uuid.uuid4().hex[:10]}"
    os.environ["DATABASE_URL"] = _with_database(admin_url, name)  # before Django reads its settings
    os.environ.setdefault("SECRET_KEY", "bench-only-key")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "monitor.settings")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        server = admin.execute("SHOW server_version").fetchone()
    try:
        return _measure_writer(_with_database(admin_url, name), n, batch, reps) | {
            "postgres": server[0] if server else "?",
            "psycopg": psycopg.__version__,
        }
    finally:
        _close_django()
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _close_django() -> None:
    """Django's connections to the scratch database must go before it is dropped."""
    if "django.db" in sys.modules:
        from django.db import connections

        connections.close_all()


def _measure_writer(url: str, n: int, batch: int, reps: int) -> dict[str, Any]:
    import psycopg

    camera, rule = _setup_django()
    from monitor import services
    from monitor.models import Event

    data = rows(n, camera.pk, rule.pk)
    fields = [c.strip() for c in COLUMNS.split(",")]

    def write() -> None:  # building the model rows is part of the writer's cost
        services.write_events([Event(**dict(zip(fields, r, strict=True))) for r in data], batch_size=batch)

    with psycopg.connect(url, autocommit=True) as raw:

        def copy() -> None:
            with raw.transaction(), raw.cursor() as cur, cur.copy(f"COPY monitor_event ({COLUMNS}) FROM STDIN") as cp:
                for r in data:
                    cp.write_row(r)

        writer_runs, copy_runs, rewrite_runs = [], [], []
        for _ in range(reps):
            raw.execute("TRUNCATE monitor_event")
            writer_runs.append(n / _timed(write))
            rewrite_runs.append(n / _timed(write))  # every row conflicts: the idempotent path
            assert Event.objects.count() == n, "a repeated write must not duplicate"
            raw.execute("TRUNCATE monitor_event")
            copy_runs.append(n / _timed(copy))
    return {
        "what": f"{n} events (8 boxes each) via services.write_events (COPY into a temp table, then one "
        f"INSERT ... ON CONFLICT per batch of {batch}) vs psycopg COPY of the same rows into the same table",
        "writer_events_per_s": spread(writer_runs),
        "rewrite_events_per_s": spread(rewrite_runs),
        "copy_events_per_s": spread(copy_runs),
        "ratio": spread([w / c for w, c in zip(writer_runs, copy_runs, strict=True)]),
        "target_ratio": 0.5,
        "idempotent": True,
    }


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
    parser.add_argument("--zones", type=int, default=50)
    parser.add_argument("--tracks", type=int, default=200)
    parser.add_argument("--frames", type=int, default=20, help="engine steps per repetition")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    args = parser.parse_args()
    started = time.monotonic()
    info = machine()
    result: dict[str, Any] = {"bench": "rules", "config": {k: v for k, v in vars(args).items() if k != "database_url"}}
    result["engine"] = bench_engine(args.zones, args.tracks, args.frames, args.reps)
    if urlsplit(args.database_url).scheme.startswith("postgres"):
        result["event_writer"] = bench_writer(args.database_url, args.events, args.batch, args.reps)
    else:
        result["event_writer"] = {"skipped": "needs DATABASE_URL (or --database-url) pointing at Postgres"}
    info["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
    result["machine"] = info
    result["elapsed_s"] = round(time.monotonic() - started, 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
