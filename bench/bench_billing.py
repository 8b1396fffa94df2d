"""Billing throughput for a 1000-recipient batch: hold (one lock, bulk insert), capture, release.

    DATABASE_URL=postgres://… .venv/bin/python bench/bench_billing.py [--rounds 5] [--batch 1000]

Uses the database in DATABASE_URL (run `manage.py bootstrap` on it first); creates one fresh
tenant per run (left in place, like any test data).
"""

import argparse
import os
import secrets
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smsplatform.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from billing import services  # noqa: E402
from tenants.registration import register_tenant  # noqa: E402
from tenants.services import Actor  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    actor = Actor.system("bench")
    tenant = register_tenant(
        name="Bench Billing Co.",
        licence_number=f"BENCH{secrets.token_hex(6).upper()}",
        contact_name="Bench",
        contact_phone="+8613800000000",
        contact_email="bench@example.com",
        actor=actor,
        activate=True,
    )
    connection.set_schema_to_public()
    services.topup(tenant=tenant, amount=10**15, actor=actor, idempotency_key=f"bench-{secrets.token_hex(8)}")
    hold_s = capture_s = release_s = 0.0
    queries = 0
    for round_ in range(args.rounds):
        lines = [
            services.HoldLine(reference=f"bench:{round_}:{i}", segments=1 + i % 3, unit_price=35_000)
            for i in range(args.batch)
        ]
        started = time.perf_counter()
        with CaptureQueriesContext(connection) as ctx:
            holds = services.hold_messages(
                tenant=tenant, lines=lines, idempotency_key=f"bench-h-{secrets.token_hex(8)}", actor=actor
            )
        hold_s += time.perf_counter() - started
        queries = len([q for q in ctx.captured_queries if not q["sql"].startswith("SET search_path")])
        half = len(holds) // 2
        now = timezone.now()
        started = time.perf_counter()
        services.capture_holds(
            captures=[
                services.Capture(hold_id=h.pk, carrier_message_id=f"{h.pk:x}", submitted_at=now) for h in holds[:half]
            ],
            idempotency_key=f"bench-c-{secrets.token_hex(8)}",
        )
        capture_s += time.perf_counter() - started
        started = time.perf_counter()
        services.release_holds(hold_ids=[h.pk for h in holds[half:]], idempotency_key=f"bench-r-{secrets.token_hex(8)}")
        release_s += time.perf_counter() - started
    total = args.rounds * args.batch
    half_total = args.rounds * (args.batch // 2)
    rows = [
        ("batch size", f"{args.batch}", "recipients", ""),
        ("hold_messages", f"{total / hold_s:,.0f}", "holds/s", ">= 5,000"),
        ("hold_messages, one batch", f"{hold_s / args.rounds * 1000:,.1f}", "ms", "<= 200"),
        ("statements per batch hold", f"{queries}", "queries", "constant (no N+1)"),
        ("capture_holds", f"{half_total / capture_s:,.0f}", "captures/s", ">= 5,000"),
        ("release_holds", f"{(total - half_total) / release_s:,.0f}", "releases/s", ">= 5,000"),
    ]
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _setup import print_table

    print_table(f"Billing holds, {args.rounds} rounds of {args.batch}", rows)


if __name__ == "__main__":
    main()
