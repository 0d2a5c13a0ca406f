"""Hostile and broken inputs: video files that are cut short, empty, random or declare an absurd
picture; camera URLs whose server accepts and never answers; malformed JSON to every endpoint that
takes a body. Each ends in a clear, human answer (a camera's health and reason, a 4xx with a JSON
error) and never in an exception, a hang or a 5xx; the next good input still works."""

from __future__ import annotations

import json
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.authtoken.models import Token

from detection import tasks
from detection.sources import PermanentSourceError, SourceOptions, iter_frames
from monitor import services
from monitor.models import Camera, HealthState, Incident, Site
from monitor.services import OFFLINE_INCIDENT
from monitor.uploads import check_video_upload
from tests.conftest import REPO
from tests.dashboard.api.conftest import Everything, make_everything
from tests.detection.conftest import CountingDetector, Worker, counting_detector, pushes  # noqa: F401  (fixtures)

FIGHT = REPO.parent / "shared" / "data" / "fight" / "fight" / "fi001.mp4"
OWNER = "test-worker"
ANALYSIS_BOUND_S = 30.0  # one slice on a hostile input; far above what it takes (a hang fails here)


@pytest.fixture
def good_video() -> Path:
    """A real recording (H.264 mp4, 480x360, 53 frames); the hostile files are made from it."""
    if not FIGHT.is_file():
        pytest.fail(f"cannot inject broken videos without the real one they are cut from: {FIGHT} is missing")
    return FIGHT


# --- Hostile video files through the camera worker ------------------------------------------


def y4m(path: Path, width: int, height: int) -> Path:
    """A raw-video header declaring a picture of any size, and a few bytes. FFmpeg's y4m demuxer
    believes it up to its own image size check (about 16k x 16k, 384 MB a frame)."""
    path.write_bytes(f"YUV4MPEG2 W{width} H{height} F25:1 C420jpeg\n".encode() + b"FRAME\n" + b"\x80" * 64)
    return path


@dataclass(frozen=True)
class Hostile:
    name: str
    make: Callable[[Path, bytes], Path]  # (folder, the good video's bytes) -> the hostile file
    reason: str  # a regular expression the camera's health reason must match


