"""Display filters for the operators' console: money with its currency, zoned times."""

from django import template
from django.utils import timezone

register = template.Library()


@register.filter
def money(micro, currency="CNY"):
    """Integer micro-units shown in the account currency with its unit: 35000 → "CNY 0.035000"."""
    from billing.money import format_money

    if micro in (None, ""):
        return "–"
    return format_money(int(micro), currency or "CNY")


@register.filter
def zoned(value):
    """A datetime in the operator's zone, with the zone: "2026-11-30 16:05:09 CST"."""
    if not value:
        return "–"
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S %Z")


@register.filter
def get_item(mapping, key):
    return mapping.get(key) if hasattr(mapping, "get") else None


@register.simple_tag(takes_context=True)
def todays_work(context):
    """The landing page's queues for the logged-in user (smsplatform.worklist)."""
    from smsplatform.worklist import todays_work as work

    request = context.get("request")
    return work(user=request.user) if request is not None else []
