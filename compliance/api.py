"""Customer API of compliance: signatures, templates, opt-outs, consents, violations, complaints.

Thin: serializers check shape, services decide. Every write goes through a service that records
the operation (R-AUD-3). Public-schema rows are filtered by the caller's tenant, so another
tenant's ids answer 404.
"""

import csv
import io

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from smsplatform.parsers import JSONParser
from tenants.authentication import caller_actor, caller_tenant

from . import frequency, selectors, services
from .models import (
    Complaint,
    Consent,
    CountryRule,
    EnforcementAction,
    MessageType,
    OptOut,
    Signature,
    SignatureProof,
    Template,
    TemplateVersion,
    Violation,
)
from .resources import OptOutResource

ERROR = inline_serializer(
    "Error",
    fields={"code": serializers.CharField(), "message": serializers.CharField(), "details": serializers.JSONField()},
)

# --- signatures (R-CMP-1) --------------------------------------------------------------------


class SignatureProofSerializer(serializers.ModelSerializer):
    name = serializers.SerializerMethodField()

    class Meta:
        model = SignatureProof
        fields = ["id", "name", "uploaded_at"]

    def get_name(self, obj) -> str:
        return obj.file.name.rsplit("/", 1)[-1]


class SignatureSerializer(serializers.ModelSerializer):
    proofs = SignatureProofSerializer(many=True, read_only=True)

    class Meta:
        model = Signature
        fields = ["id", "text", "purpose", "status", "review_reason", "reviewed_at", "created_at", "proofs"]
        read_only_fields = fields


class SignatureFileSerializer(serializers.Serializer):
    text = serializers.CharField(
        max_length=40, trim_whitespace=False, help_text="The brand, without 【】: 2–20 characters."
    )
    purpose = serializers.CharField(allow_blank=True, required=False, default="")
    proofs = serializers.ListField(
        child=serializers.FileField(max_length=200),
        min_length=1,
        max_length=10,
        help_text="Proof documents (licence, trademark, authorisation letter).",
    )


class WithdrawSerializer(serializers.Serializer):
    reason = serializers.CharField(allow_blank=True, required=False, default="")


@extend_schema_view(
    list=extend_schema(summary="List your signatures"),
    retrieve=extend_schema(
        summary="A signature and its review status", responses={200: SignatureSerializer, 404: ERROR}
    ),
)
class SignatureViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """R-CMP-1: file signatures with proof; only approved ones send."""

    serializer_class = SignatureSerializer
    parser_classes = [MultiPartParser, FormParser, JSONParser]
    filterset_fields = ["status"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no caller
            return Signature.objects.none()
        return selectors.signatures_for(tenant=caller_tenant(self.request))

    @extend_schema(
        summary="File a signature for review (multipart with proof files)",
        request={"multipart/form-data": SignatureFileSerializer},
        responses={201: SignatureSerializer, 400: ERROR, 409: ERROR},
    )
    def create(self, request):
        data = SignatureFileSerializer(
            data={
                "text": request.data.get("text"),
                "purpose": request.data.get("purpose", ""),
                "proofs": request.FILES.getlist("proofs"),
            }
        )
        data.is_valid(raise_exception=True)
        signature = services.file_signature(
            tenant=caller_tenant(request), actor=caller_actor(request), **data.validated_data
        )
        return Response(SignatureSerializer(signature).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Withdraw a signature",
        request=WithdrawSerializer,
        responses={200: SignatureSerializer, 404: ERROR, 409: ERROR},
    )
    @action(detail=True, methods=["post"])
    def withdraw(self, request, pk=None):
        data = WithdrawSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        signature = services.withdraw_signature(
            signature=self.get_object(), actor=caller_actor(request), reason=data.validated_data["reason"]
        )
        return Response(SignatureSerializer(signature).data)


# --- templates (R-CMP-2) ---------------------------------------------------------------------


class TemplateVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = TemplateVersion
        fields = ["number", "body", "variables", "status", "review_reason", "reviewed_at", "created_at"]
        read_only_fields = fields


class TemplateSerializer(serializers.ModelSerializer):
    type = serializers.CharField(source="message_type")
    approved_version = serializers.SerializerMethodField()
    latest_version = serializers.SerializerMethodField()

    class Meta:
        model = Template
        fields = ["code", "name", "type", "approved_version", "latest_version", "created_at"]
        read_only_fields = fields

    def get_approved_version(self, obj) -> int | None:
        return obj.approved_version.number if obj.approved_version else None

    @extend_schema_field(TemplateVersionSerializer(allow_null=True))
    def get_latest_version(self, obj):
        latest = selectors.latest_version(obj)
        return TemplateVersionSerializer(latest).data if latest else None


class VariableSpecSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["code", "number", "date", "text", "url"])
    max_length = serializers.IntegerField(required=False, min_value=1)


class TemplateFileSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    type = serializers.ChoiceField(choices=MessageType.values)
    body = serializers.CharField(trim_whitespace=False)
    variables = serializers.DictField(
        child=VariableSpecSerializer(),
        required=False,
        default=dict,
        help_text='{"code": {"kind": "code"}, "name": {"kind": "text", "max_length": 10}}',
    )


class TemplateReviseSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)
    body = serializers.CharField(trim_whitespace=False)
    variables = serializers.DictField(child=VariableSpecSerializer(), required=False, default=dict)


@extend_schema_view(
    list=extend_schema(summary="List your templates"),
    retrieve=extend_schema(
        summary="A template with its approved and latest versions", responses={200: TemplateSerializer, 404: ERROR}
    ),
)
class TemplateViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """R-CMP-2: typed-variable templates; editing an approved one files a new version for review."""

    serializer_class = TemplateSerializer
    lookup_field = "code"
    filterset_fields = ["message_type"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no caller
            return Template.objects.none()
        return selectors.templates_for(tenant=caller_tenant(self.request))

    @extend_schema(
        summary="File a template for review",
        request=TemplateFileSerializer,
        responses={201: TemplateSerializer, 400: ERROR},
    )
    def create(self, request):
        data = TemplateFileSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        template = services.file_template(
            tenant=caller_tenant(request),
            name=values["name"],
            message_type=values["type"],
            body=values["body"],
            variables={k: dict(v) for k, v in values["variables"].items()},
            actor=caller_actor(request),
        )
        return Response(
            TemplateSerializer(selectors.templates_for(tenant=caller_tenant(request)).get(pk=template.pk)).data,
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(
        summary="Revise a template: files a new version for review (the approved one keeps sending)",
        request=TemplateReviseSerializer,
        responses={200: TemplateSerializer, 400: ERROR, 404: ERROR},
    )
    def update(self, request, code=None):
        data = TemplateReviseSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        template = self.get_object()
        services.revise_template(
            template=template,
            body=values["body"],
            name=values.get("name"),
            variables={k: dict(v) for k, v in values["variables"].items()},
            actor=caller_actor(request),
        )
        return Response(TemplateSerializer(self.get_queryset().get(pk=template.pk)).data)

    @extend_schema(
        summary="Revise a template (same as PUT)",
        request=TemplateReviseSerializer,
        responses={200: TemplateSerializer, 400: ERROR, 404: ERROR},
    )
    def partial_update(self, request, code=None):
        return self.update(request, code=code)

    @extend_schema(summary="All versions of a template, newest first", responses=TemplateVersionSerializer(many=True))
    # A template has a handful of versions: one plain list, as the schema says (no pages, no filters).
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def versions(self, request, code=None):
        versions = selectors.versions_of(template=self.get_object())
        return Response(TemplateVersionSerializer(versions, many=True).data)


# --- opt-outs (R-CMP-4) ----------------------------------------------------------------------


class OptOutSerializer(serializers.ModelSerializer):
    class Meta:
        model = OptOut
        fields = ["number", "source", "keyword", "created_at"]
        read_only_fields = ["source", "keyword", "created_at"]


class NumberSerializer(serializers.Serializer):
    number = serializers.CharField(max_length=32)


class ImportFileSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="CSV with a `number` column (or one number per line).")


class OptOutViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """R-CMP-4: the tenant's opt-out list. Customers add; only the recipient's opt-in reply (START)
    or an operator removes (DELETE answers 403 optout_removal_forbidden)."""

    serializer_class = OptOutSerializer
    lookup_field = "number"
    lookup_value_regex = r"\+?[0-9]{3,20}"
    filterset_fields = ["number", "source"]
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    def get_queryset(self):
        return selectors.opt_outs()  # the request is in the caller's schema

    @extend_schema(
        summary="Add a number to your opt-out list",
        request=NumberSerializer,
        responses={201: OptOutSerializer, 400: ERROR},
    )
    def create(self, request):
        data = NumberSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        opt_out = services.add_opt_out(
            tenant=caller_tenant(request), number=data.validated_data["number"], actor=caller_actor(request)
        )
        return Response(OptOutSerializer(opt_out).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Remove an opt-out: refused for customers (optout_removal_forbidden)", responses={204: None, 403: ERROR}
    )
    def destroy(self, request, number=None):
        services.remove_opt_out(tenant=caller_tenant(request), number=number, actor=caller_actor(request))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(summary="Export your opt-out list as CSV", responses={(200, "text/csv"): OpenApiTypes.STR})
    @action(detail=False, methods=["get"])
    def export(self, request):
        dataset = OptOutResource().export(queryset=self.get_queryset())
        response = HttpResponse(dataset.csv, content_type="text/csv")
        response["Content-Disposition"] = 'attachment; filename="opt-outs.csv"'
        return response

    @extend_schema(
        summary="Import opt-outs from a CSV file",
        request={"multipart/form-data": ImportFileSerializer},
        responses={
            200: inline_serializer(
                "OptOutImport",
                fields={
                    "added": serializers.IntegerField(),
                    "invalid": serializers.ListField(child=serializers.CharField()),
                },
            ),
            400: ERROR,
        },
    )
    @action(detail=False, methods=["post"], url_path="import")
    def import_file(self, request):
        data = ImportFileSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            text = data.validated_data["file"].read().decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise services.ComplianceError("The file must be UTF-8 CSV.", code="invalid_file") from exc
        rows = list(csv.reader(io.StringIO(text)))
        if rows and rows[0] and rows[0][0].strip().lower() == "number":
            rows = rows[1:]
        numbers = [row[0].strip() for row in rows if row and row[0].strip()]
        result = services.import_opt_outs(tenant=caller_tenant(request), numbers=numbers, actor=caller_actor(request))
        return Response(result)


# --- consents (R-CMP-5) ----------------------------------------------------------------------


class ConsentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Consent
        fields = ["id", "number", "scope", "source", "granted_at", "withdrawn_at", "created_at"]
        read_only_fields = ["id", "withdrawn_at", "created_at"]
        extra_kwargs = {"granted_at": {"required": False}, "scope": {"required": False}}


@extend_schema_view(
    list=extend_schema(
        summary="List consent records", parameters=[OpenApiParameter("active", bool, description="only not withdrawn")]
    )
)
class ConsentViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """R-CMP-5: consent records (number, source, time, scope). Marketing needs one in strict mode."""

    serializer_class = ConsentSerializer
    lookup_field = "number"
    lookup_value_regex = r"\+?[0-9]{3,20}"
    filterset_fields = ["number", "scope"]

    def get_queryset(self):
        queryset = selectors.consents()
        if self.request.query_params.get("active") in {"1", "true"}:
            queryset = queryset.filter(withdrawn_at__isnull=True)
        return queryset

    @extend_schema(
        summary="Record a consent", request=ConsentSerializer, responses={201: ConsentSerializer, 400: ERROR}
    )
    def create(self, request):
        data = ConsentSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        consent = services.record_consent(
            tenant=caller_tenant(request),
            number=values["number"],
            source=values["source"],
            scope=values.get("scope", MessageType.MARKETING),
            granted_at=values.get("granted_at"),
            actor=caller_actor(request),
        )
        return Response(ConsentSerializer(consent).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Withdraw consent for a number",
        parameters=[OpenApiParameter("scope", str, description="default marketing")],
        responses={204: None, 404: ERROR},
    )
    def destroy(self, request, number=None):
        changed = services.withdraw_consent(
            tenant=caller_tenant(request),
            number=number,
            actor=caller_actor(request),
            scope=request.query_params.get("scope", MessageType.MARKETING),
        )
        if not changed:
            return Response(
                {"code": "not_found", "message": "No active consent for this number.", "details": None},
                status=status.HTTP_404_NOT_FOUND,
            )
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- violations (R-CMP-6) --------------------------------------------------------------------


class EnforcementActionSerializer(serializers.ModelSerializer):
    class Meta:
        model = EnforcementAction
        fields = ["id", "kind", "reason", "details", "created_at"]
        read_only_fields = fields


class ViolationSerializer(serializers.ModelSerializer):
    actions = EnforcementActionSerializer(many=True, read_only=True)
    template = serializers.SlugRelatedField(slug_field="code", read_only=True)

    class Meta:
        model = Violation
        fields = [
            "id",
            "category",
            "template",
            "message_reference",
            "message_count",
            "evidence",
            "created_at",
            "actions",
        ]
        read_only_fields = fields


class ViolationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """R-CMP-6: the caller's violations and the actions taken (readable in any state)."""

    serializer_class = ViolationSerializer
    readable_in_any_state = True

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no caller
            return Violation.objects.none()
        return selectors.violations_for(tenant=caller_tenant(self.request))


class EnforcementActionViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """R-CMP-6: every enforcement action on the caller's account."""

    serializer_class = EnforcementActionSerializer
    readable_in_any_state = True

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no caller
            return EnforcementAction.objects.none()
        return selectors.enforcement_actions_for(tenant=caller_tenant(self.request))


# --- complaints (R-CMP-7) --------------------------------------------------------------------


class ComplaintSerializer(serializers.ModelSerializer):
    class Meta:
        model = Complaint
        fields = [
            "id",
            "source",
            "number",
            "message_reference",
            "message_text",
            "text",
            "status",
            "answer_due_at",
            "answer",
            "answered_at",
            "created_at",
        ]
        read_only_fields = fields


class AnswerSerializer(serializers.Serializer):
    answer = serializers.CharField()


class ComplaintViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """R-CMP-7: complaints about the caller's messages; answer within 72 hours (also when suspended)."""

    serializer_class = ComplaintSerializer
    filterset_fields = ["status"]
    allowed_when_suspended = True  # the only write here is answering, which a suspended tenant must do

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no caller
            return Complaint.objects.none()
        return selectors.complaints_for(tenant=caller_tenant(self.request))

    @extend_schema(
        summary="Answer a complaint",
        request=AnswerSerializer,
        responses={200: ComplaintSerializer, 404: ERROR, 409: ERROR},
    )
    @action(detail=True, methods=["post"])
    def answer(self, request, pk=None):
        data = AnswerSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        complaint = services.answer_complaint(
            complaint=self.get_object(), answer=data.validated_data["answer"], actor=caller_actor(request)
        )
        return Response(ComplaintSerializer(complaint).data)


# --- destination countries (R-CMP-9) ---------------------------------------------------------


class CountryRuleSerializer(serializers.ModelSerializer):
    enabled_for_account = serializers.SerializerMethodField(
        help_text="the country is in this account's enabled countries (set by an operator)"
    )
    registered_senders = serializers.SerializerMethodField(help_text="this account's sender IDs registered there")

    class Meta:
        model = CountryRule
        fields = [
            "country",
            "name",
            "enabled",
            "enabled_for_account",
            "sender_rule",
            "registered_senders",
            "opt_out_text_required",
            "quiet_hours_start",
            "quiet_hours_end",
            "timezone",
            "max_segments",
            "notes",
        ]
        read_only_fields = fields

    def get_enabled_for_account(self, obj) -> bool:
        return obj.country in self.context.get("enabled_countries", ())

    def get_registered_senders(self, obj) -> list[str]:
        return sorted(getattr(obj, "my_senders", None) or [])


class CountryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """R-CMP-9: the destination countries' rules, as the send gate applies them to this account."""

    serializer_class = CountryRuleSerializer
    lookup_field = "country"
    lookup_value_regex = "[A-Za-z]{2}"
    readable_in_any_state = True

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no caller
            return CountryRule.objects.none()
        return selectors.country_rules_for(tenant=caller_tenant(self.request))

    def get_object(self):
        self.kwargs[self.lookup_field] = self.kwargs[self.lookup_field].upper()
        return super().get_object()

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if not getattr(self, "swagger_fake_view", False) and getattr(self, "request", None) is not None:
            options = services.settings_for(tenant=caller_tenant(self.request))
            context["enabled_countries"] = frozenset(options.enabled_countries or ())
        return context


# --- frequency limits (R-CMP-8) --------------------------------------------------------------


class FrequencyLimitOut(serializers.Serializer):
    message_type = serializers.ChoiceField(choices=MessageType.choices)
    per_minute = serializers.IntegerField(allow_null=True, help_text="sends per recipient per minute (null: no limit)")
    per_hour = serializers.IntegerField(allow_null=True)
    per_day = serializers.IntegerField(allow_null=True)
    tenant_specific = serializers.BooleanField(help_text="false: the platform default applies")


class FrequencyLimitView(APIView):
    """R-CMP-8: the per-recipient repeat limits in force for this account, per message type
    (read-only; operators set them). A send over a limit is refused with code frequency_limited."""

    readable_in_any_state = True

    @extend_schema(
        responses={200: inline_serializer("FrequencyLimits", fields={"results": FrequencyLimitOut(many=True)})}
    )
    def get(self, request):
        limits = frequency.effective_limits(tenant=caller_tenant(request))
        return Response({"results": FrequencyLimitOut(limits, many=True).data})
