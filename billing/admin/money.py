"""Money in and out of the finance admin: amounts typed in CNY, converted exactly to micro-units with
Decimal (billing.money.cny_to_micro), never through float; amounts shown in their account's currency."""

import re

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from ..money import MAX_AMOUNT, InvalidAmount, cny_to_micro, format_money

AMOUNT_TEXT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?", re.ASCII)


class CnyField(forms.CharField):
    """A CNY amount with up to six decimals → integer micro-units (exact, via Decimal).

    Strict: plain ASCII digits with an optional point and sign. Exponents ("1e3"), full-width or
    other non-ASCII digits, separators and amounts past the largest booking are form errors,
    never a silent reinterpretation or a database overflow (a 500)."""

    def __init__(self, *, allow_zero: bool = False, allow_negative: bool = False, **kwargs):
        self.allow_zero, self.allow_negative = allow_zero, allow_negative
        kwargs.setdefault("max_length", 40)
        super().__init__(**kwargs)

    def clean(self, value):
        text = super().clean(value)
        if text in (None, ""):
            return None
        text = text.strip()
        if not AMOUNT_TEXT.fullmatch(text):
            if any(ch in "eE" for ch in text):
                raise ValidationError("Write the amount out in digits, without an exponent (1000, not 1e3).")
            if any(ch.isdigit() and not ch.isascii() for ch in text):
                raise ValidationError("Use the digits 0-9 (no full-width or other digits).")
            raise ValidationError("Not an amount: digits with an optional decimal point, e.g. 1000.50.")
        try:
            micro = cny_to_micro(text)
        except InvalidAmount as exc:
            raise ValidationError(str(exc)) from exc
        if abs(micro) > MAX_AMOUNT:
            raise ValidationError(f"The amount is beyond the largest booking ({format_money(MAX_AMOUNT)}).")
        if micro == 0 and not self.allow_zero:
            raise ValidationError("The amount cannot be zero.")
        if micro < 0 and not self.allow_negative:
            raise ValidationError("The amount must be positive.")
        return micro


def account_money(field: str, description: str, *, ordering: str | None = None):
    """A list column showing `field` (micro-units) in the row's account currency, with its unit (issue 14)."""

    @admin.display(description=description, ordering=ordering)
    def show(self, obj):
        return format_money(getattr(obj, field), obj.account.currency)

    return show
