from django.apps import AppConfig


class PlatformConfig(AppConfig):
    """Project-level start-up. Listed first so the broker exists before any actor is declared."""

    name = "smsplatform"

    def ready(self) -> None:
        from .broker import setup_broker

        setup_broker()
