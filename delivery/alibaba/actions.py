"""The Dysmsapi 2017-05-25 actions, each a thin translation into the services our own API calls:
delivery.intake.accept_send (compliance gate, frequency limits, billing hold, idempotency,
operation trail) and the compliance filing services. Parameters and response fields as
Alibaba documents them; refusals raise AlibabaError (errors.py)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Count, Q
from django.db.models.functions import TruncDate

from compliance import services as compliance
from compliance.models import ReviewStatus, Signature, Template, TemplateVersion
from delivery import intake
from delivery.models import Message, MessageStatus, SendRequest
from smsplatform.message_types import MessageType
from smsplatform.numbers import normalise_strict
from tenants.models import ApiKey, Tenant
from tenants.services import Actor, record_operation

from .errors import AlibabaError, from_reason
from .push import CHINA, alibaba_number, alibaba_time, out_id_of


@dataclass(frozen=True)
class Call:
    tenant: Tenant
    key: ApiKey
    actor: Actor
    params: dict[str, str]

    def get(self, name: str, default: str = "") -> str:
        return self.params.get(name, default)

    def require(self, name: str) -> str:
        value = self.params.get(name, "")
        if value == "":
            raise AlibabaError("isv.INVALID_PARAMETERS", f"The parameter {name} is required.")
        return value

    def integer(self, name: str, default: int, *, low: int = 1, high: int = 10_000) -> int:
        raw = self.params.get(name, "")
        try:
            value = int(raw) if raw != "" else default
        except ValueError as exc:
            raise AlibabaError("isv.INVALID_PARAMETERS", f"The parameter {name} must be an integer.") from exc
        if not low <= value <= high:
            raise AlibabaError("isv.INVALID_PARAMETERS", f"The parameter {name} must be between {low} and {high}.")
        return value


def _json(text: str, name: str, kind: type):
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise AlibabaError("isv.INVALID_JSON_PARAM", f"{name} is not valid JSON.") from exc
    if not isinstance(value, kind):
        raise AlibabaError("isv.INVALID_JSON_PARAM", f"{name} must be a JSON {kind.__name__}.")
    return value


def _params(value) -> dict:
    # Alibaba accepts numbers in TemplateParam ({"code": 1234}); our variables take text.
    return {k: (str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v) for k, v in value.items()}


MAX_OUT_ID = 40


def client_ref_for(out_id: str, payload: dict) -> str | None:
    """OutId makes a request idempotent: the same OutId with the same body answers the first
    BizId without sending again (a retried call); another body under the same OutId is a new send.
    The OutId stays readable (QuerySendDetails, SmsReport)."""
    if not out_id:
        return None
    if len(out_id) > MAX_OUT_ID:
        raise AlibabaError("isv.INVALID_PARAMETERS", f"OutId may be at most {MAX_OUT_ID} characters here.")
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]
    return f"acs:{digest}:{out_id}"


def _send(call: Call, *, signature: str, template: str, recipients: list, params: dict, single: bool) -> dict:
    ref_payload = {"s": signature, "t": template, "p": params, "r": [[r.number, r.params] for r in recipients]}
    outcome = intake.accept_send(
        tenant=call.tenant,
        actor=call.actor,
        kind=SendRequest.Kind.SINGLE if single else SendRequest.Kind.BATCH,
        signature=signature,
        template=template,
        recipients=recipients,
        params=params,
        client_ref=client_ref_for(call.get("OutId"), ref_payload),
    )
    body = outcome.body
    if outcome.http_status >= 400:
        raise from_reason(body.get("code", ""), body.get("message", ""))
    if not single and body.get("accepted", 0) == 0:
        first = next((m for m in body["messages"] if m["status"] == MessageStatus.REJECTED), None)
        reason = first["reason"] if first else "invalid_number"
        detail = ""
        if first:  # the detail (a missing parameter…) lives on the stored message
            detail = Message.objects.filter(pk=first["id"]).values_list("detail", flat=True).first() or ""
        raise from_reason(reason, detail)
    return {"BizId": str(outcome.request_id)}


def send_sms(call: Call) -> dict:
    numbers = [n.strip() for n in call.require("PhoneNumbers").split(",") if n.strip()]
    if len(numbers) > intake.MAX_BATCH:
        raise from_reason("batch_too_large", "At most 1000 numbers per call.")
    params = _params(_json(call.get("TemplateParam") or "{}", "TemplateParam", dict))
    return _send(
        call,
        signature=call.require("SignName"),
        template=call.require("TemplateCode"),
        recipients=[intake.RecipientInput(number=n) for n in numbers],
        params=params,
        single=len(numbers) == 1,
    )


def send_batch_sms(call: Call) -> dict:
    numbers = _json(call.require("PhoneNumberJson"), "PhoneNumberJson", list)
    signs = _json(call.require("SignNameJson"), "SignNameJson", list)
    params = _json(call.get("TemplateParamJson") or "[]", "TemplateParamJson", list)
    if len(numbers) > intake.MAX_BATCH:
        raise from_reason("batch_too_large", "At most 1000 numbers per call.")
    if len(signs) != len(numbers) or (params and len(params) != len(numbers)):
        raise AlibabaError("isv.INVALID_PARAMETERS", "SignNameJson and TemplateParamJson need one entry per number.")
    if len(set(signs)) > 1:
        raise AlibabaError("isv.INVALID_PARAMETERS", "One signature per SendBatchSms call here (docs/alibaba.md).")
    recipients = [
        intake.RecipientInput(
            number=str(n), params=_params(params[i]) if params and isinstance(params[i], dict) else None
        )
        for i, n in enumerate(numbers)
    ]
    return _send(
        call,
        signature=str(signs[0]) if signs else "",
        template=call.require("TemplateCode"),
        recipients=recipients,
        params={},
        single=False,
    )


# --- send log reads (R-DLV-4, R-BIL-7) ------------------------------------------------------------

WAITING, FAILED, DELIVERED = 1, 2, 3


def send_status(status: str) -> int:
    if status == MessageStatus.DELIVERED:
        return DELIVERED
    if status in (
        MessageStatus.UNDELIVERED,
        MessageStatus.EXPIRED,
        MessageStatus.REJECTED,
        MessageStatus.FAILED,
        MessageStatus.UNKNOWN,
        MessageStatus.CANCELLED,
    ):
        return FAILED
    return WAITING


def _day(text: str, name: str):
    try:
        return datetime.strptime(text, "%Y%m%d").replace(tzinfo=CHINA)
    except ValueError as exc:
        raise AlibabaError("isv.INVALID_PARAMETERS", f"{name} must be yyyyMMdd.") from exc


def query_send_details(call: Call) -> dict:
    number = normalise_strict(call.require("PhoneNumber"))
    if not number:
        raise from_reason("invalid_number", "PhoneNumber is not a valid number.")
    start = _day(call.require("SendDate"), "SendDate")
    size = call.integer("PageSize", 10, high=50)
    page = call.integer("CurrentPage", 1)
    rows = Message.objects.filter(recipient=number, created_at__gte=start, created_at__lt=start + timedelta(days=1))
    if call.get("BizId"):
        if not call.get("BizId").isdigit():
            return {"TotalCount": 0, "SmsSendDetailDTOs": {"SmsSendDetailDTO": []}}
        rows = rows.filter(request_id=int(call.get("BizId")))
    total = rows.count()
    page_rows = rows.order_by("-created_at", "-id")[(page - 1) * size : page * size]
    details = [
        {
            "PhoneNum": alibaba_number(m.recipient),
            "SendStatus": send_status(m.status),
            "ErrCode": "DELIVERED" if m.status == MessageStatus.DELIVERED else (m.error_code or m.reason or "").upper(),
            "TemplateCode": m.template,
            "Content": m.content,
            "SendDate": alibaba_time(m.submitted_at or m.created_at),
            "ReceiveDate": alibaba_time(m.done_at) if m.status == MessageStatus.DELIVERED else "",
            "OutId": out_id_of(m.client_ref),
        }
        for m in page_rows
    ]
    return {"TotalCount": str(total), "SmsSendDetailDTOs": {"SmsSendDetailDTO": details}}


def query_send_statistics(call: Call) -> dict:
    start = _day(call.require("StartDate"), "StartDate")
    end = _day(call.require("EndDate"), "EndDate") + timedelta(days=1)
    size = call.integer("PageSize", 10, high=50)
    page = call.integer("PageIndex", 1)
    globe = call.integer("IsGlobe", 1, high=2)
    rows = Message.objects.filter(created_at__gte=start, created_at__lt=end)
    rows = rows.filter(country="CN") if globe == 1 else rows.exclude(country="CN")
    if call.get("SignName"):
        rows = rows.filter(signature=call.get("SignName"))
    failed = [MessageStatus.UNDELIVERED, MessageStatus.EXPIRED, MessageStatus.REJECTED, MessageStatus.FAILED]
    days = list(
        rows.annotate(day=TruncDate("created_at", tzinfo=CHINA))
        .values("day")
        .annotate(
            total=Count("id"),
            ok=Count("id", filter=Q(status=MessageStatus.DELIVERED)),
            bad=Count("id", filter=Q(status__in=failed)),
        )
        .order_by("day")
    )
    targets = [
        {
            "SendDate": d["day"].strftime("%Y%m%d"),
            "TotalCount": d["total"],
            "RespondedSuccessCount": d["ok"],
            "RespondedFailCount": d["bad"],
            "NoRespondedCount": d["total"] - d["ok"] - d["bad"],
        }
        for d in days
    ]
    return {"Data": {"TotalSize": len(targets), "TargetList": targets[(page - 1) * size : page * size]}}


# --- signatures (R-CMP-1) ----------------------------------------------------------------------------

SIGN_STATUS = {ReviewStatus.PENDING: 0, ReviewStatus.APPROVED: 1, ReviewStatus.REJECTED: 2, ReviewStatus.WITHDRAWN: 10}
AUDIT_STATE = {
    ReviewStatus.PENDING: "AUDIT_STATE_INIT",
    ReviewStatus.APPROVED: "AUDIT_STATE_PASS",
    ReviewStatus.REJECTED: "AUDIT_STATE_NOT_PASS",
    ReviewStatus.WITHDRAWN: "AUDIT_STATE_CANCEL",
}
PROOF_SUFFIXES = {"pdf", "jpg", "jpeg", "png"}


def _proofs_from_files(call: Call) -> list[ContentFile]:
    """SignFileList.N.FileContents (base64) + FileSuffix, as AddSmsSign / ModifySmsSign send them."""
    proofs = []
    for n in range(1, 21):
        contents = call.get(f"SignFileList.{n}.FileContents")
        if not contents:
            break
        suffix = call.get(f"SignFileList.{n}.FileSuffix", "pdf").lower().lstrip(".")
        if suffix not in PROOF_SUFFIXES:
            raise from_reason("invalid_proof", f"FileSuffix {suffix} is not accepted: pdf, jpg, png.")
        try:
            data = base64.b64decode(contents, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise from_reason("invalid_proof", "FileContents must be base64.") from exc
        proofs.append(ContentFile(data, name=f"proof-{n}.{suffix}"))
    return proofs


def _reference_proof(call: Call) -> list[ContentFile]:
    """CreateSmsSign / UpdateSmsSign carry references (QualificationId, MoreData, a scene URL), not
    files: the reviewer gets them as a one-page PDF, the filing's proof (R-CMP-1)."""
    lines = [
        f"{name}: {call.get(name)}"
        for name in ("QualificationId", "AuthorizationLetterId", "TrademarkId", "AppIcpRecordId", "ApplySceneContent")
        if call.get(name)
    ]
    lines += [f"MoreData: {v}" for k, v in sorted(call.params.items()) if k.startswith("MoreData")]
    if not lines:
        return []
    text = " / ".join(lines).encode("ascii", "replace").decode().replace("(", "[").replace(")", "]")[:1500]
    stream = f"BT /F1 10 Tf 40 800 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for i, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return [ContentFile(bytes(out), name="filing-references.pdf")]


