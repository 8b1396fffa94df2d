"""Customer API of delivery (R-DLV-1/4/5/6): sends, batches, status, replies, maintenance, callbacks.

Thin: serializers check shape, services decide. Requests are already in the caller's schema, so
another tenant's message id is simply not found (404).
"""

import django_filters
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import generics, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from smsplatform import crypto
from tenants.authentication import caller_actor, caller_tenant

from . import callbacks, errors, held, intake, selectors
from .models import InboundMessage, Maintenance, Message, MessageStatus, SendRequest, StatusEvent

# --- serializers --------------------------------------------------------------------------------


class _SendCommon(serializers.Serializer):
    signature = serializers.CharField(max_length=40, help_text="approved signature text, without 【】")
    template = serializers.CharField(max_length=40, help_text="approved template code")
    params = serializers.DictField(required=False, default=dict, help_text="template variables")
    send_at = serializers.DateTimeField(required=False, allow_null=True, help_text="scheduled send (ISO 8601)")
    client_ref = serializers.CharField(required=False, allow_blank=True, max_length=64, help_text="idempotency key")
    callback_url = serializers.URLField(required=False, allow_blank=True, max_length=500)


class SingleSendIn(_SendCommon):
    to = serializers.CharField(max_length=32, help_text="E.164, or a Chinese number without +")


class RecipientIn(serializers.Serializer):
    to = serializers.CharField(max_length=32)
    params = serializers.DictField(required=False, allow_null=True)


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "example": "+8613800138000"},
            {
                "type": "object",
                "required": ["to"],
                "properties": {"to": {"type": "string"}, "params": {"type": "object", "additionalProperties": True}},
            },
        ]
    }
)
class RecipientField(serializers.Field):
    """A recipient is "+8613…" or {"to": "+8613…", "params": {...}} (own parameters)."""

    def to_internal_value(self, data):
        if isinstance(data, str):
            return intake.RecipientInput(number=data)
        item = RecipientIn(data=data)
        item.is_valid(raise_exception=True)
        return intake.RecipientInput(number=item.validated_data["to"], params=item.validated_data.get("params") or None)

    def to_representation(self, value):
        return {"to": value.number, "params": value.params}


class BatchSendIn(_SendCommon):
    recipients = serializers.ListField(child=RecipientField(), min_length=1, max_length=intake.MAX_BATCH)


class MessageSummaryOut(serializers.Serializer):
    id = serializers.IntegerField()
    to = serializers.CharField()
    status = serializers.CharField()
    reason = serializers.CharField(allow_null=True, help_text="refusal or failure code; null when none")
    message = serializers.CharField(
        allow_null=True, help_text="why it was refused, as a single send's error message says; null when accepted"
    )
    segments = serializers.IntegerField()
    unit_price = serializers.IntegerField(help_text="micro-units per segment")
    amount = serializers.IntegerField(help_text="micro-units held")


class BatchAcceptedOut(serializers.Serializer):
    id = serializers.IntegerField()
    client_ref = serializers.CharField(allow_null=True)
    send_at = serializers.DateTimeField(allow_null=True)
    accepted = serializers.IntegerField()
    rejected = serializers.IntegerField()
    messages = MessageSummaryOut(many=True)


class StatusEventOut(serializers.ModelSerializer):
    class Meta:
        model = StatusEvent
        fields = ["from_status", "to_status", "at", "detail"]


class MessageOut(serializers.ModelSerializer):
    batch = serializers.IntegerField(source="request_id")
    to = serializers.CharField(source="recipient")
    reason = serializers.CharField(allow_null=True, help_text="refusal or failure code; null when none")
    error_code = serializers.CharField(allow_null=True, help_text="the carrier's error code; null when none")

    def to_representation(self, instance):
        data = super().to_representation(instance)
        # One convention with the send answers and callbacks: "no reason" is null, never "".
        data["reason"] = data["reason"] or None
        data["error_code"] = data["error_code"] or None
        return data

    class Meta:
        model = Message
        fields = [
            "id",
            "batch",
            "client_ref",
            "to",
            "country",
            "carrier",
            "message_type",
            "signature",
            "template",
            "content",
            "encoding",
            "segments",
            "unit_price",
            "amount",
            "status",
            "status_at",
            "reason",
            "error_code",
            "send_at",
            "submitted_at",
            "done_at",
            "created_at",
        ]


