"""Customer API for what the agreements say a tenant is told and answers (issue 18).

Notices inbox (R-DLV-7), re-confirmation of held volume (R-CMP-8), terms (R-TEN-7) and
qualifications (R-TEN-6). Thin: serializers check shape, the services in tenants/ decide.
"""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from . import notices
from .authentication import caller_actor, caller_tenant
from .models import Notice, NoticeDelivery, NoticeKind

# --- notices (R-DLV-7) -------------------------------------------------------------------------


class NoticeDeliveryOut(serializers.ModelSerializer):
    class Meta:
        model = NoticeDelivery
        fields = ["channel", "state", "attempts", "sent_at"]
        read_only_fields = fields


class NoticeOut(serializers.ModelSerializer):
    deliveries = NoticeDeliveryOut(many=True, read_only=True)

    class Meta:
        model = Notice
        fields = [
            "id",
            "kind",
            "subject_zh",
            "subject_en",
            "body_zh",
            "body_en",
            "data",
            "effective_at",
            "created_at",
            "acknowledged_at",
            "deliveries",
        ]
        read_only_fields = fields


class NoticeFilterIn(serializers.Serializer):
    unacknowledged = serializers.BooleanField(required=False, default=False)
    kind = serializers.ChoiceField(choices=NoticeKind.choices, required=False)


class NoticesView(generics.ListAPIView):
    """The caller's notices, newest first (R-DLV-7). `?unacknowledged=true`, `?kind=...`."""

    serializer_class = NoticeOut
    readable_in_any_state = True
    filter_backends = []

    @extend_schema(
        parameters=[
            OpenApiParameter("unacknowledged", bool, description="only notices not yet acknowledged"),
            OpenApiParameter("kind", str, enum=NoticeKind.values),
        ]
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        query = NoticeFilterIn(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return notices.notices_for(
            tenant=caller_tenant(self.request),
            unacknowledged=query.validated_data["unacknowledged"],
            kind=query.validated_data.get("kind"),
        ).prefetch_related("deliveries")


class NoticeDetailView(APIView):
    readable_in_any_state = True

    @extend_schema(responses=NoticeOut)
    def get(self, request, notice_id: int):
        notice = notices.notices_for(tenant=caller_tenant(request)).filter(pk=notice_id).first()
        if notice is None:
            raise notices.NoticeNotFound(details={"notice_id": notice_id})
        return Response(NoticeOut(notice).data)


class NoticeAcknowledgeView(APIView):
    """Acknowledge a notice (R-DLV-7): the time and the key are recorded."""

    allowed_when_suspended = True

    @extend_schema(request=None, responses=NoticeOut)
    def post(self, request, notice_id: int):
        notice = notices.acknowledge_notice(
            tenant=caller_tenant(request), notice_id=notice_id, actor=caller_actor(request)
        )
        return Response(NoticeOut(notice).data)