def _file_sign(call: Call) -> dict:
    name = call.require("SignName")
    proofs = _proofs_from_files(call) or _reference_proof(call)
    compliance.file_signature(
        tenant=call.tenant, text=name, purpose=call.get("Remark"), proofs=proofs, actor=call.actor
    )
    return {"SignName": name}


def _latest_sign(call: Call) -> Signature:
    sign = Signature.objects.filter(tenant=call.tenant, text=call.require("SignName")).order_by("-created_at", "-id")
    found = sign.first()
    if found is None:
        raise AlibabaError("isv.SMS_SIGNATURE_ILLEGAL", "No such signature on this account.")
    return found


def add_sms_sign(call: Call) -> dict:
    return _file_sign(call)


def create_sms_sign(call: Call) -> dict:
    return {**_file_sign(call), "OrderId": ""}


def query_sms_sign(call: Call) -> dict:
    sign = _latest_sign(call)
    return {
        "SignName": sign.text,
        "SignStatus": SIGN_STATUS[sign.status],
        "Reason": sign.review_reason,
        "CreateDate": alibaba_time(sign.created_at),
    }


def get_sms_sign(call: Call) -> dict:
    sign = _latest_sign(call)
    return {
        "SignName": sign.text,
        "SignStatus": SIGN_STATUS[sign.status],
        "CreateDate": alibaba_time(sign.created_at),
        "Remark": sign.purpose,
        "AuditInfo": {"RejectInfo": sign.review_reason, "AuditDate": alibaba_time(sign.reviewed_at)},
        "SignCode": str(sign.pk),
    }


