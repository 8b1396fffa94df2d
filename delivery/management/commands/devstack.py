"""`make run`: every process of the platform as children of this one, stopped together.

web (runserver), a dramatiq worker, the receipt/reply listener, the periodic scheduler and the
SMSC simulator the demo channel points at (127.0.0.1:2775, demo/demo).

Issue 21: a child that exits is started again (with a log line, after a back-off of 1 s doubling
to 30 s; a child that then runs for a minute starts from 1 s again) instead of stopping
everything: before, a listener that exited during a database outage took the API down with it
until someone ran `make run` again.
"""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

from django.core.management.base import BaseCommand

MIN_BACKOFF, MAX_BACKOFF, HEALTHY_AFTER = 1.0, 30.0, 60.0


class Supervisor:
    """Runs named commands as children and restarts each one that exits, with back-off."""

    def __init__(self, children: dict[str, list[str]], *, log: Callable[[str], None], min_backoff: float = MIN_BACKOFF):
        self.children = children
        self.log = log
        self.min_backoff = min_backoff
        self.procs: dict[str, subprocess.Popen] = {}
        self.started_at: dict[str, float] = {}
        self.backoff: dict[str, float] = dict.fromkeys(children, min_backoff)
        self.restart_at: dict[str, float] = {}
        self.restarts: dict[str, int] = dict.fromkeys(children, 0)

    def start(self, name: str) -> None:
        self.procs[name] = subprocess.Popen(self.children[name])
        self.started_at[name] = time.monotonic()
        self.log(f"started {name} (pid {self.procs[name].pid}): {' '.join(self.children[name][1:])}")

    def check(self) -> None:
        """One round: note children that exited, restart those whose back-off is over."""
        now = time.monotonic()
        for name, proc in list(self.procs.items()):
            if name in self.restart_at:
                if now >= self.restart_at[name]:
                    del self.restart_at[name]
                    self.restarts[name] += 1
                    self.start(name)
                continue
            if proc.poll() is None:
                continue
            if now - self.started_at[name] >= HEALTHY_AFTER:
                self.backoff[name] = self.min_backoff  # it ran fine for a while: a fresh failure
            delay = self.backoff[name]
            self.backoff[name] = min(delay * 2, MAX_BACKOFF)
            self.restart_at[name] = now + delay
            self.log(f"{name} exited with {proc.returncode}; restarting it in {delay:.0f}s")

    def stop(self, timeout: float = 10.0) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()


class Command(BaseCommand):
    help = "Run web, worker, listener, scheduler and the SMSC simulator together (Ctrl-C stops all)."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1:8000")
        parser.add_argument("--no-web", action="store_true")
        parser.add_argument("--no-simulator", action="store_true")
        parser.add_argument("--worker-threads", type=int, default=4)

    def handle(self, *args, **options):
        python = sys.executable
        manage = [python, "manage.py"]
        bindir = os.path.dirname(python)
        children = {
            "worker": [
                os.path.join(bindir, "dramatiq"),
                "smsplatform.worker",
                "-p",
                "1",
                "-t",
                str(options["worker_threads"]),
            ],
            "listener": [*manage, "run_listener"],
            "scheduler": [*manage, "run_scheduler"],
        }
        if not options["no_simulator"]:
            # dates its receipts in China time, as the demo channel (Channel.receipt_time_zone) expects
            sim = [*manage, "smsc_simulator", "--port", "2775", "--receipt-timezone", "Asia/Shanghai"]
            children = {"simulator": sim, **children}
        if not options["no_web"]:
            children["web"] = [*manage, "runserver", options["addr"], "--noreload"]
        supervisor = Supervisor(children, log=lambda line: self.stderr.write(line))
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            for name in children:
                supervisor.start(name)
                if name == "simulator":
                    time.sleep(1.0)  # listener and worker bind to it
            while not stopping:
                supervisor.check()
                time.sleep(0.5)
        finally:
            supervisor.stop()
