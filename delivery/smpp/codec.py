"""SMPP PDU text: data_coding encoding and decoding, concatenation UDH (build and parse), a text
cut into PDU payloads, MO reassembly, addresses, and smpplib's PDU objects made and parsed
(make_pdu / parse_pdu) (R-DLV-3, R-DLV-5). Pure: no network, no database.

Where a text is cut, and into how many parts, is smsplatform.sms_text (the billing count,
R-BIL-2); here the parts become payloads: GSM-7 as data_coding 0 (unpacked septets, the SMSC packs
them), UCS-2 as data_coding 8 (UTF-16-BE). A long text's parts each start with a 6-octet UDH
``05 00 03 <ref> <total> <seq>`` (IEI 0x00, 8-bit reference) and go with esm_class 0x40 (UDHI).
"""

from __future__ import annotations

from smpplib import command as smpp_command
from smpplib import consts, smpp

from smsplatform.sms_text import GSM7, UCS2, gsm7_decode, gsm7_encode, text_chunks

from .receipts import parse_receipt
from .results import InboundPdu, QueryResult

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


def submit_pdus(
    *, source: str, destination: str, text: str, reference: int, registered_delivery: bool, dest_addr_ton: int
) -> list[dict]:
    """The submit_sm fields of each part of `text` (split_text), addresses as address_fields says
    (a bare-digit source gets TON 0, a bare-digit destination `dest_addr_ton`)."""
    data_coding, payloads, udhs = split_text(text, reference=reference)
    src, src_ton, src_npi = address_fields(source, default_ton=consts.SMPP_TON_UNK)
    dst, dst_ton, dst_npi = address_fields(destination, default_ton=dest_addr_ton)
    return [
        {
            "source_addr_ton": src_ton,
            "source_addr_npi": src_npi,
            "source_addr": src,
            "dest_addr_ton": dst_ton,
            "dest_addr_npi": dst_npi,
            "destination_addr": dst,
            "esm_class": ESM_CLASS_UDHI if udh else 0,
            "registered_delivery": 1 if registered_delivery else 0,
            "data_coding": data_coding,
            "short_message": (udh or b"") + payload,
        }
        for payload, udh in zip(payloads, udhs, strict=True)
    ]


#: submit_sm's parameters before its optional TLVs (SMPP 3.4 5.2): all that submit_pdus sets
SUBMIT_SM_MANDATORY = (
    *("service_type", "source_addr_ton", "source_addr_npi", "source_addr", "dest_addr_ton"),
    *("dest_addr_npi", "destination_addr", "esm_class", "protocol_id", "priority_flag"),
    *("schedule_delivery_time", "validity_period", "registered_delivery", "replace_if_present_flag"),
    *("data_coding", "sm_default_msg_id", "sm_length", "short_message"),
)


class _MandatorySubmitSM(smpp_command.SubmitSM):
    """smpplib's submit_sm narrowed to its mandatory parameters: smpplib's __init__ and
    generate() walk all 45 declared ones, 27 of them TLVs the platform never sets (39 → 17 µs a
    PDU, ~5 % of a send worker, issue 16). Same encoder, same bytes."""

    params = {name: smpp_command.SubmitSM.params[name] for name in SUBMIT_SM_MANDATORY}
    params_order = SUBMIT_SM_MANDATORY


def make_pdu(command: str, client, fields: dict):
    """smpplib's PDU for `command` with `fields`; a submit_sm without optional TLVs is built by
    _MandatorySubmitSM."""
    if command == "submit_sm" and fields.keys() <= _MandatorySubmitSM.params.keys():
        return _MandatorySubmitSM(command, client=client, **fields)
    return smpp.make_pdu(command, client=client, **fields)


class _DeliverSM(smpp_command.DeliverSM):
    """smpplib's deliver_sm, parsed without first setting each of its declared parameters to None
    on the instance, twice (its __init__ and SubmitSM's): the class holds those Nones (set below),
    so every read is the same (44 → 17 µs a receipt, ~5 % of a send worker, issue 16)."""

    def __init__(self, command, **kwargs):
        smpp_command.Command.__init__(self, command, **kwargs)


for _name in smpp_command.DeliverSM.params:
    if not hasattr(_DeliverSM, _name):
        setattr(_DeliverSM, _name, None)

