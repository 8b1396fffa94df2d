"""Money under concurrency (R-BIL-1, R-BIL-2, R-BIL-9): 20 API clients in parallel threads (each
its own database connection, each request through the whole WSGI app) spend one fresh tenant's
balance past its end. The ledger stays exact and never negative, every accepted message holds
its price exactly once, and after the worker has delivered, captured == carrier-accepted parts
and balance + held + captured == top-ups."""

import threading
import time
from collections import Counter

import pytest
from django.db import connection
from django.db.models import Sum
from django_tenants.utils import tenant_context

from billing.models import Account, EntryKind, Hold, LedgerEntry
from delivery.models import Message, OutboxEntry
from delivery.outbox import relay_outbox

from ..delivery.flow.conftest import PRICE, make_sendable
from ..delivery.flow.live import live_tenant, only_channel, wait_all_delivered

pytestmark = pytest.mark.faults

CLIENTS = 20
ROUNDS = 8  # requests per client: single sends and batches of 3, alternately
AFFORDABLE = 100  # the top-up pays for exactly this many one-part messages


def test_parallel_clients_never_overspend_and_pay_each_message_once(live_db, smsc_factory, worker, figure):
    sim = smsc_factory(credentials={"demo": "demo"})
    only_channel(port=sim.port)
    tenant, client = live_tenant("Money Race Co.")
    template = make_sendable(tenant, balance=AFFORDABLE * PRICE)
    key_id, secret = client.key_id, client.secret
    outcomes: list[tuple[int, list[int]]] = []
    lock = threading.Lock()
    start = threading.Barrier(CLIENTS)

    def run(n: int) -> None:
        from ..conftest import KeyedClient

        mine = KeyedClient(tenant, key_id, secret)
        try:
            start.wait()
            for r in range(ROUNDS):
                if r % 2:
                    numbers = [f"+86136{n:02d}{r:02d}{k:04d}" for k in range(3)]
                    response = mine.post(
                        "/api/v1/batches",
                        {
                            "signature": "DemoShop",
                            "template": template,
                            "params": {"code": "1234"},
                            "recipients": numbers,
                        },
                        format="json",
                    )
                    ids = [m["id"] for m in response.json().get("messages", [])] if response.status_code == 202 else []
                else:
                    response = mine.post(
                        "/api/v1/messages",
                        {
                            "signature": "DemoShop",
                            "template": template,
                            "params": {"code": "1234"},
                            "to": f"+86135{n:02d}{r:06d}",
                        },
                        format="json",
                    )
                    ids = [response.json()["id"]] if response.status_code == 202 else []
                with lock:
                    outcomes.append((response.status_code, ids))
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    codes = Counter(code for code, _ in outcomes)
    assert set(codes) <= {202, 402}, codes  # refused only for money, never a 500 or a lost update
    accepted = [pk for code, ids in outcomes if code == 202 for pk in ids]
    assert 0 < len(accepted) <= AFFORDABLE
    assert codes[402] > 0

    account = Account.objects.get(tenant=tenant)
    entries = LedgerEntry.objects.filter(account=account)
    topups = entries.filter(kind=EntryKind.TOPUP).aggregate(s=Sum("amount"))["s"]
    holds = Hold.objects.filter(account=account)
    with tenant_context(tenant):
        hold_of = dict(Message.objects.filter(pk__in=accepted).values_list("pk", "hold_id"))
        stored = Message.objects.count()
    connection.set_schema_to_public()
    assert stored == len(accepted)  # a refused request stores nothing
    assert holds.count() == len(accepted) == len(set(hold_of.values()))  # one hold per accepted message
    assert holds.aggregate(s=Sum("amount"))["s"] == len(accepted) * PRICE
    assert not entries.filter(balance_after__lt=0).exists()
    assert not entries.filter(held_after__lt=0).exists()
    assert account.balance >= 0
    assert account.balance + account.held == topups
    assert account.balance + account.held == sum(e.amount for e in entries if e.kind == EntryKind.TOPUP)

    worker()
    # The periodic sweeper (relay_due_outbox, every 5 s) relays any entry whose fast-path job
    # was never run; here it runs at once instead of waiting for the scheduler.
    time.sleep(2)
    missed = OutboxEntry.objects.filter(tenant=tenant, relayed_at__isnull=True).count()
    relay_outbox()
    wait_all_delivered(tenant, accepted, timeout=90)
    account.refresh_from_db()
    captured = Hold.objects.filter(account=account, state="captured").aggregate(s=Sum("amount"))["s"] or 0
    with tenant_context(tenant):
        ours = {n.lstrip("+") for n in Message.objects.values_list("recipient", flat=True)}
    connection.set_schema_to_public()
    carrier_parts = len({r.destination for r in sim.submitted if r.destination in ours})
    assert captured == carrier_parts * PRICE == len(accepted) * PRICE
    assert account.held == 0
    assert account.balance + account.held + captured == topups
    charged = Counter(Hold.objects.filter(account=account, state="captured").values_list("reference", flat=True))
    scale = f"{CLIENTS} clients × {ROUNDS} requests, {len(accepted)} accepted"
    figure("messages charged twice (money race)", sum(c - 1 for c in charged.values()), scale=scale)
    figure(
        "ledger: balance + held + captured − top-ups",
        account.balance + account.held + captured - topups,
        unit="micro-units",
        scale=scale,
    )
    figure(
        "outbox entries relayed by the sweeper, not the fast path (recovered)",
        missed,
        unit="entries",
        goal="any (recovered)",
        scale=scale,
    )
    figure("accepted messages without exactly one hold", len(accepted) - len(set(hold_of.values())), scale=scale)
