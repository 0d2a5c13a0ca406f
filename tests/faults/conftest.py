"""The fault suite's servers and processes: a private Postgres and Redis (tests/faults/stack.py,
started by `make faults`), real Celery workers that tests kill, and beat played by the test."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.browser.conftest import database_url
from tests.conftest import REPO
from tests.faults import stack as fault_stack

JOB_LEASE_S = 5  # a dead worker's job is re-queued this long after its last renewal
REQUEUE_S = 10  # a queued job whose task was lost (Redis restarted) is sent again after this
FIGHT_CLIPS = REPO.parent / "shared" / "data" / "fight"


@pytest.fixture(scope="session")
def private_stack() -> fault_stack.Stack:
    try:
        return fault_stack.current()
    except fault_stack.StackError as exc:
        pytest.fail(str(exc))


def fight_clips(count: int) -> list[Path]:
    """Real footage: the fight / no-fight clips of ../shared/data (see its README for their terms)."""
    clips = sorted(FIGHT_CLIPS.glob("*/*.mp4"))
    if len(clips) < count:
        pytest.fail(f"the fault suite needs {count} clips of real footage in {FIGHT_CLIPS}, found {len(clips)}")
    return clips[:count]


@dataclass
class Worker:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def owns(self, lease_owner: str) -> bool:
        """Owners read host:pid:task; the pid is a pool child, in this worker's process group."""
        try:
            return os.getpgid(int(lease_owner.split(":")[1])) == self.proc.pid
        except (IndexError, ValueError, ProcessLookupError):
            return False

    def kill(self) -> None:
        """The whole worker at once (main process and pool child), as when its machine dies."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def tail(self) -> str:
        return f"--- {self.name}\n{self.log.read_text(errors='replace')[-3000:]}"


@dataclass
class WorkerPool:
    """Celery workers on the private broker, each its own process group; all killed at the end."""

    tmp_path: Path
    env: dict[str, str]
    workers: list[Worker] = field(default_factory=list)
    started: int = 0

    def start(self, *, include: str | None = None) -> Worker:
        self.started += 1
        name = f"w{self.started}"
        log = self.tmp_path / f"{name}.log"
        argv = [sys.executable, "-m", "celery", "-A", "monitor", "worker", "--concurrency", "1", "-n", f"{name}@%h"]
        argv += ["--without-heartbeat", "--without-gossip", "--without-mingle", "-l", "INFO"]
        argv += ["--include", include] if include else []
        proc = subprocess.Popen(
            argv, cwd=REPO, env=self.env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
        )
        worker = Worker(name, proc, log)
        self.workers.append(worker)
        return worker

    def alive(self) -> list[Worker]:
        return [w for w in self.workers if w.proc.poll() is None]

    def holder(self, lease_owner: str) -> Worker | None:
        return next((w for w in self.alive() if w.owns(lease_owner)), None)

    def tails(self) -> str:
        return "\n".join(w.tail() for w in self.workers[-4:])

    def stop_all(self) -> None:
        for worker in self.alive():
            worker.kill()


def worker_env(tmp_path: Path, stack: fault_stack.Stack, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "DATABASE_URL": database_url(),
        "REDIS_URL": stack.redis_url,
        "MEDIA_ROOT": str(tmp_path / "media"),
        "ARGUS_VAR_DIR": str(tmp_path / "var"),
        "ARGUS_DETECTOR": "ssdlite",
        "ARGUS_VIDEO_JOB_LEASE_SECONDS": str(JOB_LEASE_S),
        "ARGUS_VIDEO_JOB_REQUEUE_SECONDS": str(REQUEUE_S),
        "OMP_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


@pytest.fixture
def pool(transactional_db: None, private_stack: fault_stack.Stack, tmp_path: Path, settings) -> Iterator[WorkerPool]:
    # This process plays beat; it must agree with the workers on the timings.
    settings.ARGUS_VIDEO_JOB_LEASE_SECONDS = JOB_LEASE_S
    settings.ARGUS_VIDEO_JOB_REQUEUE_SECONDS = REQUEUE_S
    settings.ARGUS_DETECTOR = "ssdlite"
    workers = WorkerPool(tmp_path, worker_env(tmp_path, private_stack))
    try:
        yield workers
    finally:
        workers.stop_all()


def wait_for(condition: object, timeout_s: float, what: str, pool: WorkerPool | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}\n{pool.tails() if pool else ''}")
        time.sleep(0.1)
