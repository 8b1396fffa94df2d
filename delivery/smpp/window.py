"""The send window of one bind, as the carrier lets it be (issue 20, R-DLV-3).

- The configured window is a ceiling. A 0x14 (queue full) or 0x58 (throttled) halves the effective
  window, once per round trip; it grows back by one every `recover_every` s once `hold` s passed
  without another cut. `on_change(n)` hears every change (the metrics gauge).
- Throttling back-off: after a 0x14/0x58 nothing is sent for a delay that doubles with each
  refusal (up to `backoff_max`) and resets once a submit sent after it is accepted.
- Part order: a part refused 0x14/0x58 is sent again by the session. Until it is accepted (or
  reported), no later part of its message may be sent (`held`), so the unanswered parts of a
  message were always sent in part order: unknown-submission reconciliation proves doubtful parts
  by receipts in send order.

Pure state: the clock is passed in; the session owns the socket and the pending submits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Protocol, TypeVar

logger = logging.getLogger("delivery.smpp")


class _Part(Protocol):
    ref: str
    part: int


_P = TypeVar("_P", bound=_Part)


class SendWindow:
    def __init__(
        self,
        *,
        window: int,
        hold: float,
        recover_every: float,
        backoff: float,
        backoff_max: float,
        on_change: Callable[[int], None] | None = None,
        label: str = "",
    ) -> None:
        if window < 1:
            raise ValueError("window must be >= 1")
        self.window = window
        self.effective = window
        self.hold = hold
        self.recover_every = recover_every
        self.backoff = backoff
        self.backoff_max = backoff_max
        self.on_change = on_change
        self.label = label
        self._cut_at = float("-inf")
        self._next_grow = 0.0
        self._throttle_until = 0.0
        self._throttle_delay = 0.0
        self._throttle_started = 0.0
        #: ref → parts refused 0x14/0x58 and not yet accepted or reported
        self._refused: dict[str, set[int]] = {}

    # -- window size ----------------------------------------------------------------------------
    def grow(self, now: float) -> None:
        if self.effective < self.window and now >= self._next_grow:
            self.effective += 1
            self._next_grow = now + self.recover_every
            self._changed()

    def cut(self, *, sent_at: float, now: float) -> bool:
        """Halve the window for a refusal of a part sent at `sent_at`. One cut per round trip:
        refusals of parts sent before the last cut are the same congestion, already answered (else
        ten 0x14 in a row would take a window of 50 to 1). Returns whether it cut."""
        if sent_at < self._cut_at:
            return False
        self.effective = max(1, self.effective // 2)
        self._cut_at = now
        self._next_grow = now + self.hold
        logger.info("SMPP %s: throttled, effective window now %s", self.label, self.effective)
        self._changed()
        return True

    def _changed(self) -> None:
        if self.on_change is not None:
            try:
                self.on_change(self.effective)
            except Exception:  # a metrics hook never breaks sending
                logger.debug("on_window failed", exc_info=True)

    # -- throttling back-off --------------------------------------------------------------------
    def throttled(self, now: float) -> None:
        """A 0x14/0x58 arrived: back off (doubling)."""
        self._throttle_delay = min(self.backoff_max, self._throttle_delay * 2 if self._throttle_delay else self.backoff)
        self._throttle_until = max(self._throttle_until, now + self._throttle_delay)
        self._throttle_started = now

    def accepted(self, *, sent_at: float) -> None:
        """A submit was accepted: one sent after the back-off went through, so the back-off resets."""
        if self._throttle_delay and sent_at >= self._throttle_started:
            self._throttle_delay = 0.0

    def backoff_until(self) -> float:
        """Monotonic time before which nothing is sent (a past time: send now)."""
        return self._throttle_until

    # -- part order -----------------------------------------------------------------------------
    def refused(self, ref: str, part: int) -> None:
        """This part was refused 0x14/0x58 and will be sent again."""
        self._refused.setdefault(ref, set()).add(part)

    def settled(self, ref: str, part: int) -> None:
        """This part was accepted or reported: later parts of its message may go."""
        refused = self._refused.get(ref)
        if refused is not None:
            refused.discard(part)
            if not refused:
                del self._refused[ref]

    def held(self, ref: str, part: int) -> bool:
        """An earlier part of this message was refused and is not accepted yet."""
        refused = self._refused.get(ref)
        return bool(refused) and min(refused) < part

    def next_resend(self, resend: Iterable[_P], pending: Iterable[_P]) -> _P | None:
        """The first refused part (of `resend`) that may go again now: no earlier refused part of
        its message is still waiting, and no later part of it is unanswered in `pending` (that one
        went first, so it must be settled before this one goes, or the two could be doubtful
        together out of order)."""
        pending = list(pending)
        for item in resend:
            if self.held(item.ref, item.part):
                continue
            if any(p.ref == item.ref and p.part > item.part for p in pending):
                continue
            return item
        return None
