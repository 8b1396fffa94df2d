from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from delivery.alibaba.views import dispatch as alibaba_dispatch
from tenants.api import AccountView

from .health import healthz, readyz
from .metrics import metrics_view

# Each app adds its customer endpoints in its own api_urls.py (included below when present).
api_v1 = [
    path("account", AccountView.as_view(), name="account"),
    path("schema/", SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[]), name="api-schema"),
]

urlpatterns = [
    # Alibaba Cloud SMS compatible endpoint: the SDKs post to / (docs/alibaba.md).
    path("", alibaba_dispatch, name="alibaba"),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/v1/", include("compliance.api_urls")),
    path("api/v1/", include("billing.api_urls")),
    path("api/v1/", include("delivery.api_urls")),
    path("api/v1/", include("delivery.stats_urls")),
    path("api/v1/", include("tenants.api_urls")),
    path(
        "api/docs/",
        SpectacularSwaggerView.as_view(url_name="api-schema", authentication_classes=[], permission_classes=[]),
        name="api-docs",
    ),
]

handler404 = "smsplatform.errors.api_not_found"
handler400 = "smsplatform.errors.api_bad_request"
