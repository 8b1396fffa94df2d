"""Probes for load balancers and monitoring: GET /healthz (the process answers) and GET /readyz
(PostgreSQL and the broker answer; plus backlog counts an operator alerts on).

No authentication and no tenant data: counts and timings only. /readyz answers 503 with
`{"code": "not_ready", ...}` when a dependency fails, so an orchestrator stops routing to it.
It answers within READYZ_TIMEOUT_SECONDS whatever the dependencies do (issue 21): the checks run
side by side with short connect timeouts, and one not done in time counts as failed ("Timeout").
"""

import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

import dramatiq
from django.conf import settings
from django.db import connection, transaction
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from delivery.selectors import delivery_backlog


# Outside ATOMIC_REQUESTS: a probe must answer (503) even when the database does not.
@transaction.non_atomic_requests
@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


def _timed(check) -> dict:
    started = time.perf_counter()
    try:
        check()
    except Exception as exc:  # any failure means "not ready"; the class name says which
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1)}


def _database() -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        connection.close()  # probe threads keep no connection (a dead one would fail the next probe)


def _broker() -> None:
    broker = dramatiq.get_broker()
    client = getattr(broker, "client", None)  # RedisBroker
    if client is not None:
        # The broker's own client waits and retries for seconds; the probe must not.
        import redis

        pool = redis.ConnectionPool(
            connection_class=client.connection_pool.connection_class,
            **{**client.connection_pool.connection_kwargs, "socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        )
        try:
            redis.Redis(connection_pool=pool, retry=None).ping()
        finally:
            pool.disconnect()
    else:  # RabbitmqBroker: opening the thread's connection proves the server answers
        broker.connection  # noqa: B018


# Probe threads outlive a request: a check that hangs holds one of them, never the request.
_probes = ThreadPoolExecutor(max_workers=4, thread_name_prefix="readyz")


def _run_checks(checks: dict) -> dict:
    deadline = time.monotonic() + settings.READYZ_TIMEOUT_SECONDS
    futures = {name: _probes.submit(_timed, check) for name, check in checks.items()}
    results = {}
    for name, future in futures.items():
        try:
            results[name] = future.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            results[name] = {"ok": False, "error": "Timeout"}
    return results


@transaction.non_atomic_requests
@require_GET
def readyz(request):
    checks = _run_checks({"database": _database, "broker": _broker})
    ready = all(c["ok"] for c in checks.values())
    body = {"status": "ok" if ready else "unavailable", "checks": checks}
    if checks["database"]["ok"]:
        try:
            body["backlog"] = delivery_backlog()
        except Exception as exc:  # the database went away since the check: still an answer
            body["backlog"] = {"error": type(exc).__name__}
    if not ready:
        failed = ", ".join(name for name, c in checks.items() if not c["ok"])
        body.update(code="not_ready", message=f"Not ready: {failed} unavailable.")
    return JsonResponse(body, status=200 if ready else 503)
