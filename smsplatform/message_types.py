"""The message types every app speaks of (templates, prices, routes, messages): one vocabulary."""

from django.db import models


class MessageType(models.TextChoices):
    VERIFICATION = "verification", "Verification code"
    NOTIFICATION = "notification", "Notification"
    MARKETING = "marketing", "Marketing"
    MEMBER = "member", "Member service"
    INTERNATIONAL = "international", "International"