def modify_sms_sign(call: Call) -> dict:
    """Alibaba re-files a signature that failed review; here a pending one may be re-filed too
    (the pending filing is withdrawn). An approved signature is not modified (it sends)."""
    sign = _latest_sign(call)
    if sign.status == ReviewStatus.APPROVED:
        raise AlibabaError("isv.INVALID_PARAMETERS", "An approved signature cannot be modified.")
    with transaction.atomic():
        if sign.status == ReviewStatus.PENDING:
            compliance.withdraw_signature(signature=sign, actor=call.actor, reason="modified (Alibaba API)")
        return _file_sign(call)


def update_sms_sign(call: Call) -> dict:
    return {**modify_sms_sign(call), "OrderId": ""}


def delete_sms_sign(call: Call) -> dict:
    sign = _latest_sign(call)
    if sign.status in (ReviewStatus.PENDING, ReviewStatus.APPROVED):
        compliance.withdraw_signature(signature=sign, actor=call.actor, reason="deleted (Alibaba API)")
    return {"SignName": sign.text}


def query_sms_sign_list(call: Call) -> dict:
    size = call.integer("PageSize", 10, high=50)
    page = call.integer("PageIndex", 1)
    rows = Signature.objects.filter(tenant=call.tenant).order_by("-created_at", "-id")
    return {
        "TotalCount": rows.count(),
        "CurrentPage": page,
        "PageSize": size,
        "SmsSignList": [
            {
                "SignName": s.text,
                "AuditStatus": AUDIT_STATE[s.status],
                "CreateDate": alibaba_time(s.created_at),
                "BusinessType": "",
                "OrderId": "",
                "Reason": {
                    "RejectInfo": s.review_reason,
                    "RejectDate": alibaba_time(s.reviewed_at),
                    "RejectSubInfo": "",
                },
            }
            for s in rows[(page - 1) * size : page * size]
        ],
    }


