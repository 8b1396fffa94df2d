"""API intake through the real WSGI stack (middleware, key authentication, throttling, DRF,
compliance gate, pricing, billing holds, outbox) — R-DLV-1, R-BIL-2, R-CMP-3.

    DATABASE_URL=... DRAMATIQ_BROKER_URL=redis://... .venv/bin/python bench/bench_api.py [batches] [singles]

* POST /api/v1/batches with 1000 recipients, `batches` times → messages/s for one API process
  (one thread: a WSGI worker process serves one request at a time per thread).
* POST /api/v1/messages (single send), `singles` times → p50 / p99 latency.
* `--frequency` turns the R-CMP-8 per-recipient frequency limits on for the bench tenant's
  template type (1 a minute, 5 an hour, 10 a day): every recipient is checked and counted in Redis.
* `--profile` writes a pyinstrument profile of one batch request to bench/results/api_profile.txt.

Runs django.test.Client (Django's WSGI ClientHandler: every middleware, the URL resolver, the
views) in this process against a fresh tenant; no worker runs, so the relay jobs queued by the
on-commit fast path are removed from the broker at the end.
"""

import statistics
import sys
import time

from _setup import print_table, setup_django

setup_django()

import dramatiq  # noqa: E402
from bench_e2e import ACTOR, prepare  # noqa: E402
from django.db import connection, reset_queries  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

import smsplatform.worker  # noqa: E402,F401  (declares every actor on the broker)
from delivery import channels  # noqa: E402
from delivery.models import Channel, Route  # noqa: E402
from tenants import services as tenant_services  # noqa: E402


def main(batches: int, singles: int, profile: bool, frequency: bool = False) -> None:
    stamp = int(time.time())
    tenant, template = prepare(stamp)
    if frequency:
        from django.conf import settings

        from compliance.models import FrequencyLimit

        settings.COMPLIANCE_FREQUENCY_LIMITS = True
        FrequencyLimit.objects.create(tenant=tenant, message_type="notification", per_minute=1, per_hour=5, per_day=10)
    # A channel and a route, so the relay fast path has somewhere to route (no worker consumes).
    channel = channels.create_channel(
        actor=ACTOR,
        name=f"bench-api-{stamp}",
        host="127.0.0.1",
        port=9,
        system_id="bench",
        password="bench",
        source_addr="10690",
    )
    Route.objects.create(name=f"bench-api-{stamp}", channel=channel, priority=0)
    key, secret = tenant_services.issue_api_key(tenant=tenant, actor=ACTOR, label="bench")
    connection.set_schema_to_public()
    client = Client(HTTP_X_ACCESS_KEY_ID=key.access_key_id, HTTP_X_ACCESS_KEY_SECRET=secret)

    def batch(i: int):
        body = {
            "signature": "BenchShop",
            "template": template,
            "params": {"code": "4711"},
            "recipients": [f"+86139{i:04d}{n:04d}" for n in range(1000)],
        }
        response = client.post("/api/v1/batches", body, content_type="application/json")
        assert response.status_code == 202, response.content[:500]
        assert response.json()["rejected"] == 0, response.json()
        return response

    try:
        batch(9999)  # warm-up: imports, caches, prepared plans
        with CaptureQueriesContext(connection) as queries:
            batch(9998)
        batch_queries = len(queries)
        reset_queries()
        timings = []
        for i in range(batches):
            started = time.perf_counter()
            batch(i)
            timings.append(time.perf_counter() - started)

        single_timings = []
        for i in range(singles):
            started = time.perf_counter()
            response = client.post(
                "/api/v1/messages",
                {"signature": "BenchShop", "template": template, "params": {"code": "4711"}, "to": f"+86137{i:08d}"},
                content_type="application/json",
            )
            single_timings.append(time.perf_counter() - started)
            assert response.status_code == 202, response.content[:500]
        with CaptureQueriesContext(connection) as queries:
            client.post(
                "/api/v1/messages",
                {
                    "signature": "BenchShop",
                    "template": template,
                    "params": {"code": "4711"},
                    "to": "+8613700009999",
                },  # a prefix seen before (steady state)
                content_type="application/json",
            )
        single_queries = len(queries)
        if "--show-queries" in sys.argv:
            print("\n".join(q["sql"][:120] for q in queries.captured_queries))

        if profile:
            from pathlib import Path

            from pyinstrument import Profiler

            profiler = Profiler(interval=0.0005)
            with profiler:
                batch(9997)
            out = Path(__file__).resolve().parent / "results" / "api_profile.txt"
            out.parent.mkdir(exist_ok=True)
            out.write_text(profiler.output_text(unicode=False, color=False, show_all=True))
    finally:
        Channel.objects.filter(pk=channel.pk).update(enabled=False)
        dramatiq.get_broker().flush_all()

    single_timings.sort()
    p99 = single_timings[min(len(single_timings) - 1, int(len(single_timings) * 0.99))]
    rate = 1000 * len(timings) / sum(timings)
    print_table(
        f"API intake through WSGI (one process, one thread): {batches} batches of 1000, {singles} single sends"
        + (", frequency limits on (R-CMP-8)" if frequency else ""),
        [
            ("API intake, 1000-recipient batches", f"{rate:,.0f}", "messages/s per API process", "≥ 5,000"),
            ("batch request latency p50", f"{statistics.median(timings) * 1000:.0f}", "ms", "≤ 200 ms"),
            ("SQL statements per batch request", f"{batch_queries}", "queries", "constant (no N+1)"),
            ("single send latency p50", f"{statistics.median(single_timings) * 1000:.1f}", "ms", "≤ 50 ms"),
            ("single send latency p99", f"{p99 * 1000:.1f}", "ms", "≤ 100 ms"),
            ("SQL statements per single send", f"{single_queries}", "queries", "≤ 15 (issue 17)"),
        ],
    )


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    main(
        int(args[0]) if args else 20,
        int(args[1]) if len(args) > 1 else 300,
        "--profile" in sys.argv,
        frequency="--frequency" in sys.argv,
    )
