"""Long-running: one transceiver bind per enabled channel that only reads deliver_sm (receipts
and replies, R-DLV-4/5). Senders read their own binds while they work; the SMSC sends deliver_sm
to any bind of the account, so this keeps receipts and replies flowing when senders are idle.
"""

import logging
import signal
import threading
import time

from django.core.management.base import BaseCommand
from django.db import close_old_connections, connection

from delivery.inbound import apply_pending_receipts, handle_inbound, handle_inbound_batch
from delivery.models import Channel
from delivery.services import decrypt_secret

log = logging.getLogger("delivery.listener")


def listen(channel_id: int, stop: threading.Event) -> None:
    from delivery.smpp import SmppError, SmppSession

    delay = 0.5
    while not stop.is_set():
        channel = Channel.objects.filter(pk=channel_id, enabled=True).first()
        connection.close()
        if channel is None:
            return
        receipt_ids: list[str] = []

        def on_inbound(pdu, receipt_ids=receipt_ids):
            handle_inbound(channel_id=channel_id, pdu=pdu)  # stored before deliver_sm_resp
            if pdu.is_receipt and pdu.receipt is not None:
                receipt_ids.append(pdu.receipt.message_id)

        def on_inbound_batch(pdus, receipt_ids=receipt_ids):
            ids, statuses = handle_inbound_batch(channel_id=channel_id, pdus=pdus)  # one INSERT, then answered
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
        )
        try:
            session.connect()
            log.info("listening on channel %s (%s:%s)", channel.name, channel.host, channel.port)
            delay = 0.5
            while not stop.is_set():
                session.poll(0.2)
                if receipt_ids:
                    batch = list(receipt_ids)
                    del receipt_ids[: len(batch)]
                    apply_pending_receipts(carrier_ids=batch)
                close_old_connections()
        except (SmppError, OSError) as exc:
            log.warning("listener of channel %s: %s; reconnecting in %.1fs", channel_id, exc, delay)
            stop.wait(delay)
            delay = min(delay * 2, 30.0)
        finally:
            try:
                session.close()
            except (SmppError, OSError):
                log.debug("close failed", exc_info=True)
    connection.close()


class Command(BaseCommand):
    help = "Read receipts and replies (deliver_sm) on every enabled channel (long-running)."

    def add_arguments(self, parser):
        parser.add_argument("--channel", type=int, action="append", help="only these channel ids")

    def handle(self, *args, **options):
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        threads: dict[int, threading.Thread] = {}
        try:
            while not stop.is_set():
                wanted = options["channel"] or list(Channel.objects.filter(enabled=True).values_list("pk", flat=True))
                connection.close()
                for channel_id in wanted:
                    if channel_id not in threads or not threads[channel_id].is_alive():
                        threads[channel_id] = threading.Thread(
                            target=listen, args=(channel_id, stop), name=f"listener-{channel_id}", daemon=True
                        )
                        threads[channel_id].start()
                stop.wait(10.0)
        except KeyboardInterrupt:
            stop.set()
        for thread in threads.values():
            thread.join(timeout=5)
        time.sleep(0)
