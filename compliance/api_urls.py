from django.urls import path
from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter(trailing_slash=False)
router.register("signatures", api.SignatureViewSet, basename="signature")
router.register("templates", api.TemplateViewSet, basename="template")
router.register("opt-outs", api.OptOutViewSet, basename="opt-out")
router.register("consents", api.ConsentViewSet, basename="consent")
router.register("violations", api.ViolationViewSet, basename="violation")
router.register("enforcement-actions", api.EnforcementActionViewSet, basename="enforcement-action")
router.register("complaints", api.ComplaintViewSet, basename="complaint")
router.register("countries", api.CountryViewSet, basename="country")

urlpatterns = [
    path("frequency-limits", api.FrequencyLimitView.as_view(), name="frequency-limits"),
    *router.urls,
]
