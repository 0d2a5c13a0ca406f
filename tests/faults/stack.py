"""A private Postgres and Redis for the fault suite, which stops and restarts them.

The machine's own servers are shared with everything else, so the suite never touches them:
`python -m tests.faults.stack -- CMD...` starts a throw-away Postgres cluster and Redis on free
loopback ports, runs CMD with DATABASE_URL and REDIS_URL pointing at them (and ARGUS_FAULT_STACK
naming this stack for the tests), and removes both afterwards, whatever CMD did.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

STACK_ENV = "ARGUS_FAULT_STACK"


class StackError(RuntimeError):
    """A private server could not be set up here; the message says what is missing."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _postgres_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
    if not found:
        found = [Path(p) for p in [shutil.which("pg_ctl")] if p]
    if not found:
        raise StackError("no PostgreSQL server binaries (pg_ctl, initdb) on this machine")
    return found[-1].parent


@dataclass
class Stack:
    root: str
    pg_bin: str
    pg_port: int
    redis_port: int
    run_as: str  # the account that owns the cluster ("" = this one); initdb refuses root

    @property
    def pgdata(self) -> str:
        return f"{self.root}/pg"

    def _as_owner(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", self.run_as, "--", *argv] if self.run_as else argv

    def _pg_ctl(self, *args: str) -> None:
        argv = [f"{self.pg_bin}/pg_ctl", "-D", self.pgdata, "-l", f"{self.root}/pg.log", *args]
        done = subprocess.run(self._as_owner(argv), capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise StackError(f"pg_ctl {' '.join(args)} failed: {done.stderr.strip() or done.stdout.strip()}")

    def start_postgres(self) -> None:
        options = f"-p {self.pg_port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._pg_ctl("-w", "-t", "60", "-o", options, "start")

    def stop_postgres(self) -> None:
        """A fast shutdown: every connection is cut, as when the server goes down."""
        self._pg_ctl("-w", "-t", "60", "-m", "fast", "stop")

    def start_redis(self) -> None:
        argv = ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
        argv += ["no", "--daemonize", "yes", "--dir", self.root, "--pidfile", f"{self.root}/redis.pid"]
        argv += ["--logfile", f"{self.root}/redis.log"]
        subprocess.run(argv, check=True, timeout=30)
        self._wait_for(self.redis_port, "Redis")

    def stop_redis(self) -> None:
        """SHUTDOWN NOSAVE: the restarted server comes back empty, as a Redis without persistence does."""
        subprocess.run(["redis-cli", "-p", str(self.redis_port), "shutdown", "nosave"], capture_output=True, timeout=30)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and _answers(self.redis_port):
            time.sleep(0.1)

    def _wait_for(self, port: int, what: str) -> None:
        deadline = time.monotonic() + 30
        while not _answers(port):
            if time.monotonic() > deadline:
                raise StackError(f"{what} did not start on port {port}")
            time.sleep(0.1)

    def database_url(self, name: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.pg_port}/{name}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def current() -> Stack:
    """The stack this test run was started in (`make faults`); StackError when there is none."""
    spec = os.environ.get(STACK_ENV)
    if not spec:
        raise StackError(f"the fault suite needs its private servers: run it with `make faults` ({STACK_ENV} unset)")
    return Stack(**json.loads(spec))


def create() -> Stack:
    root = tempfile.mkdtemp(prefix="argus-faults-")
    run_as = "postgres" if os.geteuid() == 0 else ""
    if run_as:
        shutil.chown(root, user=run_as)
    stack = Stack(root, str(_postgres_bin()), free_port(), free_port(), run_as)
    initdb = [f"{stack.pg_bin}/initdb", "-D", stack.pgdata, "-A", "trust", "-U", "postgres", "--no-sync"]
    done = subprocess.run(stack._as_owner(initdb), capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise StackError(f"initdb failed: {done.stderr.strip()}")
    stack.start_postgres()
    stack.start_redis()
    return stack


def destroy(stack: Stack) -> None:
    for stop in (stack.stop_redis, stack.stop_postgres):
        try:
            stop()
        except (StackError, subprocess.SubprocessError, OSError) as exc:
            print(f"fault stack: {exc}", file=sys.stderr)
    shutil.rmtree(stack.root, ignore_errors=True)


def main(argv: list[str]) -> int:
    if "--" in argv:
        argv = argv[argv.index("--") + 1 :]
    if not argv:
        print("usage: python -m tests.faults.stack -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    try:
        stack = create()
    except (StackError, subprocess.SubprocessError, OSError) as exc:
        print(f"fault stack: cannot start the private servers: {exc}", file=sys.stderr)
        return 1
    env = {
        **os.environ,
        STACK_ENV: json.dumps(asdict(stack)),
        "DATABASE_URL": stack.database_url("argus_faults"),
        "REDIS_URL": stack.redis_url,
    }
    print(f"fault stack: Postgres on {stack.pg_port}, Redis on {stack.redis_port}, in {stack.root}", flush=True)
    child = subprocess.Popen(argv, env=env)
    try:
        return child.wait()
    except KeyboardInterrupt:
        child.send_signal(signal.SIGINT)
        return child.wait()
    finally:
        destroy(stack)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
