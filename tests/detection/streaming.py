"""Real stream servers on loopback for source tests: HTTP (files, MJPEG, a stalling response),
a TCP server that accepts and says nothing, rtsp-server-perl fed by ffmpeg, and a minimal RTSP
server that relays ffmpeg's RTP over TCP (interleaved), which rtsp-server-perl does not offer.

Every wait here is bounded; every process and thread started here is stopped by its owner.
"""

from __future__ import annotations

import contextlib
import http.server
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import av
import cv2

from tests.conftest import require_or_skip

LOOPBACK = "127.0.0.1"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def wait_for(condition: Callable[[], object], timeout_s: float, what: str, every_s: float = 0.05) -> float:
    """Poll until `condition()` is truthy; returns the seconds it took, fails the test after timeout_s."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(every_s)
    return time.monotonic() - started


def needs(*programs: str) -> None:
    for program in programs:
        if shutil.which(program) is None:
            require_or_skip(f"{program} is not installed (apt-get install -y {program})")


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *args], check=True, timeout=120)


# Small, cheap encodes: the machine running the tests is shared.
X264 = ["-an", "-vf", "scale=320:-2", "-r", "10", "-c:v", "libx264", "-preset", "ultrafast", "-g", "10"]


def footage_jpegs(footage: Path, count: int = 20) -> list[bytes]:
    with av.open(str(footage)) as container:
        frames = container.decode(video=0)
        images = [next(frames).to_ndarray(format="bgr24", width=320, height=240) for _ in range(count)]
    return [cv2.imencode(".jpg", image)[1].tobytes() for image in images]


# --- TCP that accepts and then says nothing ------------------------------------------------------


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """Accepts connections and never answers: the case a read without a timeout hangs on forever."""
    listener = socket.create_server((LOOPBACK, 0))
    listener.settimeout(0.2)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                accepted.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        for conn in accepted:
            conn.close()
        listener.close()


# --- HTTP: files, MJPEG, a response that stalls half-way -----------------------------------------


class _Handler(http.server.SimpleHTTPRequestHandler):
    server: LoopbackHttp

    def log_message(self, format: str, *args: object) -> None:  # quiet test output
        pass

    def do_GET(self) -> None:
        if self.path == "/live.mjpg":
            self._mjpeg()
        elif self.path.startswith("/stall/"):
            self._stall(self.path.removeprefix("/stall/"))
        else:
            super().do_GET()

    def _mjpeg(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.end_headers()
        index = 0
        with contextlib.suppress(OSError):  # the client hung up
            while not self.server.stopping.is_set():
                jpeg = self.server.jpegs[index % len(self.server.jpegs)]
                head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                self.wfile.write(head.encode() + jpeg + b"\r\n")
                index += 1
                self.server.stopping.wait(1 / self.server.mjpeg_fps)

    def _stall(self, name: str) -> None:
        """Promise the whole file, send half, then nothing: a server that hangs mid-stream."""
        data = (Path(self.directory) / name).read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        with contextlib.suppress(OSError):
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.server.stopping.wait(60)


class LoopbackHttp(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, directory: Path, jpegs: list[bytes] | None = None, mjpeg_fps: float = 10) -> None:
        self.directory, self.jpegs, self.mjpeg_fps = directory, jpegs or [], mjpeg_fps
        self.stopping = threading.Event()
        super().__init__((LOOPBACK, 0), lambda *a: _Handler(*a, directory=str(directory)))

    @property
    def base(self) -> str:
        return f"http://{LOOPBACK}:{self.server_address[1]}"

    def __enter__(self) -> LoopbackHttp:
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()


# --- RTSP: rtsp-server-perl fed by ffmpeg ---------------------------------------------------------


def rtsp_status(port: int, path: str = "/live") -> int | None:
    """The status of a DESCRIBE: 200 once a publisher is streaming to `path`; None if nobody listens."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1) as conn:
            conn.sendall(f"DESCRIBE rtsp://{LOOPBACK}:{port}{path} RTSP/1.0\r\nCSeq: 1\r\n\r\n".encode())
            return int(conn.recv(4096).split(b" ", 2)[1])
    except (OSError, ValueError, IndexError):
        return None


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


