"""Recipient-number masking for people without `delivery.view_full_number` (R-AUD-2, R-AUD-4).

One rule for every place a number can surface: admin pages, exports of every kind, callback
bodies, the trail's before/after. Numbers are found by shape (a mobile or an E.164 number), not by
field name, so a new model or a JSON payload is covered without being listed anywhere.
"""

from __future__ import annotations

import re
from typing import Any

FULL_NUMBER_PERMISSION = "delivery.view_full_number"

# +8613812341234, 8613812341234, 13812341234, +447700900123 (7..15 digits after "+"). Not part of a
# longer word or digit run, so ids, hashes and CSRF tokens are left alone.
_NUMBER = re.compile(r"(?<![\w+*])(\+\d{7,15}|(?:86)?1[3-9]\d{9})(?![\w*])")


def mask_number(number: str | None) -> str:
    """13812341234 → 138****1234, +8613812341234 → +86138****1234 (last 4 kept)."""
    if not number:
        return ""
    if number.startswith("~"):  # already an erasure hash (R-AUD-4)
        return number
    if len(number) >= 9:
        return number[: len(number) - 8] + "****" + number[-4:]
    if len(number) > 4:
        return number[:2] + "*" * (len(number) - 4) + number[-2:]
    return "*" * len(number)


def mask_text(text: str) -> str:
    """Every phone-number-shaped run in `text` masked; everything else unchanged."""
    if not text or not any(ch.isdigit() for ch in text):
        return text
    return _NUMBER.sub(lambda m: mask_number(m.group(0)), text)


def mask_value(value: Any) -> Any:
    """`mask_text` through strings, dicts, lists and tuples (JSON before/after, callback bodies)."""
    if isinstance(value, str):
        masked = mask_text(value)
        if masked != value and hasattr(value, "__html__"):
            from django.utils.safestring import mark_safe

            return mark_safe(masked)  # noqa: S308 - only digits became "*"
        return masked
    if isinstance(value, dict):
        return {mask_value(k): mask_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(mask_value(v) for v in value)
    return value


def has_number(value: Any) -> bool:
    return mask_value(value) != value


def may_see_full_numbers(user) -> bool:
    return bool(user is not None and getattr(user, "is_authenticated", False) and user.has_perm(FULL_NUMBER_PERMISSION))
