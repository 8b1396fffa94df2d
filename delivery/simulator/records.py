"""What the simulator records and the small pieces its binds share: accepted submits, deliver_sm
sent, deliver_sm waiting for a receiving bind, sequence numbers, the per-account TPS bucket.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

BIND_COMMANDS = {
    "bind_transmitter": ("bind_transmitter_resp", True, False),
    "bind_receiver": ("bind_receiver_resp", False, True),
    "bind_transceiver": ("bind_transceiver_resp", True, True),
}


class SequenceSource:
    """The minimal 'client' smpplib PDUs need for sequence numbers."""

    def __init__(self) -> None:
        self.sequence = 0

    def next_sequence(self) -> int:
        self.sequence = self.sequence + 1 if self.sequence < 0x7FFFFFFF else 1
        return self.sequence


@dataclass
class SubmitRecord:
    """One accepted submit_sm, as the SMSC saw it."""

    system_id: str
    source: str
    destination: str
    data_coding: int
    esm_class: int
    registered_delivery: int
    udh: tuple[int, int, int] | None  # (ref, total, seq) for concatenated parts
    text: str  # this part's decoded text
    message_id: str  # as returned in submit_sm_resp
    received_at: float  # time.monotonic()
    sequence: int
    number: int = 0  # the id as a number (message_id renders it in submit_id_format)


@dataclass
class DeliverRecord:
    """One deliver_sm the SMSC sent (receipt or MO) and what the ESME answered."""

    kind: str  # "receipt" | "mo"
    message_id: str | None
    text: str
    sequence: int
    status: int | None = None  # deliver_sm_resp / data_sm_resp command_status (None: not answered yet)
    attempt: int = 1
    command: str = "deliver_sm"  # or "data_sm"


@dataclass
class PendingDeliver:
    kind: str
    fields: dict
    message_id: str | None
    text: str
    attempt: int = 1
    command: str = "deliver_sm"


class TpsBucket:
    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.stamp = burst, time.monotonic()

    def try_take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False
