from uuid import UUID

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Count, Q

from permissions.models import MICROSOFT_GRAPH_APP_ID, PermissionKind
from permissions.verdicts import PermissionKey
from tenants.access import Role
from tenants.graph import GraphError
from tenants.models import Grant, RevokeRequest, ServicePrincipal, Tenant
from tenants.revokes import (
    GrantCandidate,
    manual_steps,
    revoke_bulk_create,
    revoke_bulk_plan,
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
        "a delegated permission is revoked for every consent type it is granted with. "
        "With --unused: every unused and unexplained grant (of one application), one line "
        "each (APP_ID PERMISSION TYPE RESOURCE_APP_ID CONSENT, tab-separated), never the "
        "portal itself, Microsoft's first-party apps or managed identities."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant_id")
        parser.add_argument("--app", metavar="APP_ID")
        parser.add_argument("--permission", metavar="VALUE")
        parser.add_argument(
            "--type", choices=[PermissionKind.APPLICATION, PermissionKind.DELEGATED]
        )
        parser.add_argument(
            "--resource",
            default=MICROSOFT_GRAPH_APP_ID,
            metavar="APP_ID",
            help="the API that defines the permission (default: Microsoft Graph)",
        )
        parser.add_argument(
            "--unused",
            action="store_true",
            help="every grant that nothing needs (of --app only, if given)",
        )
        parser.add_argument(
            "--self",
            action="store_true",
            dest="acknowledge_self",
            help="yes, revoke the portal's own write permission (undo will be manual)",
        )
        parser.add_argument("--yes", action="store_true", help="revoke, rather than only show")

    def handle(
        self,
        *args: object,
        tenant_id: str,
        app: str | None,
        permission: str | None,
        type: str | None,
        resource: str,
        unused: bool,
        acknowledge_self: bool,
        yes: bool,
        **options: object,
    ) -> None:
        if unused and (permission or type):
            raise CommandError(
                "--unused revokes every unneeded grant: leave out --permission and --type"
            )
        if not unused and not (app and permission and type):
            raise CommandError(
                "name the grant with --app, --permission and --type (or use --unused)"
            )
        try:
            tenant = tenant_get(tenant_id)
            client = _client(tenant, parse_guid(app, what="application id")) if app else None
            resource_app_id = str(parse_guid(resource, what="resource id"))
        except TenantError as exc:
            raise CommandError(str(exc)) from exc
        if unused:
            self._unused(tenant, client, yes=yes)
            return
        assert client is not None and permission and type  # checked above
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
        try:
            results = [
                self._revoke(
                    tenant,
                    client,
                    GrantSlot.of(named, row["consent"]),
                    acknowledge=acknowledge_self,
                )
                for row in consents
            ]
        except ValueError as exc:  # refused: the portal's own rights, or already revoked
            raise CommandError(str(exc)) from exc
        if any(revoke.status != Status.SUCCEEDED for revoke in results):
            raise CommandError("not every revoke succeeded (see above)")

    def _unused(self, tenant: Tenant, client: ServicePrincipal | None, *, yes: bool) -> None:
        """List every grant a bulk revoke takes (stdout, tab-separated); with --yes,
        revoke exactly those, one request each."""
        plan = revoke_bulk_plan(tenant=tenant, client=client)
        for candidate in plan.candidates:
            self.stdout.write(_line(candidate))
        for left in plan.left_out:
            # stderr: stdout stays the tab-separated list a script reads.
            self.stderr.write(
                f"left out: {left.grants} grant(s) of {left.client.display_name} "
                f"({left.client.app_id}), {left.reason}"
            )
        if not yes:
            count = len(plan.candidates)
            raise CommandError(f"add --yes to revoke these {count} grant(s)")
        if not plan.candidates:
            return
        result = revoke_bulk_create(
            tenant=tenant,
            actor=None,
            role=Role.ADMIN,
            shown=[(str(c.client.object_id), c.slot) for c in plan.candidates],
            client=client,
            queue=False,
        )
        done = [self._run(revoke) for revoke in result.requests]
        for reason in result.skipped:
            self.stdout.write(f"skipped: {reason}")
        if any(revoke.status != Status.SUCCEEDED for revoke in done):
            raise CommandError("not every revoke succeeded (see above)")

    def _revoke(
        self, tenant: Tenant, client: ServicePrincipal, slot: GrantSlot, *, acknowledge: bool
    ) -> RevokeRequest:
        revoke, _created = revoke_request_create(
            tenant=tenant,
            client=client,
            slot=slot,
            actor=None,
            role=Role.ADMIN,
            queue=False,
            acknowledge_self=acknowledge,
        )
        if revoke.status == Status.PENDING_APPROVAL:
            # A reader asked for this already; running the command is the admin's approval.
            revoke = revoke_request_approve(revoke=revoke, actor=None)
        return self._run(revoke)

    def _run(self, revoke: RevokeRequest) -> RevokeRequest:
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
            self.stdout.write(f"{line}, a worker carries it out: {revoke.error}")
        else:
            self.stdout.write(f"{line}: {revoke.error}")


def _line(candidate: GrantCandidate) -> str:
    """APP_ID PERMISSION TYPE RESOURCE_APP_ID CONSENT, tab-separated (DESIGN.md)."""
    fields = (
        str(candidate.client.app_id),
        candidate.slot.value,
        candidate.slot.kind,
        candidate.slot.resource_app_id,
        candidate.slot.consent,
    )
    # A value from Graph with a tab or a line break would shift or split the line.
    return "\t".join(" ".join(field.split()) for field in fields)


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
