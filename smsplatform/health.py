"""Probes for load balancers and monitoring: GET /healthz (the process answers) and GET /readyz
(PostgreSQL and the broker answer; plus backlog counts an operator alerts on).

No authentication and no tenant data: counts and timings only. /readyz answers 503 with
`{"code": "not_ready", ...}` when a dependency fails, so an orchestrator stops routing to it.
"""

import time

import dramatiq
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
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _broker() -> None:
    broker = dramatiq.get_broker()
    client = getattr(broker, "client", None)  # RedisBroker
    if client is not None:
        client.ping()
    else:  # RabbitmqBroker: opening the thread's connection proves the server answers
        broker.connection  # noqa: B018


@transaction.non_atomic_requests
@require_GET
def readyz(request):
    checks = {"database": _timed(_database), "broker": _timed(_broker)}
    ready = all(c["ok"] for c in checks.values())
    body = {"status": "ok" if ready else "unavailable", "checks": checks}
    if checks["database"]["ok"]:
        body["backlog"] = delivery_backlog()
    if not ready:
        failed = ", ".join(name for name, c in checks.items() if not c["ok"])
        body.update(code="not_ready", message=f"Not ready: {failed} unavailable.")
    return JsonResponse(body, status=200 if ready else 503)
