import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants.models import RevokeRequest, Tenant
from tenants.services import TenantError, tenant_get


class Command(BaseCommand):
    help = (
        "Print a tenant's revoke requests, oldest first: as JSON (DESIGN.md's fields) or "
        "as one line each."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant_id")
        parser.add_argument("--format", choices=["json", "text"], default="json")

    def handle(self, *args: object, tenant_id: str, format: str, **options: object) -> None:
        try:
            tenant = tenant_get(tenant_id)
        except TenantError as exc:
            raise CommandError(str(exc)) from exc
        rows = [revoke_json(revoke) for revoke in tenant_revokes(tenant)]
        if format == "json":
            self.stdout.write(json.dumps(rows, indent=2))
            return
        for row in rows:
            self.stdout.write(_text(row))


def tenant_revokes(tenant: Tenant) -> list[RevokeRequest]:
    """The tenant's revoke requests (restores are not revokes), by id."""
    return list(
        RevokeRequest.objects.filter(tenant=tenant, action=RevokeRequest.Action.REVOKE)
        .select_related("client")
        .order_by("pk")
    )


def revoke_json(revoke: RevokeRequest) -> dict[str, Any]:
    """One request as DESIGN.md's ``revokes`` contract has it; the status as the pages name
    it, in lower case ("succeeded", "waiting for approval")."""
    return {
        "id": revoke.pk,
        "app_id": str(revoke.client.app_id),
        "permission": revoke.value,
        "type": revoke.kind,
        "resource_app_id": str(revoke.resource_app_id),
        "consent": revoke.consent,
        "status": revoke.get_status_display().lower(),
        "regranted": revoke.regranted_in_run_id is not None,
        "requested_at": revoke.created_at.isoformat(),
        "finished_at": revoke.finished_at.isoformat() if revoke.finished_at else None,
        "error": revoke.error or None,
    }


def _text(row: dict[str, Any]) -> str:
    line = (
        f"{row['id']}\t{row['status']}\t{row['app_id']}\t{row['permission']}\t{row['type']}"
        f"\t{row['consent']}\trequested {row['requested_at']}"
    )
    if row["finished_at"]:
        line += f"\tfinished {row['finished_at']}"
    if row["regranted"]:
        line += "\tgranted again"
    if row["error"]:
        line += "\t" + " ".join(row["error"].split())
    return line
