"""Fixtures for the SMPP layer: a real SMSC simulator on a free loopback port (no database)."""

import socket
import time

import pytest

from delivery.simulator.server import SmscSimulator
from delivery.smpp.results import SmppDisconnected
from delivery.smpp.session import SmppSession

SYSTEM_ID = "esme1"
PASSWORD = "secret1"


@pytest.fixture
def smsc_factory():
    """smsc_factory(**options) -> a started SmscSimulator (stopped after the test)."""
    started: list[SmscSimulator] = []

    def make(**options) -> SmscSimulator:
        options.setdefault("credentials", {SYSTEM_ID: PASSWORD})
        options.setdefault("seed", 1234)
        sim = SmscSimulator("127.0.0.1", 0, **options)
        sim.start()
        started.append(sim)
        return sim

    yield make
    for sim in started:
        sim.stop()


@pytest.fixture
def smsc(smsc_factory):
    return smsc_factory()


class Recorder:
    """Collects on_result / on_inbound callbacks."""

    def __init__(self):
        self.results = []
        self.inbound = []
        self.events = []  # ("result" | "inbound", object) in callback order

    def on_result(self, result):
        self.results.append(result)
        self.events.append(("result", result))

    def on_inbound(self, pdu):
        self.inbound.append(pdu)
        self.events.append(("inbound", pdu))

    @property
    def receipts(self):
        return [p.receipt for p in self.inbound if p.is_receipt]

    @property
    def mo(self):
        return [p for p in self.inbound if not p.is_receipt]


@pytest.fixture
def recorder():
    return Recorder()


@pytest.fixture
def session_factory(recorder):
    """session_factory(sim, **kwargs) -> a connected SmppSession (closed after the test)."""
    sessions: list[SmppSession] = []

    def make(sim, *, connect=True, **kwargs) -> SmppSession:
        kwargs.setdefault("on_result", recorder.on_result)
        kwargs.setdefault("on_inbound", recorder.on_inbound)
        kwargs.setdefault("system_id", SYSTEM_ID)
        kwargs.setdefault("password", PASSWORD)
        session = SmppSession(host="127.0.0.1", port=sim.port, **kwargs)
        if connect:
            session.connect()
        sessions.append(session)
        return session

    yield make
    for session in sessions:
        try:
            session.close()
        except Exception:  # noqa: BLE001 - best effort teardown
            pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def send_all(session, recorder, messages, *, attempts=20, reconnect=True):
    """Submit {ref: (destination, text)}; resubmit messages with a transient result (after a
    reconnect when the link dropped) until every part of every message is OK. Returns the
    number of rounds. This is the retry loop the delivery flow runs, in miniature."""
    todo = dict(messages)
    rounds = 0
    while todo and rounds < attempts:
        rounds += 1
        start = len(recorder.results)
        try:
            for ref, (destination, text) in todo.items():
                session.submit(ref=ref, source="10690001", destination=destination, text=text)
            session.drain(10)
        except SmppDisconnected:
            if not reconnect:
                raise
        if not session.connected:
            session.connect_with_backoff(max_attempts=5, base_delay=0.01)
        round_results = recorder.results[start:]
        failed = {r.ref for r in round_results if not r.ok}
        assert all(r.transient for r in round_results if not r.ok)
        done = {r.ref for r in round_results if r.ok} - failed
        # a multipart message with a failed part is resent whole (tests use single parts here)
        todo = {ref: todo[ref] for ref in todo if ref not in done}
    return rounds


def poll_until(session, predicate, timeout=5.0):
    """Poll the session until predicate() is true; returns predicate()'s final value."""
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        session.poll(0.02)
    return predicate()
