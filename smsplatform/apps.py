from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class PlatformConfig(AppConfig):
    """Project-level start-up. Listed first so the broker exists before any actor is declared."""

    name = "smsplatform"

    def ready(self) -> None:
        from django.db.models import Field

        from .broker import setup_broker
        from .db import AnyOf

        setup_broker()
        Field.register_lookup(AnyOf)


class PlatformAdminConfig(AdminConfig):
    """django.contrib.admin with our site as the default (least privilege + trail, R-AUD-2/3)."""

    default_site = "smsplatform.admin_site.PlatformAdminSite"
