"""Periodic jobs: each app lists them in `<app>/schedule.py` as SCHEDULE = [Periodic(...), ...].

`manage.py run_scheduler` (APScheduler, in one process) enqueues the actors on time; the actors do
the work in the workers. APScheduler over periodiq: it runs in-process with cron and interval
triggers, needs no extra broker feature, and is a well-kept library. Jobs that must never overlap
take `advisory_lock` (PostgreSQL) so a second scheduler or a slow run cannot double them.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import import_module
from zlib import crc32

import dramatiq
from django.apps import apps
from django.db import connection


@dataclass(frozen=True)
class Periodic:
    actor: dramatiq.Actor
    seconds: int | None = None  # run every N seconds …
    cron: str | None = None  # … or on a crontab line ("0 3 * * *"), in settings.TIME_ZONE


def collect_schedule() -> list[Periodic]:
    jobs: list[Periodic] = []
    for config in apps.get_app_configs():
        try:
            module = import_module(f"{config.name}.schedule")
        except ModuleNotFoundError as exc:
            if exc.name != f"{config.name}.schedule":
                raise
            continue
        jobs.extend(module.SCHEDULE)
    return jobs


@contextmanager
def advisory_lock(name: str) -> Iterator[bool]:
    """Yield True if this process got the named lock (then hold it for the block), else False."""
    key = crc32(name.encode())
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        got = cursor.fetchone()[0]
    try:
        yield got
    finally:
        if got:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
