from django.urls import path

from . import notices_api as api

urlpatterns = [
    path("notices", api.NoticesView.as_view(), name="notices"),
    path("notices/<int:notice_id>", api.NoticeDetailView.as_view(), name="notice-detail"),
    path("notices/<int:notice_id>/acknowledge", api.NoticeAcknowledgeView.as_view(), name="notice-acknowledge"),
]
