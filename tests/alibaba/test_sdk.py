"""The official Alibaba Cloud SDK (alibabacloud-dysmsapi20170525), unchanged, against a live
server: every action, both signature methods, wrong secret, unknown key, replayed nonce and the
mapped business errors (docs/alibaba.md). One path: sends go through delivery.intake.accept_send
(R-DLV-1, R-CMP-1/2/8, R-BIL-1/2, R-AUD-3), filings through the compliance services."""

import base64
import secrets
import threading

import pytest
from alibabacloud_dysmsapi20170525 import models as m
from alibabacloud_dysmsapi20170525.client import Client
from alibabacloud_tea_openapi import utils as openapi_utils
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.models import Config
from django.db import connection
from django_tenants.utils import tenant_context

from compliance import services as compliance
from compliance.models import Signature, Template
from delivery.models import Message
from tenants import services as tenant_services
from tenants.models import OperationRecord

from ..conftest import SYSTEM, create_tenant
from ..delivery.flow.conftest import make_sendable
from .conftest import clear_frequency_counters


@pytest.fixture
def live_app(live_db, settings, tmp_path, monkeypatch):
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
    from django.core.wsgi import get_wsgi_application
    from django.db import connections

    # Each request runs in its own thread: close its connection at the end of the request, or
    # the sessions outlive the test database.
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 0)

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    settings.MEDIA_ROOT = tmp_path / "media"
    server = ThreadedWSGIServer(("127.0.0.1", 0), QuietHandler, allow_reuse_address=False)
    server.set_app(get_wsgi_application())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    connection.close()


@pytest.fixture
def account(live_app):
    """A committed tenant that can send (signature DemoShop, a verification template), its key."""
    tenant = create_tenant(f"Alibaba SDK {secrets.token_hex(3)} Co.")
    code = make_sendable(tenant)
    clear_frequency_counters(tenant)
    key, secret = tenant_services.issue_api_key(tenant=tenant, actor=SYSTEM)
    return tenant, key.access_key_id, secret, code


def sdk(endpoint, key_id, secret, **config) -> Client:
    return Client(Config(access_key_id=key_id, access_key_secret=secret, endpoint=endpoint, protocol="http", **config))


def send(client, code, number="13800138000", params='{"code":"1234"}', sign="DemoShop"):
    return client.send_sms(
        m.SendSmsRequest(phone_numbers=number, sign_name=sign, template_code=code, template_param=params)
    ).body


@pytest.mark.parametrize("algorithm", [None, "v2"], ids=["V3-ACS3-HMAC-SHA256", "RPC-HMAC-SHA1"])
def test_send_sms_and_query_details_with_both_signatures_R_DLV_1_R_TEN_2(live_app, account, algorithm):
    tenant, key_id, secret, code = account
    config = {"signature_algorithm": algorithm} if algorithm else {}
    client = sdk(live_app, key_id, secret, **config)
    body = send(client, code)
    assert (body.code, body.message) == ("OK", "OK")
    assert body.biz_id
    assert body.request_id
    with tenant_context(tenant):
        message = Message.objects.get(request_id=int(body.biz_id))
    assert message.content == "【DemoShop】Your code is 1234."
    assert message.recipient == "+8613800138000"

    details = client.query_send_details(
        m.QuerySendDetailsRequest(
            phone_number="13800138000",
            send_date=message.created_at.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Shanghai")).strftime(
                "%Y%m%d"
            ),
            page_size=10,
            current_page=1,
            biz_id=body.biz_id,
        )
    ).body
    assert details.code == "OK"
    assert details.total_count == "1"
    (dto,) = details.sms_send_detail_dtos.sms_send_detail_dto
    assert (dto.phone_num, dto.send_status, dto.template_code) == ("13800138000", 1, code)
    assert dto.content == "【DemoShop】Your code is 1234."


def test_send_batch_sms_and_statistics_R_DLV_1(live_app, account):
    tenant, key_id, secret, code = account
    client = sdk(live_app, key_id, secret)
    body = client.send_batch_sms(
        m.SendBatchSmsRequest(
            phone_number_json='["13800138001","13800138002"]',
            sign_name_json='["DemoShop","DemoShop"]',
            template_code=code,
            template_param_json='[{"code":"1111"},{"code":"2222"}]',
        )
    ).body
    assert body.code == "OK", body.message
    with tenant_context(tenant):
        contents = sorted(Message.objects.filter(request_id=int(body.biz_id)).values_list("content", flat=True))
        day = Message.objects.filter(request_id=int(body.biz_id)).first().created_at
    assert contents == ["【DemoShop】Your code is 1111.", "【DemoShop】Your code is 2222."]
    day = day.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Shanghai")).strftime("%Y%m%d")
    stats = client.query_send_statistics(
        m.QuerySendStatisticsRequest(is_globe=1, start_date=day, end_date=day, page_index=1, page_size=10)
    ).body
    assert stats.code == "OK"
    (row,) = stats.data.target_list
    assert (row.send_date, row.total_count, row.no_responded_count) == (day, 2, 2)


