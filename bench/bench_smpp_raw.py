"""SMPP submit throughput on loopback against the SMSC simulator (R-DLV-3).

    .venv/bin/python bench/bench_smpp_raw.py [--messages 10000] [--windows 1,10,50]

The simulator runs in a separate process (the GIL would otherwise be shared). For each window:
- "raw smpplib": smpplib Client + TCP_NODELAY, send_message() while fewer than `window` are
  outstanding, read_once() otherwise — the ceiling of the library;
- "SmppSession": our session (delivery/smpp/session.py) doing the same with its own reader, callbacks,
  TPS limiter disabled.
Every run waits for all submit_sm_resp AND all delivery receipts, and checks every receipt
matched a submitted message id. Prints a table (figure, value, unit, goal).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import smpplib.client  # noqa: E402

from delivery.simulator.server import SmscSimulator  # noqa: E402
from delivery.smpp.receipts import normalise_message_id, parse_receipt  # noqa: E402
from delivery.smpp.session import SmppSession  # noqa: E402

SYSTEM_ID, PASSWORD = "bench", "bench"


def run_simulator(port: int, ready, stop) -> None:
    sim = SmscSimulator("127.0.0.1", port, credentials={SYSTEM_ID: PASSWORD}, receipt_delay=0.0)
    sim.start()
    ready.set()
    stop.wait()
    sim.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bench_raw(port: int, messages: int, window: int, source: str = "10690001") -> tuple[float, int]:
    client = smpplib.client.Client("127.0.0.1", port, timeout=10, allow_unknown_opt_params=True)
    client.connect()
    client._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.bind_transceiver(system_id=SYSTEM_ID, password=PASSWORD)
    pending: set[int] = set()
    ids: set[str] = set()
    receipt_ids: list[str] = []

    def sent(pdu, **_):
        pending.discard(pdu.sequence)
        ids.add(normalise_message_id(pdu.message_id))

    def received(pdu, **_):
        receipt_ids.append(parse_receipt(short_message=pdu.short_message).message_id)

    client.set_message_sent_handler(sent)
    client.set_message_received_handler(received)
    start = time.perf_counter()
    for i in range(messages):
        while len(pending) >= window:
            client.read_once()
        pdu = client.send_message(
            source_addr=source,
            destination_addr=f"86138{i:08d}",
            short_message=b"benchmark message",
            registered_delivery=1,
        )
        pending.add(pdu.sequence)
    while pending or len(receipt_ids) < messages:
        client.read_once()
    elapsed = time.perf_counter() - start
    client.unbind()
    client.disconnect()
    matched = sum(1 for r in receipt_ids if r in ids)
    return elapsed, matched


def bench_session(port: int, messages: int, window: int) -> tuple[float, int]:
    ids: set[str] = set()
    receipt_ids: list[str] = []
    session = SmppSession(
        host="127.0.0.1",
        port=port,
        system_id=SYSTEM_ID,
        password=PASSWORD,
        window=window,
        on_result=lambda r: ids.add(r.message_id),
        on_inbound=lambda p: receipt_ids.append(p.receipt.message_id),
    )
    session.connect()
    start = time.perf_counter()
    for i in range(messages):
        session.submit(ref=str(i), source="10690001", destination=f"+86138{i:08d}", text="benchmark message")
    session.drain(60)
    deadline = time.monotonic() + 60
    while len(receipt_ids) < messages and time.monotonic() < deadline:
        session.poll(0.05)
    elapsed = time.perf_counter() - start
    session.close()
    matched = sum(1 for r in receipt_ids if r in ids)
    return elapsed, matched


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--windows", default="1,10,50")
    args = parser.parse_args()
    windows = [int(w) for w in args.windows.split(",")]

    port = free_port()
    ctx = multiprocessing.get_context("fork")
    ready, stop = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=run_simulator, args=(port, ready, stop), daemon=True)
    proc.start()
    ready.wait(10)
    rows = []
    try:
        for window in windows:
            for name, fn in (("raw smpplib", bench_raw), ("SmppSession", bench_session)):
                elapsed, matched = fn(port, args.messages, window)
                rows.append(
                    (
                        f"{name} window={window}: submits+receipts",
                        args.messages / elapsed,
                        "msg/s",
                        "> 1000" if window > 1 else "-",
                    )
                )
                rows.append(
                    (f"{name} window={window}: receipts matched", matched, f"of {args.messages}", f"= {args.messages}")
                )
    finally:
        stop.set()
        proc.join(10)

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _setup import print_table

    print_table(
        f"SMPP client on loopback simulator, {args.messages} messages (raw smpplib vs our SmppSession)",
        [
            (figure, f"{value:,.0f}" if isinstance(value, float) else str(value), unit, goal)
            for figure, value, unit, goal in rows
        ],
    )


if __name__ == "__main__":
    main()
