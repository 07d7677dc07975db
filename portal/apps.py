from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal"

    def ready(self) -> None:
        # Connects the signal receivers: sign-ins start the session clocks, failed
        # passwords count toward a lockout.
        from portal import middleware, signins  # noqa: F401
