"""Issue 21, item 2 (R-DLV-4/5): a receipt or reply is never refused for our own outage.

A deliver_sm is acknowledged only once it is durable. Normally that is a PostgreSQL row; when
PostgreSQL is down (OperationalError / InterfaceError while storing it), the PDUs are written to
a local spool file instead (written, fsynced, renamed: durable before the deliver_sm_resp), and
answered ESME_ROK. Before, they were refused with 0x64 and the SMSC's patience decided whether
they came back: when it gave up, the messages stayed `submitted` until the 72 h expiry, and an
unknown submission whose receipt was lost could be sent again.

`replay()` stores the spooled PDUs when the database is back: the listener and the worker's idle
poller call it as soon as they can reach the database (`replay_if_due`), and a periodic job every
15 s (delivery.actors.replay_inbound_spool_job). Exactly once: each PDU has a key, inserted into
SpooledInbound in the same transaction that stores it; a file is deleted only after that commit,
so a replay interrupted anywhere (crash, second outage, two processes at once) stores nothing
twice. The spool is local to a machine: every host that runs a listener or worker replays its own.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from django.conf import settings
from django.db import connection, transaction

from smsplatform.outage import DATABASE_ERRORS, is_outage

from .inbound import apply_pending_receipts, handle_inbound, record_receipts, store_receipts

log = logging.getLogger(__name__)
T = TypeVar("T")

#: after a failed replay (the database still away), wait this long before trying again
RETRY_SECONDS = 2.0
_next_try = 0.0


def spool_dir() -> Path:
    path = Path(settings.DELIVERY_SPOOL_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


# --- writing -----------------------------------------------------------------------------------


def _entry(channel_id: int | None, pdu, key: str) -> dict:
    receipt = pdu.receipt
    return {
        "key": key,
        "channel_id": channel_id,
        "is_receipt": pdu.is_receipt,
        "source_addr": pdu.source_addr,
        "destination_addr": pdu.destination_addr,
        "text": pdu.text,
        "data_coding": pdu.data_coding,
        "esm_class": pdu.esm_class,
        "concat": list(pdu.concat) if pdu.concat else None,
        "receipt": None
        if receipt is None
        else {
            "message_id": receipt.message_id,
            "stat": receipt.stat,
            "err": receipt.err,
            "submit_date": receipt.submit_date.isoformat() if receipt.submit_date else None,
            "done_date": receipt.done_date.isoformat() if receipt.done_date else None,
            "status": str(receipt.status),
            "sub": receipt.sub,
            "dlvrd": receipt.dlvrd,
            "text": receipt.text,
            "raw_message_id": receipt.raw_message_id,
        },
    }


def _pdu(entry: dict):
    from .smpp.receipts import Receipt
    from .smpp.results import InboundPdu

    r = entry["receipt"]
    receipt = None
    if r is not None:
        dates = {k: datetime.fromisoformat(r[k]) if r[k] else None for k in ("submit_date", "done_date")}
        receipt = Receipt(**{**r, **dates})
    return InboundPdu(
        is_receipt=entry["is_receipt"],
        receipt=receipt,
        source_addr=entry["source_addr"],
        destination_addr=entry["destination_addr"],
        text=entry["text"],
        data_coding=entry["data_coding"],
        esm_class=entry["esm_class"],
        concat=tuple(entry["concat"]) if entry["concat"] else None,
    )


def _write_durably(directory: Path, name: str, data: bytes) -> Path:
    tmp = directory / f".{name}.tmp"
    with open(tmp, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    final = directory / name
    os.rename(tmp, final)
    fd = os.open(directory, os.O_RDONLY)  # the rename itself must survive a power cut
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return final


def spool_inbound(*, channel_id: int | None, pdus: list) -> Path:
    """Write deliver_sm PDUs to the spool, durably; the caller then acknowledges them."""
    global _next_try
    batch = uuid.uuid4().hex
    entries = [_entry(channel_id, pdu, f"{batch}:{n}") for n, pdu in enumerate(pdus)]
    path = _write_durably(spool_dir(), f"{time.time_ns():020d}-{batch}.json", json.dumps(entries).encode())
    _next_try = time.monotonic() + RETRY_SECONDS  # no replay attempt while it is surely still down
    log.warning("database unavailable: %d deliver_sm of channel %s spooled to %s", len(pdus), channel_id, path)
    return path


def store_or_spool(*, channel_id: int | None, pdus: list, store: Callable[[], T]) -> T | None:
    """`store()` (the PDUs into PostgreSQL); on a database outage, spool them instead and return
    None: the caller answers them ESME_ROK either way. Any other error propagates (ESME_RX_T_APPN,
    the SMSC redelivers), and so does a failure to write the spool."""
    try:
        return store()
    except DATABASE_ERRORS:
        with contextlib.suppress(*DATABASE_ERRORS):
            connection.close()  # a broken connection is replaced by the next use
        spool_inbound(channel_id=channel_id, pdus=pdus)
        return None


def handle_inbound_batch(*, channel_id: int | None, pdus: list) -> tuple[list[str], list[int | None]]:
    """SmppSession.on_inbound_batch for a bind: the receipts stored with one INSERT before any
    deliver_sm is answered, replies one by one; a reply that fails is answered with a temporary
    error (the SMSC redelivers it) without failing the others. Returns (receipt carrier ids,
    one status per PDU: None = ESME_ROK)."""
    receipts, answers = store_inbound_batch(channel_id=channel_id, pdus=pdus)
    return [r.carrier_message_id for r in receipts], answers


def store_inbound_batch(*, channel_id: int | None, pdus: list) -> tuple[list, list[int | None]]:
    """handle_inbound_batch returning the stored receipts (inbound.StoredReceipt, their pk set)
    instead of their ids: a send job applies its own from memory (inbound.apply_job_receipts)."""
    from smpplib import consts

    receipts = store_receipts(channel_id=channel_id, pdus=pdus)
    answers: list[int | None] = []
    for pdu in pdus:
        status = None
        if not pdu.is_receipt:
            try:
                handle_inbound(channel_id=channel_id, pdu=pdu)
            except DATABASE_ERRORS:  # issue 21: our outage: spooled locally, acknowledged
                spool_inbound(channel_id=channel_id, pdus=[pdu])
            except Exception:
                log.exception("reply on channel %s failed; answered for redelivery", channel_id)
                status = consts.SMPP_ESME_RX_T_APPN
        answers.append(status)
    return receipts, answers


# --- replaying ---------------------------------------------------------------------------------


def spooled_files() -> list[Path]:
    return sorted(p for p in spool_dir().glob("*.json"))


def _claim_keys(keys: list[str]) -> set[str]:
    """Insert the keys not stored yet; the ones returned are this transaction's to store."""
    from .models import SpooledInbound

    table = connection.ops.quote_name(SpooledInbound._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (key, applied_at) SELECT k, now() FROM unnest(%s::text[]) AS k "  # noqa: S608
            "ON CONFLICT (key) DO NOTHING RETURNING key",
            [keys],
        )
        return {row[0] for row in cursor.fetchall()}


