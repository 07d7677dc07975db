from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal"

    def ready(self) -> None:
        # Connects the receivers of failed password sign-ins.
        from portal import signins  # noqa: F401