class PerlRtspServer:
    """Debian's rtsp-server-perl with ffmpeg publishing real footage to it (ANNOUNCE/RECORD).
    It serves clients over UDP only: a SETUP asking for TCP gets 400."""

    def __init__(self, footage: Path, log_dir: Path) -> None:
        self.footage, self.log_dir = footage, log_dir
        self.client_port, self.source_port = free_port(), free_port()
        self.rtp_start = 20000 + 2 * (self.client_port % 10000)  # away from other test runs' ports
        self.server: subprocess.Popen[bytes] | None = None
        self.publisher: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"rtsp://{LOOPBACK}:{self.client_port}/live"

    def start(self) -> None:
        """Start the server, wait until it listens, then start publishing (returns before the stream is up)."""
        args = ["--clientport", str(self.client_port), "--serverport", str(self.source_port)]
        args += ["--client_listen_address", LOOPBACK, "--source_listen_address", LOOPBACK]
        args += ["--rtp_start_port", str(self.rtp_start), "--loglevel", "1"]
        with open(self.log_dir / "rtsp-server.log", "ab") as log:
            self.server = subprocess.Popen(["rtsp-server-perl", *args], stdout=log, stderr=subprocess.STDOUT)
        wait_for(lambda: rtsp_status(self.client_port) is not None, 15, "rtsp-server-perl to listen")
        publish = ["ffmpeg", "-nostdin", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", str(self.footage)]
        publish += [*X264, "-tune", "zerolatency", "-f", "rtsp", f"rtsp://{LOOPBACK}:{self.source_port}/live"]
        with open(self.log_dir / "publisher.log", "ab") as log:
            self.publisher = subprocess.Popen(publish, stdout=log, stderr=subprocess.STDOUT)

    def wait_streaming(self, timeout_s: float = 15) -> None:
        wait_for(lambda: rtsp_status(self.client_port) == 200, timeout_s, "the publisher's stream")

    def stop(self) -> None:
        _stop(self.publisher)
        _stop(self.server)

    def __enter__(self) -> PerlRtspServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- RTSP over TCP: a minimal server relaying ffmpeg's RTP, interleaved ---------------------------


class InterleavedRtspServer:
    """Speaks just enough RTSP (OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN) to serve one H.264 stream
    over TCP interleaved ($ channel length packet); SETUP over UDP gets 461 Unsupported Transport.
    The packets are ffmpeg's (`-f rtp` from real footage), relayed as they arrive."""

    def __init__(self, footage: Path, work_dir: Path) -> None:
        self.footage, self.sdp_path = footage, work_dir / "stream.sdp"
        self.rtp = self._bind_rtp_pair()
        self.listener = socket.create_server((LOOPBACK, 0))
        self.listener.settimeout(0.2)
        self.players: list[tuple[socket.socket, threading.Lock]] = []
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.ffmpeg: subprocess.Popen[bytes] | None = None
        self.setups: list[str] = []  # the Transport header of every SETUP, for the test to inspect

    @staticmethod
    def _bind_rtp_pair() -> list[socket.socket]:
        # ffmpeg sends RTP to an even port and RTCP to the next one: bind both, so no ICMP errors.
        for _ in range(50):
            rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            rtp.bind((LOOPBACK, 0))
            port = rtp.getsockname()[1]
            rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                if port % 2:
                    raise OSError("odd port")
                rtcp.bind((LOOPBACK, port + 1))
            except OSError:
                rtp.close()
                rtcp.close()
                continue
            rtp.settimeout(0.2)
            return [rtp, rtcp]
        raise RuntimeError("no free pair of UDP ports")

    @property
    def url(self) -> str:
        return f"rtsp://{LOOPBACK}:{self.listener.getsockname()[1]}/live"

    def __enter__(self) -> InterleavedRtspServer:
        rtp_port = self.rtp[0].getsockname()[1]
        cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", str(self.footage)]
        cmd += [*X264, "-tune", "zerolatency", "-f", "rtp", "-sdp_file", str(self.sdp_path)]
        self.ffmpeg = subprocess.Popen([*cmd, f"rtp://{LOOPBACK}:{rtp_port}?pkt_size=1200"])
        wait_for(lambda: self.sdp_path.is_file() and b"m=video" in self.sdp_path.read_bytes(), 15, "ffmpeg's SDP")
        for target in (self._accept, self._relay):
            self.threads.append(threading.Thread(target=target, daemon=True))
            self.threads[-1].start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        _stop(self.ffmpeg)
        for thread in self.threads:
            thread.join(5)
        for conn, _ in self.players:
            conn.close()
        for sock in [*self.rtp, self.listener]:
            sock.close()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            with contextlib.suppress(TimeoutError):
                conn, _ = self.listener.accept()
                thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
                self.threads.append(thread)
                thread.start()

    def _relay(self) -> None:
        while not self.stopping.is_set():
            try:
                packet = self.rtp[0].recv(65536)
            except TimeoutError:
                continue
            frame = b"$\x00" + len(packet).to_bytes(2, "big") + packet
            for conn, lock in list(self.players):
                try:
                    with lock:
                        conn.sendall(frame)
                except OSError:
                    self.players.remove((conn, lock))

    def _serve(self, conn: socket.socket) -> None:
        lock = threading.Lock()
        reader = conn.makefile("rb")
        with contextlib.suppress(OSError, ValueError), conn:
            while not self.stopping.is_set():
                request = self._read_request(reader)
                if request is None:
                    return
                reply, body, play = self._answer(request)
                with lock:
                    conn.sendall(reply + body)
                if play:
                    self.players.append((conn, lock))

    @staticmethod
    def _read_request(reader: BinaryIO) -> dict[str, str] | None:
        first = reader.read(1)
        while first == b"$":  # an interleaved RTCP report from the client: skip it
            header = reader.read(3)
            reader.read(int.from_bytes(header[1:3], "big"))
            first = reader.read(1)
        line = first + reader.readline()
        if not line.strip():
            return None
        request = {"method": line.split(b" ")[0].decode()}
        while (line := reader.readline().strip()) != b"":
            name, _, value = line.decode().partition(":")
            request[name.strip().lower()] = value.strip()
        return request

    def _answer(self, request: dict[str, str]) -> tuple[bytes, bytes, bool]:
        method, cseq = request["method"], request.get("cseq", "0")
        headers, body, status = [f"CSeq: {cseq}"], b"", "200 OK"
        if method == "OPTIONS":
            headers.append("Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER")
        elif method == "DESCRIBE":
            body = self.sdp_path.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") + b"a=control:track0\r\n"
            headers += ["Content-Type: application/sdp", f"Content-Base: {self.url}/", f"Content-Length: {len(body)}"]
        elif method == "SETUP":
            self.setups.append(request.get("transport", ""))
            if "interleaved" not in request.get("transport", "") and "TCP" not in request.get("transport", ""):
                status = "461 Unsupported Transport"
            else:
                headers += ["Transport: RTP/AVP/TCP;unicast;interleaved=0-1", "Session: 5150"]
        elif method == "PLAY":
            headers += ["Session: 5150", "Range: npt=0.000-"]
        reply = f"RTSP/1.0 {status}\r\n" + "".join(h + "\r\n" for h in headers) + "\r\n"
        return reply.encode(), body, method == "PLAY"
