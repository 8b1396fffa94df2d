"""Money: exact CNY ↔ integer micro-unit conversions and display (pure, no I/O).

Amounts are integer micro-units (1 CNY = 1,000,000), never float. Segment counting (R-BIL-2)
is smsplatform.sms_text.count_segments.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

MICRO = 1_000_000  # micro-units per CNY
# The largest single amount a booking takes: 1,000,000,000 CNY. Far inside a BIGINT (9.2e18), so
# no sum of bookings a form or the API lets through can overflow a balance column.
MAX_AMOUNT = 1_000_000_000 * MICRO


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