HOSTILE = [
    Hostile(
        "cut at half its bytes (its index is at the end)",
        lambda d, good: _write(d / "half.mp4", good[: len(good) // 2]),
        r"half\.mp4 is not a playable video file \(.+\)",
    ),
    Hostile(
        "cut inside its header",
        lambda d, good: _write(d / "header.mp4", good[:20]),
        r"header\.mp4 is not a playable video file \(.+\)",
    ),
    Hostile("zero bytes", lambda d, good: _write(d / "empty.mp4", b""), r"the file is empty \(0 bytes\)"),
    Hostile(
        "random bytes named .mp4",
        lambda d, good: _write(d / "random.mp4", random.Random(7).randbytes(64 * 1024)),
        r"random\.mp4 (is not a playable video file \(.+\)|has no video stream)",
    ),
    Hostile(
        "a y4m that declares 15000x15000",
        lambda d, good: y4m(d / "huge.y4m", 15000, 15000),
        r"huge\.y4m declares a 15000x15000 picture \(225,000,000 pixels\), over the limit of 33,177,600 pixels",
    ),
    # Beyond what FFmpeg itself accepts (its image size check): refused when opened.
    Hostile(
        "a y4m that declares 60000x60000",
        lambda d, good: y4m(d / "absurd.y4m", 60000, 60000),
        r"absurd\.y4m is not a playable video file \(.+\)",
    ),
]


def _write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


def analyse_now(camera_id: int, bound_s: float = ANALYSIS_BOUND_S, **kwargs: Any) -> tuple[tasks.DjangoSink, float]:
    """One slice of the camera task, as a worker runs it, in a thread of its own so that a hang fails
    the test after `bound_s`; returns the sink and the seconds it took."""
    sinks: list[tasks.DjangoSink] = []

    def run() -> str:
        assert services.acquire_camera_lease(camera_id, OWNER)
        camera = Camera.objects.select_related("site").get(pk=camera_id)
        sinks.append(tasks.analyse(camera, OWNER, realtime=False, **kwargs))
        return "done"

    worker = Worker(run)
    worker.join(bound_s)
    return sinks[0], time.monotonic() - worker.started


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("hostile", HOSTILE, ids=lambda h: h.name)
def test_a_hostile_file_fails_its_camera_with_a_reason_and_a_good_file_then_analyses(
    hostile: Hostile,
    camera: Camera,
    good_video: Path,
    tmp_path: Path,
    counting_detector: CountingDetector,  # noqa: F811
    pushes: Any,  # noqa: F811
) -> None:
    bad = hostile.make(tmp_path, good_video.read_bytes())
    Camera.objects.filter(pk=camera.pk).update(stream_url=str(bad))

    sink, _ = analyse_now(camera.pk, max_frames=20)

    camera.refresh_from_db()
    assert sink.failed
    assert camera.health_state == HealthState.FAILED, camera.health_reason
    assert re.search(hostile.reason, camera.health_reason), camera.health_reason
    assert camera.lease_owner == "" and counting_detector.seen == []
    outage = Incident.objects.get(camera=camera, kind=OFFLINE_INCIDENT)
    assert outage.explanation["reason"] == camera.health_reason, "operators are told at once, with the reason"

    # The operator points the camera at a good file and saves it: it analyses again.
    Camera.objects.filter(pk=camera.pk).update(stream_url=str(good_video))
    services.camera_saved(camera.pk, None)
    sink, _ = analyse_now(camera.pk, max_frames=5)
    camera.refresh_from_db()
    assert not sink.failed and len(counting_detector.seen) == 5
    assert camera.health_state == HealthState.ONLINE and camera.health_reason == ""
    outage.refresh_from_db()
    assert outage.status == Incident.Status.RESOLVED


@pytest.mark.django_db(transaction=True)
def test_a_recording_cut_off_after_its_index_plays_what_it_holds(
    camera: Camera,
    good_video: Path,
    tmp_path: Path,
    counting_detector: CountingDetector,  # noqa: F811
    pushes: Any,  # noqa: F811
) -> None:
    # The same packets with the index (moov) before them, as cameras that stream MP4 write it.
    whole = remux(good_video, tmp_path / "faststart.mp4", "mp4", movflags="faststart").read_bytes()
    cut = _write(tmp_path / "cut.mp4", whole[: len(whole) // 2])
    Camera.objects.filter(pk=camera.pk).update(stream_url=str(cut), analysis_fps=25)

    sink, _ = analyse_now(camera.pk, max_frames=100)

    camera.refresh_from_db()
    assert not sink.failed and 5 < len(counting_detector.seen) < 53  # part of the 53 frames, not all
    assert camera.health_state == HealthState.ONLINE


class Packets:
    """A packet tap that counts what was demuxed."""

    def __init__(self) -> None:
        self.streams, self.packets = 0, 0

    def stream_opened(self, stream: Any) -> None:
        self.streams += 1

    def packet(self, packet: Any, when: Any) -> None:
        self.packets += 1


def test_the_declared_size_is_refused_before_a_packet_is_read(good_video: Path) -> None:
    tap = Packets()
    one_pixel_less = SourceOptions(realtime=False, max_pixels=480 * 360 - 1)
    with pytest.raises(PermanentSourceError, match=r"declares a 480x360 picture \(172,800 pixels\).*172,799 pixels"):
        next(iter_frames(str(good_video), one_pixel_less, tap=tap))
    assert (tap.streams, tap.packets) == (0, 0)

    frames = iter_frames(str(good_video), SourceOptions(realtime=False, max_pixels=480 * 360), tap=tap)
    try:
        assert next(frames).image.shape[:2] == (360, 480)
    finally:
        frames.close()


@pytest.mark.parametrize(
    "content",
    [b"", random.Random(7).randbytes(4096), b"\x47" + random.Random(8).randbytes(4095)],
    ids=["zero bytes", "random bytes", "random bytes after an MPEG-TS sync byte"],
)
def test_the_upload_check_refuses_what_is_not_a_video(content: bytes) -> None:
    with pytest.raises(ValidationError, match="not a video container Argus can read"):
        check_video_upload(SimpleUploadedFile("clip.mp4", content))


def remux(source: Path, target: Path, container: str, **options: str) -> Path:
    with av.open(str(source)) as src, av.open(str(target), "w", format=container, options=options) as out:
        stream_in = src.streams.video[0]
        stream_out = out.add_stream_from_template(stream_in)
        for packet in src.demux(stream_in):
            if packet.dts is not None:
                packet.stream = stream_out
                out.mux(packet)
    return target


def test_the_upload_check_accepts_real_mp4_ts_and_m2ts(good_video: Path, tmp_path: Path) -> None:
    ts = remux(good_video, tmp_path / "clip.ts", "mpegts")
    mts = remux(good_video, tmp_path / "clip.mts", "mpegts", mpegts_m2ts_mode="1")
    assert mts.read_bytes()[4] == 0x47 != mts.read_bytes()[0], "a 192-byte M2TS packet: timestamp, then sync"
    for video in (good_video, ts, mts):
        check_video_upload(SimpleUploadedFile(video.name, video.read_bytes()))


# --- A camera whose server accepts and never answers ----------------------------------------


class SilentServer:
    """Accepts TCP connections on loopback and never sends a byte."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)  # so the accepting thread sees the stop flag
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.accepted.append(conn)

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()
        for conn in self.accepted:
            conn.close()


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    with SilentServer() as server:
        yield server


SLICE_S = 4


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("url", ["rtsp://127.0.0.1:{port}/x", "http://127.0.0.1:{port}/x.mp4"])
def test_a_camera_that_never_answers_is_offline_with_the_reason_and_the_slice_ends_in_time(
    url: str,
    camera: Camera,
    silent_server: SilentServer,
    settings: Any,
    counting_detector: CountingDetector,  # noqa: F811
    pushes: Any,  # noqa: F811
) -> None:
    settings.ARGUS_SOURCE_OPEN_TIMEOUT_SECONDS = 1.0
    settings.ARGUS_CAMERA_RECONNECT_MAX_SECONDS = 0.5
    settings.ARGUS_CAMERA_SLICE_SECONDS = SLICE_S
    Camera.objects.filter(pk=camera.pk).update(stream_url=url.format(port=silent_server.port))

    sink, elapsed = analyse_now(camera.pk, bound_s=SLICE_S + 10)

    camera.refresh_from_db()
    assert silent_server.accepted, "the fault was not injected: the camera never connected"
    assert sink.slice_done and elapsed < SLICE_S + 1.0 + 0.5 + 2.0  # slice + one open + one backoff + slack
    assert camera.health_state == HealthState.OFFLINE
    assert camera.health_reason == f"cannot open {camera.stream_url}: no answer within 1 s"
    assert camera.failure_streak >= 2, "it kept retrying within the slice"


# --- Malformed JSON to every endpoint that takes a body -------------------------------------

WRITE_METHODS = ("post", "put", "patch")


def routes() -> list[tuple[str, Any]]:
    """(route, view) for every URL pattern, joined as Django's ResolverMatch.route joins them."""

    def walk(patterns: list[Any], prefix: str) -> list[tuple[str, Any]]:
        found: list[tuple[str, Any]] = []
        for p in patterns:
            route = URLResolver._join_route(prefix, str(p.pattern))
            if isinstance(p, URLResolver):
                found += walk(p.url_patterns, route)
            elif isinstance(p, URLPattern):
                found.append((route, p.callback))
        return found

    return walk(get_resolver().url_patterns, "")


def json_routes() -> list[tuple[str, Any]]:
    """The API's routes and the dashboard's JSON endpoints (the admin and HTML forms are not JSON)."""
    return [(r, view) for r, view in routes() if r.startswith("api/") or r.rstrip("$").endswith(".json")]


def drf_methods(view: Any) -> set[str] | None:
    """Methods a DRF route serves (None for a plain Django view: ask it)."""
    actions = getattr(view, "actions", None)
    if actions is not None:
        return set(actions)
    cls = getattr(view, "cls", None)
    if cls is None:
        return None
    return {m for m in cls.http_method_names if hasattr(cls, m)}


def concrete_path(route: str, ids: dict[str, int]) -> str:
    """The route with the id of a real object of its resource (/api/v1/zones/{id}/, /cameras/{id}/...)."""
    path = "/" + route.lstrip("^").rstrip("$")
    resource = path.removeprefix("/api/v1/").strip("/").split("/")[0]
    path = re.sub(r"\(\?P<pk>[^)]*\)|<int:\w+>", lambda m: str(ids[resource]), path)
    assert "<" not in path and "(" not in path, f"fill in {route}"
    return path


def ids_of(e: Everything) -> dict[str, int]:
    return {
        "sites": e.site.pk,
        "cameras": e.camera.pk,
        "zones": e.zone.pk,
        "rules": e.rule.pk,
        "channels": e.channel.pk,
        "incidents": e.incident.pk,
        "events": e.event.pk,
        "deliveries": e.delivery.pk,
    }


@pytest.fixture
def everything(site: Site) -> Everything:
    return make_everything(site, "North", "rtsp://cam:pw@10.0.0.5/stream", "whsec_" + "A" * 43)


@pytest.fixture
def admin_client(owner: User, settings: Any) -> Client:
    """The site's admin: a token for the API, a session for the dashboard's JSON endpoints."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    client = Client(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=owner).key}", raise_request_exception=False)
    client.force_login(owner)
    return client


def deep(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


WRONG = ({"a": 1}, [1, 2], "not a number", 12345, True, None)


def wrong_types(fields: list[str], shift: int) -> bytes:
    """Every field set to a value of another type (each body shifts which one)."""
    return json.dumps({f: WRONG[(i + shift) % len(WRONG)] for i, f in enumerate(fields)}).encode()


def bodies(fields: list[str]) -> dict[str, tuple[bytes, str]]:
    """name -> (body, content type)."""
    first = fields[0] if fields else "name"
    cases = {
        "truncated": (b'{"name": "unterminated', "application/json"),
        "an array, not an object": (b"[1, 2, 3]", "application/json"),
        "a string, not an object": (b'"text"', "application/json"),
        "10,000-deep array": (deep(10_000), "application/json"),
        "10,000-deep array in a field": (b'{"%s": ' % first.encode() + deep(10_000) + b"}", "application/json"),
        "a 2 MB string": (
            json.dumps({f: "x" * 2 * 1024 * 1024 for f in fields[:1] or ["name"]}).encode(),
            "application/json",
        ),
        "a body over the 2.5 MB upload limit": (
            json.dumps({"name": "x" * 3 * 1024 * 1024}).encode(),
            "application/json",
        ),
        "NaN in every field": (("{" + ", ".join(f'"{f}": NaN' for f in fields) + "}").encode(), "application/json"),
        "1e999 in every field": (("{" + ", ".join(f'"{f}": 1e999' for f in fields) + "}").encode(), "application/json"),
        "-1e999 in every field": (
            ("{" + ", ".join(f'"{f}": -1e999' for f in fields) + "}").encode(),
            "application/json",
        ),
        "invalid UTF-8": (b'{"name": "\xff\xfe\xfd"}', "application/json"),
        "empty": (b"", "application/json"),
        "wrong content type": (b'{"name": "x"}', "text/plain"),
        "form-encoded": (b"name=x", "application/x-www-form-urlencoded"),
    }
    for shift in range(len(WRONG)):
        cases[f"wrong types ({shift})"] = (wrong_types(fields, shift), "application/json")
    return cases


def schema_fields(client: Client) -> dict[tuple[str, str], list[str]]:
    """(path template, method) -> the request body's fields, from the OpenAPI schema."""
    schema = client.get("/api/v1/schema/", {"format": "json"}).json()
    components = schema["components"]["schemas"]
    fields = {}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
            ref = content.get("schema", {}).get("$ref", "")
            component = components.get(ref.rsplit("/", 1)[-1], {}) if ref else {}
            fields[(path, method)] = sorted(component.get("properties", {}))
    return fields


# The dashboard's JSON endpoints have no schema: the fields of their bodies.
DASHBOARD_FIELDS = {"cameras/<int:camera_id>/zones/preview.json": ["zone", "rule"]}


def template_of(path: str) -> str:
    return re.sub(r"/\d+/", "/{id}/", path)


def fields_for(route: str, method: str, path: str, schema: dict[tuple[str, str], list[str]]) -> list[str]:
    if not route.startswith("api/"):  # a dashboard endpoint; one that reads no body is sent these anyway
        return DASHBOARD_FIELDS.get(route, ["name"])
    assert (template_of(path), method) in schema, f"{method.upper()} {template_of(path)} is not in the schema"
    return schema[(template_of(path), method)]


def write_endpoints(client: Client, ids: dict[str, int]) -> list[tuple[str, str, str]]:
    """(route, method, path) for every JSON route and write method it serves."""
    found = []
    for route, view in json_routes():
        methods = drf_methods(view)
        for method in WRITE_METHODS:
            path = concrete_path(route, ids)
            if methods is None:  # a plain view: refused methods answer 405
                served = client.generic(method.upper(), path, b"{}", "application/json").status_code != 405
            else:
                served = method in methods
            if served:
                found.append((route, method, path))
    return found


def is_json_error(response: Any) -> bool:
    try:
        body = json.loads(response.content)
    except ValueError:
        return False
    return isinstance(body, dict) and bool(body)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)  # each request commits on its own, as in production
def test_malformed_json_to_every_endpoint_is_a_4xx_with_a_json_error_never_a_5xx(
    everything: Everything, admin_client: Client
) -> None:
    schema = schema_fields(admin_client)
    endpoints = write_endpoints(admin_client, ids_of(everything))
    failures, sent = [], 0
    for route, method, path in endpoints:
        for name, (body, content_type) in bodies(fields_for(route, method, path, schema)).items():
            response = admin_client.generic(method.upper(), path, body, content_type)
            sent += 1
            if response.status_code >= 500 or (response.status_code >= 400 and not is_json_error(response)):
                answer = f"{response.status_code}: {response.content[:200]!r}"
                failures.append(f"{method.upper()} {path} [{name}] -> {answer}")
    print(f"{sent} malformed bodies to {len(endpoints)} endpoints")
    schema_writes = {(path, method) for path, method in schema if method in WRITE_METHODS}
    assert schema_writes <= {(template_of(path), method) for _, method, path in endpoints}, "every API write is sent"
    assert len(schema_writes) >= 15 and any(route in DASHBOARD_FIELDS for route, _, _ in endpoints)
    assert not failures, f"{len(failures)} failed:\n" + "\n".join(failures)
