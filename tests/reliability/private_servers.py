"""Private PostgreSQL and Redis servers for the restart scenarios (issue 21, item 6).

Stopping or killing the machine's shared servers would break every other test run, so these
tests start their own: a PostgreSQL cluster in a temporary folder (the machine's initdb/pg_ctl;
PostgreSQL refuses to run as root, so as the `postgres` user when we are root) and a
redis-server on its own port with an append-only file (a stopped broker keeps its queues).
Each server is stopped by its own process id, never by name.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path


class Unavailable(Exception):
    """The private server cannot run here (the message says what was not run and why)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_port(port: int, *, up: bool, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                if up:
                    return True
        except OSError:
            if not up:
                return True
        time.sleep(0.05)
    return False


class PrivatePostgres:
    """initdb + pg_ctl in `root` (a temporary folder); `stop()`, `kill9()` and `start()` again."""

    def __init__(self) -> None:
        # its own folder under /tmp: the postgres user cannot enter pytest's root-only tmp_path
        self.root = Path(tempfile.mkdtemp(prefix="sms-restarts-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.log = self.root / "postgres.log"
        self.initdb = shutil.which("initdb") or _pg_bin("initdb")
        self.pg_ctl = shutil.which("pg_ctl") or _pg_bin("pg_ctl")
        if not self.initdb or not self.pg_ctl:
            raise Unavailable("no initdb/pg_ctl on this machine: the PostgreSQL restart scenarios were not run")
        self.user = None
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            try:
                self.user = pwd.getpwnam("postgres")
            except KeyError as exc:
                raise Unavailable(
                    "running as root without a `postgres` user: the PostgreSQL restart scenarios were not run"
                ) from exc
            os.chown(self.root, self.user.pw_uid, self.user.pw_gid)
            self.root.chmod(0o700)

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/sms"

    def _run(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        command = list(args)
        if self.user is not None:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=check)  # noqa: S603

    def init(self) -> None:
        try:
            self._run(self.initdb, "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8")
            self.start()
            self._run(shutil.which("createdb") or _pg_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "sms")
        except (subprocess.CalledProcessError, OSError, subprocess.TimeoutExpired) as exc:
            detail = getattr(exc, "stderr", "") or str(exc)
            raise Unavailable(f"the private PostgreSQL did not start ({detail.strip()[:300]})") from exc

    def start(self) -> None:
        self._run(
            self.pg_ctl,
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-w",
            "-o",
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=200",
            "start",
        )

    def stop(self) -> None:
        """A clean, fast shutdown (what `systemctl stop` does): clients are disconnected."""
        self._run(self.pg_ctl, "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def kill9(self) -> None:
        """SIGKILL the postmaster and its backends (by pid): a crash, recovered by WAL replay on start."""
        pid = self.postmaster_pid()
        if pid is None:
            return
        victims = [pid, *_children(pid)]
        for victim in victims:
            try:
                os.kill(victim, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _wait_port(self.port, up=False, timeout=10)
        deadline = time.monotonic() + 10
        while any(_alive(v) for v in victims) and time.monotonic() < deadline:
            time.sleep(0.05)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


class PrivateRedis:
    """redis-server on its own port, append-only (fsync always): a stop keeps the queues."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.binary = shutil.which("redis-server")
        if not self.binary:
            raise Unavailable("no redis-server on this machine: the broker restart scenario was not run")
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(  # noqa: S603
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.root),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if not _wait_port(self.port, up=True, timeout=10):
            raise Unavailable("the private redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)
        _wait_port(self.port, up=False, timeout=5)


def _pg_bin(name: str) -> str | None:
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (folder / name).exists():
            return str(folder / name)
    return None


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
