"""Issue 21, item 1: the scheduler rides out a broker outage (a tick is skipped, logged)."""

from smsplatform.broker import build_broker
from tenants.management.commands.run_scheduler import enqueue


def test_a_tick_during_a_broker_outage_is_logged_not_raised(caplog, monkeypatch):
    import logging

    import smsplatform.worker  # noqa: F401  (imports every actor)
    from delivery.actors import relay_due_outbox_job

    logger = logging.getLogger("smsplatform.scheduler")  # read its records whatever the logging config
    logger.addHandler(caplog.handler)
    monkeypatch.setattr(logger, "disabled", False)
    # The job's broker unreachable (a Redis port nothing listens on); the shared pool is left alone.
    monkeypatch.setattr(relay_due_outbox_job, "broker", build_broker("redis://127.0.0.1:1/0"))
    assert enqueue(relay_due_outbox_job) is False  # before: the broker's ConnectionError escaped
    logger.removeHandler(caplog.handler)
    assert "relay_due_outbox_job not enqueued: broker unavailable" in caplog.text
