"""R-CMP-6 forfeits and penalty charges, booked through the real billing app (R-BIL-3, R-BIL-9).

These need billing (branch `billing`) merged: until then they fail with ImportError by design.
"""

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
