"""`/`: where the Alibaba SDKs post (the action in the x-acs-action header or the Action parameter).

Same gates as our API, in the same order: key and signature (signing.py), the tenant's state
(R-TEN-3), the per-key rate limit (tenants.throttling), then the action in the tenant's schema.
"""

from __future__ import annotations

import logging
import uuid
from types import SimpleNamespace

from django.db import DataError, connection
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from smsplatform.errors import DomainError
from tenants.authentication import ApiCaller
from tenants.models import TenantState
from tenants.services import Actor
from tenants.throttling import ApiKeyRateThrottle

from . import signing
from .actions import ACTIONS, Call
from .errors import AlibabaError, auth_error, from_reason

log = logging.getLogger(__name__)
VERSION = "2017-05-25"


def _answer(request_id: str, body: dict, status: int = 200) -> JsonResponse:
    return JsonResponse({"RequestId": request_id, **body}, status=status, json_dumps_params={"ensure_ascii": False})


def _error(request_id: str, exc: AlibabaError) -> JsonResponse:
    body = {"Code": exc.code, "Message": exc.message}
    if exc.http_status != 200:
        body["HostId"] = "sms"
    return _answer(request_id, body, exc.http_status)


@csrf_exempt
def dispatch(request):
    query = {k: request.GET[k] for k in request.GET}
    action = request.META.get("HTTP_X_ACS_ACTION") or query.get("Action")
    if not action:
        return HttpResponse(
            "Alibaba Cloud SMS compatible endpoint (Dysmsapi 2017-05-25): see docs/alibaba.md.\n",
            content_type="text/plain",
        )
    request_id = str(uuid.uuid4()).upper()
    form = {k: request.POST[k] for k in request.POST} if request.method == "POST" else {}
    try:
        version = request.META.get("HTTP_X_ACS_VERSION") or query.get("Version")
        if version != VERSION:
            raise auth_error("InvalidVersion", f"Specified version {version} is not supported: {VERSION}.")
        key = signing.authenticate(request, query, form)
        handler, writes = ACTIONS.get(action, (None, False))
        if handler is None:
            raise auth_error("InvalidAction.NotFound", f"Specified action {action} is not found.")
        tenant = key.tenant
        if tenant.state != TenantState.ACTIVE and (writes or tenant.state != TenantState.SUSPENDED):
            raise from_reason(f"tenant_{tenant.state}", f"This account is {tenant.state}.")
        throttle = ApiKeyRateThrottle()
        if not throttle.allow_request(SimpleNamespace(user=ApiCaller(api_key=key)), None):
            raise auth_error("Throttling.User", "Request was denied due to user flow control.")
        connection.set_tenant(tenant)
        actor = Actor.for_api_key(key, ip_address=request.META.get("REMOTE_ADDR"))
        body = handler(Call(tenant=tenant, key=key, actor=actor, params={**form, **query}))
        return _answer(request_id, {"Code": "OK", "Message": "OK", **body})
    except AlibabaError as exc:
        return _error(request_id, exc)
    except DomainError as exc:  # a refusal of one of our services, mapped once (errors.py)
        return _error(request_id, from_reason(exc.code, exc.message))
    except DataError:
        return _error(request_id, AlibabaError("isv.INVALID_PARAMETERS", "A value is out of range."))
