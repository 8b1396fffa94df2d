"""Prometheus metrics: every series the platform exports is defined here (docs/operations.md, "Metrics").

Call sites are one line (`metrics.count_intake(...)`); nothing here touches the database except
`DatabaseCollector`, which runs only when /metrics is scraped (backlogs, channels, callbacks).

Multiprocess mode: when PROMETHEUS_MULTIPROC_DIR is set (before any process starts, one empty
directory per host or container), gunicorn workers, dramatiq workers and the listener each write
their own files there and /metrics adds them up. Without it (tests, `make run`) the values live in
this process only. Importing this module needs no Django settings: smpp.py uses it standalone too.
"""

from __future__ import annotations

import glob
import hmac
import ipaddress
import os
import re
import time
from collections import Counter as Tally

from django.db import transaction
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

# --- intake (R-DLV-1) ---------------------------------------------------------------------------
MESSAGES_ACCEPTED = Counter(
    "sms_messages_accepted", "Messages accepted by the send API (stored, held or scheduled).", ["message_type"]
)
MESSAGES_REFUSED = Counter(
    "sms_messages_refused",
    "Messages refused at intake, by reason (a per-recipient reason or a whole-request error code).",
    ["reason"],
)

# --- submission (R-DLV-3) -----------------------------------------------------------------------
SUBMIT_PARTS = Counter(
    "sms_submit_parts",
    "SMPP parts answered by the SMSC, by outcome (ok, throttled, transient, permanent, unknown).",
    ["channel", "outcome"],
)
SUBMIT_MESSAGES = Counter(
    "sms_submit_messages",
    "Messages after a submit round, by result (submitted = every part accepted, failed, retried, unknown).",
    ["channel", "result"],
)
SUBMIT_RTT = Histogram(
    "sms_submit_rtt_seconds",
    "submit_sm → submit_sm_resp round trip, per SMSC account (system_id).",
    ["system_id"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
SMPP_BINDS = Gauge(
    "sms_smpp_binds",
    "Transceiver binds held by the worker processes' pools, per channel.",
    ["channel"],
    multiprocess_mode="livesum",
)
CHANNEL_RATE = Gauge(
    "sms_channel_rate_limit",
    "Parts per second the senders of a channel allow themselves (token bucket rate, adaptive when "
    "adjusted), summed over worker processes: compare with sms_channel_tps_limit.",
    ["channel"],
    multiprocess_mode="livesum",
)
CHANNEL_WINDOW = Gauge(
    "sms_channel_window",
    "Effective SMPP window of a channel's binds (the smallest in any worker process): the configured "
    "window_size is the ceiling, the carrier's 0x14/0x58 halve it and it grows back (issue 20).",
    ["channel"],
    multiprocess_mode="livemin",
)

# --- receipts (R-DLV-4) -------------------------------------------------------------------------
RECEIPTS = Counter(
    "sms_receipts", "Delivery receipts matched to a submitted part, by channel and status.", ["channel", "status"]
)
RECEIPT_LAG = Histogram(
    "sms_receipt_lag_seconds",
    "Part submitted → its receipt applied.",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 6 * 3600, 24 * 3600, 72 * 3600),
)
MESSAGES_FINAL = Counter(
    "sms_messages_final", "Messages that reached a final status by receipt (delivered, undelivered…).", ["status"]
)

# --- money (R-BIL-9) ----------------------------------------------------------------------------
LEDGER_ENTRIES = Counter("sms_ledger_entries", "Ledger entries booked, by kind.", ["kind"])
LEDGER_AMOUNT = Counter(
    "sms_ledger_amount_micros", "Absolute amount of the ledger entries booked (micro-units), by kind.", ["kind"]
)


# --- one-line call sites ------------------------------------------------------------------------


def count_intake(drafts, message_type: str = "") -> None:
    """A send request's drafts after the gate: accepted ones by type, refused ones by reason."""
    refused = Tally(d.reason or "rejected" for d in drafts if d.status == "rejected")
    accepted = len(drafts) - sum(refused.values())
    if accepted:
        MESSAGES_ACCEPTED.labels(message_type or "unknown").inc(accepted)
    for reason, n in refused.items():
        MESSAGES_REFUSED.labels(reason).inc(n)


def count_refused_request(code: str, messages: int) -> None:
    """A whole request refused (insufficient balance, compliance, validation): its messages."""
    MESSAGES_REFUSED.labels(code or "refused").inc(max(messages, 1))


_THROTTLE = {0x58, 0x14}  # ESME_RTHROTTLED, ESME_RMSGQFUL


def count_submit_results(channel_id: int, results, totals: dict) -> None:
    """SubmitResults of one apply (parts by outcome) and what became of their messages."""
    channel = str(channel_id)
    outcomes = Tally(
        "ok"
        if r.ok
        else "unknown"
        if r.outcome_unknown
        else "throttled"
        if r.command_status in _THROTTLE
        else "transient"
        if r.transient
        else "permanent"
        for r in results
    )
    for outcome, n in outcomes.items():
        SUBMIT_PARTS.labels(channel, outcome).inc(n)
    for result, n in totals.items():
        if n:
            SUBMIT_MESSAGES.labels(channel, result).inc(n)


def observe_submit_rtt(system_id: str, seconds: float, command_status: int) -> None:
    if command_status >= 0:  # negative: timeout / disconnect, no answer to time
        SUBMIT_RTT.labels(system_id).observe(seconds)


def bind_opened(channel_id: int) -> None:
    SMPP_BINDS.labels(str(channel_id)).inc()


def bind_closed(channel_id: int) -> None:
    SMPP_BINDS.labels(str(channel_id)).dec()


def set_channel_rate(channel_id: int, rate: float) -> None:
    """This process's send rate for the channel (its TPS bucket, or an adapted rate)."""
    CHANNEL_RATE.labels(str(channel_id)).set(rate)


def set_channel_window(channel_id: int, window: int) -> None:
    """This process's effective window for the channel (the smallest of its binds')."""
    CHANNEL_WINDOW.labels(str(channel_id)).set(window)


def count_receipts(rows, applied_ids) -> None:
    """PendingReceipt rows just matched to their parts (applied_ids), per channel and status."""
    applied = set(applied_ids)
    for (channel_id, status), n in Tally((r.channel_id, r.status) for r in rows if r.pk in applied).items():
        RECEIPTS.labels(str(channel_id or ""), status).inc(n)


def observe_receipts(parts, changed: dict, now) -> None:
    """Parts whose outcome a receipt just set (lag since their submit) and messages made final."""
    for part in parts:
        if part.submitted_at:
            RECEIPT_LAG.observe(max((now - part.submitted_at).total_seconds(), 0.0))
    for status, n in Tally(changed.values()).items():
        MESSAGES_FINAL.labels(status).inc(n)


def count_ledger(entries) -> None:
    for entry in entries:
        LEDGER_ENTRIES.labels(entry.kind).inc()
        LEDGER_AMOUNT.labels(entry.kind).inc(abs(entry.amount))


def channel_figures() -> dict[int, dict]:
    """This process's own values of the per-channel series: binds held, send rate (None without a
    TPS limit) and parts the SMSC accepted (a running total). The console's "channels live"
    (delivery/channel_live.py) publishes these, so a figure is counted in one place only."""
    figures: dict[int, dict] = {}

    def values(metric, sample_name: str):
        for family in metric.collect():
            for sample in family.samples:
                if sample.name == sample_name and sample.labels.get("channel", "").isdigit():
                    yield sample.labels, sample.value

    def row(labels) -> dict:
        return figures.setdefault(int(labels["channel"]), {"binds": 0, "rate": None, "accepted": 0})

    for labels, value in values(SMPP_BINDS, "sms_smpp_binds"):
        row(labels)["binds"] = int(value)
    for labels, value in values(CHANNEL_RATE, "sms_channel_rate_limit"):
        row(labels)["rate"] = value
    for labels, value in values(SUBMIT_PARTS, "sms_submit_parts_total"):
        if labels.get("outcome") == "ok":
            row(labels)["accepted"] = int(value)
    return figures


# --- dramatiq queue metrics ---------------------------------------------------------------------


def install_worker_metrics(broker) -> None:
    """dramatiq's own Prometheus middleware (messages, errors, retries, durations per queue and
    actor), in multiprocess mode only: it keeps its values in PROMETHEUS_MULTIPROC_DIR (ours, so
    web /metrics shows them). METRICS_WORKER_PORT (default off) also starts its exposition server
    on METRICS_WORKER_BIND (default 127.0.0.1: an internal address, it has no authentication)."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return
    # Read by dramatiq's module at import: the same directory, and never 0.0.0.0 by default.
    os.environ["dramatiq_prom_db"] = directory
    os.environ.setdefault("dramatiq_prom_host", os.environ.get("METRICS_WORKER_BIND", "127.0.0.1"))
    os.environ.setdefault("dramatiq_prom_port", os.environ.get("METRICS_WORKER_PORT", "0") or "0")
    from dramatiq.middleware.prometheus import Prometheus

    class QueueMetrics(Prometheus):
        @property
        def forks(self):
            return super().forks if int(os.environ["dramatiq_prom_port"]) else []

    if not any(isinstance(m, Prometheus) for m in broker.middleware):
        broker.add_middleware(QueueMetrics())


# --- scrape time ---------------------------------------------------------------------------------


SCHEMAS_PER_STATEMENT = 100


class DatabaseCollector:
    """Gauges read from PostgreSQL when /metrics is scraped (never on a hot path): a handful of
    counts on indexed columns, and the message backlog of the active tenants, 100 schemas a statement."""

    def collect(self):
        from django.db import DatabaseError

        try:
            families, ok = list(self._collect()), 1
        except DatabaseError:  # the process metrics still answer; this gauge says what is missing
            families, ok = [], 0
        yield from families
        yield GaugeMetricFamily("sms_metrics_database_up", "1: the scrape-time queries answered.", value=ok)

    def _collect(self):
        from datetime import timedelta

        from django.db import connection
        from django.utils import timezone

        from delivery.models import CallbackDelivery, CallbackState, Channel, Message, OutboxEntry, PendingReceipt
        from tenants.models import Tenant

        now = timezone.now()
        quote = connection.ops.quote_name
        info = GaugeMetricFamily("sms_channel_info", "Channel names (join on channel).", labels=["channel", "name"])
        up = GaugeMetricFamily(
            "sms_channel_up", "1: enabled and not marked down; 0: down or disabled.", labels=["channel"]
        )
        tps = GaugeMetricFamily("sms_channel_tps_limit", "Configured TPS limit (0 = none).", labels=["channel"])
        for pk, name, enabled, down_until, tps_limit in Channel.objects.values_list(
            "pk", "name", "enabled", "down_until", "tps_limit"
        ):
            info.add_metric([str(pk), name], 1)
            up.add_metric([str(pk)], int(bool(enabled and not (down_until and down_until > now))))
            tps.add_metric([str(pk)], tps_limit or 0)
        yield from (info, up, tps)

        # Every public-schema count in one statement (partial/indexed columns).
        outbox, callbacks_, pending = (quote(m._meta.db_table) for m in (OutboxEntry, CallbackDelivery, PendingReceipt))
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT (SELECT count(*) FROM {outbox} WHERE relayed_at IS NULL AND available_at <= %(now)s),"
                f" (SELECT min(available_at) FROM {outbox} WHERE relayed_at IS NULL AND available_at <= %(now)s),"
                f" (SELECT count(*) FROM {callbacks_} WHERE state = %(pending)s),"
                f" (SELECT count(*) FROM {callbacks_} WHERE state = %(failed)s),"
                f" (SELECT count(*) FROM {callbacks_} WHERE state = %(pending)s AND next_attempt_at < %(overdue)s),"
                f" (SELECT count(*) FROM {pending} WHERE applied_at IS NULL)",
                {
                    "now": now,
                    "overdue": now - timedelta(seconds=60),
                    "pending": CallbackState.PENDING,
                    "failed": CallbackState.FAILED,
                },
            )
            due, oldest, cb_pending, cb_failed, cb_overdue, parked = cursor.fetchone()
        yield GaugeMetricFamily("sms_outbox_backlog", "Accepted sends due and not relayed yet.", value=due)
        yield GaugeMetricFamily(
            "sms_outbox_oldest_seconds",
            "Age of the oldest due outbox entry (0 when none).",
            value=(now - oldest).total_seconds() if oldest else 0,
        )
        callbacks = GaugeMetricFamily("sms_callbacks", "Status callbacks by state.", labels=["state"])
        callbacks.add_metric([CallbackState.PENDING], cb_pending)
        callbacks.add_metric([CallbackState.FAILED], cb_failed)
        yield callbacks
        yield GaugeMetricFamily(
            "sms_callbacks_overdue",
            "Pending callbacks due for over a minute (the retry job is stuck or workers are busy).",
            value=cb_overdue,
        )
        yield GaugeMetricFamily(
            "sms_receipts_parked", "Stored receipts not matched to a submitted part yet.", value=parked
        )

        backlog = GaugeMetricFamily(
            "sms_messages_backlog",
            "Messages waiting in the send pipeline (tenants that sent in the last 5 days).",
            labels=["status"],
        )
        counts = dict.fromkeys(("queued", "submitting", "unknown_submission"), 0)
        since = now - timedelta(days=5)  # the tenants the sweeps visit (delivery.sender.delivery_tenants)
        schemas = list(
            Tenant.objects.filter(
                pk__in=OutboxEntry.objects.filter(created_at__gte=since).values("tenant_id")
            ).values_list("schema_name", flat=True)
        )
        table = quote(Message._meta.db_table)
        # At most SCHEMAS_PER_STATEMENT schemas a statement: one statement over 1,000 schemas ran
        # out of lock slots (max_locks_per_transaction, bench_scale.py); each runs on its own.
        for i in range(0, len(schemas), SCHEMAS_PER_STATEMENT):
            chunk = schemas[i : i + SCHEMAS_PER_STATEMENT]
            sql = " UNION ALL ".join(
                f"SELECT status, count(*) FROM {quote(s)}.{table} WHERE status = ANY(%s) GROUP BY status" for s in chunk
            )
            with connection.cursor() as cursor:
                cursor.execute(sql, [list(counts)] * len(chunk))
                for status, n in cursor.fetchall():
                    counts[status] += n
        for status, n in counts.items():
            backlog.add_metric([status], n)
        yield backlog


class _ThisProcess:
    """The default registry's families (single-process mode)."""

    def collect(self):
        from prometheus_client import REGISTRY

        return REGISTRY.collect()


_LIVE_FILE = re.compile(r"gauge_live\w+?_(\d+)\.db$")


def _forget_dead_processes(directory: str) -> None:
    """A SIGKILLed worker never marks itself dead: drop its live-gauge files (binds, rates,
    in-progress jobs) once its pid is gone, or the sums would count it forever. Its counters stay."""
    from prometheus_client import multiprocess

    for path in glob.glob(os.path.join(directory, "gauge_live*.db")):
        match = _LIVE_FILE.search(os.path.basename(path))
        if not match:
            continue
        pid = int(match.group(1))
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, directory)
        except PermissionError:  # alive, another user's
            pass


