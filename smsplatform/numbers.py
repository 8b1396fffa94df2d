"""Phone numbers: the one normaliser (phonenumbers), with two named entry points.

- `normalise_strict(raw)`: E.164 for a *valid* number (phonenumbers.is_valid_number, default
  region CN), else None. What we send to and route by (R-DLV-1 `invalid_number`, R-DLV-2).
- `normalise_lenient(raw)`: E.164 for a *possible* number given as +CC…, 00CC…, CC… or a national
  number (spaces and dashes ignored); raises InvalidNumber (a ValueError) otherwise. What a person
  types to name a recipient: opt-outs and consents (R-CMP-4, R-CMP-9), erasure and legal holds
  (R-AUD-4, R-AUD-5), where refusing a real but unallocated number would lose the request.

The caller chooses by name; both answer the same E.164 string for a valid number.
"""

from __future__ import annotations

import re

import phonenumbers

DEFAULT_REGION = "CN"  # numbers without + are Chinese numbers (R-DLV-1)
_CN_PREFIX = "+86"  # the calling code of CN alone (region_codes_for_country_code(86) == ("CN",))


class InvalidNumber(ValueError):
    """Not a phone number (normalise_lenient)."""


# A Chinese mobile number as customers send it: 11 digits, with or without +86. For this shape
# phonenumbers.parse() only reads the digits (no carrier code to strip: those start 11, 12 or
# 179; no leading zero), and validity is decided by the number segment (号段, the first 7
# digits; phonenumbers' CN mobile patterns read at most 5 and end in \d{6} / \d{8}). So the
# answer is memoised per segment (at most 70,000 of them): parsing and validating were the
# largest Python cost of a 1000-recipient batch after the INSERTs (issue 7).
# tests/delivery/test_routing_numbers.py compares this with the full parse for every 5-digit prefix.
_CN_MOBILE = re.compile(r"(?:\+86)?(1[3-9][0-9]{9})", re.ASCII)
_valid_segments: dict[str, bool] = {}


def normalise_strict(raw: str) -> str | None:
    """E.164 for a valid number (default region CN), else None."""
    text = str(raw).strip()
    match = _CN_MOBILE.fullmatch(text)
    if match and not match[1].startswith("179"):
        national = match[1]
        valid = _valid_segments.get(national[:7])
        if valid is None:
            number = phonenumbers.PhoneNumber(country_code=86, national_number=int(national))
            valid = _valid_segments[national[:7]] = phonenumbers.is_valid_number(number)
        return f"{_CN_PREFIX}{national}" if valid else None
    return strict_by_full_parse(text)


def strict_by_full_parse(text: str) -> str | None:
    """normalise_strict() through phonenumbers.parse() alone (any input shape, no fast path)."""
    try:
        parsed = phonenumbers.parse(text, DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalise_lenient(number: str, *, default_region: str = DEFAULT_REGION) -> str:
    """E.164 for a possible number given as +CC…, 00CC…, CC… or a national number; InvalidNumber
    (a ValueError) if it is none of these."""
    raw = (number or "").strip().replace(" ", "").replace("-", "")
    if not raw:
        raise InvalidNumber("empty number")
    candidates = [raw] if raw.startswith("+") else ([f"+{raw[2:]}"] if raw.startswith("00") else [raw, f"+{raw}"])
    for candidate in candidates:
        try:
            parsed = phonenumbers.parse(candidate, None if candidate.startswith("+") else default_region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_possible_number(parsed):
            return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    raise InvalidNumber(f"not a phone number: {number!r}")


def country_of(number: str) -> str | None:
    """ISO alpha-2 country of an E.164 number, or None if it cannot be told."""
    try:
        parsed = phonenumbers.parse(number if number.startswith("+") else f"+{number}", None)
    except phonenumbers.NumberParseException:
        return None
    return phonenumbers.region_code_for_number(parsed)


def same_handset(a: str, b: str) -> bool:
    """Whether two addresses name the same handset as SMSCs write them: E.164 with or without
    `+`, or national (a receipt's source_addr is the number its part went to, in whatever form
    the carrier renders it). An empty address tells nothing, so it agrees."""
    a, b = "".join(c for c in a if c.isdigit()), "".join(c for c in b if c.isdigit())
    if not a or not b:
        return True
    short, long = sorted((a, b), key=len)
    return long.endswith(short) and len(short) >= 7
