"""The fault-suite run of issue 10 (item 9): long messages under throttling and a drop after
acceptance, with its figures (bench/bench_faults.py prints them)."""

import pytest

from ..delivery.flow.conftest import PRICE, make_sendable
from ..delivery.flow.live import live_tenant, only_channel, wait_all_delivered
from ..delivery.flow.test_faults import numbers_for
from ..delivery.flow.test_long_messages import LONG_BODY, send_long

pytestmark = pytest.mark.faults


def test_long_messages_under_throttling_and_a_drop_after_acceptance(live_db, smsc_factory, worker, settings, figure):
    """Issue 10 item 9, the fault-suite run: 3-part Chinese messages, every 10th submit throttled,
    and the link dropped once after the SMSC accepted a part but before its answer went out. Every
    message ends delivered; no part is accepted twice (the dropped part is settled by its receipt,
    not resent); parts billed = parts the SMSC accepted, to the micro-unit (R-BIL-2, R-BIL-8)."""
    from billing.selectors import balance_of

    settings.DELIVERY_RETRY_BACKOFF_MS = 50
    settings.DELIVERY_UNKNOWN_POLICY = {"default": ("resend", 30)}  # evidence has 30 s to come
    sim = smsc_factory(
        credentials={"demo": "demo"},
        throttle_every=10,
        drop_after_accept_every=1,
        drop_after_accept_part=2,
        drop_after_accept_times=1,
    )
    only_channel(port=sim.port)
    tenant, client = live_tenant("Long Faults Co.")
    template = make_sendable(tenant, body=LONG_BODY, message_type="notification")
    worker()
    numbers = numbers_for("133", 20)
    ids = send_long(client, template, numbers)
    wait_all_delivered(tenant, ids, timeout=90, sweep=True)

    duplicates = sim.duplicate_parts()
    accepted = len(sim.accepted_parts())
    billed = (100_000_000 - balance_of(tenant=tenant)) // PRICE
    scale = "20 three-part messages, every 10th submit throttled, one drop after acceptance"
    figure("long-message parts accepted twice under faults", len(duplicates), scale=scale)
    figure("parts billed minus parts accepted under faults", billed - accepted, scale=scale)
    assert sim.throttled >= 4
    assert not duplicates, duplicates
    assert accepted == 3 * len(ids)
    assert billed == accepted
