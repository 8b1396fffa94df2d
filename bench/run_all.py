"""`make bench`: run every bench/bench_*.py against the configured stack, print their tables and
write them all to bench/results/latest.md."""

import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def main() -> int:
    sections, failures = [], []
    scripts = sorted(BENCH.glob("bench_*.py"))
    for script in scripts:
        print(f"== {script.name}", flush=True)
        started = time.perf_counter()
        run = subprocess.run([sys.executable, str(script)], cwd=BENCH.parent, capture_output=True, text=True, env=os.environ)
        took = time.perf_counter() - started
        print(run.stdout, flush=True)
        if run.returncode != 0:
            failures.append(script.name)
            print(run.stderr[-3000:], file=sys.stderr)
            sections.append(f"## {script.name}\n\nFAILED (exit {run.returncode}):\n\n```\n{run.stderr[-1500:]}\n```\n")
        else:
            sections.append(f"## {script.name} ({took:.0f} s)\n\n{run.stdout.strip()}\n")
    header = (
        f"# Benchmark results\n\nRun {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores "
        f"by `make bench`.\n\n"
    )
    out = BENCH / "results" / "latest.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(header + "\n".join(sections))
    print(f"wrote {out.relative_to(BENCH.parent)}; failed: {failures or 'none'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
