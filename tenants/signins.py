"""Sign-in activity: when each application last signed in, from Entra's report
(``GET /beta/reports/servicePrincipalSignInActivities``), as evidence beside verdicts.

The report needs Entra ID P1 and the portal's ``AuditLog.Read.All``; where either is
missing Graph answers 403, and the tenant's sign-in activity is "unknown" with the reason.
A failed read of the report never fails the sync it is part of, and never erases what an
earlier read recorded: the tenant is marked unknown instead. Items are hostile input: an
unusable appId or time is skipped.
"""

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.utils import timezone

from tenants.graph import GraphClient, GraphError
from tenants.models import ServicePrincipal, Tenant

NEEDS = "AuditLog.Read.All"
FIELDS = (
    "appId,lastSignInActivity,applicationAuthenticationClientSignInActivity,"
    "delegatedClientSignInActivity"
)
# Graph's codes for a tenant without Entra ID P1 and for a caller without the permission.
NO_LICENCE_CODE = "Authentication_RequestFromNonPremiumTenantOrB2CTenant"
NO_PERMISSION_CODE = "Authentication_MSGraphPermissionMissing"

# Tenant.sign_in_status values: "" means known.
KNOWN = ""
NOT_READ = "not_read"
NO_LICENCE = "no_licence"
NO_PERMISSION = "no_permission"
FAILED = "failed"

WHY_UNKNOWN = {
    NOT_READ: "not read yet: it is read at the next sync",
    NO_LICENCE: "the tenant has no Entra ID P1 licence, which Entra's sign-in activity "
    "report needs",
    NO_PERMISSION: "the portal lacks AuditLog.Read.All: grant it to the portal's "
    "application in this tenant (admin consent) and sync again",
    FAILED: "the last sync could not read Entra's sign-in activity report; it is read "
    "again at the next sync",
}


@dataclass(frozen=True)
class Activity:
    """An application's last sign-ins: overall, app-only (as a client) and delegated (as
    a client); None where Graph has none of that kind."""

    last: dt.datetime | None = None
    app_only: dt.datetime | None = None
    delegated: dt.datetime | None = None


@dataclass
class SignIns:
    """What a sync read of the report: ``status`` KNOWN and each app's activity by appId,
    or a reason why it is unknown (and no activity)."""

    status: str = KNOWN
    by_app_id: dict[str, Activity] = field(default_factory=dict)


def sign_ins_url() -> str:
    # GraphClient.url() takes absolute URLs on GRAPH_URL (as it does nextLinks): the
    # report is only in beta.
    return f"{settings.GRAPH_URL}/beta/reports/servicePrincipalSignInActivities?$select={FIELDS}&$top=999"


def sign_ins_read(client: GraphClient, note: Any) -> SignIns:
    """Every page of the report; on failure (403 or other), an unknown status and a
    ``note`` (a callable taking the run's note text) instead of an exception."""
    found: dict[str, Activity] = {}
    skipped = 0
    try:
        for page in client.pages(sign_ins_url(), needs=NEEDS):
            for item in page if isinstance(page, list) else []:
                parsed = _item(item)
                if parsed is None:
                    skipped += 1
                    continue
                found[parsed[0]] = parsed[1]
    except GraphError as exc:
        status = _status_of(exc)
        note(
            f"Sign-in activity not read (HTTP {exc.status or '-'} {exc.code or 'error'}): "
            f"{WHY_UNKNOWN[status]}. The sync went on without it."
        )
        return SignIns(status=status)
    if skipped:
        note(f"Sign-in activity: {skipped} items with an unusable appId or time were skipped.")
    return SignIns(status=KNOWN, by_app_id=found)


def _status_of(exc: GraphError) -> str:
    if exc.status == 403 and exc.code == NO_LICENCE_CODE:
        return NO_LICENCE
    if exc.status == 403:
        return NO_PERMISSION
    return FAILED


def _item(item: Any) -> tuple[str, Activity] | None:
    if not isinstance(item, dict):
        return None
    app_id = item.get("appId")
    try:
        app_id = str(uuid.UUID(app_id)) if isinstance(app_id, str) and len(app_id) == 36 else None
    except ValueError:
        app_id = None
    if app_id is None:
        return None
    activity = Activity(
        last=_when(item.get("lastSignInActivity")),
        app_only=_when(item.get("applicationAuthenticationClientSignInActivity")),
        delegated=_when(item.get("delegatedClientSignInActivity")),
    )
    return app_id, activity