@pytest.mark.parametrize("algorithm", [None, "v2"], ids=["V3", "RPC"])
def test_wrong_secret_is_signature_does_not_match_R_TEN_2(live_app, account, algorithm):
    tenant, key_id, secret, code = account
    config = {"signature_algorithm": algorithm} if algorithm else {}
    with pytest.raises(ClientException) as caught:
        send(sdk(live_app, key_id, secret + "x", **config), code)
    assert caught.value.code == "SignatureDoesNotMatch"
    assert caught.value.status_code == 400
    with tenant_context(tenant):
        assert not Message.objects.exists()


def test_unknown_key_is_invalid_access_key_id_R_TEN_2(live_app, account):
    with pytest.raises(ClientException) as caught:
        send(sdk(live_app, "AKNOSUCHKEY", "whatever"), account[3])
    assert caught.value.code == "InvalidAccessKeyId.NotFound"
    assert caught.value.status_code == 404


@pytest.mark.parametrize("algorithm", [None, "v2"], ids=["V3", "RPC"])
def test_replayed_nonce_is_refused_R_TEN_2(live_app, account, monkeypatch, algorithm):
    tenant, key_id, secret, code = account
    nonce = secrets.token_hex(16)
    monkeypatch.setattr(openapi_utils.Utils, "get_nonce", staticmethod(lambda: nonce))
    config = {"signature_algorithm": algorithm} if algorithm else {}
    client = sdk(live_app, key_id, secret, **config)
    assert send(client, code).code == "OK"
    with pytest.raises(ClientException) as caught:
        send(client, code, number="13800138009")
    assert caught.value.code == "SignatureNonceUsed"
    with tenant_context(tenant):
        assert Message.objects.count() == 1


def test_business_errors_are_http_200_with_alibaba_codes_R_CMP_1_R_CMP_2_R_CMP_8(live_app, account, settings):
    tenant, key_id, secret, code = account
    client = sdk(live_app, key_id, secret)
    assert send(client, code, sign="NotMine").code == "isv.SMS_SIGNATURE_ILLEGAL"
    assert send(client, "SMS_000000000").code == "isv.SMS_TEMPLATE_ILLEGAL"
    assert send(client, code, number="12345").code == "isv.MOBILE_NUMBER_ILLEGAL"
    assert send(client, code, params="{}").code == "isv.TEMPLATE_MISSING_PARAMETERS"
    assert send(client, code, params='{"code":"abc"}').code == "isv.TEMPLATE_PARAMS_ILLEGAL"
    assert send(client, code, params="{not json").code == "isv.INVALID_JSON_PARAM"
    settings.COMPLIANCE_FREQUENCY_LIMITS = True
    assert send(client, code, number="13800138077").code == "OK"
    limited = send(client, code, number="13800138077")
    assert limited.code == "isv.BUSINESS_LIMIT_CONTROL"
    assert "1 a minute" in limited.message
    with tenant_context(tenant):
        assert Message.objects.count() == 1  # refused single sends store nothing (R-DLV-1)


def test_insufficient_balance_is_amount_not_enough_R_BIL_1(live_app):
    tenant = create_tenant(f"Alibaba Broke {secrets.token_hex(3)} Co.")
    code = make_sendable(tenant, balance=0)
    key, secret = tenant_services.issue_api_key(tenant=tenant, actor=SYSTEM)
    assert send(sdk(live_app, key.access_key_id, secret), code).code == "isv.AMOUNT_NOT_ENOUGH"


