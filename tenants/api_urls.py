from django.urls import path

from . import notices_api as api

urlpatterns = [
    path("notices", api.NoticesView.as_view(), name="notices"),
    path("notices/<int:notice_id>", api.NoticeDetailView.as_view(), name="notice-detail"),
    path("notices/<int:notice_id>/acknowledge", api.NoticeAcknowledgeView.as_view(), name="notice-acknowledge"),
    path("held-volume", api.HeldVolumeView.as_view(), name="held-volume"),
    path("held-volume/confirm", api.HeldVolumeConfirmView.as_view(), name="held-volume-confirm"),
    path("held-volume/cancel", api.HeldVolumeCancelView.as_view(), name="held-volume-cancel"),
    path("terms", api.TermsListView.as_view(), name="terms"),
    path("terms/<int:terms_id>/accept", api.TermsAcceptView.as_view(), name="terms-accept"),
    path("terms/<int:terms_id>/object", api.TermsObjectView.as_view(), name="terms-object"),
    path("qualifications", api.QualificationsView.as_view(), name="qualifications"),
]
