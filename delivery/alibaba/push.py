"""Alibaba's push formats (R-DLV-4/5), for tenants whose DeliverySettings.callback_format is
"alibaba": a delivery report is a one-element SmsReport JSON array, a reply a one-element SmsUp
array (field names and date format as Alibaba's message-receipt docs). Built from the same event
payloads as our own format (delivery.callbacks.callback_body)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

CHINA = ZoneInfo("Asia/Shanghai")
# Final states only: Alibaba pushes one report per message, when its fate is known.
FINAL = {"delivered", "undelivered", "expired", "rejected", "failed", "unknown", "cancelled"}


def alibaba_time(value: str | datetime | None) -> str:
    """ "yyyy-MM-dd HH:mm:ss" in China time, Alibaba's date format everywhere."""
    if not value:
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S")


def alibaba_number(number: str) -> str:
    """Domestic numbers without +86 (as Alibaba shows them), others as digits with country code."""
    if number.startswith("+86"):
        return number[3:]
    return number.lstrip("+")


def out_id_of(client_ref: str | None) -> str:
    """The OutId a request sent through the Alibaba endpoint carried (see actions.client_ref_for)."""
    if not client_ref:
        return ""
    if client_ref.startswith("acs:"):
        return client_ref.split(":", 2)[2]
    return client_ref


def err_code(status: str, reason: str | None, error_code: str | None) -> str:
    if status == "delivered":
        return "DELIVERED"
    return (error_code or reason or status).upper()


def sms_report(payload: dict) -> list[dict] | None:
    """SmsReport for a message.status event; None for a state that is not final (not pushed)."""
    if payload.get("status") not in FINAL:
        return None
    delivered = payload["status"] == "delivered"
    return [
        {
            "phone_number": alibaba_number(payload.get("to") or ""),
            "send_time": alibaba_time(payload.get("submitted_at") or payload.get("at")),
            "report_time": alibaba_time(payload.get("done_at") or payload.get("at")),
            "success": delivered,
            "err_code": err_code(payload["status"], payload.get("reason"), payload.get("error_code")),
            "err_msg": "用户接收成功" if delivered else (payload.get("reason") or payload["status"]),
            "sms_size": str(payload.get("segments") or 1),
            "biz_id": str(payload.get("request_id") or ""),
            "out_id": out_id_of(payload.get("client_ref")),
        }
    ]


def sms_up(payload: dict) -> list[dict]:
    """SmsUp for a reply event."""
    return [
        {
            "phone_number": alibaba_number(payload.get("from") or ""),
            "send_time": alibaba_time(payload.get("received_at")),
            "content": payload.get("text") or "",
            "sign_name": payload.get("sign_name") or "",
            "dest_code": payload.get("to") or "",
            "sequence_id": payload.get("id"),
        }
    ]


def alibaba_body(event: str, payload: dict) -> list[dict] | None:
    if event == "message.status":
        return sms_report(payload)
    if event == "reply":
        return sms_up(payload)
    return None
