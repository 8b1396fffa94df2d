"""New-tenant time: register_tenant (row + schema cloned from the template) end to end.

DATABASE_URL=... .venv/bin/python bench/bench_tenants.py [count]
"""

import statistics
import sys
import time

from _setup import print_table, setup_django

setup_django()

from smsplatform.tenancy import ensure_template_schema  # noqa: E402
from tenants import registration, services  # noqa: E402
from tenants.management.commands.bootstrap import ensure_public_tenant  # noqa: E402


def main(count: int) -> None:
    from django.core.management import call_command

    call_command("migrate_schemas", interactive=False, verbosity=0)
    ensure_template_schema()
    ensure_public_tenant()
    actor = services.Actor.system("bench")
    stamp = int(time.time())
    timings = []
    for i in range(count):
        started = time.perf_counter()
        registration.register_tenant(
            name=f"Bench {stamp}-{i}",
            licence_number=f"BENCH{stamp}{i:04d}",
            contact_name="b",
            contact_phone="+8613800000000",
            contact_email="b@example.com",
            actor=actor,
            activate=True,
        )
        timings.append(time.perf_counter() - started)
    timings.sort()
    print_table(
        f"New tenant (schema cloned from template), {count} tenants",
        [
            ("new tenant p50", f"{statistics.median(timings) * 1000:.0f}", "ms", "< 1000 ms"),
            ("new tenant max", f"{timings[-1] * 1000:.0f}", "ms", "< 1000 ms"),
        ],
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
