"""Justifications: an admin's reason for keeping a grant that no enabled feature explains.

"Keep, because ..." on a grant records the reason, who said so, an expiry (by default
``JUSTIFICATION_DAYS`` from today, at most ``JUSTIFICATION_MAX_DAYS``) and optionally a
reviewer among the tenant's users. While in force the grant is ``needed`` (the verdict
engine decides: ``permissions.verdicts.apply_justification``); once expired it is what its
manifest makes it again, and the reviewer (or the tenant's admins) get one e-mail asking to
keep it another term or to revoke it (``digests.reviews``).

A justification names its grant as revoke requests do (tenant, client, GrantSlot), the
client by its appId, so that it survives the service principal being created again. Every
change is an audit event. Errors are :class:`JustificationError`, one line each.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from uuid import UUID

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from permissions.verdicts import JustificationNote
from portal.models import User
from tenants.audit import actor_name, audit_record
from tenants.models import AuditEvent, Grant, Justification, ServicePrincipal, Tenant
from tenants.services import TenantError
from tenants.slots import GrantSlot

# The longest reason kept; a reason is a sentence or a paragraph, not a document.
REASON_MAX_LENGTH = 1000
# The Portal.* roles that make someone a user of a tenant (a reviewer must be one).
TENANT_ROLES = ("Portal.Admin", "Portal.Reader")


class JustificationError(TenantError):
    """Bad input for a justification; the message is one line for the admin."""


# --- reads -------------------------------------------------------------------------------


def justification_note(justification: Justification) -> JustificationNote:
    """What the verdict engine and the report know of a justification."""
    return JustificationNote(
        reason=justification.reason, by=justification.by_name, expires=justification.expires
    )


def slot_of(justification: Justification) -> GrantSlot:
    return GrantSlot(
        str(justification.resource_app_id),
        justification.kind,
        justification.value,
        justification.consent,
    )


def justifications_by_client(
    tenant_ids: Iterable[int], app_ids: Iterable[UUID] | None = None
) -> dict[tuple[int, UUID], dict[GrantSlot, Justification]]:
    """Every justification of the tenants (of the given applications), expired ones too,
    per (tenant pk, appId) and grant slot. One query; a tenant has a handful, not thousands."""
    rows = Justification.objects.filter(tenant_id__in=list(tenant_ids)).select_related("reviewer")
    if app_ids is not None:
        rows = rows.filter(app_id__in=list(app_ids))
    by_client: dict[tuple[int, UUID], dict[GrantSlot, Justification]] = defaultdict(dict)
    for justification in rows:
        by_client[(justification.tenant_id, justification.app_id)][slot_of(justification)] = (
            justification
        )
    return by_client


def justification_for(*, tenant: Tenant, app_id: UUID, pk: int) -> Justification | None:
    """One justification of an application in a tenant (a review link names it by pk)."""
    return (
        Justification.objects.select_related("tenant", "reviewer")
        .filter(tenant=tenant, app_id=app_id, pk=pk)
        .first()
    )


def tenant_users(tenant: Tenant) -> list[User]:
    """The users of a tenant: signed in from it with a portal role. Reviewers are picked
    from these; operators of another tenant see it but are not its users."""
    users = User.objects.filter(entra_tenant_id__iexact=str(tenant.tenant_id), is_active=True)
    # Roles are a JSON list; filtered here because SQLite cannot query inside one.
    members = [user for user in users if set(TENANT_ROLES) & user.portal_roles]
    # By the name the pages show: the full name, else the user name.
    return sorted(members, key=lambda u: ((u.get_full_name() or u.get_username()).casefold(), u.pk))


def admin_addresses(tenant: Tenant) -> list[str]:
    """The e-mail addresses of the tenant's portal admins."""
    return [
        user.email
        for user in tenant_users(tenant)
        if user.email and TENANT_ROLES[0] in user.portal_roles
    ]


def default_expiry(today: date) -> date:
    return today + timedelta(days=settings.JUSTIFICATION_DAYS)


def latest_expiry(today: date) -> date | None:
    """The latest expiry allowed from ``today``; None when there is no maximum."""
    days = settings.JUSTIFICATION_MAX_DAYS
    return today + timedelta(days=days) if days else None


def may_extend(user: User | None, justification: Justification) -> bool:
    """An admin of the tenant, or the reviewer it names while they are a user of the
    tenant: the owner asked to review a grant may keep it another term. ``None`` is the
    command line."""
    from tenants.access import Role, role_in  # tenants.access reads through the report

    if user is None:
        return True
    role = role_in(user, justification.tenant)
    if role == Role.ADMIN:
        return True
    return role is not None and user.pk == justification.reviewer_id


