"""gunicorn settings for the web processes: `gunicorn -c deploy/gunicorn.conf.py smsplatform.wsgi:application`.

With PROMETHEUS_MULTIPROC_DIR set (docs/deployment.md, "Metrics"), an exited worker's live gauges
are dropped at once so /metrics never counts a process that is gone; its counters stay (totals).
"""

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "4"))


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