def test_sign_actions_go_through_the_filing_services_R_CMP_1_R_AUD_3(live_app, account):
    tenant, key_id, secret, code = account
    client = sdk(live_app, key_id, secret)
    pdf = base64.b64encode(b"%PDF-1.4 licence").decode()
    files = [m.AddSmsSignRequestSignFileList(file_contents=pdf, file_suffix="pdf")]
    added = client.add_sms_sign(
        m.AddSmsSignRequest(sign_name="NewBrand", sign_source=0, remark="our shop", sign_file_list=files)
    ).body
    assert (added.code, added.sign_name) == ("OK", "NewBrand")
    sign = Signature.objects.get(tenant=tenant, text="NewBrand")
    assert sign.proofs.count() == 1
    assert OperationRecord.objects.filter(action="signature.file", object_id=str(sign.pk)).exists()
    queried = client.query_sms_sign(m.QuerySmsSignRequest(sign_name="NewBrand")).body
    assert (queried.code, queried.sign_status) == ("OK", 0)
    compliance.reject_signature(signature=sign, actor=SYSTEM, reason="licence unreadable")
    got = client.get_sms_sign(m.GetSmsSignRequest(sign_name="NewBrand")).body
    assert (got.sign_status, got.audit_info.reject_info) == (2, "licence unreadable")
    modified = client.modify_sms_sign(
        m.ModifySmsSignRequest(sign_name="NewBrand", sign_source=0, remark="again", sign_file_list=files)
    ).body
    assert modified.code == "OK"
    assert client.query_sms_sign(m.QuerySmsSignRequest(sign_name="NewBrand")).body.sign_status == 0
    listed = client.query_sms_sign_list(m.QuerySmsSignListRequest(page_index=1, page_size=10)).body
    assert {(s.sign_name, s.audit_status) for s in listed.sms_sign_list} >= {
        ("NewBrand", "AUDIT_STATE_INIT"),
        ("NewBrand", "AUDIT_STATE_NOT_PASS"),
        ("DemoShop", "AUDIT_STATE_PASS"),
    }
    deleted = client.delete_sms_sign(m.DeleteSmsSignRequest(sign_name="NewBrand")).body
    assert deleted.code == "OK"
    assert client.query_sms_sign(m.QuerySmsSignRequest(sign_name="NewBrand")).body.sign_status == 10

    created = client.create_sms_sign(
        m.CreateSmsSignRequest(sign_name="OtherBrand", sign_source=1, qualification_id=42, remark="app")
    ).body
    assert (created.code, created.sign_name) == ("OK", "OtherBrand")
    other = Signature.objects.get(tenant=tenant, text="OtherBrand")
    assert other.proofs.get().file.read().startswith(b"%PDF-1.4")
    updated = client.update_sms_sign(
        m.UpdateSmsSignRequest(sign_name="OtherBrand", sign_source=1, qualification_id=43)
    ).body
    assert updated.code == "OK"
    missing = client.query_sms_sign(m.QuerySmsSignRequest(sign_name="NeverFiled")).body
    assert missing.code == "isv.SMS_SIGNATURE_ILLEGAL"


def test_template_actions_issue_sms_codes_that_send_R_CMP_2(live_app, account):
    tenant, key_id, secret, code = account
    client = sdk(live_app, key_id, secret)
    added = client.add_sms_template(
        m.AddSmsTemplateRequest(
            template_type=0, template_name="login", template_content="Login code ${code}.", remark="login"
        )
    ).body
    assert added.code == "OK"
    assert added.template_code.startswith("SMS_")
    template = Template.objects.get(code=added.template_code)
    assert template.tenant_id == tenant.pk
    assert template.message_type == "verification"
    assert OperationRecord.objects.filter(action="template.code_alias", object_id=str(template.pk)).exists()
    queried = client.query_sms_template(m.QuerySmsTemplateRequest(template_code=added.template_code)).body
    assert (queried.template_status, queried.template_type, queried.template_content) == (
        0,
        0,
        "Login code ${code}.",
    )
    compliance.approve_template_version(version=template.versions.get(), actor=SYSTEM)
    assert send(client, added.template_code, number="13800138055").code == "OK"

    modified = client.modify_sms_template(
        m.ModifySmsTemplateRequest(
            template_code=added.template_code,
            template_type=0,
            template_name="login",
            template_content="Your login code ${code}.",
            remark="v2",
        )
    ).body
    assert modified.code == "OK"
    got = client.get_sms_template(m.GetSmsTemplateRequest(template_code=added.template_code)).body
    assert (got.template_status, got.template_content) == ("0", "Your login code ${code}.")
    listed = client.query_sms_template_list(m.QuerySmsTemplateListRequest(page_index=1, page_size=50)).body
    assert added.template_code in {t.template_code for t in listed.sms_template_list}
    deleted = client.delete_sms_template(m.DeleteSmsTemplateRequest(template_code=added.template_code)).body
    assert deleted.code == "OK"
    assert send(client, added.template_code, number="13800138056").code == "isv.SMS_TEMPLATE_ILLEGAL"

    created = client.create_sms_template(
        m.CreateSmsTemplateRequest(
            template_type=1,
            template_name="parcel",
            template_content="Parcel ${no} arrives ${day}.",
            template_rule='{"no":"characterWithNumber","day":"time"}',
            related_sign_name="DemoShop",
            remark="logistics",
        )
    ).body
    assert created.code == "OK"
    assert Template.objects.get(code=created.template_code).versions.get().variables == {
        "no": {"kind": "text", "max_length": 20},
        "day": {"kind": "date", "max_length": 20},
    }
    updated = client.update_sms_template(
        m.UpdateSmsTemplateRequest(
            template_code=created.template_code,
            template_type=1,
            template_name="parcel",
            template_content="Parcel ${no} arrives on ${day}.",
            template_rule='{"no":"characterWithNumber","day":"time"}',
            related_sign_name="DemoShop",
            remark="logistics",
        )
    ).body
    assert updated.code == "OK"
    assert Template.objects.get(code=created.template_code).versions.count() == 2
