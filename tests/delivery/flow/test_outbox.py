"""R-DLV-1 transactional outbox: what is accepted gets queued even if the fast path never runs."""

from datetime import timedelta

from django.utils import timezone
from django_tenants.utils import tenant_context

from delivery.models import Message, MessageStatus, OutboxEntry
from delivery.outbox import relay_outbox

from .conftest import add_message, add_outbox

S = MessageStatus


def test_relay_routes_and_queues_messages_of_a_committed_entry(tenant_a, make_channel):
    channel = make_channel(priority=0)
    messages = [add_message(tenant_a) for _ in range(3)]
    entry = add_outbox(tenant_a, messages)
    jobs = relay_outbox(entry_ids=[entry.pk])
    assert [(j.channel_id, j.tenant_id, sorted(j.message_ids)) for j in jobs] == [
        (channel.pk, tenant_a.pk, sorted(m.pk for m in messages))
    ]
    with tenant_context(tenant_a):
        assert set(Message.objects.filter(pk__in=[m.pk for m in messages]).values_list("status", "channel_id")) == {
            (S.QUEUED, channel.pk)
        }
    entry.refresh_from_db()
    assert entry.relayed_at is not None


def test_a_relayed_entry_is_not_relayed_twice(tenant_a, make_channel):
    make_channel(priority=0)
    entry = add_outbox(tenant_a, [add_message(tenant_a)])
    assert relay_outbox(entry_ids=[entry.pk])
    assert relay_outbox(entry_ids=[entry.pk]) == []


def test_the_sweeper_relays_entries_whose_fast_path_never_ran(tenant_a, make_channel):
    """The accept committed but the process died before publishing: the periodic relay finds it."""
    make_channel(priority=0)
    msg = add_message(tenant_a)
    add_outbox(tenant_a, [msg], available_at=timezone.now() - timedelta(minutes=5))
    relay_outbox()
    with tenant_context(tenant_a):
        msg.refresh_from_db()
    assert msg.status == S.QUEUED


def test_scheduled_messages_wait_for_their_time(tenant_a, make_channel):
    make_channel(priority=0)
    later = timezone.now() + timedelta(hours=2)
    msg = add_message(tenant_a, status=S.SCHEDULED, send_at=later)
    entry = add_outbox(tenant_a, [msg], available_at=later)
    assert relay_outbox(entry_ids=[entry.pk]) == []
    jobs = relay_outbox(entry_ids=[entry.pk], now=later + timedelta(seconds=1))
    assert [j.message_ids for j in jobs] == [[msg.pk]]


def test_cancelled_messages_are_not_queued(tenant_a, make_channel):
    make_channel(priority=0)
    msg = add_message(tenant_a, status=S.CANCELLED)
    entry = add_outbox(tenant_a, [msg])
    assert relay_outbox(entry_ids=[entry.pk]) == []


def test_message_without_any_route_fails(tenant_a, db):
    from delivery.models import Route

    Route.objects.all().delete()
    msg = add_message(tenant_a)
    relay_outbox(entry_ids=[add_outbox(tenant_a, [msg]).pk])
    with tenant_context(tenant_a):
        msg.refresh_from_db()
    assert (msg.status, msg.reason) == (S.FAILED, "no_route")


def test_messages_wait_when_every_matching_channel_is_in_maintenance(tenant_a, make_channel):
    from delivery.models import Maintenance, Route

    Route.objects.all().delete()
    channel = make_channel()
    now = timezone.now()
    Maintenance.objects.create(
        channel=channel,
        starts_at=now - timedelta(minutes=1),
        ends_at=now + timedelta(hours=1),
        notice="x",
        created_by="tests",
    )
    msg = add_message(tenant_a)
    relay_outbox(entry_ids=[add_outbox(tenant_a, [msg]).pk])
    with tenant_context(tenant_a):
        msg.refresh_from_db()
    assert msg.status == S.ACCEPTED
    assert OutboxEntry.objects.filter(relayed_at__isnull=True, message_ids=[msg.pk], available_at__gt=now).exists()


def test_released_held_messages_go_through_the_outbox(tenant_a, make_channel):
    """R-CMP-8 hold → a reviewer releases → routed and queued like any accepted message."""
    from delivery.held import release_held_messages
    from tenants.services import Actor

    channel = make_channel(priority=0)
    msg = add_message(tenant_a, status=S.HELD)
    assert release_held_messages(tenant=tenant_a, message_ids=[msg.pk], actor=Actor.system("reviewer")) == 1
    relay_outbox()
    with tenant_context(tenant_a):
        msg.refresh_from_db()
        assert [e.to_status for e in msg.events.all()] == [S.HELD, S.ACCEPTED, S.QUEUED]
    assert (msg.status, msg.channel_id) == (S.QUEUED, channel.pk)


def test_relay_is_not_skipped_when_the_tenant_row_is_locked(live_db, make_channel_live):
    """A lock on the tenant row (e.g. a state change in progress) must not make the relay skip
    the tenant's outbox entries (SKIP LOCKED applies to the entry rows only)."""
    import threading

    from django.db import connection, transaction

    from tenants.models import Tenant

    from .live import live_tenant

    make_channel_live()
    tenant, _ = live_tenant("Locked Tenant Co.")
    msg = add_message(tenant)
    entry = add_outbox(tenant, [msg])
    locked, release = threading.Event(), threading.Event()

    def hold_tenant_lock():
        with transaction.atomic():
            Tenant.objects.select_for_update().get(pk=tenant.pk)
            locked.set()
            release.wait(10)
        connection.close()

    holder = threading.Thread(target=hold_tenant_lock)
    holder.start()
    try:
        assert locked.wait(10)
        jobs = relay_outbox(entry_ids=[entry.pk])
        assert [j.message_ids for j in jobs] == [[msg.pk]]
    finally:
        release.set()
        holder.join()
