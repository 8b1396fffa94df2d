"""Customer billing API: balance and packages, alert settings, ledger, monthly statements,
detailed bills, disputes and invoices (R-BIL-6, R-BIL-7, R-BIL-8).

All amounts are integers in micro-units (1 CNY = 1,000,000).
"""

import re
from datetime import date

import django_filters
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from tenants.authentication import caller_actor, caller_tenant

from . import selectors, services
from .models import Dispute, EntryKind, Hold, Invoice, LedgerEntry, PackageGrant

MONTH = re.compile(r"^(20\d{2})-(0[1-9]|1[0-2])$")  # 2000-2099: no year 0 or 10000 to overflow


def parse_month(value: str) -> tuple[int, int]:
    match = MONTH.match(value)
    if not match:
        raise NotFound("Months are written YYYY-MM.")
    return int(match.group(1)), int(match.group(2))


class BillingReadable:
    """Bills stay readable whatever the tenant's state (R-BIL-7: a closed account still gets its statement)."""

    readable_in_any_state = True


# --- balance and alert --------------------------------------------------------------------------


class PackageSerializer(serializers.ModelSerializer):
    product = serializers.CharField(source="product.name")

    class Meta:
        model = PackageGrant
        fields = ["id", "product", "segments_total", "segments_remaining", "message_types", "starts_at", "expires_at"]


class BalanceSerializer(serializers.Serializer):
    currency = serializers.CharField()
    balance = serializers.IntegerField(help_text="spendable cash, micro-units")
    held = serializers.IntegerField(help_text="reserved for messages in flight, micro-units")
    package_segments = serializers.IntegerField()
    packages = PackageSerializer(many=True)
    low_balance_threshold = serializers.IntegerField(allow_null=True)


class BalanceView(BillingReadable, APIView):
    @extend_schema(responses=BalanceSerializer, operation_id="billing_balance")
    def get(self, request):
        tenant = caller_tenant(request)
        account = selectors.account_of(tenant=tenant)
        packages = list(selectors.active_packages(tenant=tenant))
        data = {
            "currency": account.currency if account else "CNY",
            "balance": account.balance if account else 0,
            "held": account.held if account else 0,
            "package_segments": sum(p.segments_remaining for p in packages),
            "packages": packages,
            "low_balance_threshold": account.low_balance_threshold if account else None,
        }
        return Response(BalanceSerializer(data).data)


class AlertInputSerializer(serializers.Serializer):
    threshold = serializers.IntegerField(min_value=0, allow_null=True, help_text="micro-units; null turns alerts off")
    webhook_url = serializers.URLField(required=False, allow_blank=True)


class AlertSerializer(serializers.Serializer):
    threshold = serializers.IntegerField(allow_null=True)
    webhook_url = serializers.CharField()
    webhook_secret = serializers.CharField(help_text="HMAC-SHA256 key of X-Billing-Signature")


class AlertView(BillingReadable, APIView):
    """R-BIL-6: the low-balance alert threshold and webhook."""

    def _out(self, account):
        return Response(
            AlertSerializer(
                {
                    "threshold": account.low_balance_threshold if account else None,
                    "webhook_url": account.alert_webhook_url if account else "",
                    "webhook_secret": services.webhook_secret_of(account) if account else "",
                }
            ).data
        )

    @extend_schema(responses=AlertSerializer, operation_id="billing_alert_retrieve")
    def get(self, request):
        return self._out(selectors.account_of(tenant=caller_tenant(request)))

    @extend_schema(request=AlertInputSerializer, responses=AlertSerializer, operation_id="billing_alert_update")
    def put(self, request):
        data = AlertInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        account = services.set_low_balance_alert(
            tenant=caller_tenant(request),
            threshold=data.validated_data["threshold"],
            webhook_url=data.validated_data.get("webhook_url"),
            actor=caller_actor(request),
        )
        return self._out(account)


# --- ledger ---------------------------------------------------------------------------------------


class LedgerEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = LedgerEntry
        fields = [
            "id",
            "created_at",
            "kind",
            "amount",
            "held_delta",
            "balance_after",
            "held_after",
            "reference",
            "reason",
            "idempotency_key",
        ]


class LedgerFilter(django_filters.FilterSet):
    kind = django_filters.MultipleChoiceFilter(choices=EntryKind.choices)
    created = django_filters.IsoDateTimeFromToRangeFilter(field_name="created_at")

    class Meta:
        model = LedgerEntry
        fields = ["kind", "created"]


class LedgerView(BillingReadable, generics.ListAPIView):
    """Every ledger entry of the caller's account (R-BIL-9); filter by kind and
    created_after / created_before (ISO 8601)."""

    serializer_class = LedgerEntrySerializer
    filterset_class = LedgerFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return LedgerEntry.objects.none()
        return selectors.entries_of(tenant=caller_tenant(self.request))