class MessageDetailOut(MessageOut):
    history = StatusEventOut(many=True, source="events")
    carrier_message_ids = serializers.SerializerMethodField()

    class Meta(MessageOut.Meta):
        fields = [*MessageOut.Meta.fields, "history", "carrier_message_ids"]

    def get_carrier_message_ids(self, obj) -> list[str]:
        return [p.carrier_message_id for p in sorted(obj.parts.all(), key=lambda p: p.part)]


class BatchOut(serializers.ModelSerializer):
    status_counts = serializers.SerializerMethodField()

    class Meta:
        model = SendRequest
        fields = ["id", "kind", "client_ref", "total", "accepted", "rejected", "send_at", "created_at", "status_counts"]

    def get_status_counts(self, obj) -> dict[str, int]:
        from django.db.models import Count

        return dict(obj.messages.values_list("status").annotate(n=Count("pk")).order_by())


class ReplyOut(serializers.ModelSerializer):
    class Meta:
        model = InboundMessage
        fields = ["id", "source", "destination", "text", "keyword_action", "received_at"]


class MaintenanceOut(serializers.ModelSerializer):
    channel = serializers.CharField(source="channel.name")

    class Meta:
        model = Maintenance
        fields = ["id", "channel", "starts_at", "ends_at", "notice"]


class CallbackSettingsOut(serializers.Serializer):
    callback_url = serializers.URLField(allow_blank=True)
    callback_format = serializers.CharField(help_text="platform | alibaba (SmsReport / SmsUp arrays, docs/alibaba.md)")
    callback_secret = serializers.SerializerMethodField(help_text="HMAC-SHA256 key for the X-Signature header")

    def get_callback_secret(self, obj) -> str:
        return crypto.decrypt_secret(obj.callback_secret)


class CallbackSettingsIn(serializers.Serializer):
    callback_url = serializers.URLField(allow_blank=True, max_length=200)
    rotate_secret = serializers.BooleanField(required=False, default=False)
    callback_format = serializers.ChoiceField(choices=["platform", "alibaba"], required=False)


# --- filters -----------------------------------------------------------------------------------


class MessageFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=MessageStatus.choices)
    recipient = django_filters.CharFilter(method="filter_recipient")
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    batch = django_filters.NumberFilter(field_name="request_id")
    client_ref = django_filters.CharFilter()

    class Meta:
        model = Message
        fields = ["status", "recipient", "created_after", "created_before", "batch", "client_ref"]

    def filter_recipient(self, queryset, name, value):
        from smsplatform.numbers import normalise_strict

        return queryset.filter(recipient=normalise_strict(value) or value)


# --- views -------------------------------------------------------------------------------------


def _send_response(outcome: intake.SendOutcome) -> Response:
    headers = {"Idempotent-Replay": "true"} if outcome.replayed else {}
    return Response(outcome.body, status=outcome.http_status, headers=headers)


class MessagesView(generics.ListAPIView):
    """GET: your messages, filterable. POST: send one message (R-DLV-1)."""

    serializer_class = MessageOut
    filterset_class = MessageFilter

    def get_queryset(self):
        return selectors.messages_for_caller()

    @extend_schema(
        request=SingleSendIn,
        examples=[
            OpenApiExample(
                "A verification code",
                description="The demo tenant of `make run`: use the template code it printed (Send: line).",
                value={
                    "to": "13800138000",
                    "signature": "DemoShop",
                    "template": "TPL_7J0R54",
                    "params": {"code": "123456"},
                    "client_ref": "order-1001-code",
                },
                request_only=True,
            )
        ],
        responses={
            202: MessageSummaryOut,
            402: OpenApiResponse(description="insufficient_balance"),
            409: OpenApiResponse(description="client_ref_conflict"),
            422: OpenApiResponse(description="the recipient was refused (code = reason)"),
        },
    )
    def post(self, request):
        data = SingleSendIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        outcome = intake.accept_send(
            tenant=caller_tenant(request),
            actor=caller_actor(request),
            kind=SendRequest.Kind.SINGLE,
            signature=v["signature"],
            template=v["template"],
            recipients=[intake.RecipientInput(number=v["to"])],
            params=v["params"],
            send_at=v.get("send_at"),
            client_ref=v.get("client_ref") or None,
            callback_url=v.get("callback_url", ""),
        )
        return _send_response(outcome)


