"""The send gate check_message (contracts.md): R-CMP-1..5, R-CMP-8, R-CMP-9."""

import pytest

from compliance import services
from compliance.models import ReviewStatus, Signature

from .conftest import CUSTOMER, REVIEWER, approved_signature, approved_template, proof

CN1, CN2, CN3 = "+8613800138001", "+8613800138002", "+8613800138003"
OPERATOR = services.Actor(kind="user", id="1", label="user:op")


def _check(tenant, template, recipients, params=None, signature="AcmeBrand"):
    return services.check_message(
        tenant=tenant,
        signature=signature,
        template=template.code,
        params=params if params is not None else {"code": "123456"},
        recipients=recipients,
    )


def test_allowed_message_carries_signature_and_rendered_text(tenant_a):
    approved_signature(tenant_a)
    template = approved_template(tenant_a)
    result = _check(tenant_a, template, [CN1])
    verdict = result.verdicts[0]
    assert verdict.allowed
    assert not verdict.held
    assert verdict.content == "【AcmeBrand】Your code is 123456."
    assert result.message_type == "verification"
    assert result.template_version == 1


def test_r_cmp_1_unapproved_signature_cannot_send(tenant_a):
    template = approved_template(tenant_a)
    services.file_signature(tenant=tenant_a, text="PendingBrand", purpose="x", proofs=[proof()], actor=CUSTOMER)
    with pytest.raises(services.SignatureNotApproved):
        _check(tenant_a, template, [CN1], signature="PendingBrand")


def test_r_cmp_1_withdrawn_signature_cannot_send(tenant_a):
    signature = approved_signature(tenant_a)
    template = approved_template(tenant_a)
    services.withdraw_signature(signature=signature, actor=CUSTOMER)
    with pytest.raises(services.SignatureNotApproved):
        _check(tenant_a, template, [CN1])


def test_r_cmp_1_another_tenants_signature_cannot_send(tenant_a, tenant_b):
    approved_signature(tenant_b, "OtherBrand")
    template = approved_template(tenant_a)
    with pytest.raises(services.SignatureNotApproved):
        _check(tenant_a, template, [CN1], signature="OtherBrand")


def test_r_cmp_2_unapproved_template_cannot_send(tenant_a):
    approved_signature(tenant_a)
    template = services.file_template(
        tenant=tenant_a,
        name="t",
        message_type="verification",
        body="Code ${code}",
        variables={"code": {"kind": "code"}},
        actor=CUSTOMER,
    )
    with pytest.raises(services.TemplateNotApproved):
        _check(tenant_a, template, [CN1])


def test_r_cmp_2_revision_under_review_keeps_the_approved_version_sending(tenant_a):
    approved_signature(tenant_a)
    template = approved_template(tenant_a)
    revision = services.revise_template(
        template=template, body="New code ${code}", variables={"code": "code"}, actor=CUSTOMER
    )
    assert revision.status == ReviewStatus.PENDING
    assert _check(tenant_a, template, [CN1]).verdicts[0].content == "【AcmeBrand】Your code is 123456."
    services.approve_template_version(version=revision, actor=REVIEWER)
    result = _check(tenant_a, template, [CN1])
    assert result.verdicts[0].content == "【AcmeBrand】New code 123456"
    assert result.template_version == 2


def test_r_cmp_2_invalid_parameter_is_denied_per_recipient(tenant_a):
    approved_signature(tenant_a)
    template = approved_template(tenant_a)
    result = _check(tenant_a, template, [CN1, CN2], params=[{"code": "12ab"}, {"code": "4321"}])
    assert [v.reason for v in result.verdicts] == ["invalid_parameter", None]


def test_r_cmp_3_banned_word_in_parameter_is_caught_at_send_time(tenant_a):
    approved_signature(tenant_a)
    template = approved_template(
        tenant_a,
        body="Hello ${name}, your order shipped.",
        variables={"name": {"kind": "text", "max_length": 20}},
        message_type="notification",
    )
    verdict = _check(tenant_a, template, [CN1], params={"name": "博彩大奖"}).verdicts[0]
    assert not verdict.allowed
    assert verdict.reason == "banned_content"
    assert "gambling" in verdict.detail


@pytest.mark.parametrize("obfuscated", ["博 彩", "博.彩", "博-*-彩", "ＣＡＳＩＮＯ", "c a s i n o", "C.a.S.i.N.o"])
def test_r_cmp_3_obfuscated_banned_word_in_parameter_is_caught(tenant_a, obfuscated):
    approved_signature(tenant_a)
    template = approved_template(
        tenant_a,
        body="Hello ${name}!",
        message_type="notification",
        variables={"name": {"kind": "text", "max_length": 20}},
    )
    verdict = _check(tenant_a, template, [CN1], params={"name": obfuscated}).verdicts[0]
    assert verdict.reason == "banned_content", obfuscated


