import time

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants.findings import findings_refresh
from tenants.models import Tenant
from tenants.services import TenantError, tenant_get


class Command(BaseCommand):
    help = (
        "Recompute the stored findings (verdict counts, tier, risk) of one tenant or of every "
        "synced tenant, e.g. after an upgrade; prints one line per tenant."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant_id", nargs="?", help="one tenant (default: every tenant)")

    def handle(self, *args: object, tenant_id: str | None = None, **options: object) -> None:
        if tenant_id is None:
            tenants = list(Tenant.objects.order_by("name", "pk"))
        else:
            try:
                tenants = [tenant_get(tenant_id)]
            except TenantError as exc:
                raise CommandError(str(exc)) from exc
        for tenant in tenants:
            if tenant.last_good_sync_id is None:
                self.stdout.write(
                    f"{tenant.tenant_id} {tenant.name}: not synced yet, nothing to do"
                )
                continue
            started = time.perf_counter()
            summary = findings_refresh(tenant=tenant)
            self.stdout.write(
                f"{tenant.tenant_id} {tenant.name}: {summary.applications} applications, "
                f"{summary.permissions} grants recomputed in {time.perf_counter() - started:.1f}s"
            )
