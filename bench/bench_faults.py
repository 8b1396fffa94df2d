"""Fault-suite figures: runs the fault tests (pytest -m faults: tests/reliability and
tests/delivery/flow/test_faults.py) on the test database and prints what they proved as one
table (messages lost, charged twice, submitted twice, stuck, receipts unmatched, rows in the
wrong tenant schema), for bench/results/latest.md and docs/reliability.md.

    DATABASE_URL=... DRAMATIQ_BROKER_URL=... .venv/bin/python bench/bench_faults.py [kill_messages]

kill_messages: size of tests/reliability/test_kill_at_scale.py (default 10,000; `make test` runs
it with 300).
"""

import json
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from _setup import print_table

ROOT = Path(__file__).resolve().parent.parent
FLOW_FAULTS = {  # tests of tests/delivery/flow/test_faults.py: each asserts lost = twice = charged twice = 0
    "test_simulator_disconnects_mid_batch": "simulator drops the link every 7 PDUs (30 messages)",
    "test_simulator_throttles": "simulator throttles every 4th submit (20 messages)",
    "test_worker_killed_mid_batch_loses_nothing_and_sends_nothing_twice": "worker SIGKILL mid-batch (120 messages)",
}


def main(kill_messages: int) -> int:
    figures_file = tempfile.NamedTemporaryFile(prefix="faults-", suffix=".jsonl", delete=False)  # noqa: SIM115
    junit = tempfile.NamedTemporaryFile(prefix="faults-", suffix=".xml", delete=False)  # noqa: SIM115
    env = {**os.environ, "FAULT_FIGURES_FILE": figures_file.name, "FAULT_KILL_MESSAGES": str(kill_messages)}
    run = subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "pytest"),
            "-q",
            "-m",
            "faults",
            "-p",
            "no:logging",
            f"--junitxml={junit.name}",
            "tests/reliability",
            "tests/delivery/flow/test_faults.py",
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
    outcomes = {}
    for case in ET.parse(junit.name).getroot().iter("testcase"):
        failed = any(child.tag in ("failure", "error") for child in case)
        skipped = any(child.tag == "skipped" for child in case)
        outcomes[case.get("name")] = "FAILED" if failed else ("skipped" if skipped else "passed")
    for name, what in FLOW_FAULTS.items():
        rows.append(
            (
                f"lost / submitted twice / charged twice: {what}",
                "0 / 0 / 0" if outcomes.get(name) == "passed" else outcomes.get(name, "not run"),
                "messages",
                "0 / 0 / 0",
            )
        )
    failed = sorted(n for n, o in outcomes.items() if o == "FAILED")
    rows.append(
        ("fault tests passed", f"{sum(o == 'passed' for o in outcomes.values())}/{len(outcomes)}", "tests", "all")
    )
    print_table(f"Fault suite (pytest -m faults; worker SIGKILL at scale: {kill_messages:,} messages)", rows)
    print("Scale of each run:\n")
    for scale in scales:
        print(f"- {scale}")
    if failed:
        print(f"\nFAILED: {', '.join(failed)}\n")
        print(run.stdout[-3000:], file=sys.stderr)
    return 1 if failed or run.returncode not in (0,) else 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000))
