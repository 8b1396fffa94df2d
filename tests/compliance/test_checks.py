"""Pure rules: signature text (R-CMP-1), template variables and rendering (R-CMP-2), unsubscribe
instructions and inbound keywords (R-CMP-4), numbers and countries (R-CMP-9)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compliance import checks as rules
from compliance.checks import ParameterError, TemplateDefinitionError
from smsplatform import numbers


@pytest.mark.parametrize("text", ["阿里云", "AB", "Acme Shop", "x" * 20])
def test_r_cmp_1_valid_signatures(text):
    assert rules.signature_problem(text) is None


@pytest.mark.parametrize(
    "text", ["A", "x" * 21, "【A】B", "A[B]", "Acme(CN)", "《书》", "acme.com", "http://x", " Acme"]
)
def test_r_cmp_1_invalid_signatures(text):
    assert rules.signature_problem(text) is not None


def test_r_cmp_2_every_placeholder_must_be_declared():
    with pytest.raises(TemplateDefinitionError, match="Undeclared"):
        rules.check_definition(body="Hi ${name}", variables={}, message_type="notification")


def test_r_cmp_2_declared_variables_must_be_used():
    with pytest.raises(TemplateDefinitionError, match="unused"):
        rules.check_definition(body="Hi", variables={"name": "text"}, message_type="notification")


def test_r_cmp_2_url_variables_are_refused_in_verification_templates():
    with pytest.raises(TemplateDefinitionError, match="url"):
        rules.check_definition(
            body="Code ${code} ${link}", variables={"code": "code", "link": "url"}, message_type="verification"
        )


def test_r_cmp_2_url_variables_are_allowed_in_notifications():
    spec = rules.check_definition(
        body="See ${link}", variables={"link": {"kind": "url", "max_length": 60}}, message_type="notification"
    )
    assert spec == {"link": {"kind": "url", "max_length": 60}}


def test_r_cmp_2_text_variables_have_a_bounded_length():
    with pytest.raises(TemplateDefinitionError, match="at most"):
        rules.check_definition(
            body="${t}", variables={"t": {"kind": "text", "max_length": 500}}, message_type="notification"
        )


def test_r_cmp_2_body_must_not_carry_its_own_signature_brackets():
    with pytest.raises(TemplateDefinitionError):
        rules.check_definition(body="【Acme】Hi", variables={}, message_type="notification")


CODE = {"code": {"kind": "code"}}


@pytest.mark.parametrize("value", ["123", "123456789", "12a4", "１２３４", "12 34", "", 12.5])
def test_r_cmp_2_code_parameter_is_4_to_8_ascii_digits(value):
    with pytest.raises(ParameterError):
        rules.render(body="${code}", variables=CODE, params={"code": value})


def test_r_cmp_2_unknown_parameter_is_refused():
    with pytest.raises(ParameterError, match="Unknown"):
        rules.render(body="${code}", variables=CODE, params={"code": "1234", "extra": "x"})


def test_r_cmp_2_missing_parameter_is_refused():
    with pytest.raises(ParameterError, match="Missing"):
        rules.render(body="${code}", variables=CODE, params={})


def test_r_cmp_2_text_parameter_cannot_smuggle_a_url():
    with pytest.raises(ParameterError, match="URL"):
        rules.render(body="Hi ${n}", variables={"n": {"kind": "text", "max_length": 30}}, params={"n": "see bit.ly/x"})


def test_r_cmp_2_date_and_number_kinds():
    variables = {"d": {"kind": "date", "max_length": 20}, "n": {"kind": "number", "max_length": 10}}
    assert (
        rules.render(body="${d}:${n}", variables=variables, params={"d": "2026-11-23", "n": 12.5}) == "2026-11-23:12.5"
    )
    with pytest.raises(ParameterError):
        rules.render(body="${d}:${n}", variables=variables, params={"d": "tomorrow", "n": 1})
    with pytest.raises(ParameterError):
        rules.render(body="${d}:${n}", variables=variables, params={"d": "2026-11-23", "n": "1e9"})


@given(st.from_regex(r"\A[0-9]{4,8}\Z"))
def test_r_cmp_2_property_any_4_to_8_digit_code_renders_verbatim(code):
    assert rules.render(body="Your code is ${code}.", variables=CODE, params={"code": code}) == f"Your code is {code}."


@given(st.text(min_size=1, max_size=12))
def test_r_cmp_2_property_a_code_is_digits_only(value):
    try:
        rendered = rules.render(body="${code}", variables=CODE, params={"code": value})
    except ParameterError:
        return
    assert rendered.isascii()
    assert rendered.isdigit()
    assert 4 <= len(rendered) <= 8


@given(st.text(max_size=40), st.integers(min_value=1, max_value=20))
def test_r_cmp_2_property_rendered_text_is_bounded_by_the_declared_length(value, max_length):
    body = "Hello ${name}, welcome."
    variables = {"name": {"kind": "text", "max_length": max_length}}
    try:
        rendered = rules.render(body=body, variables=variables, params={"name": value})
    except ParameterError:
        return
    assert rendered == f"Hello {value}, welcome."
    assert len(rendered) <= len(body) - len("${name}") + max_length
    assert rules.URL_RE.search(value) is None


@given(st.dictionaries(st.from_regex(r"\A[a-z_]{1,8}\Z"), st.text(max_size=5), max_size=3))
def test_r_cmp_2_property_only_declared_parameters_render(params):
    variables = {"code": {"kind": "code"}}
    try:
        rules.render(body="${code}", variables=variables, params=params)
    except ParameterError:
        return
    assert set(params) == {"code"}


@pytest.mark.parametrize(
    "body",
    ["大促销！回T退订", "优惠 退订回T", "回TD退订", "Sale! Reply STOP to opt out", "Text STOP to end", "拒收请回复T"],
)
def test_r_cmp_4_unsubscribe_instruction_is_recognised(body):
    assert rules.has_unsubscribe_instruction(body)


@pytest.mark.parametrize("body", ["大促销！", "Big sale today", "STOP by our store"])
def test_r_cmp_4_missing_unsubscribe_instruction(body):
    assert not rules.has_unsubscribe_instruction(body)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("T", "opt_out"),
        ("td", "opt_out"),
        ("退订", "opt_out"),
        (" STOP ", "opt_out"),
        ("Unsubscribe", "opt_out"),
        ("ＴＤ", "opt_out"),
        ("START", "opt_in"),
        ("start", "opt_in"),
        ("thanks", None),
        ("stop it please", "opt_out"),  # R-CMP-4: a token as a word, not the whole reply
        ("When does the sale start?", None),
    ],
)
def test_r_cmp_4_inbound_keywords(text, expected):
    assert rules.inbound_keyword(text) == expected


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("13800138000", "+8613800138000"),
        ("+8613800138000", "+8613800138000"),
        ("8613800138000", "+8613800138000"),
        ("0012025550123", "+12025550123"),
        ("+1 202-555-0123", "+12025550123"),
    ],
)
def test_numbers_normalise_to_e164(raw, e164):
    assert numbers.normalise_lenient(raw) == e164


def test_r_cmp_9_country_from_e164():
    assert numbers.country_of("+8613800138000") == "CN"
    assert numbers.country_of("+12025550123") == "US"
    assert numbers.country_of("+442071838750") == "GB"
