"""Run the whole stack in the foreground: web (Daphne), Celery worker and beat, plus a bundled
Redis when REDIS_URL is not set. Ctrl-C (or SIGTERM) stops them all; if one dies, all stop."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

BUNDLED_REDIS_PORT = 6399


def _bin(name: str) -> str:
    """A program from this virtual environment if it is there, else from PATH."""
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if not found:
        raise CommandError(f"{name} not found; run `make venv` first")
    return found


def _wait_for_port(host: str, port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise CommandError(f"nothing answered on {host}:{port} after {timeout_s:.0f} s")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--concurrency", type=int, default=2, help="worker processes for cameras and videos")
        parser.add_argument("--no-beat", action="store_true", help="do not start the beat scheduler")
        parser.add_argument("--announce", type=Path, help="a text file to print once everything is up")

    def handle(self, *args: Any, **options: Any) -> None:
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []
        env = dict(os.environ)
        Path(settings.VAR_DIR).mkdir(parents=True, exist_ok=True)
        signal.signal(signal.SIGTERM, _interrupt)
        signal.signal(signal.SIGINT, _interrupt)  # also when started with SIGINT ignored (e.g. from a script)
        try:
            if not os.environ.get("REDIS_URL"):
                env["REDIS_URL"] = self._start_redis(env)
            self._start_all(env, options)
            self.stdout.write(self.style.SUCCESS(f"\nArgus is up: http://{options['host']}:{options['port']}/"))
            if options["announce"] and options["announce"].is_file():
                self.stdout.write(options["announce"].read_text())
            self.stdout.write("Ctrl-C stops everything.\n")
            self._watch()
        except KeyboardInterrupt:
            self.stdout.write("stopping…")
        finally:
            self._stop_all()

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        # Own session: a Ctrl-C in the terminal reaches only this command, which stops the children
        # in order, instead of every child at once.
        proc = subprocess.Popen(argv, env=env, start_new_session=True)  # noqa: S603  (our own programs)
        self.children.append((name, proc))

    def _start_redis(self, env: dict[str, str]) -> str:
        data_dir = Path(settings.VAR_DIR) / "redis"
        data_dir.mkdir(parents=True, exist_ok=True)
        argv = [_bin("redis-server"), "--bind", "127.0.0.1", "--port", str(BUNDLED_REDIS_PORT)]
        argv += ["--save", "", "--appendonly", "no", "--dir", str(data_dir)]
        self._spawn("redis", argv, env)
        _wait_for_port("127.0.0.1", BUNDLED_REDIS_PORT, 10)
        self.stdout.write(f"bundled Redis on 127.0.0.1:{BUNDLED_REDIS_PORT}")
        return f"redis://127.0.0.1:{BUNDLED_REDIS_PORT}/0"

    def _start_all(self, env: dict[str, str], options: dict[str, Any]) -> None:
        python = sys.executable
        web = [_bin("daphne"), "-b", options["host"], "-p", str(options["port"]), "monitor.asgi:application"]
        self._spawn("web", web, env)
        celery = [python, "-m", "celery", "-A", "monitor", "worker", "-l", "INFO"]
        # Camera slices hold their process for minutes, so they get their own worker; beat's short
        # tasks (dispatch, sweeps, notifications) run in a second, one-process worker.
        analysis = ["-Q", settings.ARGUS_ANALYSIS_QUEUE, "--concurrency", str(options["concurrency"])]
        self._spawn("worker", [*celery, *analysis, "-n", f"argus-{os.getpid()}@%h"], env)
        ops = ["-Q", settings.CELERY_TASK_DEFAULT_QUEUE, "-P", "solo", "-n", f"argus-ops-{os.getpid()}@%h"]
        self._spawn("ops worker", [*celery, *ops], env)
        if not options["no_beat"]:
            schedule = Path(settings.VAR_DIR) / "celerybeat-schedule"
            self._spawn(
                "beat", [python, "-m", "celery", "-A", "monitor", "beat", "-l", "INFO", "-s", str(schedule)], env
            )
        _wait_for_port(options["host"], options["port"], 30)

    def _watch(self) -> None:
        while True:
            for name, proc in self.children:
                if proc.poll() is not None:
                    raise CommandError(f"{name} exited with code {proc.returncode}; stopping the stack")
            time.sleep(0.5)

    def _stop_all(self) -> None:
        # A second Ctrl-C or TERM must not cut the clean-up short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        # TERM first (Celery: warm shutdown), then QUIT (Celery: cold shutdown, ends camera slices
        # at once; their leases expire and the next start takes the cameras again), then KILL.
        for sig in (signal.SIGTERM, signal.SIGQUIT, signal.SIGKILL):
            alive = [(n, p) for n, p in reversed(self.children) if p.poll() is None]
            for _, proc in alive:
                proc.send_signal(sig)
            deadline = time.monotonic() + 5
            for _, proc in alive:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        self.children.clear()
