"""Fixtures for the SMPP layer: a real SMSC simulator on a free loopback port (no database)."""

import time

import pytest

from delivery.simulator import SmscSimulator
from delivery.smpp import SmppSession

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

    def on_result(self, result):
        self.results.append(result)

    def on_inbound(self, pdu):
        self.inbound.append(pdu)

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


def poll_until(session, predicate, timeout=5.0):
    """Poll the session until predicate() is true; returns predicate()'s final value."""
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        session.poll(0.02)
    return predicate()
