"""R-BIL-9 / R-BIL-2 / R-BIL-3 / R-BIL-5: random sequences of top-ups, package purchases, holds,
captures of some or all parts, releases, refunds and replays keep balance == sum(entries) >= 0,
held == sum(open holds), package segments exact, parts billed == parts accepted, and settle
each hold once. After a refund, money released by holds booked before it is refunded too."""

import itertools

from django.db import transaction
from django.db.models import Sum
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, multiple, rule, run_state_machine_as_test

from billing import services
from billing.models import Account, EntryKind, Hold, HoldState, LedgerEntry, PackageGrant, PackageProduct, PackageState

from .conftest import DELIVERY, FINANCE, key

_keys = itertools.count()


class LedgerMachine(RuleBasedStateMachine):
    tenant = None  # set by the test
    holds = Bundle("holds")

    def __init__(self):
        super().__init__()
        # Every example starts from the same database state (rolled back in teardown), so the
        # machine is deterministic, as hypothesis requires.
        self.savepoint = transaction.savepoint()
        account = services.account_for(self.tenant)
        account.refresh_from_db()
        self.account = account
        self.balance, self.held = account.balance, account.held
        self.states: dict[int, tuple[int, str]] = {}  # hold id -> (amount, state)
        self.topup_keys: list[tuple[str, int]] = []
        # hold id -> (segments, package segments, unit price, booked after the last refund)
        self.shape: dict[int, tuple[int, int, int, bool]] = {}
        self.accepted: dict[int, int] = {}  # hold id -> parts the carrier accepted
        self.package_segments = sum(
            PackageGrant.objects.filter(account=account, state=PackageState.ACTIVE).values_list(
                "segments_remaining", flat=True
            )
        )
        self.product = PackageProduct.objects.create(name="sm", segments=3, price=0, validity_days=30)

    @rule(amount=st.integers(min_value=1, max_value=5_000_000))
    def topup(self, amount):
        k = f"sm-topup-{next(_keys)}-{key()}"
        services.topup(tenant=self.tenant, amount=amount, actor=FINANCE, idempotency_key=k)
        self.balance += amount
        self.topup_keys.append((k, amount))

    @rule(data=st.data())
    def replay_a_topup(self, data):
        if not self.topup_keys:
            return
        k, amount = data.draw(st.sampled_from(self.topup_keys))
        services.topup(tenant=self.tenant, amount=amount, actor=FINANCE, idempotency_key=k)  # no money moves

    @rule()
    def buy_package(self):
        services.buy_package(tenant=self.tenant, product=self.product, actor=FINANCE, idempotency_key=key("sm-pkg"))
        self.package_segments += 3

    @rule(target=holds, sizes=st.lists(st.tuples(st.integers(1, 4), st.integers(0, 400_000)), min_size=1, max_size=4))
    def hold(self, sizes):
        lines = [services.HoldLine(reference=f"sm:{i}", segments=s, unit_price=p) for i, (s, p) in enumerate(sizes)]
        left, cost, from_packages = self.package_segments, 0, []
        for s, p in sizes:  # packages first, in line order (R-BIL-3)
            take = min(s, left)
            left -= take
            from_packages.append(take)
            cost += (s - take) * p
        try:
            created = services.hold_messages(
                tenant=self.tenant, lines=lines, idempotency_key=key("sm-hold"), actor=DELIVERY
            )
        except services.InsufficientBalance:
            assert cost > self.balance
            return multiple()
        assert cost <= self.balance
        self.balance -= cost
        self.held += cost
        self.package_segments = left
        for h, (s, p), take in zip(created, sizes, from_packages, strict=True):
            assert (h.package_segments, h.amount) == (take, (s - take) * p)
            self.states[h.pk] = (h.amount, HoldState.HELD)
            self.shape[h.pk] = (s, take, p, True)
        return multiple(*[h.pk for h in created])

    @rule(hold_ids=st.lists(holds, min_size=1, max_size=5), data=st.data())
    def capture(self, hold_ids, data):
        """Some or all parts accepted (Capture.segments k of n; None = all)."""
        from django.utils import timezone

        parts = {i: data.draw(st.none() | st.integers(1, self.shape[i][0])) for i in dict.fromkeys(hold_ids)}
        captures = [
            services.Capture(hold_id=i, carrier_message_id=f"c{i}", submitted_at=timezone.now(), segments=parts[i])
            for i in hold_ids
        ]
        expected = {i for i in hold_ids if self.states[i][1] == HoldState.HELD}
        assert services.capture_holds(captures=captures, idempotency_key=key("sm-cap")) == len(expected)
        for i in expected:
            segments, package, price, live = self.shape[i]
            k = parts[i] or segments
            charged = max(k - package, 0) * price
            rest = self.states[i][0] - charged
            self.held -= self.states[i][0]
            if live:  # booked after the last refund: the refused parts' money comes back
                self.balance += rest
                self.package_segments += package - min(k, package)
            self.accepted[i] = k
            self.states[i] = (self.states[i][0], HoldState.CAPTURED)

    @rule(hold_ids=st.lists(holds, min_size=1, max_size=5))
    def release(self, hold_ids):
        expected = {i for i in hold_ids if self.states[i][1] == HoldState.HELD}
        assert services.release_holds(hold_ids=hold_ids, idempotency_key=key("sm-rel")) == len(expected)
        for i in expected:
            self.held -= self.states[i][0]
            if self.shape[i][3]:  # after a refund, money of older holds is refunded on release
                self.balance += self.states[i][0]
                self.package_segments += self.shape[i][1]
            self.states[i] = (self.states[i][0], HoldState.RELEASED)

    @rule()
    def refund(self):
        services.request_refund(
            tenant=self.tenant,
            cause="platform_ended",
            actor=FINANCE,
            reason="service ends",
            idempotency_key=key("sm-refund"),
        )
        self.balance = 0
        self.package_segments = 0  # their unused value went with the refund (R-BIL-5)
        self.shape = {i: (*shape[:3], False) for i, shape in self.shape.items()}

    def teardown(self):
        transaction.savepoint_rollback(self.savepoint)

    @invariant()
    def balance_is_the_sum_of_entries_and_never_negative(self):
        account = Account.objects.get(pk=self.account.pk)
        sums = account.entries.aggregate(balance=Sum("amount"), held=Sum("held_delta"))
        assert account.balance == (sums["balance"] or 0) == self.balance >= 0
        assert account.held == (sums["held"] or 0) == self.held >= 0

    @invariant()
    def package_segments_are_exact_and_parts_billed_equal_parts_accepted(self):
        active = PackageGrant.objects.filter(account=self.account, state=PackageState.ACTIVE)
        assert sum(active.values_list("segments_remaining", flat=True)) == self.package_segments >= 0
        if self.accepted:
            billed = dict(Hold.objects.filter(pk__in=list(self.accepted)).values_list("pk", "captured_segments"))
            assert billed == self.accepted

    @invariant()
    def each_hold_is_settled_at_most_once(self):
        ids = list(self.states)
        if not ids:
            return
        rows = dict(Hold.objects.filter(pk__in=ids).values_list("pk", "state"))
        assert rows == {i: s for i, (_, s) in self.states.items()}
        # the ledger took each settled hold exactly once: settlement entries match settled holds
        account_holds = Hold.objects.filter(account=self.account)
        captured = account_holds.filter(state=HoldState.CAPTURED).aggregate(t=Sum("charged"))["t"] or 0
        held_by_settled = account_holds.exclude(state=HoldState.HELD).aggregate(t=Sum("amount"))["t"] or 0
        entries = LedgerEntry.objects.filter(account=self.account)
        assert -(entries.filter(kind=EntryKind.CAPTURE).aggregate(t=Sum("held_delta"))["t"] or 0) == captured
        released = entries.filter(kind=EntryKind.RELEASE).aggregate(t=Sum("amount"))["t"] or 0
        assert released == held_by_settled - captured  # every micro-unit held is charged or given back


def test_r_bil_9_random_operation_sequences_keep_the_ledger_exact(tenant):
    LedgerMachine.tenant = tenant
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=40, stateful_step_count=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
        ),
    )
