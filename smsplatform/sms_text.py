"""SMS text: the GSM 03.38 alphabet, GSM-7 encoding, segment counting and splitting (R-DLV-3,
R-BIL-2). One implementation: billing counts with the walk the SMPP session cuts with.

- Text made only of GSM 03.38 default-alphabet characters (basic table + extension table) is
  GSM-7; extension characters (``^{}\\[~]|€`` and form feed) are ESC (0x1B) + code: two septets.
  GSM-7 is sent *unpacked* (one septet per octet, the usual SMPP practice; the SMSC packs it).
- Anything else makes the whole text UCS-2, counted in UTF-16 code units (a character outside
  the BMP such as an emoji is a surrogate pair = two units).
- One part holds 160 septets / 70 units. A longer text is cut into parts of at most 153 septets /
  67 units (the concatenation UDH takes the rest).
- Parts are cut on *characters*, never inside a GSM-7 escape pair or a UTF-16 surrogate pair, so
  a part may carry one unit less than the maximum and a long text may need one part more than
  ceil(units / 153): segments are counted by the same greedy walk that cuts (``text_chunks``).

Nothing here touches SMPP, the network or the database (PDU encoding is delivery.smpp.codec).
"""

from __future__ import annotations

from dataclasses import dataclass

#: Basic character set, index == septet value. 0x1B is the escape to the extension table and is
#: not a character by itself.
GSM7_SEPTETS = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>"
    "?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_ESCAPE = 0x1B
#: Extension table: character → code (sent as ESC + code, two septets each).
GSM7_EXTENSION_CODES = {
    "\f": 0x0A,
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}
#: The characters of the basic table (without the escape) and of the extension table.
GSM7_BASIC = frozenset(GSM7_SEPTETS) - {chr(GSM7_ESCAPE)}
GSM7_EXTENSION = frozenset(GSM7_EXTENSION_CODES)

_BASIC_INDEX = {ch: i for i, ch in enumerate(GSM7_SEPTETS) if i != GSM7_ESCAPE}
_EXT_DECODE = {code: ch for ch, code in GSM7_EXTENSION_CODES.items()}

GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67

GSM7, UCS2 = "gsm7", "ucs2"


@dataclass(frozen=True)
class SegmentCount:
    encoding: str  # "gsm7" | "ucs2"
    segments: int
    units: int  # septets (gsm7, escapes count 2) or UTF-16 code units (ucs2)


def is_gsm7(text: str) -> bool:
    """True when every character is in the GSM 03.38 basic or extension table."""
    return all(ch in _BASIC_INDEX or ch in GSM7_EXTENSION_CODES for ch in text)


def gsm7_encode(text: str) -> bytes:
    """Unpacked GSM-7 (one septet per octet); raises ValueError for non-GSM characters."""
    out = bytearray()
    for ch in text:
        code = _BASIC_INDEX.get(ch)
        if code is not None:
            out.append(code)
            continue
        ext = GSM7_EXTENSION_CODES.get(ch)
        if ext is None:
            raise ValueError(f"character {ch!r} is not in the GSM 03.38 alphabet")
        out += bytes((GSM7_ESCAPE, ext))
    return bytes(out)


def gsm7_decode(data: bytes) -> str:
    """Decode unpacked GSM-7. Unknown escapes decode as a space (3GPP 23.038 recommends it)."""
    out = []
    escaped = False
    for octet in data:
        octet &= 0x7F
        if escaped:
            out.append(_EXT_DECODE.get(octet, " "))
            escaped = False
        elif octet == GSM7_ESCAPE:
            escaped = True
        else:
            out.append(GSM7_SEPTETS[octet])
    return "".join(out)


def _gsm7_units(ch: str) -> int:
    return 2 if ch in GSM7_EXTENSION_CODES else 1


def _ucs2_units(ch: str) -> int:
    return 2 if ord(ch) > 0xFFFF else 1


def _chunks(text: str, *, unit, single: int, part: int) -> tuple[list[str], int]:
    """Greedy character walk: ([text], units) if it fits one SM, else parts of <= `part` units,
    never splitting a character (escape pair / surrogate pair)."""
    units = [unit(ch) for ch in text]
    total = sum(units)
    if total <= single:
        return [text], total
    chunks: list[str] = []
    current: list[str] = []
    used = 0
    for ch, n in zip(text, units, strict=True):
        if used + n > part:
            chunks.append("".join(current))
            current, used = [], 0
        current.append(ch)
        used += n
    if current:
        chunks.append("".join(current))
    return chunks, total


def _split(text: str) -> tuple[str, list[str], int]:
    if is_gsm7(text):
        return GSM7, *_chunks(text, unit=_gsm7_units, single=GSM7_SINGLE, part=GSM7_PART)
    return UCS2, *_chunks(text, unit=_ucs2_units, single=UCS2_SINGLE, part=UCS2_PART)


def text_chunks(text: str) -> tuple[str, list[str]]:
    """(encoding "gsm7" | "ucs2", the text of each part). R-DLV-3: cut on characters. An empty
    text is one empty part."""
    encoding, chunks, _units = _split(text)
    return encoding, chunks


def count_segments(text: str) -> SegmentCount:
    """R-BIL-2: the number of billable parts of `text` (signature included by the caller): exactly
    the parts the SMPP session sends. An empty text is one (empty) part: a message is never free."""
    encoding, chunks, units = _split(text)
    return SegmentCount(encoding=encoding, segments=len(chunks), units=units)