def exposition(*, multiproc_dir: str = "", database: bool = True) -> bytes:
    """The text exposition /metrics answers: every process of this host (multiprocess mode) or
    this one, plus the scrape-time database gauges."""
    from prometheus_client import multiprocess

    started = time.perf_counter()
    registry = CollectorRegistry(auto_describe=False)
    if multiproc_dir:
        _forget_dead_processes(multiproc_dir)
        multiprocess.MultiProcessCollector(registry, path=multiproc_dir)
    else:
        registry.register(_ThisProcess())
    if database:
        registry.register(DatabaseCollector())
    body = generate_latest(registry)
    took = f"sms_metrics_scrape_seconds {time.perf_counter() - started:.6f}\n"
    return (
        body
        + b"# HELP sms_metrics_scrape_seconds Time to build this page.\n# TYPE sms_metrics_scrape_seconds gauge\n"
        + took.encode()
    )


# --- access ------------------------------------------------------------------------------------


def access_refusal(*, token: str, allowed: list[str], authorization: str, remote_addr: str, forwarded: bool):
    """None when the scraper may read /metrics, else (status, code, message).

    With METRICS_TOKEN set, a bearer token is required (constant-time compare). Without it only
    direct requests from METRICS_ALLOWED_IPS (loopback by default) pass: a request that came
    through a proxy (X-Forwarded-For) is refused, since the proxy's address says nothing."""
    if token:
        given = authorization.removeprefix("Bearer ").strip() if authorization.startswith("Bearer ") else ""
        if not given:
            return 401, "metrics_token_required", "Send the metrics token as 'Authorization: Bearer <token>'."
        if not hmac.compare_digest(given.encode(), token.encode()):
            return 403, "metrics_token_invalid", "The metrics token is not valid."
        return None
    if forwarded:
        return 403, "metrics_forbidden", "Set METRICS_TOKEN to scrape /metrics through a proxy."
    try:
        address = ipaddress.ip_address(remote_addr)
    except ValueError:
        return 403, "metrics_forbidden", "Only internal addresses may scrape /metrics."
    for network in allowed:
        try:
            if address in ipaddress.ip_network(network, strict=False):
                return None
        except ValueError:
            continue
    return 403, "metrics_forbidden", "Only internal addresses may scrape /metrics (METRICS_ALLOWED_IPS)."


# Outside ATOMIC_REQUESTS like /readyz: a scrape only reads.
@transaction.non_atomic_requests
def metrics_view(request):
    """GET /metrics: the Prometheus text format; refusals are JSON errors (docs/operations.md)."""
    from django.conf import settings
    from django.http import HttpResponse, JsonResponse
    from prometheus_client import CONTENT_TYPE_LATEST

    if request.method not in ("GET", "HEAD"):
        return JsonResponse(
            {"code": "method_not_allowed", "message": "Use GET.", "details": None}, status=405, headers={"Allow": "GET"}
        )
    refusal = access_refusal(
        token=settings.METRICS_TOKEN,
        allowed=settings.METRICS_ALLOWED_IPS,
        authorization=request.headers.get("Authorization", ""),
        remote_addr=request.META.get("REMOTE_ADDR", ""),
        forwarded="HTTP_X_FORWARDED_FOR" in request.META,
    )
    if refusal:
        status, code, message = refusal
        return JsonResponse({"code": code, "message": message, "details": None}, status=status)
    body = exposition(multiproc_dir=settings.METRICS_MULTIPROC_DIR)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
