from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants.graph import GraphError
from tenants.models import SyncRun
from tenants.services import TenantError, open_run, sync_run_queue, tenant_get
from tenants.sync import sync_run_execute


class Command(BaseCommand):
    help = "Run one sync of a tenant now, in this process, and print its result."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant_id")

    def handle(self, *args: object, tenant_id: str, **options: object) -> None:
        try:
            tenant = tenant_get(tenant_id)
        except TenantError as exc:
            raise CommandError(str(exc)) from exc
        run = sync_run_queue(tenant=tenant, trigger=SyncRun.Trigger.COMMAND)
        if run is None:
            busy = open_run(tenant)
            raise CommandError(
                f"sync {busy.pk if busy else '?'} of {tenant.name} is already {busy.status if busy else 'open'}; try again when it ends"
            )
        try:
            # Nothing tries again after this command: its error is the one to act on.
            run = sync_run_execute(run_id=run.pk, final_attempt=True)
        except GraphError:
            run.refresh_from_db()
            raise CommandError(f"sync {run.pk} of {tenant.name} failed: {run.error}") from None
        if run.status == SyncRun.Status.HELD:
            # Not applied: the report still shows the last applied snapshot.
            raise CommandError(
                f"sync {run.pk} of {tenant.name} held: it would remove {run.grants_removed} of "
                f"{run.grants_removed + run.grants_unchanged} grants; nothing was applied "
                "(an admin applies or discards it on the tenant's page)"
            )
        seconds = run.duration.total_seconds() if run.duration else 0.0
        self.stdout.write(
            f"sync {run.pk} of {tenant.name} {run.status} in {seconds:.1f}s: "
            f"{run.service_principals} service principals, grants +{run.grants_added} "
            f"-{run.grants_removed} ={run.grants_unchanged}, {run.graph_requests} Graph requests, "
            f"{run.throttled_waits} throttled waits ({run.throttled_seconds:.1f}s)"
        )