def _replay_file(path: Path) -> tuple[int, int, list[str]]:
    """Store one spool file's PDUs once; returns (stored, already stored, receipt carrier ids)."""
    entries = json.loads(path.read_bytes())
    receipt_ids: list[str] = []
    stored = 0
    with transaction.atomic():
        fresh = _claim_keys([e["key"] for e in entries])
        by_channel: dict[int | None, list] = {}
        for e in entries:
            if e["key"] in fresh and e["is_receipt"]:
                by_channel.setdefault(e["channel_id"], []).append(_pdu(e))
        for channel_id, pdus in by_channel.items():
            receipt_ids += record_receipts(channel_id=channel_id, pdus=pdus)
            stored += len(pdus)
        for e in entries:
            if e["key"] not in fresh or e["is_receipt"]:
                continue
            try:
                with transaction.atomic():
                    handle_inbound(channel_id=e["channel_id"], pdu=_pdu(e))
                stored += 1
            except Exception as exc:
                if is_outage(exc):
                    raise  # the database went away again: the whole file stays for later
                # Acknowledged already, so it must not be lost: kept for an operator.
                log.exception("spooled reply %s could not be stored; moved to failed/", e["key"])
                failed = spool_dir() / "failed"
                failed.mkdir(exist_ok=True)
                _write_durably(failed, f"{e['key'].replace(':', '-')}.json", json.dumps([e]).encode())
    return stored, len(entries) - len(fresh), receipt_ids


def replay(*, max_files: int = 200) -> dict:
    """Store what the spool holds (oldest first), then apply the receipts among it. Stops at the
    first database error (still down: the rest waits). Safe in several processes at once."""
    totals = {"files": 0, "stored": 0, "duplicates": 0, "applied": 0}
    receipt_ids: list[str] = []
    for path in spooled_files()[:max_files]:
        try:
            handle = open(path, "rb")  # noqa: SIM115 (held for the lock)
        except FileNotFoundError:
            continue  # another process replayed it meanwhile
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # another process is replaying it now
            if not path.exists():
                continue
            stored, duplicates, ids = _replay_file(path)
            path.unlink()  # only after the commit: a crash before this replays into no-ops
        totals["files"] += 1
        totals["stored"] += stored
        totals["duplicates"] += duplicates
        receipt_ids += ids
    if receipt_ids:
        totals["applied"] = apply_pending_receipts(carrier_ids=receipt_ids)
    if totals["files"]:
        log.info("inbound spool replayed: %s", totals)
    return totals


def replay_if_due() -> dict | None:
    """For long-running loops: replay when the spool holds files and the last attempt did not
    fail just now. Database errors are logged and retried later, never raised."""
    global _next_try
    if time.monotonic() < _next_try:
        return None
    try:
        if not any(spool_dir().glob("*.json")):
            return None
        return replay()
    except DATABASE_ERRORS as exc:
        _next_try = time.monotonic() + RETRY_SECONDS
        log.info("inbound spool: database still unavailable (%s); retrying in %ss", exc, RETRY_SECONDS)
        with contextlib.suppress(*DATABASE_ERRORS):
            connection.close()
        return None
