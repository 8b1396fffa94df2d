"""Restart figures (issue 21, item 6): runs tests/reliability/test_restarts.py — the whole
platform under mixed single/batch/3-part load while a PRIVATE PostgreSQL is stopped for 20 s,
killed with -9 and restarted, and a private Redis is stopped for 20 s — and prints what it proved
as one table, for bench/results/latest.md and docs/reliability.md.

    DATABASE_URL=... DRAMATIQ_BROKER_URL=... .venv/bin/python bench/bench_restarts.py

(The shared servers in those URLs are not touched: the test starts its own.) ~2.5 minutes.
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _setup import print_table

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    figures_file = tempfile.NamedTemporaryFile(prefix="restarts-", suffix=".jsonl", delete=False)  # noqa: SIM115
    env = {**os.environ, "FAULT_FIGURES_FILE": figures_file.name}
    run = subprocess.run(  # noqa: S603
        [
            str(ROOT / ".venv" / "bin" / "pytest"),
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
            "tests/reliability/test_restarts.py",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    rows, scales = [], []
    for line in Path(figures_file.name).read_text().splitlines():
        f = json.loads(line)
        rows.append((f["figure"], str(f["value"]), f["unit"], f["goal"]))
        if f["scale"] and f["scale"] not in scales:
            scales.append(f["scale"])
    outcome = "passed" if run.returncode == 0 else "FAILED"
    if run.returncode == 0 and " passed" not in run.stdout:
        outcome = "skipped"  # the private servers could not start: the reason is in the output
    rows.append(("restart test", outcome, "", "passed"))
    print_table("Restarts under load (PostgreSQL stop 20 s, PostgreSQL kill -9, Redis stop 20 s)", rows)
    print("Scale and details:\n")
    for scale in scales:
        print(f"- {scale}")
    if outcome != "passed":
        print(run.stdout[-4000:], file=sys.stderr)
    return 0 if outcome == "passed" else 1


if __name__ == "__main__":
    sys.exit(main())