class MessageDetailView(APIView):
    @extend_schema(responses=MessageDetailOut)
    def get(self, request, message_id: int):
        message = selectors.message_detail(message_id=message_id)
        if message is None:
            raise errors.MessageNotFound()
        return Response(MessageDetailOut(message).data)


class MessageCancelView(APIView):
    @extend_schema(request=None, responses={200: MessageOut, 409: OpenApiResponse(description="not_cancellable")})
    def post(self, request, message_id: int):
        message = held.cancel_message(tenant=caller_tenant(request), message_id=message_id, actor=caller_actor(request))
        return Response(MessageOut(message).data)


class BatchCreateView(APIView):
    @extend_schema(
        request=BatchSendIn,
        examples=[
            OpenApiExample(
                "Two recipients, one with its own parameters",
                description="The demo tenant of `make run`: use the template code it printed (Send: line).",
                value={
                    "signature": "DemoShop",
                    "template": "TPL_7J0R54",
                    "params": {"code": "123456"},
                    "recipients": ["13800138000", {"to": "+8613900139000", "params": {"code": "654321"}}],
                    "client_ref": "campaign-2026-11-30",
                },
                request_only=True,
            )
        ],
        responses={
            202: BatchAcceptedOut,
            402: OpenApiResponse(description="insufficient_balance"),
            409: OpenApiResponse(description="client_ref_conflict"),
        },
    )
    def post(self, request):
        data = BatchSendIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        outcome = intake.accept_send(
            tenant=caller_tenant(request),
            actor=caller_actor(request),
            kind=SendRequest.Kind.BATCH,
            signature=v["signature"],
            template=v["template"],
            recipients=v["recipients"],
            params=v["params"],
            send_at=v.get("send_at"),
            client_ref=v.get("client_ref") or None,
            callback_url=v.get("callback_url", ""),
        )
        return _send_response(outcome)


class BatchDetailView(APIView):
    @extend_schema(responses=BatchOut)
    def get(self, request, batch_id: int):
        batch = selectors.send_request_detail(request_id=batch_id)
        if batch is None:
            raise errors.MessageNotFound("No such batch.", code="batch_not_found")
        return Response(BatchOut(batch).data)


class RepliesView(generics.ListAPIView):
    """Replies (MO) to your messages (R-DLV-5)."""

    serializer_class = ReplyOut

    def get_queryset(self):
        return selectors.replies_for_caller()


class MaintenanceView(generics.ListAPIView):
    """Announced channel maintenance (R-DLV-6)."""

    serializer_class = MaintenanceOut
    readable_in_any_state = True

    def get_queryset(self):
        return selectors.maintenance_notices()


class CallbackSettingsView(APIView):
    @extend_schema(responses=CallbackSettingsOut)
    def get(self, request):
        row = callbacks.delivery_settings_for(tenant=caller_tenant(request))
        return Response(CallbackSettingsOut(row).data)

    @extend_schema(request=CallbackSettingsIn, responses=CallbackSettingsOut)
    def put(self, request):
        data = CallbackSettingsIn(data=request.data)
        data.is_valid(raise_exception=True)
        row = callbacks.update_callback_settings(
            tenant=caller_tenant(request),
            callback_url=data.validated_data["callback_url"],
            actor=caller_actor(request),
            rotate_secret=data.validated_data["rotate_secret"],
            callback_format=data.validated_data.get("callback_format"),
        )
        return Response(CallbackSettingsOut(row).data)