# --- templates (R-CMP-2) ----------------------------------------------------------------------------

TEMPLATE_TYPES = {
    "0": MessageType.VERIFICATION,
    "1": MessageType.NOTIFICATION,
    "2": MessageType.MARKETING,
    "3": MessageType.INTERNATIONAL,
    "7": MessageType.MEMBER,
}
ALIBABA_TYPE = {v: int(k) for k, v in TEMPLATE_TYPES.items()}
# TemplateRule variable types (CreateSmsTemplate) → our variable kinds.
RULE_KINDS = {
    "numberCaptcha": "code",
    "characterWithNumber": "text",
    "time": "date",
    "money": "number",
    "phone_number": "number",
    "link_param": "url",
}


def _variables(call: Call, body: str, message_type: str) -> dict:
    """Our typed variables (R-CMP-2) from TemplateRule when given, else by name: a verification
    template's code/captcha variables are digit codes, everything else short text."""
    from compliance.checks import variables_in

    rule = _json(call.get("TemplateRule"), "TemplateRule", dict) if call.get("TemplateRule") else {}
    out = {}
    for name in variables_in(body):
        if name in rule:
            out[name] = {"kind": RULE_KINDS.get(str(rule[name]), "text")}
        elif message_type == MessageType.VERIFICATION and name.lower() in ("code", "captcha", "verifycode", "smscode"):
            out[name] = {"kind": "code"}
        else:
            out[name] = {"kind": "text"}
    return out


