from uuid import UUID

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Count, Q

from permissions.models import MICROSOFT_GRAPH_APP_ID, PermissionKind
from permissions.verdicts import PermissionKey
from tenants.access import Role
from tenants.graph import GraphError
from tenants.models import Grant, RevokeRequest, ServicePrincipal, Tenant
from tenants.revokes import (
    manual_steps,
    revoke_grants,
    revoke_request_approve,
    revoke_request_create,
    revoke_request_execute,
)
from tenants.selectors import current_service_principal
from tenants.services import TenantError, parse_guid, tenant_get
from tenants.slots import GrantSlot
from tenants.tasks import execute_revoke

Status = RevokeRequest.Status


class Command(BaseCommand):
    help = (
        "Revoke one permission of an application in a tenant, now, in this process; "
        "a delegated permission is revoked for every consent type it is granted with."
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
        parser.add_argument("--yes", action="store_true", help="revoke, rather than only show")

    def handle(
        self,
        *args: object,
        tenant_id: str,
        app: str,
        permission: str,
        type: str,
        resource: str,
        yes: bool,
        **options: object,
    ) -> None:
        try:
            tenant = tenant_get(tenant_id)
            client = _client(tenant, parse_guid(app, what="application id"))
            resource_app_id = str(parse_guid(resource, what="resource id"))
        except TenantError as exc:
            raise CommandError(str(exc)) from exc
        named = PermissionKey(resource_app_id, type, permission)
        grants = revoke_grants(tenant=tenant, client=client, permission=named)
        consents = list(
            grants.values("consent")
            .annotate(users=Count("principal_id", distinct=True, filter=Q(consent="user")))
            .order_by("consent")
        )
        if not consents:
            raise CommandError(
                f"{client.display_name} does not hold {permission} ({type}) in {tenant.name}"
            )
        for row in consents:
            described = _describe(permission, type, row["consent"], row["users"], client, tenant)
            self.stdout.write(f"would revoke: {described}")
        if not yes:
            raise CommandError("add --yes to revoke")
        results = [
            self._revoke(tenant, client, GrantSlot.of(named, row["consent"])) for row in consents
        ]
        if any(revoke.status != Status.SUCCEEDED for revoke in results):
            raise CommandError("not every revoke succeeded (see above)")

    def _revoke(self, tenant: Tenant, client: ServicePrincipal, slot: GrantSlot) -> RevokeRequest:
        revoke, _created = revoke_request_create(
            tenant=tenant, client=client, slot=slot, actor=None, role=Role.ADMIN, queue=False
        )
        if revoke.status == Status.PENDING_APPROVAL:
            # A reader asked for this already; running the command is the admin's approval.
            revoke = revoke_request_approve(revoke=revoke, actor=None)
        if revoke.status == Status.QUEUED:
            try:
                revoke = revoke_request_execute(revoke_id=revoke.pk)
            except GraphError as exc:
                revoke.refresh_from_db()  # the error is on the request
                if exc.retryable:
                    # Throttled or unavailable beyond this run's patience: a worker retries.
                    execute_revoke.delay(revoke.pk)
        self._report(revoke)
        return revoke

    def _report(self, revoke: RevokeRequest) -> None:
        calls = len(revoke.graph_calls)
        line = f"revoke request {revoke.pk} ({revoke.value}, {revoke.consent} consent): {revoke.status}"
        if revoke.status == Status.SUCCEEDED:
            self.stdout.write(f"{line}, {calls} Graph calls")
        elif revoke.status == Status.MANUAL:
            self.stdout.write(f"{line}: the portal may not revoke in this tenant. Do it by hand:")
            for step in manual_steps(revoke):
                self.stdout.write(f"  {step}")
        elif revoke.status == Status.QUEUED:
            self.stdout.write(f"{line}, a worker retries it: {revoke.error}")
        else:
            self.stdout.write(f"{line}: {revoke.error}")


def _client(tenant: Tenant, app_id: UUID) -> ServicePrincipal:
    client = current_service_principal(tenant=tenant, app_id=app_id)
    if client is None:
        raise TenantError(f"application {app_id} has no service principal in {tenant.name}")
    return client


def _describe(
    value: str, kind: str, consent: str, users: int, client: ServicePrincipal, tenant: Tenant
) -> str:
    given = f"user consent of {users} users" if consent == Grant.Consent.USER else "admin consent"
    return f"{value} ({kind}, {given}) of {client.display_name} in {tenant.name}"
