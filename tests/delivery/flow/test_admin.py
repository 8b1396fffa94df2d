"""Operators manage channels, routes, prefixes and maintenance in the admin (R-DLV-2/6);
the SMPP password is never shown; failing callbacks are visible."""

from django.utils import timezone

from delivery.models import CallbackDelivery, CallbackState, Channel
from smsplatform.crypto import decrypt_secret
from tenants.models import OperationRecord


def test_channel_password_is_never_shown(client, operator_user, make_channel):
    channel = make_channel(name="cm-east")
    client.force_login(operator_user)
    listing = client.get("/admin/delivery/channel/").content.decode()
    assert "cm-east" in listing
    form = client.get(f"/admin/delivery/channel/{channel.pk}/change/").content.decode()
    assert channel.password not in form
    assert "demo" not in form.split('name="password"')[1][:200]


def test_operator_creates_a_channel_through_the_service(client, operator_user):
    client.force_login(operator_user)
    response = client.post(
        "/admin/delivery/channel/add/",
        {
            "name": "ct-south",
            "host": "10.0.0.5",
            "port": 2775,
            "system_id": "acct1",
            "password": "s3cret-pw",
            "system_type": "",
            "source_addr": "1069",
            "bind_count": 2,
            "bind_mode": "transceiver",
            "tps_limit": 200,
            "window_size": 20,
            "receipt_time_zone": "Asia/Shanghai",
            "receipt_id_match": "auto",
            "enabled": "on",
            "routes-TOTAL_FORMS": 1,
            "routes-INITIAL_FORMS": 0,
            "routes-0-name": "telecom",
            "routes-0-carrier": "china_telecom",
            "routes-0-priority": 10,
            "routes-0-weight": 1,
            "routes-0-enabled": "on",
            "routes-0-message_type": "",
            "routes-0-country": "CN",
            "routes-0-province": "",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    channel = Channel.objects.get(name="ct-south")
    assert channel.password != "s3cret-pw"
    assert decrypt_secret(channel.password) == "s3cret-pw"
    assert channel.routes.get().carrier == "china_telecom"
    assert OperationRecord.objects.filter(action="delivery.channel_create", object_id=str(channel.pk)).exists()


def test_failing_callbacks_are_listed_for_operators(client, operator_user, tenant_a):
    CallbackDelivery.objects.create(
        tenant=tenant_a,
        url="https://customer.example/hook",
        event="message.status",
        body="{}",
        state=CallbackState.FAILED,
        attempts=8,
        last_status_code=500,
        next_attempt_at=timezone.now(),
    )
    client.force_login(operator_user)
    page = client.get("/admin/delivery/callbackdelivery/?state=failed").content.decode()
    assert "https://customer.example/hook" in page


def test_maintenance_with_short_notice_is_refused_on_the_admin_form_R_DLV_6(client, operator_user, make_channel):
    from datetime import timedelta

    from delivery.calendar import earliest_maintenance_start
    from delivery.models import Maintenance

    channel = make_channel()
    client.force_login(operator_user)
    # The end gets its own date: near midnight "soon + 30 min" falls on the next day.
    soon = timezone.localtime() + timedelta(hours=2)
    soon_end = soon + timedelta(minutes=30)
    response = client.post(
        "/admin/delivery/maintenance/add/",
        {
            "channel": channel.pk,
            "starts_at_0": soon.strftime("%Y-%m-%d"),
            "starts_at_1": soon.strftime("%H:%M:%S"),
            "ends_at_0": soon_end.strftime("%Y-%m-%d"),
            "ends_at_1": soon_end.strftime("%H:%M:%S"),
            "notice": "too soon",
        },
    )
    assert response.status_code == 200
    assert "one working day ahead" in response.content.decode()
    assert not Maintenance.objects.filter(channel=channel).exists()
    later = timezone.localtime(earliest_maintenance_start() + timedelta(hours=1))
    later_end = later + timedelta(hours=1)
    response = client.post(
        "/admin/delivery/maintenance/add/",
        {
            "channel": channel.pk,
            "starts_at_0": later.strftime("%Y-%m-%d"),
            "starts_at_1": later.strftime("%H:%M:%S"),
            "ends_at_0": later_end.strftime("%Y-%m-%d"),
            "ends_at_1": later_end.strftime("%H:%M:%S"),
            "notice": "upgrade",
        },
    )
    assert response.status_code == 302
    assert Maintenance.objects.filter(channel=channel, notice="upgrade").exists()
