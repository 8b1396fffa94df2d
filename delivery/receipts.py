"""Pure SMPP helpers: delivery-receipt parsing, SMSC message-id normalisation, PDU text encoding
and concatenation UDH (R-DLV-3, R-DLV-4).

Nothing here touches the network or the database, so everything is unit-testable. The GSM-7
alphabet, segment counting and where a text is cut are smsplatform.sms_text (R-BIL-2); here the
parts become PDU payloads: GSM-7 as data_coding 0 (unpacked septets), UCS-2 as data_coding 8
(UTF-16-BE), a long text's parts each prefixed by a 6-octet UDH ``05 00 03 <ref> <total> <seq>``
(IEI 0x00, 8-bit reference) and sent with esm_class 0x40 (UDHI).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from smsplatform.sms_text import GSM7, UCS2, gsm7_decode, gsm7_encode, text_chunks

DATA_CODING_DEFAULT = 0x00  # SMSC default alphabet (GSM 03.38 here)
DATA_CODING_IA5 = 0x01
DATA_CODING_LATIN1 = 0x03
DATA_CODING_UCS2 = 0x08

#: data_coding of each sms_text encoding
DATA_CODING = {GSM7: DATA_CODING_DEFAULT, UCS2: DATA_CODING_UCS2}
MAX_PARTS = 255  # 8-bit concatenation reference: part count is one octet

ESM_CLASS_UDHI = 0x40


def encode_text(text: str, data_coding: int) -> bytes:
    if data_coding == DATA_CODING_UCS2:
        return text.encode("utf-16-be")
    if data_coding == DATA_CODING_DEFAULT:
        return gsm7_encode(text)
    if data_coding == DATA_CODING_LATIN1:
        return text.encode("latin-1")
    if data_coding == DATA_CODING_IA5:
        return text.encode("ascii")
    raise ValueError(f"unsupported data_coding {data_coding}")


def decode_text(data: bytes, data_coding: int) -> str:
    """Decode a short_message / message_payload (without UDH) for the given data_coding."""
    data = data or b""
    if data_coding == DATA_CODING_UCS2:
        if len(data) % 2:
            data = data[:-1]
        return data.decode("utf-16-be", errors="replace")
    if data_coding == DATA_CODING_DEFAULT:
        return gsm7_decode(data)
    if data_coding == DATA_CODING_IA5:
        return data.decode("ascii", errors="replace")
    return data.decode("latin-1")


def concat_udh(reference: int, total: int, seq: int) -> bytes:
    """UDH for a concatenated SM, 8-bit reference (IEI 0x00)."""
    return bytes((0x05, 0x00, 0x03, reference & 0xFF, total, seq))


def parse_udh(short_message: bytes) -> tuple[tuple[int, int, int] | None, bytes]:
    """Split a UDHI short_message into ((ref, total, seq) or None, payload).

    Understands IEI 0x00 (8-bit ref) and 0x08 (16-bit ref); other IEs are skipped."""
    if not short_message:
        return None, b""
    udhl = short_message[0]
    header, payload = short_message[1 : 1 + udhl], short_message[1 + udhl :]
    concat = None
    pos = 0
    while pos + 2 <= len(header):
        iei, length = header[pos], header[pos + 1]
        value = header[pos + 2 : pos + 2 + length]
        if iei == 0x00 and length == 3:
            concat = (value[0], value[1], value[2])
        elif iei == 0x08 and length == 4:
            concat = ((value[0] << 8) | value[1], value[2], value[3])
        pos += 2 + length
    return concat, payload


def split_text(text: str, *, reference: int) -> tuple[int, list[bytes], list[bytes | None]]:
    """(data_coding, payload per part, UDH per part or None).

    R-DLV-3: GSM-7 160/153, UCS-2 70/67, never cutting a surrogate pair or a GSM-7 escape.
    A single-part message has no UDH. `reference` is the 8-bit concatenation reference (mod 256).
    The caller sends ``udh + payload`` as short_message with esm_class 0x40 when udh is not None.
    """
    encoding, chunks = text_chunks(text)
    data_coding = DATA_CODING[encoding]
    if len(chunks) > MAX_PARTS:
        raise ValueError(f"text needs {len(chunks)} parts, more than {MAX_PARTS}")
    payloads = [encode_text(chunk, data_coding) for chunk in chunks]
    if len(chunks) == 1:
        return data_coding, payloads, [None]
    total = len(chunks)
    udhs: list[bytes | None] = [concat_udh(reference, total, seq) for seq in range(1, total + 1)]
    return data_coding, payloads, udhs


class ConcatBuffer:
    """Reassembles concatenated MO parts (InboundPdu.concat = (ref, total, seq)) in memory.

    add() returns the full text once every part of (key, ref, total) arrived, else None. `key`
    should identify the sender, e.g. (source_addr, destination_addr). Incomplete messages older
    than `max_age` seconds are dropped by add() (pass `now`, e.g. time.monotonic())."""

    def __init__(self, max_age: float = 300.0) -> None:
        self.max_age = max_age
        self._parts: dict[tuple, tuple[float, dict[int, str]]] = {}

    def add(self, key, concat: tuple[int, int, int] | None, text: str, *, now: float = 0.0) -> str | None:
        if concat is None:
            return text
        ref, total, seq = concat
        if total <= 1:
            return text
        for stale in [k for k, (t, _) in self._parts.items() if now - t > self.max_age]:
            del self._parts[stale]
        full_key = (key, ref, total)
        _, parts = self._parts.setdefault(full_key, (now, {}))
        parts[seq] = text
        if len(parts) < total or any(i not in parts for i in range(1, total + 1)):
            return None
        del self._parts[full_key]
        return "".join(parts[i] for i in range(1, total + 1))

    def __len__(self) -> int:
        return len(self._parts)


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


def _parse_fields(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    matches = list(_KEY.finditer(text))
    for i, m in enumerate(matches):
        key = re.sub(r"[ _]", "", m.group(1).lower())
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
    digits = re.sub(r"\D", "", value)
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
