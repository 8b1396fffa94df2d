"""R-BIL-9 under real concurrency: 8 threads, each with its own PostgreSQL connection, hold and
settle on one account; no update is lost, nothing is overdrawn, same key → one entry."""

import random
import threading

import pytest
from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from billing import services
from billing.models import Account, EntryKind, Hold, HoldState, LedgerEntry

from ..conftest import create_tenant
from .conftest import DELIVERY, FINANCE, key

THREADS = 8


def run_threads(target, count=THREADS):
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def wrapper(index):
        try:
            barrier.wait(timeout=30)
            target(index)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=wrapper, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors


@pytest.mark.parametrize("with_releases", [False, True], ids=["hold-capture", "hold-capture-release"])
def test_r_bil_9_concurrent_holds_and_captures_never_overdraw_and_lose_nothing(live_db, with_releases):
    tenant = create_tenant("Concurrent Holds Co.")
    topup = 10_000_000  # 10 CNY: room for 285 segments at 0.035, while the threads ask for ~480
    services.topup(tenant=tenant, amount=topup, actor=FINANCE, idempotency_key=key("cc-topup"))
    results: dict[int, dict] = {}

    def worker(index):
        rng = random.Random(index)
        mine = {"held": [], "refused": 0}
        for round_ in range(30):
            lines = [
                services.HoldLine(reference=f"cc:{index}:{round_}:{i}", segments=rng.randint(1, 2), unit_price=35_000)
                for i in range(rng.randint(1, 3))
            ]
            try:
                holds = services.hold_messages(
                    tenant=tenant, lines=lines, idempotency_key=key(f"cc-{index}"), actor=DELIVERY
                )
            except services.InsufficientBalance:
                mine["refused"] += 1
                continue
            mine["held"].extend(holds)
            settle_now = [h for h in holds if rng.random() < 0.7]
            capture = [h for h in settle_now if not with_releases or rng.random() < 0.6]
            release = [h for h in settle_now if h not in capture]
            services.capture_holds(
                captures=[
                    services.Capture(hold_id=h.pk, carrier_message_id=f"c{h.pk}", submitted_at=timezone.now())
                    for h in capture
                ],
                idempotency_key=key("cc-cap"),
            )
            services.release_holds(hold_ids=[h.pk for h in release], idempotency_key=key("cc-rel"))
        results[index] = mine

    run_threads(worker)

    account = Account.objects.get(tenant=tenant)
    holds = Hold.objects.filter(account=account)
    by_state = {state: holds.filter(state=state).aggregate(t=Sum("amount"))["t"] or 0 for state in HoldState.values}
    assert sum(len(r["held"]) for r in results.values()) == holds.count()
    assert sum(r["refused"] for r in results.values()) > 0  # the account really ran dry
    held_total = sum(h.amount for r in results.values() for h in r["held"])
    if not with_releases:  # every successful hold kept its money: together they fit in the top-up
        assert held_total <= topup
        assert account.balance == topup - held_total
    # never overdrawn: what is captured or still held fits in the top-up
    assert by_state["captured"] + by_state["held"] <= topup
    # exact: no lost update
    assert account.balance == topup - by_state["captured"] - by_state["held"]
    assert account.held == by_state["held"]
    sums = account.entries.aggregate(balance=Sum("amount"), held=Sum("held_delta"))
    assert (sums["balance"], sums["held"]) == (account.balance, account.held)


def test_r_bil_9_concurrent_calls_with_one_idempotency_key_book_one_entry(live_db):
    tenant = create_tenant("Concurrent Keys Co.")
    services.topup(tenant=tenant, amount=1_000_000, actor=FINANCE, idempotency_key=key("ck-topup"))
    hold_key, topup_key = key("ck-hold"), key("ck-topup")
    returned: list[list[int]] = []

    def worker(index):
        holds = services.hold_messages(
            tenant=tenant,
            lines=[services.HoldLine(reference="ck:1", segments=1, unit_price=35_000)],
            idempotency_key=hold_key,
            actor=DELIVERY,
        )
        returned.append([h.pk for h in holds])
        services.topup(tenant=tenant, amount=500_000, actor=FINANCE, idempotency_key=topup_key)

    run_threads(worker)

    assert len({tuple(r) for r in returned}) == 1
    assert LedgerEntry.objects.filter(idempotency_key=hold_key).count() == 1
    assert LedgerEntry.objects.filter(idempotency_key=topup_key).count() == 1
    account = Account.objects.get(tenant=tenant)
    assert (account.balance, account.held) == (1_000_000 - 35_000 + 500_000, 35_000)


def test_r_bil_2_concurrent_captures_of_the_same_holds_capture_each_once(live_db):
    tenant = create_tenant("Concurrent Captures Co.")
    services.topup(tenant=tenant, amount=100_000_000, actor=FINANCE, idempotency_key=key("cx-topup"))
    holds = services.hold_messages(
        tenant=tenant,
        lines=[services.HoldLine(reference=f"cx:{i}", segments=1, unit_price=35_000) for i in range(200)],
        idempotency_key=key("cx-hold"),
        actor=DELIVERY,
    )
    counts: list[int] = []

    def worker(index):
        order = list(holds)
        random.Random(index).shuffle(order)
        if index % 2:
            counts.append(
                services.capture_holds(
                    captures=[
                        services.Capture(hold_id=h.pk, carrier_message_id=f"x{h.pk}", submitted_at=timezone.now())
                        for h in order
                    ],
                    idempotency_key=key("cx-cap"),
                )
            )
        else:
            counts.append(-services.release_holds(hold_ids=[h.pk for h in order], idempotency_key=key("cx-rel")))

    run_threads(worker)

    captured = Hold.objects.filter(account__tenant=tenant, state=HoldState.CAPTURED).count()
    released = Hold.objects.filter(account__tenant=tenant, state=HoldState.RELEASED).count()
    assert captured + released == 200
    assert sum(c for c in counts if c > 0) == captured
    assert -sum(c for c in counts if c < 0) == released
    account = Account.objects.get(tenant=tenant)
    assert account.held == 0
    assert account.balance == 100_000_000 - captured * 35_000
    assert LedgerEntry.objects.filter(account=account, kind=EntryKind.CAPTURE).aggregate(t=Sum("held_delta"))["t"] in (
        None,
        -captured * 35_000,
    )
