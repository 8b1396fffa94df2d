"""Customer billing API: balance and packages, alert settings, ledger, monthly statements,
detailed bills, disputes and invoices (R-BIL-6, R-BIL-7, R-BIL-8).

All amounts are integers in micro-units (1 CNY = 1,000,000).
"""

import re
from datetime import date

import django_filters
from drf_spectacular.utils import extend_schema
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


class BilledMessageSerializer(serializers.ModelSerializer):
    captured_at = serializers.DateTimeField(source="settled_at")

    class Meta:
        model = Hold
        fields = [
            "id",
            "reference",
            "message_type",
            "segments",
            "package_segments",
            "unit_price",
            "amount",
            "carrier_message_id",
            "submitted_at",
            "captured_at",
        ]


class BilledMessagesView(BillingReadable, generics.ListAPIView):
    """The detailed bill: each captured message of the month, with its carrier message id."""

    serializer_class = BilledMessageSerializer
    filter_backends: list = []

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Hold.objects.none()
        year, number = parse_month(self.kwargs["month"])
        return selectors.billed_messages(tenant=caller_tenant(self.request), year=year, month=number)


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


class ReconciliationSerializer(serializers.Serializer):
    month = serializers.CharField()
    submitted = serializers.IntegerField(help_text="messages accepted by the platform")
    submitted_segments = serializers.IntegerField()
    carrier_accepted = serializers.IntegerField(help_text="messages the carrier accepted (submit_sm_resp OK)")
    carrier_accepted_segments = serializers.IntegerField()
    delivered = serializers.IntegerField()
    billed = serializers.IntegerField()
    billed_segments = serializers.IntegerField()
    billed_amount = serializers.IntegerField(help_text="micro-units")
    matches = serializers.BooleanField(help_text="billed_segments == carrier_accepted_segments")


class ReconciliationView(BillingReadable, APIView):
    """R-BIL-8: submitted, carrier-accepted, delivered and billed counts of a month side by side."""

    @extend_schema(responses=ReconciliationSerializer, operation_id="billing_reconciliation")
    def get(self, request, month: str):
        year, number = parse_month(month)
        report = selectors.reconciliation_for(tenant=caller_tenant(request), year=year, month=number)
        return Response(ReconciliationSerializer(report).data)