# --- writes ------------------------------------------------------------------------------


def justifications_set(
    *,
    tenant: Tenant,
    client: ServicePrincipal,
    slots: Sequence[GrantSlot],
    reason: str,
    expires: date | None = None,
    never: bool = False,
    reviewer: User | None = None,
    actor: User | None = None,
    by_name: str = "",
    today: date | None = None,
) -> list[Justification]:
    """Justify one or several grants of ``client`` with one reason, all or nothing.

    ``expires`` None means the default term; ``never`` a justification that does not
    expire, which only a portal without a maximum allows. A grant justified already gets
    the new reason, expiry and reviewer (and will be reviewed again at its new expiry).
    ``by_name`` names who said so where there is no ``actor`` (the command line).
    """
    today = today or timezone.localdate()
    reason = _checked_reason(reason)
    expiry = _checked_expiry(expires, never=never, today=today)
    if reviewer is not None:
        _check_reviewer(reviewer, tenant)
    slots = list(dict.fromkeys(slots))
    if not slots:
        raise JustificationError("name at least one grant to justify")
    held = held_slots(tenant=tenant, client=client)
    for slot in slots:
        if slot not in held:
            raise JustificationError(f"{client.display_name} does not hold {slot} in {tenant.name}")
    by = actor_name(actor) or by_name or "the command line"
    fields = {"reason": reason, "expires": expiry, "reviewer": reviewer, "by": actor}
    with transaction.atomic():
        justified = [
            _set_one(tenant, client, slot, fields={**fields, "by_name": by[:300]}, actor=actor)
            for slot in slots
        ]
        _findings_refresh(tenant, client.app_id)
        return justified


def _set_one(
    tenant: Tenant,
    client: ServicePrincipal,
    slot: GrantSlot,
    *,
    fields: dict[str, object],
    actor: User | None,
) -> Justification:
    existing = _existing(tenant, client.app_id, slot).select_for_update().first()
    if existing is None:
        try:
            with transaction.atomic():
                created = Justification.objects.create(
                    tenant=tenant, app_id=client.app_id, **slot.fields(), **fields
                )
        except IntegrityError:
            # Another admin justified it this very moment: theirs is updated with ours.
            existing = _existing(tenant, client.app_id, slot).select_for_update().get()
        else:
            _audit(created, AuditEvent.Action.JUSTIFIED, actor, client=client)
            return created
    before = {"reason": existing.reason, "expires": _iso(existing.expires)}
    for name, value in fields.items():
        setattr(existing, name, value)
    existing.reminded_at = None
    existing.save()
    _audit(
        existing,
        AuditEvent.Action.JUSTIFICATION_CHANGED,
        actor,
        client=client,
        extra={"before": before},
    )
    return existing


def justification_extend(
    *,
    justification: Justification,
    actor: User | None,
    by_name: str = "",
    today: date | None = None,
) -> Justification:
    """Keep a justification another term: the default term from today, same reason and
    reviewer, and a review e-mail again at the new expiry. Admins and its reviewer may."""
    today = today or timezone.localdate()
    if not may_extend(actor, justification):
        raise PermissionDenied(
            "Only the tenant's admins or the justification's reviewer can keep it"
        )
    if justification.expires is None:
        raise JustificationError(f"the justification of {justification.value} never expires")
    with transaction.atomic():
        locked = Justification.objects.select_for_update().get(pk=justification.pk)
        before = {"expires": _iso(locked.expires), "by": locked.by_name}
        locked.expires = default_expiry(today)
        locked.by = actor
        locked.by_name = (actor_name(actor) or by_name or "the command line")[:300]
        locked.reminded_at = None
        locked.save()
        _audit(locked, AuditEvent.Action.JUSTIFICATION_EXTENDED, actor, extra={"before": before})
        _findings_refresh(locked.tenant, locked.app_id)
    return locked


def justifications_remove(
    *,
    tenant: Tenant,
    app_id: UUID,
    slots: Iterable[GrantSlot],
    actor: User | None,
    extra: dict[str, object] | None = None,
) -> list[Justification]:
    """Remove the justifications of these grants; those that have none are skipped (a
    second click finds nothing left to remove). Returns the removed ones. Each removal's
    audit event keeps what the justification said (and ``extra``)."""
    removed = []
    with transaction.atomic():
        for slot in dict.fromkeys(slots):
            justification = _existing(tenant, app_id, slot).select_for_update().first()
            if justification is None:
                continue
            _audit(justification, AuditEvent.Action.JUSTIFICATION_REMOVED, actor, extra=extra)
            justification.delete()
            removed.append(justification)
        if removed:
            _findings_refresh(tenant, app_id)
    return removed