_DELIVER_SM_ID = (0x00000005).to_bytes(4, "big")


def parse_pdu(raw: bytes, client):
    """smpplib's parse_pdu (unknown TLVs allowed); a deliver_sm is parsed by _DeliverSM."""
    if raw[4:8] == _DELIVER_SM_ID:
        pdu = _DeliverSM("deliver_sm", client=client, sequence=0, allow_unknown_opt_params=True)
        pdu.parse(raw)
        return pdu
    return smpp.parse_pdu(raw, client=client, sequence=0, allow_unknown_opt_params=True)


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


MESSAGE_TYPE_MASK = 0x3C
MESSAGE_TYPE_RECEIPT = 0x04  # MC delivery receipt
MESSAGE_TYPE_INTERMEDIATE = 0x20  # intermediate delivery notification


def address_fields(value: str, *, default_ton: int = 1) -> tuple[str, int, int]:
    """(addr, ton, npi): '+8613…' → international/ISDN, digits → default, anything else →
    alphanumeric (TON 5, NPI 0)."""
    value = (value or "").strip()
    if value.startswith("+") and value[1:].isdigit():
        return value[1:], consts.SMPP_TON_INTL, consts.SMPP_NPI_ISDN
    if value.isdigit():
        return value, default_ton, consts.SMPP_NPI_ISDN
    if not value:
        return "", consts.SMPP_TON_UNK, consts.SMPP_NPI_UNK
    return value, consts.SMPP_TON_ALNUM, consts.SMPP_NPI_UNK


def pdu_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return str(value)


def read_deliver(pdu, *, inbound_default_alphabet: str = "gsm7") -> InboundPdu:
    """A deliver_sm / data_sm (smpplib PDU) as an InboundPdu: UDH or sar_* concatenation, the text
    decoded, and the receipt parsed when it is one (esm_class message type or receipted_message_id).
    `inbound_default_alphabet` "latin1": data_coding 0 MO text is read as Latin-1 (some SMSCs)."""
    esm_class = pdu.esm_class or 0
    data_coding = pdu.data_coding or 0
    body = getattr(pdu, "short_message", None) or b""
    if not body and getattr(pdu, "message_payload", None):
        body = pdu.message_payload
    concat = None
    if esm_class & ESM_CLASS_UDHI:
        concat, body = parse_udh(body)
    elif getattr(pdu, "sar_total_segments", None):
        concat = (int(pdu.sar_msg_ref_num or 0), int(pdu.sar_total_segments), int(pdu.sar_segment_seqnum or 1))
    tlvs = {
        name: getattr(pdu, name)
        for name in ("receipted_message_id", "message_state", "network_error_code")
        if getattr(pdu, name, None) is not None
    }
    is_receipt = (esm_class & MESSAGE_TYPE_MASK) in (
        MESSAGE_TYPE_RECEIPT,
        MESSAGE_TYPE_INTERMEDIATE,
    ) or "receipted_message_id" in tlvs
    if data_coding == 0 and (is_receipt or inbound_default_alphabet == "latin1"):
        text = body.decode("latin-1")  # receipt texts are IA5/ASCII whatever data_coding says
    else:
        text = decode_text(body, data_coding)
    receipt = parse_receipt(short_message=text, tlvs=tlvs) if is_receipt else None
    return InboundPdu(
        is_receipt=is_receipt,
        receipt=receipt,
        source_addr=pdu_text(pdu.source_addr),
        destination_addr=pdu_text(pdu.destination_addr),
        text=text,
        data_coding=data_coding,
        esm_class=esm_class,
        concat=concat,
        sequence=pdu.sequence,
        command=pdu.command,
    )


def read_query_resp(pdu, message_id: str) -> QueryResult:
    """A query_sm_resp (or the generic_nack of an SMSC without query_sm) as a QueryResult."""
    ok = pdu.status == consts.SMPP_ESME_ROK and pdu.command == "query_sm_resp"
    return QueryResult(
        message_id=message_id,
        command_status=pdu.status,
        message_state=int(pdu.message_state) if ok and pdu.message_state is not None else None,
        final_date=pdu_text(getattr(pdu, "final_date", None)) if ok else "",
        error_code=int(getattr(pdu, "error_code", None) or 0) if ok else 0,
    )