def test_r_cmp_3_hold_rule_allows_but_holds(tenant_a):
    approved_signature(tenant_a)
    template = approved_template(
        tenant_a, body="Hi ${name}", message_type="notification", variables={"name": {"kind": "text", "max_length": 20}}
    )
    verdict = _check(tenant_a, template, [CN1], params={"name": "高息理财"}).verdicts[0]
    assert verdict.allowed
    assert verdict.held
    assert "financial_marketing" in verdict.detail


def test_r_cmp_4_opted_out_number_is_denied(tenant_a):
    approved_signature(tenant_a)
    template = approved_template(tenant_a)
    services.add_opt_out(tenant=tenant_a, number=CN1, actor=CUSTOMER)
    result = _check(tenant_a, template, [CN1, CN2])
    assert [(v.allowed, v.reason) for v in result.verdicts] == [(False, "opted_out"), (True, None)]


def test_r_cmp_4_opt_out_is_per_tenant(tenant_a, tenant_b):
    services.add_opt_out(tenant=tenant_b, number=CN1, actor=CUSTOMER)
    approved_signature(tenant_a)
    template = approved_template(tenant_a)
    assert _check(tenant_a, template, [CN1]).verdicts[0].allowed


def test_r_cmp_4_globally_blocked_number_is_denied(tenant_a):
    approved_signature(tenant_a)
    template = approved_template(tenant_a)
    services.block_number(number=CN2, actor=OPERATOR, reason="carrier complaint list")
    result = _check(tenant_a, template, [CN1, CN2])
    assert [v.reason for v in result.verdicts] == [None, "globally_blocked"]


MARKETING = "Sale on ${item} today! 回T退订"


def test_r_cmp_5_marketing_without_consent_is_denied_in_strict_mode(tenant_a):
    approved_signature(tenant_a)
    template = approved_template(
        tenant_a, body=MARKETING, message_type="marketing", variables={"item": {"kind": "text", "max_length": 10}}
    )
    services.record_consent(tenant=tenant_a, number=CN2, source="signup form 2026-01", actor=CUSTOMER)
    result = _check(tenant_a, template, [CN1, CN2], params={"item": "shoes"})
    assert [v.reason for v in result.verdicts] == ["no_consent", None]


def test_r_cmp_5_withdrawn_consent_denies_marketing(tenant_a):
    approved_signature(tenant_a)
    template = approved_template(
        tenant_a, body=MARKETING, message_type="marketing", variables={"item": {"kind": "text", "max_length": 10}}
    )
    services.record_consent(tenant=tenant_a, number=CN1, source="app", actor=CUSTOMER)
    services.withdraw_consent(tenant=tenant_a, number=CN1, actor=CUSTOMER)
    assert _check(tenant_a, template, [CN1], params={"item": "shoes"}).verdicts[0].reason == "no_consent"


def test_r_cmp_5_lenient_policy_sends_marketing_without_consent_records(tenant_a):
    approved_signature(tenant_a)
    template = approved_template(
        tenant_a, body=MARKETING, message_type="marketing", variables={"item": {"kind": "text", "max_length": 10}}
    )
    services.update_compliance_settings(tenant=tenant_a, changes={"consent_policy": "lenient"}, actor=OPERATOR)
    assert _check(tenant_a, template, [CN1], params={"item": "shoes"}).verdicts[0].allowed


def test_r_cmp_5_consent_is_not_needed_for_verification(tenant_a):
    approved_signature(tenant_a)
    template = approved_template(tenant_a)
    assert _check(tenant_a, template, [CN1]).verdicts[0].allowed


def test_r_cmp_6_suspended_tenant_cannot_send(tenant_a):
    approved_signature(tenant_a)
    template = approved_template(tenant_a)
    services.suspend_sending(tenant=tenant_a, actor=OPERATOR, reason="spam")
    with pytest.raises(services.SendingSuspended) as caught:
        _check(tenant_a, template, [CN1])
    assert caught.value.code == "sending_suspended"


def test_r_cmp_6_volume_cap_refuses_the_request_with_429(tenant_a):
    approved_signature(tenant_a)
    template = approved_template(tenant_a)
    services.cap_volume(tenant=tenant_a, actor=OPERATOR, reason="complaints", per_minute=2)
    _check(tenant_a, template, [CN1, CN2])
    with pytest.raises(services.VolumeCapped) as caught:
        _check(tenant_a, template, [CN3])
    assert caught.value.http_status == 429


