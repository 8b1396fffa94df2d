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
