"""Long-running: one bind per enabled channel that only reads deliver_sm (receipts and replies,
R-DLV-4/5): a transceiver, or a receiver when the channel's bind_mode is "split" (its senders bind
as transmitters). Senders read their own binds while they work; the SMSC sends deliver_sm to any
receiving bind of the account, so this keeps receipts and replies flowing when senders are idle.

Issue 20: the bind is leased from the account's bind budget first (delivery/binds.py, role "rx":
one bind of the account is kept for it). A budget used up is waited for, never a refused bind;
an account of one transceiver bind is left to the senders (their idle poller reads it).

Issue 21: it never exits on a database or SMSC error. It reconnects with back-off (0.5 s doubling
to 30 s), keeps the binds it has while PostgreSQL is away, acknowledges what arrives meanwhile
through the local spool (delivery/spool.py) and stores the spool as soon as PostgreSQL is back.
"""

import logging
import signal
import threading
import time

from django.core.management.base import BaseCommand
from django.db import close_old_connections, connection

from delivery import spool
from delivery.inbound import apply_pending_receipts, handle_inbound
from delivery.models import Channel
from delivery.spool import handle_inbound_batch
from smsplatform.crypto import decrypt_secret
from smsplatform.outage import DATABASE_ERRORS

log = logging.getLogger("delivery.listener")

MAX_DELAY = 30.0


def _close_connection() -> None:
    try:
        connection.close()
    except DATABASE_ERRORS:  # closing a connection to a server that is gone
        log.debug("closing the database connection failed", exc_info=True)


def listen(channel_id: int, stop: threading.Event) -> None:
    from delivery import binds
    from delivery.smpp.results import SmppError
    from delivery.smpp.session import SmppSession

    delay = 0.5
    known = None  # the channel as last read: rebinds with it while the database is away
    while not stop.is_set():
        try:
            channel = Channel.objects.filter(pk=channel_id, enabled=True).first()
        except DATABASE_ERRORS as exc:
            log.warning("listener of channel %s: database unavailable (%s)", channel_id, exc)
            channel = known
            if channel is None:
                stop.wait(delay)
                delay = min(delay * 2, MAX_DELAY)
                continue
        finally:
            _close_connection()
        known = channel
        if channel is None:
            return
        if not binds.listener_binds(channel):
            stop.wait(5.0)  # the senders' one transceiver bind carries the receipts; look again later
            continue
        lease = binds.acquire(channel=channel, role="rx")
        if lease is None:
            # Another listener (or a bind not yet expired) holds the receiving bind: wait for it.
            log.info("listener of channel %s: no bind left in the account's budget; waiting", channel_id)
            stop.wait(min(binds.RENEW_EVERY, 2.0))
            continue
        receipt_ids: list[str] = []

        def on_inbound(pdu, receipt_ids=receipt_ids):
            # stored before deliver_sm_resp; spooled (and acknowledged) while the database is down
            stored = spool.store_or_spool(
                channel_id=channel_id, pdus=[pdu], store=lambda: handle_inbound(channel_id=channel_id, pdu=pdu) or True
            )
            if stored and pdu.is_receipt and pdu.receipt is not None:
                receipt_ids.append(pdu.receipt.message_id)

        def on_inbound_batch(pdus, receipt_ids=receipt_ids):
            stored = spool.store_or_spool(  # one INSERT, then answered
                channel_id=channel_id, pdus=pdus, store=lambda: handle_inbound_batch(channel_id=channel_id, pdus=pdus)
            )
            if stored is None:
                return [None] * len(pdus)
            ids, statuses = stored
            receipt_ids.extend(ids)
            return statuses

        session = SmppSession(
            host=channel.host,
            port=channel.port,
            system_id=channel.system_id,
            password=decrypt_secret(channel.password),
            system_type=channel.system_type,
            source_addr=channel.source_addr,
            window=1,
            on_result=lambda result: None,
            on_inbound=on_inbound,
            on_inbound_batch=on_inbound_batch,
            bind="receiver" if channel.bind_mode == "split" else "transceiver",
        )
        try:
            session.connect()
            log.info("listening on channel %s (%s:%s)", channel.name, channel.host, channel.port)
            delay = 0.5
            while not stop.is_set():
                session.poll(0.2)
                if receipt_ids:
                    batch = list(receipt_ids)
                    try:
                        apply_pending_receipts(carrier_ids=batch)
                        del receipt_ids[: len(batch)]
                    except DATABASE_ERRORS as exc:
                        # Stored already: applied on the next round, or by the periodic job.
                        log.warning("listener of channel %s: applying receipts failed (%s)", channel_id, exc)
                        _close_connection()
                spool.replay_if_due()
                close_old_connections()
        except (SmppError, OSError) as exc:
            log.warning("listener of channel %s: %s; reconnecting in %.1fs", channel_id, exc, delay)
            stop.wait(delay)
            delay = min(delay * 2, MAX_DELAY)
        except Exception:
            # Whatever it was, this bind's thread must not die: the listener would go deaf.
            log.exception("listener of channel %s failed; reconnecting in %.1fs", channel_id, delay)
            _close_connection()
            stop.wait(delay)
            delay = min(delay * 2, MAX_DELAY)
        finally:
            try:
                session.close()
            except (SmppError, OSError):
                log.debug("close failed", exc_info=True)
            binds.release(lease)  # after the unbind: the SMSC counts the bind until then
    _close_connection()


class Command(BaseCommand):
    help = "Read receipts and replies (deliver_sm) on every enabled channel (long-running)."

    def add_arguments(self, parser):
        parser.add_argument("--channel", type=int, action="append", help="only these channel ids")

    def handle(self, *args, **options):
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        threads: dict[int, threading.Thread] = {}
        delay = 10.0
        try:
            while not stop.is_set():
                try:
                    wanted = options["channel"] or list(
                        Channel.objects.filter(enabled=True).values_list("pk", flat=True)
                    )
                    delay = 10.0
                except DATABASE_ERRORS as exc:
                    # Keep the binds we have (they spool what arrives) and look again later.
                    log.warning("listener: database unavailable (%s); channel list kept, retrying", exc)
                    wanted = list(threads)
                    delay = 2.0
                finally:
                    _close_connection()
                for channel_id in wanted:
                    if channel_id not in threads or not threads[channel_id].is_alive():
                        threads[channel_id] = threading.Thread(
                            target=listen, args=(channel_id, stop), name=f"listener-{channel_id}", daemon=True
                        )
                        threads[channel_id].start()
                stop.wait(delay)
        except KeyboardInterrupt:
            stop.set()
        for thread in threads.values():
            thread.join(timeout=5)
        time.sleep(0)
