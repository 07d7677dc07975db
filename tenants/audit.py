"""The audit trail: one append-only row per state change, written by the services.

Writes go through :func:`audit_record` only; nothing in the portal edits or deletes an
event (the model and its queries refuse it, and the admin site shows them read-only).
"""

from datetime import datetime
from typing import Any

from django.db.models import QuerySet

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


def audit_events(
    *, tenant: Tenant | None = None, action: str | None = None, since: datetime | None = None
) -> QuerySet[AuditEvent]:
    """Events, newest first, optionally of one tenant, one action, and from a moment on."""
    events = AuditEvent.objects.select_related("tenant", "actor")
    if tenant is not None:
        events = events.filter(tenant=tenant)
    if action:
        events = events.filter(action=action)
    if since is not None:
        events = events.filter(at__gte=since)
    return events


def actor_name(actor: User | None) -> str:
    """How the audit trail (and a justification) names a user: "Full Name (username)"."""
    if actor is None:
        return ""
    full_name = actor.get_full_name()
    username = actor.get_username()
    return f"{full_name} ({username})" if full_name else username
