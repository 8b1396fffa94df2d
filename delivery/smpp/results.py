"""What an SMPP session reports: sentinel statuses, the transient / unknown-outcome sets, errors,
SubmitResult, InboundPdu, QueryResult and the failure reasons docs/delivery.md uses (R-DLV-3).
"""

from __future__ import annotations

from dataclasses import dataclass

from smpplib import consts

from .receipts import MESSAGE_STATE_TO_STAT, Receipt

# Sentinel command_status values for results the SMSC never sent (negative: never a real status).
STATUS_DISCONNECTED = -1  # connection lost before the response arrived (or before sending)
STATUS_TIMEOUT = -2  # no response within response_timeout
STATUS_NOT_SENT = -3  # never written to the socket (the link was down or went down first): safe to send again

#: The SMSC may or may not have taken these: the submit_sm went out and its answer was lost. Never
#: resent blindly (docs/delivery.md "unknown submissions"); settled by a receipt or the window.
UNKNOWN_OUTCOME_STATUSES = frozenset({STATUS_DISCONNECTED, STATUS_TIMEOUT})

THROTTLE_STATUSES = frozenset({consts.SMPP_ESME_RTHROTTLED, consts.SMPP_ESME_RMSGQFUL})
#: Statuses after which the same submit may be sent again later.
TRANSIENT_STATUSES = frozenset(
    {
        consts.SMPP_ESME_RTHROTTLED,  # 0x58
        consts.SMPP_ESME_RMSGQFUL,  # 0x14
        consts.SMPP_ESME_RSYSERR,  # 0x08: SMSC-side trouble, not about this message
        consts.SMPP_ESME_RX_T_APPN,  # 0x64: temporary application error
        # 0x04 "incorrect bind status": the bind is unbinding or not allowed to submit; the
        # session is at fault, not the message (a carrier's unbind refuses what crossed it).
        consts.SMPP_ESME_RINVBNDSTS,
        STATUS_DISCONNECTED,
        STATUS_TIMEOUT,
        STATUS_NOT_SENT,
    }
)


class SmppError(Exception):
    """Any SMPP session failure. `command_status` is the SMPP status when there is one."""

    def __init__(self, message: str = "", command_status: int | None = None) -> None:
        super().__init__(message)
        self.command_status = command_status


class SmppConnectError(SmppError):
    """TCP connection failed (refused, unreachable, timeout)."""


class SmppBindError(SmppError):
    """The SMSC refused the bind (bad credentials, too many binds…)."""


class SmppDisconnected(SmppError):
    """The connection is gone (or was never opened). Outstanding submits were reported transient."""


def is_transient(command_status: int) -> bool:
    return command_status in TRANSIENT_STATUSES


def failure_reason(command_status: int) -> str:
    """What a refused part's status means, in the words docs/delivery.md uses (issue 20)."""
    if command_status in THROTTLE_STATUSES:
        return "throttled"
    if command_status == STATUS_NOT_SENT:
        return "not_sent"
    if command_status in UNKNOWN_OUTCOME_STATUSES:
        return "link_lost"
    return f"smsc_error 0x{command_status:08x}"


@dataclass(frozen=True)
class SubmitResult:
    ref: str  # the caller's reference passed to submit()
    part: int  # 1-based part number
    parts: int  # total parts of this message
    message_id: str | None  # SMSC message id (normalised) when ok
    command_status: int  # 0 = ESME_ROK; negative = STATUS_DISCONNECTED / STATUS_TIMEOUT
    transient: bool  # retry-able (throttled, queue full, timeout, disconnect) vs permanent
    raw_message_id: str | None = None  # the id exactly as the SMSC sent it

    @property
    def ok(self) -> bool:
        return self.command_status == consts.SMPP_ESME_ROK

    @property
    def outcome_unknown(self) -> bool:
        """Sent, answer lost: the SMSC may hold this part (never resend it blindly)."""
        return self.command_status in UNKNOWN_OUTCOME_STATUSES


@dataclass(frozen=True)
class InboundPdu:  # a deliver_sm
    is_receipt: bool
    receipt: Receipt | None  # parsed (delivery/smpp/receipts.py), when is_receipt
    source_addr: str
    destination_addr: str
    text: str  # decoded short_message / message_payload (MO text; receipt text for receipts)
    data_coding: int = 0
    esm_class: int = 0
    concat: tuple[int, int, int] | None = None  # (ref, total, seq) of a concatenated MO part
    sequence: int = 0
    command: str = "deliver_sm"  # or data_sm (answered with data_sm_resp)


@dataclass(frozen=True)
class QueryResult:
    """The SMSC's answer to one query_sm (issue 21, item 3)."""

    message_id: str  # as asked
    command_status: int  # 0 = found; ESME_RQUERYFAIL: the SMSC does not know it; negative: no answer
    message_state: int | None = None  # SMPP 3.4 §5.2.28: 1 ENROUTE, 2 DELIVERED, … (None without an answer)
    final_date: str = ""  # SMPP absolute time "YYMMDDhhmmsstnnp", empty while not final
    error_code: int = 0  # network error code, when the SMSC gives one

    @property
    def ok(self) -> bool:
        return self.command_status == consts.SMPP_ESME_ROK

    @property
    def stat(self) -> str:
        """The receipt stat word of the state (DELIVRD, UNDELIV, …), "" without one."""
        return MESSAGE_STATE_TO_STAT.get(self.message_state or 0, "") if self.ok else ""
