"""Multiprocess mode (PROMETHEUS_MULTIPROC_DIR): gunicorn and dramatiq worker processes each write
their own files; /metrics adds them up, and a killed process's live gauges stop counting."""

import os
import subprocess
import sys
import time

import dramatiq
import pytest

from smsplatform.metrics import exposition

from ..delivery.flow.live import ROOT, signal_group, wait_for, worker_process
from .conftest import Scrape

CHILD = """
import os, sys, time
from smsplatform import metrics
metrics.MESSAGES_ACCEPTED.labels("notification").inc(2)
metrics.bind_opened(7)
print("ready", flush=True)
if sys.argv[1] == "stay":
    time.sleep(60)
"""


def _child(mode: str, directory) -> subprocess.Popen:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, mode], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_processes_are_summed_and_dead_ones_leave_the_live_gauges(tmp_path):
    """Counters of every process add up (a dead one's too: they are totals); a process that died
    without saying so (SIGKILL) no longer counts in the binds gauge."""
    gone = _child("exit", tmp_path)
    gone.wait(timeout=10)
    alive = _child("stay", tmp_path)
    try:
        page = Scrape(exposition(multiproc_dir=str(tmp_path), database=False).decode())
        assert page.value("sms_messages_accepted_total", message_type="notification") == 4
        assert page.value("sms_smpp_binds", channel="7") == 1
    finally:
        alive.kill()
        alive.wait(timeout=10)
    page = Scrape(exposition(multiproc_dir=str(tmp_path), database=False).decode())
    assert page.value("sms_smpp_binds", channel="7") == 0
    assert page.value("sms_messages_accepted_total", message_type="notification") == 4


def test_worker_process_reports_queue_metrics_through_the_shared_directory(live_db, tmp_path):
    """dramatiq's Prometheus middleware runs in `dramatiq smsplatform.worker` when the directory is
    set, writing where /metrics reads (no exposition server unless METRICS_WORKER_PORT is set)."""
    import smsplatform.worker  # noqa: F401
    from delivery.actors import retry_due_callbacks_job

    broker = dramatiq.get_broker()
    if not hasattr(broker, "client"):
        pytest.skip("needs the Redis broker of the test environment")
    broker.client.flushdb()
    log = open(tmp_path / "worker.log", "w")  # noqa: SIM115
    os.makedirs(tmp_path / "prom")
    proc = worker_process(log=log, env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom")})
    try:
        time.sleep(0.5)
        retry_due_callbacks_job.send()

        def reported():
            page = Scrape(exposition(multiproc_dir=str(tmp_path / "prom"), database=False).decode())
            return page.value("dramatiq_messages_total", actor_name="retry_due_callbacks_job") >= 1 and page

        page = wait_for(
            reported,
            timeout=60,
            what="dramatiq_messages_total from the worker process",
            describe=lambda: (tmp_path / "worker.log").read_text()[-2000:],
        )
        assert page.value("dramatiq_message_duration_milliseconds_count", queue_name="periodic") >= 1
        assert "Fork process" not in (tmp_path / "worker.log").read_text()  # no exposition server by default
    finally:
        import signal

        signal_group(proc, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()
