"""Issue 21, item 1: the scheduler rides out a broker outage (a tick is skipped, logged)."""

from tenants.management.commands.run_scheduler import enqueue

from .test_faults import BrokerDown


def test_a_tick_during_a_broker_outage_is_logged_not_raised(capfd):
    import smsplatform.worker  # noqa: F401  (imports every actor)
    from delivery.actors import relay_due_outbox

    with BrokerDown():
        assert enqueue(relay_due_outbox) is False  # before: the broker's ConnectionError escaped
    assert "relay_due_outbox not enqueued: broker unavailable" in capfd.readouterr().err
