"""Holds, captures and releases (R-BIL-2, R-BIL-3, R-BIL-8): funds reserved for accepted messages,
captured for the parts the carrier accepted, released for the rest. (Messages held for review
past the timeout are cancelled by delivery.held.release_stale_held_messages, which releases
their holds here: billing never imports delivery.)"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from smsplatform.db import insert_rows
from tenants.models import Tenant
from tenants.services import Actor

from ..errors import (
    CurrencyMismatch,
    InvalidAmount,
)
from ..models import (
    Account,
    EntryKind,
    Hold,
    HoldPackageUse,
    HoldState,
    LedgerEntry,
    PackageGrant,
    PackageState,
    Price,
)
from .ledger import _entry, _locked_account, _replayed, _save_entries, _store_account

# --- holds, captures, releases (R-BIL-2) -------------------------------------------------------


@dataclass(frozen=True)
class HoldLine:
    reference: str  # e.g. "<schema>:<message id>"
    segments: int
    unit_price: int  # micro-units per segment
    price_id: int | None = None
    message_type: str | None = None  # lets packages limited to some message types apply
    currency: str | None = None  # the price's currency when the caller knows it (no query)


@dataclass(frozen=True)
class Capture:
    hold_id: int
    carrier_message_id: str
    submitted_at: datetime
    segments: int | None = None  # segments (parts) the carrier accepted; None = all of the hold's


def _usable_grants(account: Account, now: datetime) -> list[PackageGrant]:
    return list(
        PackageGrant.objects.filter(
            account=account, state=PackageState.ACTIVE, segments_remaining__gt=0, starts_at__lte=now, expires_at__gt=now
        ).order_by("expires_at", "id")
    )


def _locked_account_with_grants(tenant: Tenant, now: datetime) -> tuple[Account, list[PackageGrant]]:
    """_locked_account() and _usable_grants() in ONE statement (issue 17: the booking is the
    part of a send that holds the account lock, so it takes as few round trips as it can)."""
    from django.contrib.postgres.expressions import ArraySubquery
    from django.db.models import OuterRef
    from django.db.models.functions import JSONObject

    usable = (
        PackageGrant.objects.filter(
            account=OuterRef("pk"),
            state=PackageState.ACTIVE,
            segments_remaining__gt=0,
            starts_at__lte=now,
            expires_at__gt=now,
        )
        .order_by("expires_at", "id")
        .values(row=JSONObject(id="id", remaining="segments_remaining", types="message_types"))
    )
    account = (
        Account.objects.select_for_update(of=("self",))
        .annotate(usable_grants=ArraySubquery(usable))
        .filter(tenant=tenant)
        .first()
    )
    if account is None:  # first booking of this tenant: create the account, then lock it
        account = _locked_account(tenant)
        return account, _usable_grants(account, now)
    grants = [
        PackageGrant(
            pk=row["id"], account_id=account.pk, segments_remaining=row["remaining"], message_types=row["types"] or []
        )
        for row in account.usable_grants
    ]
    for grant in grants:  # stored rows: bulk_update() below writes their changed fields
        grant._state.adding, grant._state.db = False, connection.alias
    return account, grants


def hold_messages(*, tenant: Tenant, lines: list[HoldLine], idempotency_key: str, actor: Actor) -> list[Hold]:
    """R-BIL-2: reserve funds for accepted messages. One account lock and a constant number of
    queries for the whole batch; packages first (soonest-expiring, R-BIL-3), then cash.

    All or nothing: raises InsufficientBalance (402). The same idempotency_key again returns the
    holds of the first call and moves no money.
    """
    booked = _book_holds(tenant=tenant, lines=lines, idempotency_key=idempotency_key, actor=actor)
    if isinstance(booked, LedgerEntry):
        return list(booked.holds.order_by("id"))
    ids, entry, account, plans, now = booked
    holds = [
        Hold(
            pk=hold_id,
            account=account,
            tenant_id=account.tenant_id,
            entry=entry,
            reference=line.reference,
            message_type=line.message_type or "",
            segments=line.segments,
            package_segments=package_segments,
            unit_price=line.unit_price,
            amount=(line.segments - package_segments) * line.unit_price,
            price_id=line.price_id,
            created_at=now,
        )
        for hold_id, (line, package_segments, _) in zip(ids, plans, strict=True)
    ]
    for hold in holds:  # stored rows, as bulk_create would have marked them
        hold._state.adding, hold._state.db = False, connection.alias
    return holds


def hold_message_ids(
    *,
    tenant: Tenant,
    lines: list[HoldLine],
    idempotency_key: str,
    actor: Actor,
    hold_ids: list[int] | None = None,
    fresh_key: bool = False,
) -> list[int]:
    """hold_messages() for the API intake hot path: the same booking, but only the hold ids (in
    the order of `lines`) come back, so no 1000 model instances are built for a batch.

    Issue 17 (lock late): `hold_ids` drawn beforehand (next_hold_ids()) let the caller write its
    rows naming the holds first and book last, so the account row is locked only for the end of
    the transaction. `fresh_key`: the key contains an id drawn from a sequence in this
    transaction, so no earlier booking can hold it: the replay lookup is skipped (the unique
    constraint on the key still refuses a duplicate)."""
    booked = _book_holds(
        tenant=tenant,
        lines=lines,
        idempotency_key=idempotency_key,
        actor=actor,
        hold_ids=hold_ids,
        fresh_key=fresh_key,
    )
    if isinstance(booked, LedgerEntry):
        return list(booked.holds.order_by("id").values_list("id", flat=True))
    return booked[0]


def next_hold_ids(count: int) -> str:
    """SQL for an array of `count` fresh hold ids (to draw with other ids in one statement)."""
    table = f"public.{Hold._meta.db_table}"
    return f"ARRAY(SELECT nextval(pg_get_serial_sequence('{table}', 'id')) FROM generate_series(1, {int(count)}))"


def _book_holds(
    *,
    tenant: Tenant,
    lines: list[HoldLine],
    idempotency_key: str,
    actor: Actor,
    hold_ids: list[int] | None = None,
    fresh_key: bool = False,
):
    """The booking behind hold_messages(): the first call's LedgerEntry on a replay, else
    (hold ids in line order, entry, account, plans, now)."""
    if not lines:
        return [], None, None, [], None
    for line in lines:
        if line.segments < 1 or line.unit_price < 0:
            raise InvalidAmount(f"Invalid hold line {line.reference!r}: segments >= 1, unit_price >= 0.")
    if hold_ids is not None and len(hold_ids) != len(lines):
        raise InvalidAmount("One hold id per line.", code="hold_ids_mismatch")
    now = timezone.now()
    # The intake (fresh_key) books inside its own savepoint: no second one (issue 17).
    with transaction.atomic(savepoint=not fresh_key):
        account, grants = _locked_account_with_grants(tenant, now)
        if not fresh_key:
            previous = _replayed(idempotency_key, account, EntryKind.HOLD)
            if previous is not None:
                return previous
        elif not idempotency_key:
            raise InvalidAmount("An idempotency key is required.", code="idempotency_key_required")
        known = {line.currency for line in lines if line.price_id}
        if None not in known:  # every price's currency came with its line
            other = sorted(c for c in known if c != account.currency)
            if other:
                raise CurrencyMismatch(details={"account_currency": account.currency, "currency": other[0]})
        price_ids = {line.price_id for line in lines if line.price_id} if None in known else set()
        if price_ids:  # R-BIL-1: never charge a price in another currency than the account's
            other = list(
                Price.objects.filter(pk__in=price_ids)
                .exclude(currency=account.currency)
                .values_list("currency", flat=True)[:1]
            )
            if other:
                raise CurrencyMismatch(details={"account_currency": account.currency, "currency": other[0]})
        # R-BIL-3: a package limited to some message types pays for its types before an
        # any-type package does (which could pay for anything), each group soonest-expiring first.
        limited = [g for g in grants if g.message_types]
        general = [g for g in grants if not g.message_types]
        ordered = limited + general
        plans: list[tuple[HoldLine, int, list[tuple[PackageGrant, int]]]] = []
        used: set[int] = set()
        cash_total = 0
        for line in lines:
            need, takes = line.segments, []
            for grant in ordered if line.message_type else general:
                if need == 0:
                    break
                if grant.segments_remaining == 0 or (
                    grant.message_types and line.message_type not in grant.message_types
                ):
                    continue
                take = min(need, grant.segments_remaining)
                grant.segments_remaining -= take
                grant.last_used_at = now
                used.add(grant.pk)
                takes.append((grant, take))
                need -= take
            package_segments = line.segments - need
            cash_total += need * line.unit_price
            plans.append((line, package_segments, takes))
        entry = _entry(
            account=account,
            kind=EntryKind.HOLD,
            amount=-cash_total,
            held_delta=cash_total,
            key=idempotency_key,
            actor=actor,
            reference=lines[0].reference if len(lines) == 1 else f"{len(lines)} messages",
            details={
                "holds": len(lines),
                "segments": sum(line.segments for line in lines),
                "package_segments": sum(p for _, p, _ in plans),
            },
            created_at=now,
        )
        _save_entries([entry])
        # Rows as tuples through one INSERT (smsplatform.db): bulk_create's per-value
        # compilation of 1000 Hold instances was a large part of a batch request's time.
        created_at = now.isoformat()  # formatted once for every row
        id_column = ("id",) if hold_ids is not None else ()
        ids = insert_rows(
            Hold,
            (
                *id_column,
                "account_id",
                "tenant_id",
                "entry_id",
                "reference",
                "message_type",
                "segments",
                "package_segments",
                "unit_price",
                "amount",
                "price_id",
                "created_at",
            ),
            [
                (
                    *((hold_ids[index],) if hold_ids is not None else ()),
                    account.pk,
                    account.tenant_id,
                    entry.pk,
                    line.reference,
                    line.message_type or "",
                    line.segments,
                    package_segments,
                    line.unit_price,
                    (line.segments - package_segments) * line.unit_price,
                    line.price_id,
                    created_at,
                )
                for index, (line, package_segments, _) in enumerate(plans)
            ],
            returning="id",
        )
        if used:
            insert_rows(
                HoldPackageUse,
                ("hold_id", "grant_id", "segments"),
                [
                    (hold_id, grant.pk, take)
                    for hold_id, (_, _, takes) in zip(ids, plans, strict=True)
                    for grant, take in takes
                ],
            )
            PackageGrant.objects.bulk_update(
                [g for g in grants if g.pk in used], ["segments_remaining", "last_used_at"]
            )
        _store_account(account)
    return ids, entry, account, plans, now


def _lock_accounts(account_ids: set[int]) -> dict[int, Account]:
    """Lock several accounts in a fixed order (id) so concurrent batches never deadlock."""
    return {a.pk: a for a in Account.objects.select_for_update().filter(pk__in=account_ids).order_by("pk")}


@dataclass(frozen=True)
class _Settled:
    """One hold settled now: its cash `amount` held, the cash `charged` (0 for a release) and the
    package segments it held and kept (charged)."""

    hold_id: int
    account_id: int
    amount: int
    charged: int
    package_segments: int
    package_charged: int


def _settle(
    *,
    hold_ids: list[int],
    idempotency_key: str,
    to_state: str,
    values_sql: str,
    values: list,
    now: datetime,
    reason: str = "",
) -> tuple[list[_Settled], dict[int, Account]]:
    """Move holds from held to `to_state` exactly once; returns the holds settled now and the
    locked accounts.

    Skips accounts whose entry for this key exists already (a retry moves no money).
    """
    if not idempotency_key:
        raise InvalidAmount("An idempotency key is required.", code="idempotency_key_required")
    table = Hold._meta.db_table
    candidates = set(Hold.objects.filter(pk__any=hold_ids, state=HoldState.HELD).values_list("account_id", flat=True))
    if not candidates:
        return [], {}
    accounts = _lock_accounts(candidates)
    keys = {aid: f"{idempotency_key}#{aid}" for aid in accounts}
    replayed = set(LedgerEntry.objects.filter(idempotency_key__in=keys.values()).values_list("account_id", flat=True))
    todo = [aid for aid in accounts if aid not in replayed]
    if not todo:
        return [], accounts
    with connection.cursor() as cursor:
        cursor.execute(
            f"""UPDATE {table} AS h SET state = %s, settled_at = %s, release_reason = %s {values_sql}
                WHERE h.id = v.id AND h.state = 'held' AND h.account_id = ANY(%s)
                RETURNING h.id, h.account_id, h.amount, h.charged, h.package_segments, h.package_charged""",  # noqa: S608 - table name from model meta
            [to_state, now, reason[:200], *values, todo],
        )
        return [_Settled(*row) for row in cursor.fetchall()], accounts


def _return_package_segments(returns: dict[int, int]) -> None:
    """Give package segments of holds back to the packages they came from (hold id → segments).

    A whole release gives back everything (one statement per table); a partly accepted long
    message gives back what its refused parts took, latest-expiring package first (the customer
    keeps the longest-lived credit). Forfeited, expired or refunded packages take nothing back.
    """
    if not returns:
        return
    uses_table, grants_table = HoldPackageUse._meta.db_table, PackageGrant._meta.db_table
    uses = list(
        HoldPackageUse.objects.filter(hold_id__in=list(returns))
        .exclude(returned=F("segments"))
        .select_related("grant")
        .order_by("hold_id", "-grant__expires_at", "-grant_id")
    )
    back: dict[int, int] = defaultdict(int)
    changed = []
    for use in uses:
        want = returns[use.hold_id]
        take = min(want, use.segments - use.returned)
        if take <= 0:
            continue
        use.returned += take
        returns[use.hold_id] = want - take
        back[use.grant_id] += take
        changed.append(use)
    if not changed:
        return
    HoldPackageUse.objects.bulk_update(changed, ["returned"])
    with connection.cursor() as cursor:
        cursor.execute(
            f"""UPDATE {grants_table} AS g SET segments_remaining = g.segments_remaining + u.total
                FROM unnest(%s::bigint[], %s::int[]) AS u(grant_id, total)
                WHERE g.id = u.grant_id AND g.state = 'active'""",  # noqa: S608 - names from model meta
            [list(back), list(back.values())],
        )
    _ = uses_table


def _book_settlement(
    settled: list[_Settled],
    accounts: dict[int, Account],
    *,
    kind: str,
    idempotency_key: str,
    actor: Actor,
    now: datetime,
    reason: str = "",
) -> None:
    """Book what the settled holds did, one entry per account and movement:

    - a capture: the cash charged leaves `held` (kind capture); the cash of refused parts goes
      back to the balance (kind release, key `<key>#<account>#rest`);
    - a release: all of it goes back to the balance.

    On an account that was forfeited or refunded (`Account.sweep`), cash released by holds booked
    before that goes the same way at once (R-BIL-5, R-CMP-6): it never reappears as balance.
    """
    per_account: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # holds, charged, released, swept
    for s in settled:
        account = accounts[s.account_id]
        row = per_account[s.account_id]
        row[0] += 1
        row[1] += s.charged
        row[2] += s.amount - s.charged
        if account.sweep and account.sweep_until_hold and s.hold_id <= account.sweep_until_hold:
            row[3] += s.amount - s.charged
    entries = []
    for account_id, (count, charged, released, swept) in sorted(per_account.items()):
        account = accounts[account_id]
        key = f"{idempotency_key}#{account_id}"
        if kind == EntryKind.CAPTURE:
            entries.append(
                _entry(
                    account=account,
                    kind=EntryKind.CAPTURE,
                    amount=0,
                    held_delta=-charged,
                    key=key,
                    actor=actor,
                    reference=f"{count} holds",
                    details={"holds": count},
                    created_at=now,
                )
            )
            key = f"{key}#rest"
        if kind == EntryKind.RELEASE or released:
            entries.append(
                _entry(
                    account=account,
                    kind=EntryKind.RELEASE,
                    amount=released,
                    held_delta=-released,
                    key=key,
                    actor=actor,
                    reason=reason or "parts refused by the carrier",
                    reference=f"{count} holds",
                    details={"holds": count},
                    created_at=now,
                )
            )
        if swept:
            entries.append(
                _entry(
                    account=account,
                    kind=account.sweep,
                    amount=-swept,
                    held_delta=0,
                    key=f"{key}#sweep",
                    actor=actor,
                    reason=f"released after the {account.sweep} ({account.sweep_reference})",
                    reference=account.sweep_reference,
                    details={"swept": swept, "sweep_of": account.sweep_reference},
                    created_at=now,
                )
            )
    _save_entries(entries)
    for account_id in per_account:
        _store_account(accounts[account_id], credited=False)


def capture_holds(*, captures: list[Capture], idempotency_key: str) -> int:
    """R-BIL-2: the carrier accepted these messages: held → captured (billed). Holds already
    captured or released are skipped; returns how many were captured now. The hold keeps the
    carrier message id and submit time (R-BIL-8).

    `Capture.segments` = k of the hold's n segments accepted (None: all): k segments are billed
    (package segments first, as the hold took them) and the rest is released, in one booking
    under one key.
    """
    by_id = {c.hold_id: c for c in captures}
    if not by_id:
        return 0
    partial = {i: c.segments for i, c in by_id.items() if c.segments is not None}
    for hold_id, k in partial.items():
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise InvalidAmount(
                "Captured segments are a whole number >= 1 (release the hold when nothing was accepted).",
                details={"hold_id": hold_id, "segments": k},
            )
    if partial:
        sizes = dict(Hold.objects.filter(pk__in=list(partial)).values_list("pk", "segments"))
        too_many = {i: k for i, k in partial.items() if i in sizes and k > sizes[i]}
        if too_many:
            raise InvalidAmount(
                "More segments captured than the hold has.",
                details={"holds": {str(i): {"captured": k, "held": sizes[i]} for i, k in too_many.items()}},
            )
    ids = list(by_id)
    now = timezone.now()  # the hold's settled_at and the entry's created_at: one instant, one month
    k_sql = "LEAST(COALESCE(v.seg, h.segments), h.segments)"
    with transaction.atomic():
        settled, accounts = _settle(
            hold_ids=ids,
            idempotency_key=idempotency_key,
            to_state=HoldState.CAPTURED,
            now=now,
            values_sql=(
                ", carrier_message_id = v.cid, submitted_at = v.ts"
                f", captured_segments = {k_sql}"
                f", package_charged = LEAST({k_sql}, h.package_segments)"
                f", charged = GREATEST({k_sql} - h.package_segments, 0) * h.unit_price"
                " FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[], %s::int[]) AS v(id, cid, ts, seg)"
            ),
            values=[
                ids,
                [by_id[i].carrier_message_id[:100] for i in ids],
                [by_id[i].submitted_at for i in ids],
                [by_id[i].segments for i in ids],
            ],
        )
        if settled:
            _return_package_segments(
                {
                    s.hold_id: s.package_segments - s.package_charged
                    for s in settled
                    if s.package_charged < s.package_segments
                }
            )
            _book_settlement(
                settled,
                accounts,
                kind=EntryKind.CAPTURE,
                idempotency_key=idempotency_key,
                now=now,
                actor=Actor.system("billing.capture"),
            )
    return len(settled)


def release_holds(*, hold_ids: list[int], idempotency_key: str, reason: str = "") -> int:
    """R-BIL-2: failed before carrier acceptance: held → released; the cash and the package
    segments the holds took go back. Returns how many were released now."""
    ids = list(dict.fromkeys(hold_ids))
    if not ids:
        return 0
    now = timezone.now()
    with transaction.atomic():
        settled, accounts = _settle(
            hold_ids=ids,
            idempotency_key=idempotency_key,
            to_state=HoldState.RELEASED,
            now=now,
            values_sql="FROM unnest(%s::bigint[]) AS v(id)",
            values=[ids],
            reason=reason,
        )
        if not settled:
            return 0
        _return_package_segments({s.hold_id: s.package_segments for s in settled if s.package_segments})
        _book_settlement(
            settled,
            accounts,
            kind=EntryKind.RELEASE,
            idempotency_key=idempotency_key,
            now=now,
            actor=Actor.system("billing.release"),
            reason=reason,
        )
    return len(settled)


@dataclass(frozen=True)
class LateCaptureResult:
    captured: list[int]
    uncollectable: list[int]  # the balance no longer covers them: delivered, but not billed


def capture_released_holds(*, captures: list[Capture], idempotency_key: str) -> LateCaptureResult:
    """R-BIL-2 "delivered wins": a hold released because its message was thought failed, when a
    late receipt proves the carrier took it. The accepted segments are charged from the balance
    at the hold's unit price (the packages the hold once used may have been spent since), only
    if the balance still covers them; otherwise the hold stays released and is listed as
    uncollectable (never a negative balance, R-BIL-9). Holds never captured before only; a
    retry with the same key charges nothing twice.
    """
    by_id = {c.hold_id: c for c in captures}
    captured: list[int] = []
    uncollectable: list[int] = []
    if not by_id:
        return LateCaptureResult(captured, uncollectable)
    if not idempotency_key:
        raise InvalidAmount("An idempotency key is required.", code="idempotency_key_required")
    now = timezone.now()
    with transaction.atomic():
        account_ids = set(
            Hold.objects.filter(pk__in=list(by_id), state=HoldState.RELEASED).values_list("account_id", flat=True)
        )
        accounts = _lock_accounts(account_ids)
        for account_id, account in accounts.items():
            key = f"{idempotency_key}#{account_id}"
            if _replayed(key, account, EntryKind.CAPTURE) is not None:
                continue
            holds = list(
                Hold.objects.select_for_update()
                .filter(pk__in=list(by_id), account_id=account_id, state=HoldState.RELEASED)
                .order_by("pk")
            )
            total, taken = 0, []
            for hold in holds:
                k = by_id[hold.pk].segments or hold.segments
                if k < 1 or k > hold.segments:
                    raise InvalidAmount("Captured segments out of range.", details={"hold_id": hold.pk})
                cost = k * hold.unit_price
                if total + cost > account.balance:
                    uncollectable.append(hold.pk)
                    continue
                total += cost
                taken.append((hold, k, cost))
            if not taken:
                continue
            entry = _entry(
                account=account,
                kind=EntryKind.CAPTURE,
                amount=-total,
                held_delta=0,
                key=key,
                actor=Actor.system("billing.late_capture"),
                reason="late receipt: delivered after release",
                reference=f"{len(taken)} holds (late)",
                details={"holds": len(taken), "late": True},
                created_at=now,
            )
            _save_entries([entry])
            _store_account(account)
            for hold, k, cost in taken:
                capture = by_id[hold.pk]
                hold.state, hold.captured_segments, hold.charged, hold.package_charged = HoldState.CAPTURED, k, cost, 0
                hold.carrier_message_id, hold.submitted_at = capture.carrier_message_id[:100], capture.submitted_at
                hold.settled_at = now
                captured.append(hold.pk)
            Hold.objects.bulk_update(
                [h for h, _, _ in taken],
                [
                    "state",
                    "captured_segments",
                    "charged",
                    "package_charged",
                    "carrier_message_id",
                    "submitted_at",
                    "settled_at",
                ],
            )
    return LateCaptureResult(captured, uncollectable)
