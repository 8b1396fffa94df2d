"""Shared start-up for benchmarks: Django against the database in DATABASE_URL, and a table printer."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smsplatform.settings")
    import django

    django.setup()


def print_table(title: str, rows: list[tuple[str, str, str, str]]) -> str:
    """rows: (figure, value, unit, goal). Returns the markdown it printed."""
    lines = [f"### {title}", "", "| figure | value | unit | goal |", "|---|---:|---|---|"]
    lines += [f"| {figure} | {value} | {unit} | {goal} |" for figure, value, unit, goal in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    return text


def cpu_seconds(components: dict[str, object]) -> dict[str, float]:
    """CPU seconds (user + system) used so far by each component of a run, read from /proc:
    `components` maps a name to a set of pids or to a predicate on a process's command line
    (e.g. every `postgres` process). A process that exits between two readings takes its time
    with it (PostgreSQL backends of a pool live through a run). Linux only; {} elsewhere."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    totals = dict.fromkeys(components, 0.0)
    proc = Path("/proc")
    if not proc.is_dir():
        return {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        used = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        pid = int(entry.name)
        for name, match in components.items():
            if pid in match if isinstance(match, set | frozenset) else match(cmdline):
                totals[name] += used
                break
    return totals
