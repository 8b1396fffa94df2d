"""Issue 21, item 6: the whole platform (`manage.py devstack`: web, worker, listener, scheduler)
rides out real server restarts under mixed load — PostgreSQL stopped for 20 s, PostgreSQL killed
with -9 and restarted, Redis (broker and rate-limit cache) stopped for 20 s — with nobody touching
a process. PRIVATE servers (tests/reliability/private_servers.py) so no other run is disturbed;
the SMSC simulator runs in this process and is the witness of what was sent.

Proven, after settling and after the reconcile window (run short: 15 s): 0 accepted messages lost,
0 parts accepted twice by the SMSC, 0 messages stuck in a non-final state, 0 processes restarted
by hand, 0 HTML error pages, ledger exact (balance + held + captured = top-ups; captured = the
parts the SMSC accepted × price; no hold left open). Figures go to bench/bench_restarts.py.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from .private_servers import PrivatePostgres, PrivateRedis, Unavailable, free_port

pytestmark = pytest.mark.faults

ROOT = Path(__file__).resolve().parents[2]
PRICE = 40_000  # tests/delivery/flow/conftest.PRICE: per segment
RECONCILE = 15
FINAL = {"delivered", "undelivered", "expired", "rejected", "failed", "cancelled", "unknown"}
OUTAGE = 20.0


def manage(env: dict, *args: str, timeout: float = 300) -> str:
    run = subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout


def shell(env: dict, code: str, tag: str) -> dict:
    out = manage(env, "shell", "-c", code)
    line = next(line for line in out.splitlines() if line.startswith(tag + " "))
    return json.loads(line[len(tag) + 1 :])


class Load:
    """Mixed load over HTTP: single sends, 10-recipient batches and 3-part messages, each with a
    client_ref; a 503 or a refused connection is retried with the same client_ref (what a client
    does with Retry-After), so a retried request never sends twice."""

    def __init__(self, base: str, setup: dict) -> None:
        self.base, self.setup = base, setup
        self.accepted: dict[int, int] = {}  # message id → segments
        self.statuses: dict[str, int] = {}
        self.html_pages = 0
        self.gave_up = 0
        self.stop = threading.Event()
        self._numbers = itertools.count(1)
        self._codes = itertools.count(100000)
        self._lock = threading.Lock()

    def number(self) -> str:
        return f"+86139{next(self._numbers):08d}"

    def request(self, path: str, body: dict) -> dict | None:
        data = json.dumps(body).encode()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            req = urllib.request.Request(  # noqa: S310 - loopback
                self.base + path,
                data=data,
                method="POST",
                headers={
                    "Content-Type": "application/json",
                    "X-Access-Key-Id": self.setup["key_id"],
                    "X-Access-Key-Secret": self.setup["secret"],
                },
            )
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
                    self._count(resp.status, resp.headers.get("Content-Type", ""))
                    return json.loads(resp.read())
            except urllib.error.HTTPError as exc:
                self._count(exc.code, exc.headers.get("Content-Type", ""))
                if exc.code not in (429, 503):
                    raise AssertionError(f"{path}: {exc.code} {exc.read()[:300]!r}") from exc
            except OSError:  # refused / reset while the web process reconnects
                self._count(0, "")
            time.sleep(1.0)
        self.gave_up += 1
        return None

    def _count(self, status: int, content_type: str) -> None:
        with self._lock:
            self.statuses[str(status)] = self.statuses.get(str(status), 0) + 1
            if "html" in content_type:
                self.html_pages += 1

    def run(self) -> None:
        kinds = itertools.cycle(["single", "batch", "long", "single"])
        while not self.stop.is_set():
            kind = next(kinds)
            ref = f"{kind}-{next(self._codes)}"
            template = self.setup["long" if kind == "long" else "single"]
            params = {"code": str(next(self._codes))}
            if kind == "batch":
                body = {"signature": "DemoShop", "template": template, "params": params, "client_ref": ref}
                body["recipients"] = [self.number() for _ in range(10)]
                answer = self.request("/api/v1/batches", body)
                ids = [(m["id"], m["segments"]) for m in (answer or {}).get("messages", []) if m.get("id")]
            else:
                body = {"to": self.number(), "signature": "DemoShop", "template": template, "params": params}
                answer = self.request("/api/v1/messages", {**body, "client_ref": ref})
                ids = [(answer["id"], answer["segments"])] if answer else []
            with self._lock:
                self.accepted.update(ids)
            time.sleep(0.15)


def test_postgres_stop_kill9_and_redis_stop_under_load(tmp_path, smsc_factory, figure):
    try:
        pg = PrivatePostgres()
        redis = PrivateRedis(tmp_path / "redis")
        pg.init()
        redis.start()
    except Unavailable as exc:
        pytest.skip(str(exc))
    # receipts 3 s after the answer: those of the last messages before an outage arrive during it
    sim = smsc_factory(credentials={"demo": "demo"}, receipt_delay=3.0)
    web_port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": pg.url,
        "DRAMATIQ_BROKER_URL": redis.url,
        "CACHE_URL": redis.url.replace("/0", "/1"),
        "SMS_VAR_DIR": str(tmp_path / "var"),
        "DELIVERY_SPOOL_DIR": str(tmp_path / "spool"),
        "DELIVERY_RECONCILE_SECONDS": str(RECONCILE),
        "DELIVERY_RECONCILE_SECONDS_VERIFICATION": str(RECONCILE),
        "DELIVERY_SUBMITTING_STALE_SECONDS": "10",
        "DEBUG": "true",  # as `make run`: an unhandled error would be Django's HTML page
        "COMPLIANCE_SPIKE_MULTIPLE": "0",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("FAULT_FIGURES_FILE", None)
    stack = None
    try:
        manage(env, "bootstrap")
        setup = shell(env, f"from tests.reliability.restart_stack import setup; setup(sim_port={sim.port})", "SETUP")
        log_path = tmp_path / "devstack.log"
        with open(log_path, "w") as log:
            stack = subprocess.Popen(  # noqa: S603
                [sys.executable, "manage.py", "devstack", "--no-simulator", "--addr", f"127.0.0.1:{web_port}"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        load = Load(f"http://127.0.0.1:{web_port}", setup)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{web_port}/healthz", timeout=2).close()  # noqa: S310
                break
            except OSError:
                time.sleep(0.3)
        loader = threading.Thread(target=load.run, daemon=True)
        loader.start()

        time.sleep(5)
        pg.stop()  # 1. PostgreSQL stopped for 20 s
        time.sleep(OUTAGE)
        pg.start()
        time.sleep(10)
        pg.kill9()  # 2. PostgreSQL killed -9 (with its backends), restarted: crash recovery
        time.sleep(2)
        pg.start()
        time.sleep(10)
        redis.stop()  # 3. Redis (broker + rate-limit cache) stopped for 20 s
        time.sleep(OUTAGE)
        redis.start()
        last_outage_end = time.monotonic()
        time.sleep(5)
        load.stop.set()
        loader.join(timeout=120)

        # Settle: every accepted message final, and the reconcile window (+ a sweep) past.
        code = f"from tests.reliability.restart_stack import measure; measure(tenant_id={setup['tenant_id']})"
        settle_deadline = time.monotonic() + 120
        while True:
            state = shell(env, code, "MEASURE")
            statuses = {int(k): v for k, v in state["messages"].items()}
            open_ = [i for i in load.accepted if statuses.get(i) not in FINAL]
            window_over = time.monotonic() >= last_outage_end + RECONCILE + 35
            if (not open_ and window_over) or time.monotonic() > settle_deadline:
                break
            time.sleep(5)
        log_text = log_path.read_text(errors="replace")
    finally:
        if stack is not None and stack.poll() is None:
            stack.terminate()  # devstack stops its own children
            try:
                stack.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(stack.pid, 9)
        redis.stop()
        pg.destroy()

    lost = [i for i in load.accepted if i not in statuses]
    stuck = [i for i in load.accepted if i in statuses and statuses[i] not in FINAL]
    twice = sim.duplicate_parts()
    accepted_parts = len(sim.accepted_parts("demo"))
    exits = log_text.count(" exited with ")
    spooled = log_text.count("spooled to")
    ledger = state["balance"] + state["held"] + state["captured"] - state["topups"]
    scale = (
        f"{len(load.accepted)} messages ({sum(1 for s in load.accepted.values() if s == 3)} of 3 parts); "
        f"PostgreSQL stop {OUTAGE:.0f} s, kill -9, Redis stop {OUTAGE:.0f} s; reconcile window {RECONCILE} s"
    )
    figure("restarts: accepted messages lost", len(lost), scale=scale)
    figure("restarts: parts accepted twice by the SMSC", len(twice), unit="parts", scale=scale)
    figure("restarts: messages stuck after settling", len(stuck), scale=scale)
    figure(
        "restarts: processes restarted by hand",
        0,
        unit="restarts",
        scale=f"devstack restarted {exits} children itself; {spooled} spool writes of receipts during the outages",
    )
    figure("restarts: HTML error pages", load.html_pages, unit="responses", scale=json.dumps(load.statuses))
    figure("restarts: ledger balance + held + captured − top-ups", ledger, unit="micro-CNY", scale=scale)
    print("restart figures:", json.dumps({"statuses": load.statuses, "by_status": state["by_status"]}))
    assert len(load.accepted) > 100, load.statuses
    assert lost == [], lost[:20]
    assert twice == {}, list(twice.items())[:10]
    assert stuck == [], [(i, statuses[i]) for i in stuck[:20]]
    assert load.html_pages == 0, load.statuses
    assert load.gave_up == 0
    assert ledger == 0
    assert state["open_holds"] == 0
    assert state["captured"] == accepted_parts * PRICE, (state["captured"], accepted_parts)