def _template_type(call: Call) -> str:
    raw = call.require("TemplateType")
    if raw not in TEMPLATE_TYPES:
        raise AlibabaError("isv.SMS_TEMPLATE_ILLEGAL", f"TemplateType {raw} is not supported: 0, 1, 2, 3 or 7.")
    return TEMPLATE_TYPES[raw]


def _new_alibaba_code() -> str:
    for _ in range(10):
        code = f"SMS_{secrets.randbelow(10**9):09d}"
        if not Template.objects.filter(code=code).exists():
            return code
    raise AlibabaError("isp.SYSTEM_ERROR", "Could not allocate a template code.", 500)


def _file_template(call: Call) -> Template:
    message_type = _template_type(call)
    body = call.require("TemplateContent")
    with transaction.atomic():
        template = compliance.file_template(
            tenant=call.tenant,
            name=call.require("TemplateName")[:100],
            message_type=message_type,
            body=body,
            variables=_variables(call, body, message_type),
            actor=call.actor,
        )
        # Alibaba-shaped code for templates filed this way; it works on our API as well.
        code = _new_alibaba_code()
        Template.objects.filter(pk=template.pk).update(code=code)
        record_operation(
            actor=call.actor,
            action="template.code_alias",
            tenant=call.tenant,
            obj=template,
            before={"code": template.code},
            after={"code": code},
        )
        template.code = code
    return template


def _template(call: Call) -> Template:
    template = Template.objects.filter(tenant=call.tenant, code=call.require("TemplateCode")).first()
    if template is None:
        raise AlibabaError("isv.SMS_TEMPLATE_ILLEGAL", "No such template on this account.")
    return template


def _latest_version(template: Template) -> TemplateVersion:
    return template.versions.order_by("-number").first()


def _template_status(template: Template, version: TemplateVersion) -> int:
    if template.approved_version_id and version.status != ReviewStatus.PENDING:
        return SIGN_STATUS[ReviewStatus.APPROVED] if version.status != ReviewStatus.WITHDRAWN else 10
    return SIGN_STATUS[version.status]


def add_sms_template(call: Call) -> dict:
    return {"TemplateCode": _file_template(call).code}


def create_sms_template(call: Call) -> dict:
    template = _file_template(call)
    return {"TemplateCode": template.code, "TemplateName": template.name, "OrderId": ""}


def query_sms_template(call: Call) -> dict:
    template = _template(call)
    version = _latest_version(template)
    return {
        "TemplateCode": template.code,
        "TemplateName": template.name,
        "TemplateType": ALIBABA_TYPE.get(template.message_type, 1),
        "TemplateStatus": _template_status(template, version),
        "TemplateContent": version.body,
        "CreateDate": alibaba_time(template.created_at),
        "Reason": version.review_reason,
    }


def get_sms_template(call: Call) -> dict:
    template = _template(call)
    version = _latest_version(template)
    return {
        "TemplateCode": template.code,
        "TemplateName": template.name,
        "TemplateType": str(ALIBABA_TYPE.get(template.message_type, 1)),
        "TemplateStatus": str(_template_status(template, version)),
        "TemplateContent": version.body,
        "CreateDate": alibaba_time(template.created_at),
        "VariableAttribute": json.dumps(version.variables, ensure_ascii=False),
        "AuditInfo": {"RejectInfo": version.review_reason, "AuditDate": alibaba_time(version.reviewed_at)},
    }


