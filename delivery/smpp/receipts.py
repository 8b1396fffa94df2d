"""Delivery receipts and SMSC message ids (R-DLV-4): parse the appendix-B text and the receipt
TLVs, read receipt dates, normalise message ids and list their hex/decimal variants, and write a
receipt text (the simulator's). Pure: no network, no database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

# --- message ids ----------------------------------------------------------------------------------

_HEX = re.compile(r"^[0-9a-f]+$")
_DEC = re.compile(r"^[0-9]+$")


def normalise_message_id(value: str | int | bytes) -> str:
    """Canonical form of an SMSC message id: strip whitespace/NULs, lowercase, strip leading zeros
    ("0" stays "0"). An int is rendered in decimal.

    It does NOT convert between hex and decimal (an id like "12" is valid in both): SMSCs that
    return the id in hex in submit_sm_resp and in decimal in the receipt (or the reverse) are
    matched with `message_id_variants`."""
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    if isinstance(value, int):
        return str(value)
    text = value.replace("\x00", "").strip().lower()
    if not text:
        return ""
    stripped = text.lstrip("0")
    return stripped or "0"


def message_id_variants(value: str | int | bytes) -> set[str]:
    """All normalised forms under which the same message may have been recorded: the id itself,
    its hex rendering if it reads as decimal, its decimal rendering if it reads as hex.

    Lookup rule (documented in docs/smpp.md): match the exact normalised id first; only if none
    matches, look for any of these variants (scoped to the channel), because "12" (dec) and "12"
    (hex = 18) are different numbers."""
    norm = normalise_message_id(value)
    variants = {norm} if norm else set()
    if not norm:
        return variants
    if _DEC.match(norm):
        variants.add(format(int(norm), "x"))
    if _HEX.match(norm):
        variants.add(str(int(norm, 16)))
    return variants


# --- delivery receipts ----------------------------------------------------------------------------

#: stat → our message status (R-DLV-4). ACCEPTD / ENROUTE are not final: status "submitted".
#: DELETED (the SMSC deleted the message, e.g. cancel_sm or operator action) is final and not
#: delivered: we report it as "failed" (no better mapping exists in the shared vocabulary).
STAT_TO_STATUS = {
    "DELIVRD": "delivered",
    "UNDELIV": "undelivered",
    "EXPIRED": "expired",
    "REJECTD": "rejected",
    "DELETED": "failed",
    "UNKNOWN": "unknown",
    "ACCEPTD": "submitted",
    "ENROUTE": "submitted",
}
FINAL_STATS = frozenset({"DELIVRD", "UNDELIV", "EXPIRED", "REJECTD", "DELETED", "UNKNOWN"})

#: SMPP 3.4 message_state TLV (0x0427) values → stat text.
MESSAGE_STATE_TO_STAT = {
    1: "ENROUTE",
    2: "DELIVRD",
    3: "EXPIRED",
    4: "DELETED",
    5: "UNDELIV",
    6: "ACCEPTD",
    7: "UNKNOWN",
    8: "REJECTD",
}
STAT_TO_MESSAGE_STATE = {v: k for k, v in MESSAGE_STATE_TO_STAT.items()}
# Common spellings seen in the wild.
_STAT_ALIASES = {
    "DELIVERED": "DELIVRD",
    "UNDELIVERABLE": "UNDELIV",
    "REJECTED": "REJECTD",
    "ACCEPTED": "ACCEPTD",
}

TLV_RECEIPTED_MESSAGE_ID = 0x001E
TLV_MESSAGE_STATE = 0x0427
TLV_NETWORK_ERROR_CODE = 0x0423


@dataclass(frozen=True)
class Receipt:
    message_id: str  # normalised (see normalise_message_id)
    stat: str  # DELIVRD, UNDELIV, EXPIRED, REJECTD, ACCEPTD, UNKNOWN, DELETED, ENROUTE
    err: str
    submit_date: datetime | None
    done_date: datetime | None
    status: str  # delivered / undelivered / expired / rejected / failed / unknown / submitted
    sub: str = ""
    dlvrd: str = ""
    text: str = ""
    raw_message_id: str = ""  # as received, before normalisation

    @property
    def final(self) -> bool:
        return self.stat in FINAL_STATS


_KEY = re.compile(r"(?i)\b(id|sub|dlvrd|submit[ _]?date|done[ _]?date|stat|err|text)\s*:")


# Appendix B exactly as most SMSCs (and the simulator) write it: matched in one go; anything
# else (other case, order, spacing or missing fields) goes through the general parser below.
# A value with a colon could hold a key the general parser would split at: it takes that path.
_STANDARD = re.compile(
    r"id:(?P<id>[^\s:]*) sub:(?P<sub>[^\s:]*) dlvrd:(?P<dlvrd>[^\s:]*) "
    r"submit date:(?P<submitdate>\d{10}(?:\d\d)?) done date:(?P<donedate>\d{10}(?:\d\d)?) "
    r"stat:(?P<stat>[^\s:]*) err:(?P<err>[^\s:]*)(?: text:(?P<text>.*))?\s*\Z",
    re.S,
)


def _parse_fields(text: str) -> dict[str, str]:
    """{key: value} of a receipt text; keys lower case without spaces ("submitdate")."""
    standard = _STANDARD.match(text)
    if standard is not None:  # issue 16: the general parser was ~5 % of a send worker's CPU
        fields = standard.groupdict()
        if fields["text"] is None:
            del fields["text"]
        else:
            fields["text"] = fields["text"].strip()
        return fields
    return _parse_any_fields(text)


def _parse_any_fields(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    matches = list(_KEY.finditer(text))
    for i, m in enumerate(matches):
        key = m.group(1).lower().replace(" ", "").replace("_", "")  # "submit date" → "submitdate"
        if key == "text":
            fields.setdefault("text", text[m.end() :].strip())
            break
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        fields.setdefault(key, text[m.end() : end].strip())
    return fields


def parse_receipt_date(value: str | None) -> datetime | None:
    """YYMMDDhhmm or YYMMDDhhmmss (SMPP 3.4 appendix B), read as UTC. None when absent/invalid."""
    if not value:
        return None
    digits = value if value.isascii() and value.isdigit() else re.sub(r"\D", "", value)
    if len(digits) not in (10, 12):
        return None
    n = [int(digits[i : i + 2]) for i in range(0, len(digits), 2)]
    try:
        return datetime(2000 + n[0], n[1], n[2], n[3], n[4], n[5] if len(n) == 6 else 0, tzinfo=UTC)
    except ValueError:
        return None


def _tlv(tlvs: dict, name: str, code: int):
    if name in tlvs:
        return tlvs[name]
    return tlvs.get(code)


def _as_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.replace(b"\x00", b"").decode("latin-1")
    return str(value)


def normalise_stat(value: str) -> str:
    stat = value.strip().upper()
    return _STAT_ALIASES.get(stat, stat)


def parse_receipt(*, short_message: bytes | str, tlvs: dict | None = None) -> Receipt:
    """Parse a delivery receipt (R-DLV-4).

    The text form is SMPP 3.4 appendix B:
    ``id:IIIIIIIIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:DDDDDDD
    err:E text:...`` — keys case-insensitive, any order, missing fields tolerated, seconds optional.
    TLVs win when present: receipted_message_id (0x001E) over ``id:``, message_state (0x0427)
    over ``stat:``; network_error_code (0x0423) fills ``err`` when the text has none.
    `tlvs` may be keyed by smpplib parameter name or by numeric tag.
    """
    if isinstance(short_message, bytes):
        short_message = short_message.decode("latin-1")
    fields = _parse_fields(short_message or "")
    tlvs = tlvs or {}

    raw_id = _as_text(_tlv(tlvs, "receipted_message_id", TLV_RECEIPTED_MESSAGE_ID)).strip() or fields.get("id", "")
    state = _tlv(tlvs, "message_state", TLV_MESSAGE_STATE)
    if isinstance(state, bytes):
        state = int.from_bytes(state, "big") if state else None
    if state is not None and int(state) in MESSAGE_STATE_TO_STAT:
        stat = MESSAGE_STATE_TO_STAT[int(state)]
    else:
        stat = normalise_stat(fields.get("stat", "")) or "UNKNOWN"

    err = fields.get("err", "")
    nec = _tlv(tlvs, "network_error_code", TLV_NETWORK_ERROR_CODE)
    if not err and isinstance(nec, bytes) and len(nec) == 3:
        err = f"{int.from_bytes(nec[1:], 'big'):03d}"

    return Receipt(
        message_id=normalise_message_id(raw_id),
        stat=stat,
        err=err,
        submit_date=parse_receipt_date(fields.get("submitdate")),
        done_date=parse_receipt_date(fields.get("donedate")),
        status=STAT_TO_STATUS.get(stat, "unknown"),
        sub=fields.get("sub", ""),
        dlvrd=fields.get("dlvrd", ""),
        text=fields.get("text", ""),
        raw_message_id=raw_id,
    )


def format_receipt(
    *,
    message_id: str,
    stat: str,
    err: str = "000",
    submit_date: datetime,
    done_date: datetime,
    text: str = "",
    sub: str = "001",
) -> str:
    """The appendix-B receipt text (used by the simulator)."""
    dlvrd = "001" if stat == "DELIVRD" else "000"
    return (
        f"id:{message_id} sub:{sub} dlvrd:{dlvrd} submit date:{submit_date:%y%m%d%H%M} "
        f"done date:{done_date:%y%m%d%H%M} stat:{stat} err:{err} text:{text[:20]}"
    )