def _when(activity: Any) -> dt.datetime | None:
    if not isinstance(activity, dict):
        return None
    text = activity.get("lastSignInDateTime")
    if not isinstance(text, str) or len(text) > 40:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def sign_ins_apply(*, tenant: Tenant, sign_ins: SignIns | None) -> int:
    """Record what was read, inside the sync's apply transaction; returns how many service
    principals changed. None (not read, e.g. a held snapshot) changes nothing; an unknown
    status keeps the last values and marks the tenant unknown."""
    if sign_ins is None:
        return 0
    Tenant.objects.filter(pk=tenant.pk).update(sign_in_status=sign_ins.status)
    tenant.sign_in_status = sign_ins.status
    if sign_ins.status != KNOWN:
        return 0
    changed: list[ServicePrincipal] = []
    for sp in ServicePrincipal.objects.filter(tenant=tenant, removed_at__isnull=True).only(
        "pk", "app_id", "last_sign_in_at", "last_app_sign_in_at", "last_delegated_sign_in_at"
    ):
        # An app the report does not list has no sign-in on record.
        activity = sign_ins.by_app_id.get(str(sp.app_id), Activity())
        values = (activity.last, activity.app_only, activity.delegated)
        if values != (sp.last_sign_in_at, sp.last_app_sign_in_at, sp.last_delegated_sign_in_at):
            sp.last_sign_in_at, sp.last_app_sign_in_at, sp.last_delegated_sign_in_at = values
            changed.append(sp)
    ServicePrincipal.objects.bulk_update(
        changed,
        ["last_sign_in_at", "last_app_sign_in_at", "last_delegated_sign_in_at"],
        batch_size=1000,
    )
    return len(changed)


def inactive_since(now: dt.datetime | None = None) -> dt.datetime:
    """Sign-ins before this moment make an application inactive."""
    return (now or timezone.now()) - dt.timedelta(days=settings.INACTIVE_DAYS)


def is_inactive(last: dt.datetime | None, now: dt.datetime | None = None) -> bool:
    return last is None or last < inactive_since(now)


def sign_in_known(tenant: Tenant) -> bool:
    return tenant.sign_in_status == KNOWN


def why_unknown(tenant: Tenant) -> str:
    return WHY_UNKNOWN.get(tenant.sign_in_status, WHY_UNKNOWN[FAILED])


def sign_in_json(
    *, tenant: Tenant, sp: ServicePrincipal, now: dt.datetime | None = None
) -> dict[str, Any] | None:
    """The report's ``sign_in`` (DESIGN.md): null where the portal cannot know."""
    if not sign_in_known(tenant):
        return None
    last = sp.last_sign_in_at
    return {
        "last": last.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if last else None,
        "inactive": is_inactive(last, now),
    }


@dataclass(frozen=True)
class SignInFacts:
    """What an application's page says of its sign-ins."""

    known: bool
    # "last signed in 3 days ago", "no sign-in on record", or "unknown: <why, how to fix>".
    text: str
    inactive: bool = False
    app_only: str = ""
    delegated: str = ""


def _days_ago(moment: dt.datetime, now: dt.datetime) -> str:
    days = max((now - moment).days, 0)
    if days == 0:
        return "today"
    return f"{days} day{'s' if days != 1 else ''} ago"


def sign_in_facts(
    *, tenant: Tenant, sp: ServicePrincipal, now: dt.datetime | None = None
) -> SignInFacts:
    now = now or timezone.now()
    if not sign_in_known(tenant):
        return SignInFacts(known=False, text=f"unknown: {why_unknown(tenant)}")
    last = sp.last_sign_in_at
    if last is None:
        return SignInFacts(known=True, text="no sign-in on record", inactive=True)
    return SignInFacts(
        known=True,
        text=f"last signed in {_days_ago(last, now)}",
        inactive=is_inactive(last, now),
        app_only=_days_ago(sp.last_app_sign_in_at, now) if sp.last_app_sign_in_at else "",
        delegated=_days_ago(sp.last_delegated_sign_in_at, now)
        if sp.last_delegated_sign_in_at
        else "",
    )
