from datetime import date, datetime
from uuid import UUID

from django.core.management.base import BaseCommand, CommandError, CommandParser

from permissions.models import MICROSOFT_GRAPH_APP_ID, PermissionKind
from portal.models import User
from tenants.justifications import (
    JustificationError,
    held_slots,
    justifications_remove,
    justifications_set,
    slot_of,
    tenant_users,
)
from tenants.models import Justification, ServicePrincipal, Tenant
from tenants.selectors import current_service_principal
from tenants.services import TenantError, parse_guid, tenant_get

NEVER = "never"


class Command(BaseCommand):
    help = (
        "Record why a grant is kept (it is then needed, until the justification expires), "
        "or remove that reason; a delegated permission is justified for every consent type "
        "it is granted with."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant_id")
        parser.add_argument("--app", required=True, metavar="APP_ID")
        parser.add_argument("--permission", required=True, metavar="VALUE")
        parser.add_argument(
            "--type", required=True, choices=[PermissionKind.APPLICATION, PermissionKind.DELEGATED]
        )
        parser.add_argument(
            "--resource",
            default=MICROSOFT_GRAPH_APP_ID,
            metavar="APP_ID",
            help="the API that defines the permission (default: Microsoft Graph)",
        )
        what = parser.add_mutually_exclusive_group(required=True)
        what.add_argument("--reason", metavar="TEXT", help="why the grant is kept")
        what.add_argument("--remove", action="store_true", help="remove the justification")
        parser.add_argument(
            "--expires",
            metavar="YYYY-MM-DD",
            help="its last day (default: JUSTIFICATION_DAYS from today; 'never' only where "
            "JUSTIFICATION_MAX_DAYS is 0)",
        )
        parser.add_argument(
            "--reviewer",
            metavar="USER",
            help="a user of the tenant (user name or e-mail) asked to review it when it "
            "expires (default: the tenant's admins)",
        )
        parser.add_argument(
            "--by", metavar="NAME", help="who says so (default: 'the command line')"
        )

    def handle(
        self,
        *args: object,
        tenant_id: str,
        app: str,
        permission: str,
        type: str,
        resource: str,
        reason: str | None,
        remove: bool,
        expires: str | None,
        reviewer: str | None,
        by: str | None,
        **options: object,
    ) -> None:
        try:
            tenant = tenant_get(tenant_id)
            app_id = parse_guid(app, what="application id")
            resource_app_id = str(parse_guid(resource, what="resource id"))
            if remove:
                if expires or reviewer:
                    raise TenantError("--remove takes no --expires or --reviewer")
                self._remove(tenant, app_id, resource_app_id, permission, type)
                return
            assert reason is not None  # argparse: --reason or --remove
            client = _client(tenant, app_id)
            slots = [
                slot
                for slot in sorted(held_slots(tenant=tenant, client=client), key=str)
                if (slot.resource_app_id, slot.kind, slot.value.casefold())
                == (resource_app_id, type, permission.casefold())
            ]
            if not slots:
                raise TenantError(
                    f"{client.display_name} does not hold {permission} ({type}) in {tenant.name}"
                )
            kept = justifications_set(
                tenant=tenant,
                client=client,
                slots=slots,
                reason=reason,
                expires=_date(expires),
                never=(expires or "").strip().lower() == NEVER,
                reviewer=_reviewer(tenant, reviewer) if reviewer else None,
                by_name=by or "",
            )
        except TenantError as exc:  # JustificationError is one
            raise CommandError(str(exc)) from exc
        for justification in kept:
            until = justification.expires.isoformat() if justification.expires else "never"
            self.stdout.write(
                f"justified: {slot_of(justification)} of {client.display_name} in {tenant.name}, "
                f"until {until}, by {justification.by_name}"
            )

    def _remove(
        self, tenant: Tenant, app_id: UUID, resource_app_id: str, permission: str, kind: str
    ) -> None:
        # The grant may be gone already (revoked, the app deleted): its justification can
        # still be removed, so it is found by name rather than among the current grants.
        slots = [
            slot_of(justification)
            for justification in Justification.objects.filter(
                tenant=tenant,
                app_id=app_id,
                resource_app_id=resource_app_id,
                kind=kind,
                value__iexact=permission,
            )
        ]
        removed = justifications_remove(tenant=tenant, app_id=app_id, slots=slots, actor=None)
        if not removed:
            raise JustificationError(
                f"{permission} ({kind}) of {app_id} has no justification in {tenant.name}"
            )
        for justification in removed:
            self.stdout.write(f"removed the justification of {slot_of(justification)}")


def _client(tenant: Tenant, app_id: UUID) -> ServicePrincipal:
    client = current_service_principal(tenant=tenant, app_id=app_id)
    if client is None:
        raise TenantError(f"application {app_id} has no service principal in {tenant.name}")
    return client


def _date(value: str | None) -> date | None:
    if value is None or value.strip().lower() == NEVER:
        return None
    try:
        return datetime.strptime(value.strip(), "%Y-%m-%d").date()  # noqa: DTZ007 a day, no time
    except ValueError:
        raise JustificationError(f"--expires {value!r} is not a date (YYYY-MM-DD)") from None


def _reviewer(tenant: Tenant, name: str) -> User:
    wanted = name.strip().casefold()
    for user in tenant_users(tenant):
        if wanted in (user.get_username().casefold(), user.email.casefold()):
            return user
    raise JustificationError(f"no user {name!r} of {tenant.name} (user name or e-mail)")