def justification_end(
    *, tenant: Tenant, app_id: UUID, slot: GrantSlot, revoke_id: int
) -> Justification | None:
    """A revoke of the grant succeeded: its justification ends with it (removed by the
    portal; the audit trail keeps its reason and names the revoke request). Should the
    grant come back, by a restore or a new consent, it is unexplained until justified
    again: the reason given was for a grant the tenant then chose to revoke."""
    ended = justifications_remove(
        tenant=tenant,
        app_id=app_id,
        slots=[slot],
        actor=None,
        extra={"revoke_request": revoke_id, "ended": "the grant was revoked"},
    )
    return ended[0] if ended else None


def _findings_refresh(tenant: Tenant, app_id: UUID) -> None:
    """Store the application's verdicts as its justifications now make them (a lapsed one
    is caught by the stored summary's ``stale_after``)."""
    from tenants.findings import findings_refresh  # tenants.findings reads through this module

    findings_refresh(tenant=tenant, app_ids=[app_id])


def held_slots(*, tenant: Tenant, client: ServicePrincipal) -> set[GrantSlot]:
    """The grants ``client`` holds as the last good sync saw them. One query."""
    rows = (
        Grant.objects.filter(tenant=tenant, client=client, removed_in_run__isnull=True)
        .values_list("resource_app_id", "kind", "value", "permission_id", "consent")
        .distinct()
        .order_by()
    )
    # An app role the resource does not publish is named by its id, as in the report.
    return {
        GrantSlot(str(resource), kind, value or str(role), consent)
        for resource, kind, value, role, consent in rows
    }


def _existing(tenant: Tenant, app_id: UUID, slot: GrantSlot):  # a QuerySet[Justification]
    return Justification.objects.filter(
        tenant=tenant,
        app_id=app_id,
        resource_app_id=slot.resource_app_id,
        kind=slot.kind,
        value__iexact=slot.value,
        consent=slot.consent,
    )


def _checked_reason(reason: str) -> str:
    # Control characters have no place in a reason (and would garble the CSV and e-mails);
    # line breaks and tabs are kept.
    text = "".join(c for c in reason if c.isprintable() or c in "\n\t").strip()
    if not text:
        raise JustificationError("a reason is required: say why the grant is kept")
    if len(text) > REASON_MAX_LENGTH:
        raise JustificationError(
            f"the reason has {len(text)} characters; at most {REASON_MAX_LENGTH} are kept"
        )
    return text


def _checked_expiry(expires: date | None, *, never: bool, today: date) -> date | None:
    latest = latest_expiry(today)
    if never:
        if latest is not None:
            raise JustificationError(
                f"a justification must expire within {settings.JUSTIFICATION_MAX_DAYS} days "
                "(JUSTIFICATION_MAX_DAYS); pick a date"
            )
        return None
    if expires is None:
        return default_expiry(today)
    if expires < today:
        raise JustificationError(f"the expiry {expires} is in the past (today is {today})")
    if latest is not None and expires > latest:
        raise JustificationError(
            f"the expiry {expires} is more than {settings.JUSTIFICATION_MAX_DAYS} days away "
            f"(JUSTIFICATION_MAX_DAYS); the latest is {latest}"
        )
    return expires


def _check_reviewer(reviewer: User, tenant: Tenant) -> None:
    if reviewer.pk not in {user.pk for user in tenant_users(tenant)}:
        name = actor_name(reviewer)
        raise JustificationError(f"{name} is not a user of {tenant.name}, so cannot review it")


def _audit(
    justification: Justification,
    action: str,
    actor: User | None,
    *,
    client: ServicePrincipal | None = None,
    extra: dict[str, object] | None = None,
) -> None:
    if client is None:
        client = (
            ServicePrincipal.objects.filter(
                tenant=justification.tenant, app_id=justification.app_id
            )
            # The current one, else the last one a sync found gone.
            .order_by(F("removed_at").desc(nulls_first=True), "-pk")
            .first()
        )
    application = client.display_name if client else str(justification.app_id)
    consent = ", user consents" if justification.consent == Grant.Consent.USER else ""
    audit_record(
        action=action,
        tenant=justification.tenant,
        actor=actor,
        target=f"{justification.value} ({justification.kind}{consent}) of {application}",
        details={
            "app_id": str(justification.app_id),
            "resource_app_id": str(justification.resource_app_id),
            "permission": justification.value,
            "type": justification.kind,
            "consent": justification.consent,
            "reason": justification.reason,
            "by": justification.by_name,
            "expires": _iso(justification.expires),
            "reviewer": actor_name(justification.reviewer) or None,
            **(extra or {}),
        },
    )


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None
