"""R-CMP-6 forfeits and penalty charges, booked through the real billing app (R-BIL-3, R-BIL-9)."""

from compliance import services
from compliance.models import EnforcementAction

OPERATOR = services.Actor(kind="user", id="1", label="user:op")
CNY = 1_000_000


def _topup(tenant, amount, key):
    from billing import services as billing

    billing.topup(tenant=tenant, amount=amount, actor=OPERATOR, idempotency_key=key, reason="test top-up")


def _balance(tenant):
    from billing.selectors import balance_of

    return balance_of(tenant=tenant)


def test_r_cmp_6_penalty_charges_1000_cny_per_illegal_message(tenant_a):
    _topup(tenant_a, 5000 * CNY, "t-pen-1")
    before = _balance(tenant_a)
    services.charge_penalty(tenant=tenant_a, actor=OPERATOR, reason="2 gambling messages", illegal_messages=2)
    assert before - _balance(tenant_a) == 2000 * CNY
    action = EnforcementAction.objects.get(tenant=tenant_a, kind="penalty")
    assert action.details["amount"] == 2_000_000_000


def test_r_cmp_6_channel_cut_penalty_is_50000_cny_and_never_overdraws(tenant_a):
    _topup(tenant_a, 100 * CNY, "t-pen-2")
    services.charge_penalty(tenant=tenant_a, actor=OPERATOR, reason="carrier cut channel", channels_cut=1)
    assert _balance(tenant_a) == 0
    assert EnforcementAction.objects.get(tenant=tenant_a).details["amount"] == 50_000 * CNY


def test_r_cmp_6_forfeit_takes_the_remaining_balance(tenant_a):
    _topup(tenant_a, 300 * CNY, "t-forfeit")
    services.forfeit_balance(tenant=tenant_a, actor=OPERATOR, reason="serious violation")
    assert _balance(tenant_a) == 0
    assert EnforcementAction.objects.get(tenant=tenant_a).kind == "forfeit"


def test_r_cmp_6_operator_charges_a_penalty_from_the_admin(client, operator_user, tenant_a):
    _topup(tenant_a, 3000 * CNY, "t-pen-admin")
    violation = services.record_violation(tenant=tenant_a, category="gambling", evidence="3 msgs", actor=OPERATOR)
    client.force_login(operator_user)
    response = client.post(
        f"/admin/compliance/violation/{violation.pk}/enforce/",
        {"kind": "penalty", "reason": "gambling ads", "illegal_messages": 3, "channels_cut": 0},
    )
    assert response.status_code == 302
    assert _balance(tenant_a) == 0
    action = EnforcementAction.objects.get(tenant=tenant_a)
    assert (action.kind, action.operator) == ("penalty", "user:operator1")
