"""Customer API of the tenants app: the caller's own account."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from . import registration
from .authentication import caller_actor, caller_tenant
from .models import Tenant


class AccountSerializer(serializers.ModelSerializer):
    class Meta:
        model = Tenant
        fields = [
            "schema_name",
            "name",
            "kind",
            "licence_number",
            "contact_name",
            "contact_phone",
            "contact_email",
            "state",
            "state_reason",
            "state_changed_at",
            "created_at",
        ]
        read_only_fields = fields


class AccountUpdateSerializer(serializers.Serializer):
    contact_name = serializers.CharField(max_length=100, required=False)
    contact_phone = serializers.CharField(max_length=32, required=False)
    contact_email = serializers.EmailField(required=False)


class AccountView(APIView):
    """The caller's tenant: profile (R-TEN-1) and state (R-TEN-3)."""

    # Pending, suspended and terminated tenants can still read their state and its reason.
    readable_in_any_state = True

    @extend_schema(responses=AccountSerializer, operation_id="account_retrieve")
    def get(self, request):
        return Response(AccountSerializer(caller_tenant(request)).data)

    @extend_schema(request=AccountUpdateSerializer, responses=AccountSerializer, operation_id="account_update")
    def patch(self, request):
        data = AccountUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        tenant = registration.update_tenant_profile(
            tenant=caller_tenant(request), changes=dict(data.validated_data), actor=caller_actor(request)
        )
        return Response(AccountSerializer(tenant).data)
