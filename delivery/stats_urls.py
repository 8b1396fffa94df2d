"""Routes of the audit customer API (included under /api/v1/ in smsplatform/urls.py)."""

from django.urls import path

from .stats_api import ErasureRequestDetailView, ErasureRequestListView, StatsSummaryView

urlpatterns = [
    path("stats/summary", StatsSummaryView.as_view(), name="stats-summary"),
    path("erasure-requests", ErasureRequestListView.as_view(), name="erasure-requests"),
    path("erasure-requests/<int:pk>", ErasureRequestDetailView.as_view(), name="erasure-request"),
]