# --- statements and bills (R-BIL-7, R-BIL-8) -----------------------------------------------------------


class StatementSerializer(serializers.Serializer):
    month = serializers.CharField()
    currency = serializers.CharField()
    opening = serializers.IntegerField()
    top_ups = serializers.IntegerField()
    package_purchases = serializers.IntegerField()
    charges = serializers.IntegerField()
    refunds = serializers.IntegerField()
    penalties = serializers.IntegerField()
    forfeits = serializers.IntegerField()
    compensations = serializers.IntegerField()
    adjustments = serializers.IntegerField()
    closing = serializers.IntegerField()
    closing_balance = serializers.IntegerField()
    closing_held = serializers.IntegerField()
    collections = serializers.IntegerField(help_text="receivables collected from top-ups")
    receivables_outstanding = serializers.IntegerField(help_text="owed beyond the balance at the end of the month")
    captured_messages = serializers.IntegerField()
    captured_segments = serializers.IntegerField()
    package_segments = serializers.IntegerField()


class StatementView(BillingReadable, APIView):
    @extend_schema(responses=StatementSerializer, operation_id="billing_statement")
    def get(self, request, month: str):
        year, number = parse_month(month)
        return Response(
            StatementSerializer(selectors.statement_for(tenant=caller_tenant(request), year=year, month=number)).data
        )


class BillPartSerializer(serializers.Serializer):
    part = serializers.IntegerField()
    carrier_message_id = serializers.CharField()
    receipt = serializers.CharField(help_text="receipt state of this part (DELIVRD, UNDELIV…) or its status")


class BilledMessageSerializer(serializers.ModelSerializer):
    captured_at = serializers.DateTimeField(source="settled_at")
    parts_billed = serializers.IntegerField(source="captured_segments", help_text="segments the carrier accepted")
    package_segments = serializers.IntegerField(source="package_charged", help_text="of which paid by packages")
    message_id = serializers.SerializerMethodField()
    status = serializers.SerializerMethodField()
    parts = serializers.SerializerMethodField()
    amount = serializers.IntegerField(help_text="cash held for the message, micro-units")
    charged = serializers.IntegerField(help_text="cash charged: the accepted parts not paid by packages")

    class Meta:
        model = Hold
        fields = [
            "id",
            "reference",
            "message_id",
            "message_type",
            "status",
            "segments",
            "parts_billed",
            "package_segments",
            "unit_price",
            "amount",
            "charged",
            "carrier_message_id",
            "parts",
            "submitted_at",
            "captured_at",
        ]

    def _evidence(self, obj) -> dict:
        return self.context.get("evidence", {}).get(obj.pk, {})

    def get_message_id(self, obj) -> int | None:
        return self._evidence(obj).get("message_id")

    def get_status(self, obj) -> str:
        return self._evidence(obj).get("status", "")

    @extend_schema_field(BillPartSerializer(many=True))
    def get_parts(self, obj) -> list:
        return self._evidence(obj).get("parts", [])


class BilledMessagesView(BillingReadable, generics.ListAPIView):
    """R-BIL-7/8, the detailed bill: each billed message of the month with its status, the parts
    billed, and every part the carrier accepted (carrier id, receipt): evidence to check."""

    serializer_class = BilledMessageSerializer
    filter_backends: list = []

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Hold.objects.none()
        year, number = parse_month(self.kwargs["month"])
        return selectors.billed_messages(tenant=caller_tenant(self.request), year=year, month=number)

    def list(self, request, *args, **kwargs):
        queryset = self.get_queryset()
        page = self.paginate_queryset(queryset)
        rows = list(page if page is not None else queryset)
        evidence = selectors.bill_evidence(tenant=caller_tenant(request), hold_ids=[h.pk for h in rows])
        data = BilledMessageSerializer(rows, many=True, context={"evidence": evidence}).data
        return self.get_paginated_response(data) if page is not None else Response(data)


# --- prices (R-BIL-4) ---------------------------------------------------------------------------------


class PriceRowSerializer(serializers.Serializer):
    plan = serializers.CharField(source="plan.code")
    message_type = serializers.CharField()
    country = serializers.CharField()
    carrier = serializers.CharField(help_text="empty: any carrier")
    unit_price = serializers.IntegerField(help_text="micro-units per segment")
    currency = serializers.CharField()
    effective_from = serializers.DateTimeField()
    announced_at = serializers.DateTimeField()


