from django.urls import path

from . import api

urlpatterns = [
    path("messages", api.MessagesView.as_view(), name="messages"),
    path("messages/<int:message_id>", api.MessageDetailView.as_view(), name="message-detail"),
    path("messages/<int:message_id>/cancel", api.MessageCancelView.as_view(), name="message-cancel"),
    path("batches", api.BatchCreateView.as_view(), name="batches"),
    path("batches/<int:batch_id>", api.BatchDetailView.as_view(), name="batch-detail"),
    path("replies", api.RepliesView.as_view(), name="replies"),
    path("maintenance", api.MaintenanceView.as_view(), name="maintenance"),
    path("callback-settings", api.CallbackSettingsView.as_view(), name="callback-settings"),
]