def modify_sms_template(call: Call) -> dict:
    """A new version for review; the approved one keeps sending meanwhile (R-CMP-2)."""
    template = _template(call)
    body = call.require("TemplateContent")
    compliance.revise_template(
        template=template,
        body=body,
        variables=_variables(call, body, template.message_type),
        actor=call.actor,
        name=call.get("TemplateName")[:100] or None,
    )
    return {"TemplateCode": template.code}


def update_sms_template(call: Call) -> dict:
    return {**modify_sms_template(call), "TemplateName": _template(call).name, "OrderId": ""}


def delete_sms_template(call: Call) -> dict:
    """The template stops sending: its live versions are withdrawn (recorded, R-AUD-3).
    TODO(compliance split): move into compliance services as withdraw_template."""
    template = _template(call)
    with transaction.atomic():
        locked = Template.objects.select_for_update().get(pk=template.pk)
        live = locked.versions.filter(status__in=[ReviewStatus.PENDING, ReviewStatus.APPROVED])
        numbers = list(live.values_list("number", flat=True))
        live.update(status=ReviewStatus.WITHDRAWN)
        Template.objects.filter(pk=locked.pk).update(approved_version=None)
        record_operation(
            actor=call.actor,
            action="template.withdraw",
            tenant=call.tenant,
            obj=locked,
            reason="deleted (Alibaba API)",
            after={"code": locked.code, "withdrawn_versions": numbers},
        )
    return {"TemplateCode": template.code}


def query_sms_template_list(call: Call) -> dict:
    size = call.integer("PageSize", 10, high=50)
    page = call.integer("PageIndex", 1)
    rows = Template.objects.filter(tenant=call.tenant).order_by("-created_at", "-id")
    items = []
    for template in rows[(page - 1) * size : page * size]:
        version = _latest_version(template)
        status = _template_status(template, version)
        items.append(
            {
                "TemplateCode": template.code,
                "TemplateName": template.name,
                "TemplateType": ALIBABA_TYPE.get(template.message_type, 1),
                "OuterTemplateType": ALIBABA_TYPE.get(template.message_type, 1),
                "AuditStatus": {0: "AUDIT_STATE_INIT", 1: "AUDIT_STATE_PASS", 2: "AUDIT_STATE_NOT_PASS"}.get(
                    status, "AUDIT_STATE_CANCEL"
                ),
                "TemplateContent": version.body,
                "CreateDate": alibaba_time(template.created_at),
                "OrderId": "",
                "Reason": {
                    "RejectInfo": version.review_reason,
                    "RejectDate": alibaba_time(version.reviewed_at),
                    "RejectSubInfo": "",
                },
            }
        )
    return {"TotalCount": rows.count(), "CurrentPage": page, "PageSize": size, "SmsTemplateList": items}


# name → (handler, writes): writes need an active account (R-TEN-3), reads work while suspended.
ACTIONS = {
    "SendSms": (send_sms, True),
    "SendBatchSms": (send_batch_sms, True),
    "QuerySendDetails": (query_send_details, False),
    "QuerySendStatistics": (query_send_statistics, False),
    "AddSmsSign": (add_sms_sign, True),
    "CreateSmsSign": (create_sms_sign, True),
    "QuerySmsSign": (query_sms_sign, False),
    "GetSmsSign": (get_sms_sign, False),
    "ModifySmsSign": (modify_sms_sign, True),
    "UpdateSmsSign": (update_sms_sign, True),
    "DeleteSmsSign": (delete_sms_sign, True),
    "QuerySmsSignList": (query_sms_sign_list, False),
    "AddSmsTemplate": (add_sms_template, True),
    "CreateSmsTemplate": (create_sms_template, True),
    "QuerySmsTemplate": (query_sms_template, False),
    "GetSmsTemplate": (get_sms_template, False),
    "ModifySmsTemplate": (modify_sms_template, True),
    "UpdateSmsTemplate": (update_sms_template, True),
    "DeleteSmsTemplate": (delete_sms_template, True),
    "QuerySmsTemplateList": (query_sms_template_list, False),
}
