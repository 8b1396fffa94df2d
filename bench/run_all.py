"""`make bench`: run every bench/bench_*.py against the configured stack, print their tables and
write them all to bench/results/latest.md."""

import argparse
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent


# Arguments per script: `--quick` runs smaller sizes (a smoke run); by default the goal sizes.
QUICK_ARGS = {
    "bench_api.py": ["3", "100"],
    "bench_e2e.py": ["1000", "4"],
    "bench_export.py": ["100000"],
    "bench_faults.py": ["300"],
    "bench_scale.py": ["1000", "50"],
    "bench_tenants.py": ["3"],
}
FULL_ARGS = {"bench_api.py": ["20", "300", "--profile"], "bench_e2e.py": ["5000", "4"]}
# Scripts run more than once: these arguments are added for each further run (issue 16: the e2e
# ratio for 3-part messages too; the output of the runs is one section).
MORE_RUNS = {"bench_e2e.py": [["--parts", "3"]]}
ROW = re.compile(r"^\|(?P<figure>[^|]+)\|(?P<value>[^|]+)\|(?P<unit>[^|]+)\|(?P<goal>[^|]*)\|\s*$")


def table_rows(markdown: str) -> list[tuple[str, ...]]:
    """(figure, value, unit, goal) of every table row a bench printed."""
    rows = []
    for line in markdown.splitlines():
        m = ROW.match(line.strip())
        if m and m["figure"].strip() not in ("figure",) and not set(m["value"].strip()) <= set("-:"):
            rows.append(tuple(m[k].strip() for k in ("figure", "value", "unit", "goal")))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller sizes (smoke run)")
    parser.add_argument("only", nargs="*", help="bench script names to run (default: all)")
    args = parser.parse_args()
    sections, failures, summary = [], [], []
    scripts = sorted(BENCH.glob("bench_*.py"))
    outputs = {}
    cache = BENCH / "results" / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    for script in scripts:
        cached = cache / f"{script.stem}.md"
        if args.only and script.name not in args.only and script.stem not in args.only:
            # Not selected: keep the figures of its last run, so latest.md stays complete.
            if cached.exists():
                outputs[script.name] = cached.read_text()
                sections.append(f"## {script.name} (previous run)\n\n{outputs[script.name].strip()}\n")
                summary += [(script.stem.removeprefix("bench_"), *row) for row in table_rows(outputs[script.name])]
            continue
        print(f"== {script.name}", flush=True)
        started = time.perf_counter()
        extra = (QUICK_ARGS if args.quick else FULL_ARGS).get(script.name, [])
        stdout, failed = [], None
        for more in [[], *MORE_RUNS.get(script.name, [])]:
            run = subprocess.run(
                [sys.executable, str(script), *extra, *more],
                cwd=BENCH.parent,
                capture_output=True,
                text=True,
                env=os.environ,
            )
            print(run.stdout, flush=True)
            if run.returncode != 0:
                failed = run
                break
            stdout.append(run.stdout)
        took = time.perf_counter() - started
        if failed is not None:
            failures.append(script.name)
            print(failed.stderr[-3000:], file=sys.stderr)
            sections.append(
                f"## {script.name}\n\nFAILED (exit {failed.returncode}):\n\n```\n{failed.stderr[-1500:]}\n```\n"
            )
        else:
            outputs[script.name] = "\n".join(stdout)
            cached.write_text(outputs[script.name])
            sections.append(f"## {script.name} ({took:.0f} s)\n\n{outputs[script.name].strip()}\n")
            summary += [(script.stem.removeprefix("bench_"), *row) for row in table_rows(outputs[script.name])]
    summary += e2e_ratio(outputs)
    summary.append(machine_speed())
    table = ["## Summary: every figure", "", "| bench | figure | value | unit | goal |", "|---|---|---:|---|---|"]
    table += [f"| {' | '.join(row)} |" for row in summary]
    header = (
        f"# Benchmark results\n\nRun {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores "
        f"by `make bench`{' --quick' if args.quick else ''}.\n\n"
    )
    out = BENCH / "results" / "latest.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(header + "\n".join(table) + "\n\n" + "\n".join(sections))
    print(f"wrote {out.relative_to(BENCH.parent)}; failed: {failures or 'none'}")
    return 1 if failures else 0


def machine_speed() -> tuple[str, ...]:
    """A pure-Python reference loop, timed now: shared 2-core machines differ from day to day
    (the same code has measured 2.5× apart), so runs are compared through this figure."""
    started = time.perf_counter()
    total = 0
    for i in range(10_000_000):
        total += i
    took = (time.perf_counter() - started) * 1000
    return (
        "machine",
        "pure-Python reference loop (10M additions; lower = faster machine)",
        f"{took:,.0f}",
        "ms",
        "compare runs by it",
    )


def e2e_ratio(outputs: dict[str, str]) -> list[tuple[str, ...]]:
    """Our end-to-end rate as a share of the raw smpplib rate. bench_e2e.py measures raw smpplib
    on its own simulator right before and after its workers and prints that paired ratio; a ratio
    to bench_smpp_raw.py's separate run (minutes apart on a shared machine) is only the fallback."""

    def number(text: str) -> float:
        return float(text.replace(",", ""))

    e2e = {r[0]: r[1] for r in table_rows(outputs.get("bench_e2e.py", ""))}
    paired = [
        (f"e2e ÷ raw smpplib, same run (parts/s ÷ msg/s){tag}", what)
        for tag, what in (("", "1-part messages"), (", 3-part messages", "3-part messages (parts/s)"))
    ]
    rows = [
        ("e2e", f"end-to-end rate / raw smpplib rate on the same simulator, {what}", e2e[figure], "ratio", "≥ 0.40")
        for figure, what in paired
        if figure in e2e
    ]
    if rows:
        return rows
    raw = [
        r
        for r in table_rows(outputs.get("bench_smpp_raw.py", ""))
        if r[0].startswith("raw smpplib") and "msg/s" in r[2]
    ]
    if not raw:
        return []
    best = max(number(r[1]) for r in raw)
    # A raw message is one submit_sm + one receipt; a 3-part message is three of each, so the
    # 3-part ratio compares parts/s with it (like for like on the wire).
    for figure, what in (
        ("accepted → receipt stored (delivered)", "1-part messages"),
        ("accepted → receipt stored, parts, 3-part messages", "3-part messages (parts/s)"),
    ):
        ours = e2e.get(figure)
        if ours:
            rows.append(
                (
                    "e2e",
                    f"end-to-end rate / raw smpplib rate, {what}",
                    f"{number(ours) / best:.2f}",
                    "ratio",
                    f"≥ 0.40 (raw smpplib best window: {best:,.0f} msg/s)",
                )
            )
    return rows


if __name__ == "__main__":
    sys.exit(main())