class PlanChangeSerializer(serializers.Serializer):
    scope = serializers.CharField(help_text="account: your own plan; default: the default plan you follow")
    plan = serializers.CharField(allow_null=True)
    effective_from = serializers.DateTimeField()
    announced_at = serializers.DateTimeField()


class PricesSerializer(serializers.Serializer):
    currency = serializers.CharField()
    plan = serializers.CharField(allow_null=True)
    current = PriceRowSerializer(many=True, help_text="in force now")
    announced = PriceRowSerializer(many=True, help_text="announced, with the date they take effect")
    plan_changes = PlanChangeSerializer(many=True)


class PricesView(BillingReadable, APIView):
    """R-BIL-4: the caller's prices in force now and every announced change with its date."""

    @extend_schema(responses=PricesSerializer, operation_id="billing_prices")
    def get(self, request):
        return Response(PricesSerializer(selectors.prices_for(tenant=caller_tenant(request))).data)


# --- disputes and invoices ---------------------------------------------------------------------------


class DisputeSerializer(serializers.ModelSerializer):
    month = serializers.DateField(format="%Y-%m")

    class Meta:
        model = Dispute
        fields = ["id", "month", "description", "state", "compensation", "resolution", "created_at", "resolved_at"]


class DisputeInputSerializer(serializers.Serializer):
    month = serializers.RegexField(MONTH, help_text="YYYY-MM; only the current month can be disputed")
    description = serializers.CharField(max_length=5000)


class DisputesView(BillingReadable, generics.ListCreateAPIView):
    """R-BIL-8: dispute the current month's bill; compensation is capped at 10% of its usage."""

    serializer_class = DisputeSerializer
    filter_backends: list = []

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Dispute.objects.none()
        return Dispute.objects.filter(account__tenant=caller_tenant(self.request)).order_by("-created_at")

    @extend_schema(
        request=DisputeInputSerializer, responses={201: DisputeSerializer}, operation_id="billing_dispute_create"
    )
    def post(self, request):
        data = DisputeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        year, number = parse_month(data.validated_data["month"])
        dispute = services.open_dispute(
            tenant=caller_tenant(request),
            month=date(year, number, 1),
            description=data.validated_data["description"],
            actor=caller_actor(request),
        )
        return Response(DisputeSerializer(dispute).data, status=status.HTTP_201_CREATED)


class InvoiceSerializer(serializers.ModelSerializer):
    class Meta:
        model = Invoice
        fields = ["id", "number", "amount", "state", "issued_at", "returned_at", "entry"]


class InvoicesView(BillingReadable, generics.ListAPIView):
    serializer_class = InvoiceSerializer
    filter_backends: list = []

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Invoice.objects.none()
        return Invoice.objects.filter(account__tenant=caller_tenant(self.request)).order_by("-issued_at")


class MismatchSerializer(serializers.Serializer):
    message_id = serializers.IntegerField()
    hold_id = serializers.IntegerField()
    status = serializers.CharField()
    hold_state = serializers.CharField()
    carrier_accepted_parts = serializers.IntegerField()
    billed_parts = serializers.IntegerField()
    difference = serializers.IntegerField(help_text="billed − accepted: > 0 over-billed, < 0 under-billed")
    carrier_message_ids = serializers.ListField(child=serializers.CharField())
    receipts = serializers.ListField(child=serializers.CharField())


class ReconciliationSerializer(serializers.Serializer):
    month = serializers.CharField()
    submitted = serializers.IntegerField(help_text="messages accepted by the platform")
    submitted_segments = serializers.IntegerField()
    carrier_accepted = serializers.IntegerField(help_text="messages with at least one part the carrier accepted")
    carrier_accepted_segments = serializers.IntegerField(help_text="parts the carrier accepted (submit_sm_resp OK)")
    delivered = serializers.IntegerField()
    delivered_parts = serializers.IntegerField()
    billed = serializers.IntegerField()
    billed_segments = serializers.IntegerField()
    billed_package_segments = serializers.IntegerField()
    billed_amount = serializers.IntegerField(help_text="micro-units")
    matches = serializers.BooleanField(help_text="every message: parts billed == parts the carrier accepted")
    mismatch_count = serializers.IntegerField()
    mismatches = MismatchSerializer(many=True, help_text="at most 1000 listed; mismatch_count is exact")


class ReconciliationView(BillingReadable, APIView):
    """R-BIL-8: submitted, carrier-accepted, delivered and billed counts of a month side by side."""

    @extend_schema(responses=ReconciliationSerializer, operation_id="billing_reconciliation")
    def get(self, request, month: str):
        year, number = parse_month(month)
        report = selectors.reconciliation_for(tenant=caller_tenant(request), year=year, month=number)
        return Response(ReconciliationSerializer(report).data)
