"""Finance admin: exact CNY → micro-unit conversion, permission checks (finance acts, auditors
only view), the 7-day price rule in the form (R-BIL-4), recorded operations (R-AUD-3)."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone

from billing import selectors, services
from billing.models import Account, EntryKind, LedgerEntry, Plan, Price
from tenants.models import OperationRecord

from .conftest import FINANCE, fund, key


def staff(name: str, role: str) -> User:
    user = User.objects.create_user(name, password=f"pw-{name}-1", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def finance_user(db):
    return staff("finance1", "finance")


@pytest.fixture
def auditor_user(db):
    return staff("auditor1", "auditor")


@pytest.fixture
def account(tenant):
    return services.account_for(tenant)


def form_key(client, url) -> str:
    page = client.get(url).content.decode()
    return re.search(r'name="idempotency_key" value="([^"]+)"', page).group(1)


def test_r_bil_1_finance_tops_up_in_cny_converted_exactly(client, finance_user, account, tenant):
    client.force_login(finance_user)
    url = f"/admin/billing/account/{account.pk}/topup/"
    k = form_key(client, url)
    response = client.post(
        url, {"amount": "1000.123456", "reference": "BANK-1", "reason": "wire", "idempotency_key": k}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert selectors.balance_of(tenant=tenant) == 1_000_123_456
    assert OperationRecord.objects.filter(tenant=tenant, action="billing.topup", actor_label="user:finance1").exists()
    # a double submit of the same form books once
    client.post(url, {"amount": "1000.123456", "reference": "BANK-1", "reason": "wire", "idempotency_key": k})
    assert LedgerEntry.objects.filter(account=account, kind=EntryKind.TOPUP).count() == 1


def test_r_bil_1_topup_with_more_than_six_decimals_is_refused(client, finance_user, account, tenant):
    client.force_login(finance_user)
    url = f"/admin/billing/account/{account.pk}/topup/"
    response = client.post(url, {"amount": "0.0000001", "idempotency_key": key()})
    assert response.status_code == 200
    assert selectors.balance_of(tenant=tenant) == 0


def test_r_bil_9_auditor_views_but_cannot_move_money(client, auditor_user, account):
    client.force_login(auditor_user)
    assert client.get("/admin/billing/ledgerentry/").status_code == 200
    assert client.get(f"/admin/billing/account/{account.pk}/statement/").status_code == 200
    assert (
        client.post(
            f"/admin/billing/account/{account.pk}/topup/", {"amount": "1", "idempotency_key": key()}
        ).status_code
        == 403
    )
    assert client.get(f"/admin/billing/account/{account.pk}/refund/").status_code == 403


def test_r_bil_9_ledger_browser_is_read_only(client, finance_user, tenant):
    entry = fund(tenant, 1_000_000)
    client.force_login(finance_user)
    page = client.get(f"/admin/billing/ledgerentry/{entry.pk}/change/")
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert client.post(f"/admin/billing/ledgerentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403


def test_r_bil_5_refund_with_cause_from_the_admin(client, finance_user, account, tenant):
    fund(tenant, 2_000_000)
    client.force_login(finance_user)
    url = f"/admin/billing/account/{account.pk}/refund/"
    refused = client.post(url, {"cause": "customer_ended", "reason": "leaving", "idempotency_key": key()}, follow=True)
    assert "No refund" in refused.content.decode()
    assert selectors.balance_of(tenant=tenant) == 2_000_000
    client.post(url, {"cause": "platform_breach", "reason": "outage", "idempotency_key": key()})
    assert selectors.balance_of(tenant=tenant) == 0


def test_r_cmp_6_forfeit_from_the_admin_is_recorded(client, finance_user, account, tenant):
    fund(tenant, 2_000_000)
    client.force_login(finance_user)
    client.post(
        f"/admin/billing/account/{account.pk}/forfeit/",
        {"reason": "fraud (R-CMP-6)", "confirm": "on", "idempotency_key": key()},
    )
    assert Account.objects.get(pk=account.pk).balance == 0
    assert OperationRecord.objects.filter(tenant=tenant, action="billing.forfeit", reason="fraud (R-CMP-6)").exists()


def test_r_bil_4_price_form_refuses_a_change_with_less_than_7_days_notice(client, finance_user):
    plan = Plan.objects.get(is_default=True)
    services.announce_price(plan=plan, message_type="marketing", country="CN", unit_price=40_000, actor=FINANCE)
    client.force_login(finance_user)
    soon = timezone.localtime() + timedelta(days=3)
    response = client.post(
        "/admin/billing/price/add/",
        {
            "plan": plan.pk,
            "message_type": "marketing",
            "country": "CN",
            "carrier": "",
            "unit_price_cny": "0.045",
            "effective_from_0": soon.strftime("%Y-%m-%d"),
            "effective_from_1": soon.strftime("%H:%M:%S"),
        },
    )
    assert response.status_code == 200
    assert "7 days" in response.content.decode()
    later = timezone.localtime() + timedelta(days=8)
    response = client.post(
        "/admin/billing/price/add/",
        {
            "plan": plan.pk,
            "message_type": "marketing",
            "country": "CN",
            "carrier": "",
            "unit_price_cny": "0.045",
            "effective_from_0": later.strftime("%Y-%m-%d"),
            "effective_from_1": later.strftime("%H:%M:%S"),
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    assert Price.objects.filter(plan=plan, message_type="marketing", unit_price=45_000).exists()
    assert OperationRecord.objects.filter(action="billing.announce_price", actor_label="user:finance1").exists()


def test_r_bil_7_statement_page_shows_the_month(client, finance_user, account, tenant):
    fund(tenant, 3_000_000)
    client.force_login(finance_user)
    page = client.get(f"/admin/billing/account/{account.pk}/statement/").content.decode()
    assert "CNY 3.000000" in page


def test_r_bil_9_account_pages_render_for_auditors(client, auditor_user, account, tenant):
    fund(tenant, 1_000_000)
    client.force_login(auditor_user)
    for url in (
        f"/admin/billing/account/{account.pk}/change/",
        "/admin/billing/account/",
        "/admin/billing/hold/",
        "/admin/billing/ledgerentry/?kind__exact=topup",
        "/admin/billing/dormancycase/",
        "/admin/billing/price/",
        "/admin/billing/invoice/",
        "/admin/billing/dispute/",
    ):
        assert client.get(url).status_code == 200, url


def test_r_bil_8_finance_decides_a_dispute_within_the_cap(client, finance_user, tenant):
    from datetime import date

    from billing.models import DisputeState

    fund(tenant, 10_000_000)
    now = timezone.localtime()
    dispute = services.open_dispute(tenant=tenant, month=date(now.year, now.month, 1), description="x", actor=FINANCE)
    client.force_login(finance_user)
    url = f"/admin/billing/dispute/{dispute.pk}/decide/"
    over = client.post(url, {"decision": "resolve", "compensation": "0.01", "resolution": "no usage"}, follow=True)
    assert "capped" in over.content.decode()
    client.post(url, {"decision": "reject", "resolution": "counts match"})
    dispute.refresh_from_db()
    assert dispute.state == DisputeState.REJECTED


def test_r_bil_7_finance_issues_an_invoice_against_a_topup(client, finance_user, tenant):
    from billing.models import Invoice

    entry = fund(tenant, 10_000_000)
    client.force_login(finance_user)
    response = client.post(f"/admin/billing/ledgerentry/{entry.pk}/invoice/", {"number": "INV-0001", "amount": "10"})
    assert response.status_code == 302
    assert Invoice.objects.get(number="INV-0001").amount == 10_000_000


# --- issue 12 item 9: idempotent across Back and double submit, strict amounts -------------------


@pytest.mark.parametrize(
    "text", ["1e3", "１０００", "1,000", "1000000001", "99999999999999999999", "0x10", "NaN", "-5"]
)
def test_r_bil_1_topup_form_refuses_exponents_full_width_digits_and_out_of_range(
    client, finance_user, account, tenant, text
):
    client.force_login(finance_user)
    url = f"/admin/billing/account/{account.pk}/topup/"
    response = client.post(url, {"amount": text, "idempotency_key": form_key(client, url)})
    assert response.status_code == 200  # the form again, with an error; never a 500
    assert "errorlist" in response.content.decode()
    assert selectors.balance_of(tenant=tenant) == 0


def test_r_bil_1_back_and_book_again_needs_an_explicit_confirmation(client, finance_user, account, tenant):
    client.force_login(finance_user)
    url = f"/admin/billing/account/{account.pk}/topup/"
    data = {"amount": "500", "reference": "BANK-9", "reason": ""}
    assert client.post(url, {**data, "idempotency_key": form_key(client, url)}).status_code == 302
    # Back, then "Book a top-up" again: a fresh form with a fresh key
    response = client.post(url, {**data, "idempotency_key": form_key(client, url)})
    assert response.status_code == 200
    assert "identical booking" in response.content.decode()
    assert selectors.balance_of(tenant=tenant) == 500_000_000
    response = client.post(url, {**data, "idempotency_key": form_key(client, url), "confirm_duplicate": "on"})
    assert response.status_code == 302
    assert selectors.balance_of(tenant=tenant) == 1_000_000_000


def test_r_bil_1_a_replayed_form_says_already_booked(client, finance_user, account, tenant):
    client.force_login(finance_user)
    url = f"/admin/billing/account/{account.pk}/topup/"
    k = form_key(client, url)
    client.post(url, {"amount": "500", "idempotency_key": k})
    response = client.post(url, {"amount": "500", "idempotency_key": k}, follow=True)
    assert "nothing was booked twice" in response.content.decode()
    assert selectors.balance_of(tenant=tenant) == 500_000_000


def test_r_bil_1_service_refuses_a_topup_past_the_largest_booking(tenant):
    with pytest.raises(services.InvalidAmount):
        services.topup(tenant=tenant, amount=2**62, actor=FINANCE, idempotency_key=key())
