"""The fault-suite run of issue 20: a strict carrier SMSC — at most 2 binds per account, a window
of 10 (an 11th outstanding submit gets 0x14), one hang with the TCP link open, one SMSC-initiated
unbind with submits in flight, receipts half as data_sm and with decimal ids while submit
responses are hex. Every message ends delivered, no part is accepted twice, parts billed = parts
the SMSC accepted (R-DLV-3, R-DLV-4, R-BIL-2, R-BIL-8)."""

import pytest

from ..delivery.flow.conftest import PRICE, make_sendable
from ..delivery.flow.live import live_tenant, only_channel, wait_all_delivered
from ..delivery.flow.test_faults import numbers_for
from ..delivery.flow.test_long_messages import LONG_BODY, send_long

pytestmark = pytest.mark.faults


def test_strict_carrier_binds_window_hang_unbind_and_data_sm_receipts(live_db, smsc_factory, worker, settings, figure):
    from billing.selectors import balance_of

    settings.DELIVERY_RETRY_BACKOFF_MS = 50
    settings.DELIVERY_SUBMIT_TIMEOUT_SECONDS = 2  # a hung link is found within seconds, not 15 s
    settings.DELIVERY_CHANNEL_DOWN_SECONDS = 1
    settings.DELIVERY_UNKNOWN_POLICY = {"default": ("resend", 30)}  # evidence has 30 s to come
    sim = smsc_factory(
        credentials={"demo": "demo"},
        max_binds=2,
        window_limit=10,
        hang_at_submit=30,
        hang_seconds=5,
        unbind_at_submit=12,
        data_sm_receipts=0.5,
        receipt_id_format="dec",
    )
    only_channel(port=sim.port, max_binds=2, bind_count=2, window_size=50)  # our window above theirs
    tenant, client = live_tenant("Strict Carrier Co.")
    template = make_sendable(tenant, body=LONG_BODY, message_type="notification")
    worker(threads=3)  # three job threads compete for two binds
    ids = send_long(client, template, numbers_for("134", 20))
    wait_all_delivered(tenant, ids, timeout=120, sweep=True)

    duplicates = sim.duplicate_parts()
    accepted = len(sim.accepted_parts())
    billed = (100_000_000 - balance_of(tenant=tenant)) // PRICE
    scale = "20 three-part messages; 2-bind limit, window 10, one 5 s hang, one SMSC unbind, data_sm receipts"
    figure("parts accepted twice on a strict carrier", len(duplicates), scale=scale)
    figure("parts billed minus parts accepted on a strict carrier", billed - accepted, scale=scale)
    assert sim.hangs == 1  # the link hung once with TCP open
    assert sim.unbinds_sent == 1  # and the SMSC unbound once with submits in flight
    assert max(sim.peak_binds.values()) <= 2  # never asked for more binds than the account has
    assert not duplicates, duplicates
    assert accepted == 3 * len(ids)
    assert billed == accepted
