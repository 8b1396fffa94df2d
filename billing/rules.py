"""Pure billing rules: segment counting (R-BIL-2) and money conversions (no I/O).

A text is GSM-7 when every character is in the GSM 03.38 default alphabet or its extension
table (extension characters cost two septets: ESC + code). Anything else makes the whole text
UCS-2, counted in UTF-16 code units (an emoji outside the BMP is a surrogate pair = 2 units).

Single part: 160 septets / 70 units. Concatenated: 153 septets / 67 units per part (the UDH takes
the rest). A part never cuts a GSM-7 escape pair or a UTF-16 surrogate pair, so a long text may
need one part more than ceil(units / 153): the count is done by greedy packing, exactly as
delivery.receipts.split_text cuts the text (len(parts) == count_segments(text).segments).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67

MICRO = 1_000_000  # micro-units per CNY
# The largest single amount a booking takes: 1,000,000,000 CNY. Far inside a BIGINT (9.2e18), so
# no sum of bookings a form or the API lets through can overflow a balance column.
MAX_AMOUNT = 1_000_000_000 * MICRO


@dataclass(frozen=True)
class SegmentCount:
    encoding: str  # "gsm7" | "ucs2"
    segments: int
    units: int  # septets (gsm7, escapes count 2) or UTF-16 code units (ucs2)


def is_gsm7(text: str) -> bool:
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def _weights(text: str, gsm: bool) -> list[int]:
    if gsm:
        return [2 if ch in GSM7_EXTENSION else 1 for ch in text]
    return [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def _pack(weights: list[int], capacity: int) -> int:
    """Greedy packing: how many parts of `capacity` units, never splitting one character."""
    parts, used = 1, 0
    for weight in weights:
        if used + weight > capacity:
            parts += 1
            used = 0
        used += weight
    return parts


def count_segments(text: str) -> SegmentCount:
    """R-BIL-2: the number of billable parts of `text` (signature included by the caller).

    An empty text is one (empty) part: a message is never free.
    """
    gsm = is_gsm7(text)
    weights = _weights(text, gsm)
    units = sum(weights)
    single, part = (GSM7_SINGLE, GSM7_PART) if gsm else (UCS2_SINGLE, UCS2_PART)
    segments = 1 if units <= single else _pack(weights, part)
    return SegmentCount(encoding="gsm7" if gsm else "ucs2", segments=segments, units=units)


# --- money ----------------------------------------------------------------------------------


class InvalidAmount(ValueError):
    """Not a valid CNY amount (too many decimals, negative, not a number)."""


def cny_to_micro(value: Decimal | str | int) -> int:
    """Exact conversion of a CNY amount to integer micro-units. Never via float.

    More than six decimals cannot be represented exactly and is refused rather than rounded.
    """
    if isinstance(value, float):
        raise InvalidAmount("Floats are not accepted for money; pass a Decimal or a string.")
    try:
        amount = Decimal(value)
    except (InvalidOperation, ValueError) as exc:
        raise InvalidAmount(f"Not an amount: {value!r}") from exc
    if not amount.is_finite():
        raise InvalidAmount(f"Not an amount: {value!r}")
    micro = amount * MICRO
    if micro != micro.to_integral_value():
        raise InvalidAmount(f"{value} has more than six decimals.")
    return int(micro)


def micro_to_cny(micro: int) -> Decimal:
    return Decimal(micro) / MICRO


def format_money(micro: int, currency: str = "CNY") -> str:
    """Display form: 'CNY 12.345000' (six decimals, exact)."""
    sign = "-" if micro < 0 else ""
    whole, frac = divmod(abs(micro), MICRO)
    return f"{currency} {sign}{whole}.{frac:06d}"


@dataclass(frozen=True)
class Money:
    """Small value type for display: an exact integer of micro-units and a currency."""

    micro: int
    currency: str = "CNY"

    def __str__(self) -> str:
        return format_money(self.micro, self.currency)

    @property
    def decimal(self) -> Decimal:
        return micro_to_cny(self.micro)


def compensation_cap(month_usage: int, *, percent: int = 10) -> int:
    """R-BIL-8: compensation for a disputed month is at most 10% of that month's usage."""
    return month_usage * percent // 100
