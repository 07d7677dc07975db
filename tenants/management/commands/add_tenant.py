from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants.services import TenantError, tenant_add


class Command(BaseCommand):
    help = "Onboard an Entra tenant by its id; its first sync is due at once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant_id", help="the tenant's id (a GUID)")
        parser.add_argument("--name", default="", help="a display name (default: the id)")

    def handle(self, *args: object, tenant_id: str, name: str, **options: object) -> None:
        try:
            tenant, created = tenant_add(tenant_id=tenant_id, name=name)
        except TenantError as exc:
            raise CommandError(str(exc)) from exc
        verb = "Added" if created else "Already onboarded:"
        self.stdout.write(f"{verb} tenant {tenant.tenant_id} ({tenant.name})")
