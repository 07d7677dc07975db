from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants.services import TenantError, application_get, features_set, tenant_get


class Command(BaseCommand):
    help = "Switch an application's features on or off in a tenant (all or nothing)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant_id")
        parser.add_argument("app_id")
        parser.add_argument("--enable", nargs="+", default=[], metavar="KEY")
        parser.add_argument("--disable", nargs="+", default=[], metavar="KEY")

    def handle(
        self,
        *args: object,
        tenant_id: str,
        app_id: str,
        enable: list[str],
        disable: list[str],
        **options: object,
    ) -> None:
        if not enable and not disable:
            raise CommandError("nothing to do: give --enable KEY... and/or --disable KEY...")
        try:
            tenant = tenant_get(tenant_id)
            application = application_get(app_id)
            switches = features_set(
                tenant=tenant,
                application=application,
                enable=enable,
                disable=disable,
                actor=None,  # the command line, run by whoever operates the portal
            )
        except TenantError as exc:
            raise CommandError(str(exc)) from exc
        for switch in switches:
            state = "on" if switch.enabled else "off"
            self.stdout.write(f"{application.name}: {switch.feature.key} {state} in {tenant.name}")