def test_r_cmp_8_counts_allowed_recipients(tenant_a):
    from compliance.models import VolumeCounter

    approved_signature(tenant_a)
    template = approved_template(tenant_a)
    services.add_opt_out(tenant=tenant_a, number=CN3, actor=CUSTOMER)
    _check(tenant_a, template, [CN1, CN2, CN3])
    counts = dict(VolumeCounter.objects.filter(tenant=tenant_a).values_list("granularity", "count"))
    assert counts == {"minute": 2, "hour": 2, "day": 2}


def test_r_cmp_8_spike_over_usual_rate_holds_sends(tenant_a, settings):
    approved_signature(tenant_a)
    template = approved_template(tenant_a)
    settings.COMPLIANCE_SPIKE_MULTIPLE = 2
    settings.COMPLIANCE_SPIKE_MIN_HOURLY = 1  # usual rate of a fresh tenant: at least 1 an hour
    assert not _check(tenant_a, template, [CN1, CN2]).verdicts[0].held
    result = _check(tenant_a, template, [CN3])  # 3 this hour > 2 x 1
    assert result.verdicts[0].allowed
    assert result.verdicts[0].held
    assert "R-CMP-8" in result.verdicts[0].detail


def test_r_cmp_9_international_template_needs_enabled_country(tenant_a):
    approved_signature(tenant_a)
    template = approved_template(tenant_a, body="Your code is ${code}", message_type="international")
    us, jp = "+12025550123", "+819012345678"
    services.update_compliance_settings(tenant=tenant_a, changes={"enabled_countries": ["us"]}, actor=OPERATOR)
    result = _check(tenant_a, template, [us, jp, CN1])
    assert [v.reason for v in result.verdicts] == [None, "country_not_enabled", "domestic_number"]


def test_r_cmp_9_domestic_template_cannot_send_abroad(tenant_a):
    approved_signature(tenant_a)
    template = approved_template(tenant_a)
    assert _check(tenant_a, template, ["+12025550123"]).verdicts[0].reason == "international_template_required"


def test_params_list_must_match_recipients(tenant_a):
    approved_signature(tenant_a)
    template = approved_template(tenant_a)
    with pytest.raises(services.InvalidParameter):
        _check(tenant_a, template, [CN1, CN2], params=[{"code": "1234"}])


def test_check_message_query_count_does_not_grow_with_recipients(tenant_a):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    approved_signature(tenant_a)
    template = approved_template(tenant_a)
    _check(tenant_a, template, [CN1])  # warm the scanner cache
    with CaptureQueriesContext(connection) as few:
        _check(tenant_a, template, [CN1, CN2])
    with CaptureQueriesContext(connection) as many:
        result = _check(tenant_a, template, [f"+86138{n:08d}" for n in range(500)])
    assert all(v.allowed for v in result.verdicts)
    assert len(many) == len(few) <= 25


def test_signature_record_is_public_schema(tenant_a):
    approved_signature(tenant_a)
    assert Signature.objects.filter(tenant=tenant_a).count() == 1


def test_r_cmp_2_render_uses_the_approved_version_and_checks_parameters(tenant_a):
    template = approved_template(tenant_a)
    assert services.render(template=template, params={"code": "8888"}) == "Your code is 8888."
    with pytest.raises(services.InvalidParameter):
        services.render(template=template, params={"code": "8888", "other": "x"})


def test_r_cmp_2_another_tenants_template_code_cannot_send(tenant_a, tenant_b):
    approved_signature(tenant_a)
    foreign = approved_template(tenant_b)
    with pytest.raises(services.TemplateNotApproved):
        _check(tenant_a, foreign, [CN1])


def test_check_message_inside_the_tenant_schema_keeps_the_schema(tenant_a):
    from django.db import connection
    from django_tenants.utils import tenant_context

    approved_signature(tenant_a)
    template = approved_template(tenant_a)
    services.add_opt_out(tenant=tenant_a, number=CN2, actor=CUSTOMER)
    with tenant_context(tenant_a):
        result = _check(tenant_a, template, [CN1, CN2])
        assert connection.schema_name == tenant_a.schema_name
    assert [v.reason for v in result.verdicts] == [None, "opted_out"]


def test_check_message_per_recipient_params_do_not_query_per_recipient(tenant_a):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    approved_signature(tenant_a)
    template = approved_template(tenant_a)
    numbers = [f"+86138{n:08d}" for n in range(200)]
    _check(tenant_a, template, numbers[:1])  # warm: configuration is cached per process (issue 17)
    with CaptureQueriesContext(connection) as few:
        _check(tenant_a, template, numbers[:2], params=[{"code": "1234"}] * 2)
    with CaptureQueriesContext(connection) as many:
        result = _check(tenant_a, template, numbers, params=[{"code": f"{n:04d}"} for n in range(200)])
    assert result.verdicts[199].content == "【AcmeBrand】Your code is 0199."
    assert len(many) == len(few)
