"""Customer API for what the agreements say a tenant is told and answers (issue 18).

Notices inbox (R-DLV-7), re-confirmation of held volume (R-CMP-8), terms (R-TEN-7) and
qualifications (R-TEN-6). Thin: serializers check shape, the services in tenants/ decide.
"""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from . import notices, qualifications, reconfirmation, terms
from .authentication import caller_actor, caller_tenant
from .models import (
    Notice,
    NoticeDelivery,
    NoticeKind,
    Qualification,
    QualificationKind,
    Reconfirmation,
    ReconfirmationAnswer,
    TermsAnswer,
    TermsResponse,
    TermsVersion,
)

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


# --- held volume: re-confirmation (R-CMP-8) ----------------------------------------------------


class HeldMessageOut(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    to = serializers.CharField(source="recipient")
    template = serializers.CharField()
    created_at = serializers.DateTimeField()


class HeldVolumeOut(serializers.Serializer):
    held = serializers.IntegerField()
    messages = HeldMessageOut(many=True)


class HeldVolumeAnswerIn(serializers.Serializer):
    message_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        max_length=reconfirmation.MAX_ANSWER,
        help_text="only these messages; all spike-held messages when omitted",
    )
    comment = serializers.CharField(required=False, allow_blank=True, max_length=1000, default="")


class ReconfirmationOut(serializers.ModelSerializer):
    class Meta:
        model = Reconfirmation
        fields = ["id", "answer", "message_ids", "message_count", "comment", "answered_at"]
        read_only_fields = fields


class HeldVolumeView(APIView):
    """Messages held for a volume spike, waiting for the tenant's answer (R-CMP-8)."""

    readable_in_any_state = True

    @extend_schema(responses=HeldVolumeOut)
    def get(self, request):
        rows = reconfirmation.spike_held_messages(tenant=caller_tenant(request))
        return Response(HeldVolumeOut({"held": rows.count(), "messages": list(rows[:200])}).data)


class _HeldVolumeAnswerView(APIView):
    answer = ""

    @extend_schema(request=HeldVolumeAnswerIn, responses=ReconfirmationOut)
    def post(self, request):
        data = HeldVolumeAnswerIn(data=request.data)
        data.is_valid(raise_exception=True)
        item = reconfirmation.answer_held_volume(
            tenant=caller_tenant(request),
            answer=self.answer,
            actor=caller_actor(request),
            message_ids=data.validated_data.get("message_ids"),
            comment=data.validated_data["comment"],
        )
        return Response(ReconfirmationOut(item).data)


class HeldVolumeConfirmView(_HeldVolumeAnswerView):
    """Confirm: the held messages are released for sending."""

    answer = ReconfirmationAnswer.CONFIRM


class HeldVolumeCancelView(_HeldVolumeAnswerView):
    """Cancel: the held messages are cancelled and their funds released (R-BIL-2)."""

    answer = ReconfirmationAnswer.CANCEL
    allowed_when_suspended = True


# --- terms (R-TEN-7) -----------------------------------------------------------------------------


class TermsOut(serializers.ModelSerializer):
    my_answer = serializers.SerializerMethodField()

    class Meta:
        model = TermsVersion
        fields = [
            "id",
            "version",
            "title",
            "body_zh",
            "body_en",
            "published_at",
            "effective_at",
            "objection_deadline",
            "my_answer",
        ]
        read_only_fields = fields

    def get_my_answer(self, obj) -> dict | None:
        answer = self.context["answers"].get(obj.pk)
        return {"answer": answer.answer, "answered_at": answer.answered_at} if answer else None


class TermsAnswerIn(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, max_length=5000, default="")


class TermsResponseOut(serializers.ModelSerializer):
    class Meta:
        model = TermsResponse
        fields = ["terms", "answer", "comment", "answered_at", "resolved_at", "resolution"]
        read_only_fields = fields


class TermsListView(generics.ListAPIView):
    """Published agreement versions, newest first, each with the caller's answer."""

    serializer_class = TermsOut
    readable_in_any_state = True
    filter_backends = []

    def get_queryset(self):
        return terms.published_terms()

    def get_serializer_context(self):
        answers = TermsResponse.objects.filter(tenant=caller_tenant(self.request)) if self.request else []
        return {**super().get_serializer_context(), "answers": {a.terms_id: a for a in answers}}


class _TermsAnswerView(APIView):
    answer = ""
    allowed_when_suspended = True

    @extend_schema(request=TermsAnswerIn, responses=TermsResponseOut)
    def post(self, request, terms_id: int):
        data = TermsAnswerIn(data=request.data)
        data.is_valid(raise_exception=True)
        response = terms.respond_to_terms(
            tenant=caller_tenant(request),
            terms_id=terms_id,
            answer=self.answer,
            actor=caller_actor(request),
            comment=data.validated_data["comment"],
        )
        return Response(TermsResponseOut(response).data)


class TermsAcceptView(_TermsAnswerView):
    answer = TermsAnswer.ACCEPT


class TermsObjectView(_TermsAnswerView):
    """Object within 7 days of publication; `comment` says what to (required)."""

    answer = TermsAnswer.OBJECT


# --- qualifications (R-TEN-6) ------------------------------------------------------------------


class QualificationIn(serializers.Serializer):
    kind = serializers.ChoiceField(choices=QualificationKind.choices)
    title = serializers.CharField(max_length=200)
    number = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    expires_on = serializers.DateField(required=False, allow_null=True, default=None)
    file = serializers.FileField()


class QualificationOut(serializers.ModelSerializer):
    class Meta:
        model = Qualification
        fields = ["id", "kind", "title", "number", "expires_on", "status", "review_reason", "filed_at", "reviewed_at"]
        read_only_fields = fields


class QualificationsView(generics.ListAPIView):
    """The caller's business licence and permits (GET) and filing a new one (POST, multipart)."""

    serializer_class = QualificationOut
    parser_classes = [MultiPartParser, FormParser]
    readable_in_any_state = True
    allowed_when_suspended = True  # a suspended account may need to file documents to rectify
    filter_backends = []

    def get_queryset(self):
        return Qualification.objects.filter(tenant=caller_tenant(self.request)).order_by("-filed_at", "-id")

    @extend_schema(request={"multipart/form-data": QualificationIn}, responses={201: QualificationOut})
    def post(self, request):
        data = QualificationIn(data=request.data)
        data.is_valid(raise_exception=True)
        item = qualifications.file_qualification(
            tenant=caller_tenant(request), actor=caller_actor(request), **data.validated_data
        )
        return Response(QualificationOut(item).data, status=201)
