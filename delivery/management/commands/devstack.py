"""`make run`: every process of the platform as children of this one, stopped together.

web (runserver), a dramatiq worker, the receipt/reply listener, the periodic scheduler and the
SMSC simulator the demo channel points at (127.0.0.1:2775, demo/demo).
"""

import os
import signal
import subprocess
import sys
import time

from django.core.management.base import BaseCommand


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
            children = {"simulator": [*manage, "smsc_simulator", "--port", "2775"], **children}
        if not options["no_web"]:
            children["web"] = [*manage, "runserver", options["addr"], "--noreload"]
        procs: dict[str, subprocess.Popen] = {}
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            for name, command in children.items():
                procs[name] = subprocess.Popen(command)
                self.stdout.write(f"started {name} (pid {procs[name].pid}): {' '.join(command[1:])}")
                if name == "simulator":
                    time.sleep(1.0)  # listener and worker bind to it
            while not stopping:
                for name, proc in procs.items():
                    if proc.poll() is not None:
                        self.stderr.write(f"{name} exited with {proc.returncode}; stopping everything")
                        stopping = True
                        break
                time.sleep(0.5)
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 10
            for proc in procs.values():
                try:
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    proc.kill()
