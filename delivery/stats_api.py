"""Customer API of the audit features: send statistics (R-BIL-7) and erasure requests (R-AUD-4)."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from tenants.authentication import caller_actor, caller_tenant

from . import stats
from .models import ErasureRequest
from .sendlog import retention

# "from" is a Python keyword: these serializers are built with type() to keep the API's names.
StatsQuerySerializer = type(
    "StatsQuerySerializer",
    (serializers.Serializer,),
    {
        "from": serializers.DateTimeField(required=False),
        "to": serializers.DateTimeField(required=False),
        "group_by": serializers.ChoiceField(choices=[g for g in stats.GROUPS if g != "tenant"], required=False),
    },
)


class StatsRowSerializer(serializers.Serializer):
    key = serializers.CharField(allow_null=True)
    total = serializers.IntegerField()
    segments = serializers.IntegerField()
    amount = serializers.IntegerField(help_text="micro-units")
    submitted = serializers.IntegerField()
    delivered = serializers.IntegerField()
    failed = serializers.IntegerField()
    delivery_rate = serializers.FloatField(allow_null=True, help_text="delivered / submitted")
    latency_p50 = serializers.FloatField(allow_null=True, help_text="receipt latency, seconds")
    latency_p90 = serializers.FloatField(allow_null=True)
    latency_p99 = serializers.FloatField(allow_null=True)


StatsSummarySerializer = type(
    "StatsSummarySerializer",
    (serializers.Serializer,),
    {
        "from": serializers.DateTimeField(),
        "to": serializers.DateTimeField(),
        "group_by": serializers.CharField(allow_null=True),
        "totals": StatsRowSerializer(),
        "groups": StatsRowSerializer(many=True),
    },
)


class StatsSummaryView(APIView):
    """R-BIL-7: the caller's send statistics."""

    readable_in_any_state = True

    @extend_schema(
        operation_id="stats_summary",
        parameters=[
            OpenApiParameter("from", str, description="ISO 8601 start (inclusive); default 30 days ago"),
            OpenApiParameter("to", str, description="ISO 8601 end (exclusive); default now"),
            OpenApiParameter("group_by", str, enum=[g for g in stats.GROUPS if g != "tenant"]),
        ],
        responses=StatsSummarySerializer,
    )
    def get(self, request):
        query = StatsQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        data = stats.tenant_stats(
            tenant=caller_tenant(request),
            date_from=query.validated_data.get("from"),
            date_to=query.validated_data.get("to"),
            group_by=query.validated_data.get("group_by"),
        )
        return Response(data)


class ErasureRequestSerializer(serializers.ModelSerializer):
    class Meta:
        model = ErasureRequest
        fields = ["id", "state", "not_before", "rows_anonymised", "created_at", "completed_at", "reason"]
        read_only_fields = fields


class ErasureCreateSerializer(serializers.Serializer):
    number = serializers.CharField(max_length=32, help_text="the recipient's number, E.164")
    reason = serializers.CharField(required=False, allow_blank=True, max_length=1000)


class ErasureRequestListView(APIView):
    """R-AUD-4: ask that a recipient's data be erased. It waits until the retention minimum."""

    # A suspended tenant must still be able to honour a person's erasure request.
    readable_in_any_state = True
    allowed_when_suspended = True

    @extend_schema(operation_id="erasure_requests_list", responses=ErasureRequestSerializer(many=True))
    def get(self, request):
        rows = ErasureRequest.objects.filter(tenant=caller_tenant(request))[:100]
        return Response(ErasureRequestSerializer(rows, many=True).data)

    @extend_schema(
        operation_id="erasure_requests_create",
        request=ErasureCreateSerializer,
        responses={201: ErasureRequestSerializer},
    )
    def post(self, request):
        data = ErasureCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        erasure = retention.request_erasure(
            tenant=caller_tenant(request),
            number=data.validated_data["number"],
            actor=caller_actor(request),
            reason=data.validated_data.get("reason", ""),
        )
        return Response(ErasureRequestSerializer(erasure).data, status=status.HTTP_201_CREATED)


class ErasureRequestDetailView(APIView):
    readable_in_any_state = True

    @extend_schema(operation_id="erasure_requests_retrieve", responses=ErasureRequestSerializer)
    def get(self, request, pk: int):
        erasure = get_object_or_404(ErasureRequest, pk=pk, tenant=caller_tenant(request))
        return Response(ErasureRequestSerializer(erasure).data)
