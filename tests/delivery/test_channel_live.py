"""Channels live in the admin (issue 14 item 4, R-DLV-3): binds up, submits/s over the last
minute, queue depth, TPS limit and the rate applied now, from a real bind to the SMSC simulator."""

import secrets

import pytest
from django.contrib.auth.models import Group, User
from django.core.cache import cache
from django.test import Client

from delivery import channel_live, sender
from delivery.models import Channel
from delivery.smpp import pool
from smsplatform import crypto, metrics
from smsplatform.shared_redis import shared_redis
from tests.delivery.conftest import PASSWORD, SYSTEM_ID

pytestmark = pytest.mark.skipif(
    not hasattr(cache, "_cache"), reason="the live figures are shared through the Redis cache"
)


@pytest.fixture(autouse=True)
def _fresh_counters():
    """The test database restarts its id sequences each run; Redis keeps counters by channel id."""
    client = shared_redis()
    for key in client.scan_iter(cache.make_key("channel_live:*")):
        client.delete(key)


def operator() -> Client:
    user = User.objects.create_user(f"op-{secrets.token_hex(3)}", password="pw-live-1", is_staff=True)
    user.groups.add(Group.objects.get(name="operator"))
    client = Client()
    client.force_login(user)
    return client


def test_channel_page_shows_binds_submits_queue_and_rates_R_DLV_3(db, smsc):
    channel = Channel.objects.create(
        name=f"live-{secrets.token_hex(3)}",
        host="127.0.0.1",
        port=smsc.port,
        system_id=SYSTEM_ID,
        password=crypto.encrypt_secret(PASSWORD),
        tps_limit=50,
        bind_count=2,
    )
    holder = pool.SessionRegistry.acquire(channel)
    try:
        pool.SessionRegistry.limiter_for(channel)
        for n in range(3):
            holder.session.submit(ref=f"x:{n}:t", source="1069", destination="8613800138000", text=f"live {n}")
        holder.session.drain(5)
        results = holder.take_results()
        assert len(results) == 3
        # the sender's hook counts what the SMSC accepted (foreign refs change nothing else)
        sender.apply_submit_results(channel_id=channel.pk, results=results)
        channel_live.publish_figures(force=True)
        live = channel_live.channel_live(channel)
        assert live.binds_up == 1
        assert live.submits_per_second == pytest.approx(3 / 60, abs=0.01)
        assert live.current_rate == 50
        assert live.tps_limit == 50
        client = operator()
        listing = client.get("/admin/delivery/channel/").content.decode()
        assert "1 / 2" in listing
        assert "50/s of 50/s" in listing
        page = client.get(f"/admin/delivery/channel/{channel.pk}/change/").content.decode()
        assert 'id="channel-live"' in page
        assert "binds up: 1 / 2" in page
    finally:
        pool.SessionRegistry.discard(holder)


def test_a_stopped_worker_no_longer_counts_as_binds_up(db, monkeypatch):
    channel = Channel.objects.create(name=f"stale-{secrets.token_hex(3)}", host="h", system_id="s", password="x")

    metrics.bind_opened(channel.pk)  # a bind this worker process holds
    try:
        channel_live.publish_figures(force=True)
        assert channel_live.channel_live(channel).binds_up == 1
        real = channel_live.time.time
        monkeypatch.setattr(channel_live.time, "time", lambda: real() + channel_live.BINDS_STALE_SECONDS + 1)
        assert channel_live.channel_live(channel).binds_up == 0
    finally:
        metrics.bind_closed(channel.pk)


def test_channel_list_shows_down_state_and_last_error(db):
    from django.utils import timezone

    channel = Channel.objects.create(
        name=f"down-{secrets.token_hex(3)}",
        host="h",
        system_id="s",
        password="x",
        down_until=timezone.now() + timezone.timedelta(minutes=2),
        last_error="bind_refused: ESME_RBINDFAIL",
    )
    listing = operator().get("/admin/delivery/channel/").content.decode()
    assert "down until" in listing
    assert "bind_refused: ESME_RBINDFAIL" in listing
    assert channel.name in listing


def test_accepted_parts_are_counted_once_from_the_prometheus_series_R_DLV_3(db):
    """The page's submits/s comes from sms_submit_parts{outcome="ok"}: a second publish without new
    results adds nothing, a later one adds only what came since."""
    from delivery.smpp.results import SubmitResult

    channel = Channel.objects.create(name=f"once-{secrets.token_hex(3)}", host="h", system_id="s", password="x")

    def accepted(n: int) -> None:
        results = [
            SubmitResult(ref=f"x:{i}:t", part=1, parts=1, message_id=f"m{i}", command_status=0, transient=False)
            for i in range(n)
        ]
        metrics.count_submit_results(channel.pk, results, {})

    accepted(6)
    channel_live.publish_figures(force=True)
    channel_live.publish_figures(force=True)
    assert channel_live.channel_live(channel).submits_per_second == pytest.approx(6 / 60, abs=0.01)
    accepted(3)
    channel_live.publish_figures(force=True)
    assert channel_live.channel_live(channel).submits_per_second == pytest.approx(9 / 60, abs=0.01)
