"""Issue 21, item 1: `make run` (manage.py devstack) restarts a child that exits, with back-off
and a log line, instead of stopping everything (the API stayed down after a listener exit)."""

import sys
import time

from delivery.management.commands.devstack import Supervisor


def test_a_child_that_exits_is_restarted_with_back_off_and_the_others_keep_running(tmp_path):
    counter = tmp_path / "runs"
    crashing = [sys.executable, "-c", f"open({str(counter)!r}, 'a').write('x'); raise SystemExit(1)"]
    steady = [sys.executable, "-c", "import time; time.sleep(60)"]
    lines: list[str] = []
    supervisor = Supervisor({"listener": crashing, "web": steady}, log=lines.append, min_backoff=0.2)
    try:
        for name in supervisor.children:
            supervisor.start(name)
        web = supervisor.procs["web"]
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            supervisor.check()
            time.sleep(0.05)
        assert supervisor.procs["web"] is web  # never stopped
        assert web.poll() is None
        runs = len(counter.read_text())
        # Back-off 0.2, 0.4, 0.8, 1.6, 3.2 s: a handful of restarts in 6 s, not a tight loop.
        assert 3 <= runs <= 6, runs
        assert supervisor.restarts["listener"] == runs - 1
        assert any("listener exited with 1; restarting it in" in line for line in lines), lines
        assert not any("stopping everything" in line for line in lines)
    finally:
        supervisor.stop(timeout=5)
    assert all(proc.poll() is not None for proc in supervisor.procs.values())
