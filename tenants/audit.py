"""The audit trail: one append-only row per state change, written by the services.

Writes go through :func:`audit_record` only; nothing in the portal edits or deletes an
event (the model and its queries refuse it, and the admin site shows them read-only).
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db.models import Q, QuerySet
from django.urls import reverse

from portal.models import User
from tenants.models import AuditEvent, Tenant


def audit_record(
    *,
    action: str,
    tenant: Tenant | None = None,
    actor: User | None = None,
    target: str = "",
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event. ``actor`` None means the portal itself (a sync, a worker, a command)."""
    return AuditEvent.objects.create(
        action=action,
        tenant=tenant,
        actor=actor,
        # Kept as text as well: the record must still say who it was once the user is gone.
        actor_name=actor_name(actor),
        target=target[:500],
        details=details or {},
    )


# Sign-ins are most of a busy trail and change nothing: "hide sign-ins" leaves them out.
SIGN_IN_ACTIONS = (
    AuditEvent.Action.ADMIN_SIGNED_IN,
    AuditEvent.Action.STAFF_SIGNED_IN,
    AuditEvent.Action.SIGN_IN_FAILED,
    AuditEvent.Action.SIGN_IN_LOCKED,
)


def audit_events(
    *,
    tenant: Tenant | None = None,
    action: str | None = None,
    since: datetime | None = None,
    before: datetime | None = None,
    actor: str = "",
    application: str = "",
    hide_sign_ins: bool = False,
) -> QuerySet[AuditEvent]:
    """Events, newest first, optionally of one tenant, one action, from a moment on and
    before another, by a person (part of their name or user name), about an application
    (part of its name in the event, or its appId), and without sign-ins."""
    events = AuditEvent.objects.select_related("tenant", "actor")
    if tenant is not None:
        events = events.filter(tenant=tenant)
    if action:
        events = events.filter(action=action)
    if since is not None:
        events = events.filter(at__gte=since)
    if before is not None:
        events = events.filter(at__lt=before)
    if actor:
        events = events.filter(actor_name__icontains=actor)
    if application:
        events = events.filter(_about_application(application))
    if hide_sign_ins:
        events = events.exclude(action__in=SIGN_IN_ACTIONS)
    return events


def _about_application(text: str) -> Q:
    # Events name an application in their target ("Mail.Read (application) of Rooms"); those
    # of features, justifications and manifests carry its appId too.
    about = Q(target__icontains=text)
    try:
        about |= Q(details__app_id=str(UUID(text)))
    except ValueError:
        pass  # a name, not an appId
    return about


@dataclass(frozen=True)
class EventLink:
    url: str
    label: str


def event_link(event: AuditEvent) -> EventLink | None:
    """Where the thing an event changed is shown: the revoke request, the sync run, the
    application in its tenant, the tenant, or the manifest's application; None for events
    about no page (sign-ins)."""
    details = event.details if isinstance(event.details, dict) else {}
    tenant = event.tenant
    if tenant is not None and isinstance(details.get("revoke_request"), int):
        pk = details["revoke_request"]
        address = reverse("tenants:revoke-results", args=[tenant.tenant_id])
        return EventLink(f"{address}?request={pk}", f"Request {pk}")
    if tenant is not None and isinstance(details.get("sync_run"), int):
        pk = details["sync_run"]
        return EventLink(reverse("tenants:run-detail", args=[tenant.tenant_id, pk]), f"Sync {pk}")
    app_id = _guid(details.get("app_id"))
    if tenant is not None and app_id is not None:
        return EventLink(
            reverse("tenants:application", args=[tenant.tenant_id, app_id]), "Application"
        )
    if tenant is None and app_id is not None:
        return EventLink(reverse("permissions:application-detail", args=[app_id]), "Manifest")
    if event.action == AuditEvent.Action.TENANT_CONNECTED and tenant is not None:
        return EventLink(reverse("tenants:tenant-detail", args=[tenant.tenant_id]), "Tenant")
    return None


def _guid(value: object) -> UUID | None:
    try:
        return UUID(str(value)) if value else None
    except ValueError:
        return None


def actor_name(actor: User | None) -> str:
    """How the audit trail (and a justification) names a user: "Full Name (username)"."""
    if actor is None:
        return ""
    full_name = actor.get_full_name()
    username = actor.get_username()
    return f"{full_name} ({username})" if full_name else username
