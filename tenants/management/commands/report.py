from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants.exports import tenant_report_csv, tenant_report_json
from tenants.services import TenantError, parse_guid, tenant_get


class Command(BaseCommand):
    help = "Print a tenant's grants with their verdicts, as JSON or CSV."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant_id")
        parser.add_argument("--app", default=None, metavar="APP_ID", help="only this application")
        parser.add_argument("--format", choices=["json", "csv"], default="json")

    def handle(
        self, *args: object, tenant_id: str, app: str | None, format: str, **options: object
    ) -> None:
        try:
            tenant = tenant_get(tenant_id)
            app_id = parse_guid(app, what="application id") if app else None
        except TenantError as exc:
            raise CommandError(str(exc)) from exc
        if tenant.last_good_sync is None:
            raise CommandError(
                f"tenant {tenant.tenant_id} has not been synced yet (run sync_tenant)"
            )
        # Streamed as the web exports are: a large tenant's report is never whole in memory.
        if format == "json":
            chunks = tenant_report_json(tenant=tenant, app_id=app_id)
        else:
            chunks = tenant_report_csv(tenant=tenant, app_id=app_id)
        for chunk in chunks:
            self.stdout.write(chunk, ending="")
        if format == "json":
            self.stdout.write("")  # the newline print() would end it with, as before
