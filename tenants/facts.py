"""Facts about each application: owners, credentials, publisher verification, sign-in
audience and (for the tenant's own apps) created date.

Read in the sync's read phase with two listings, whatever the number of apps:
``/servicePrincipals?$expand=owners`` with the credentials in its ``$select`` (100 a page,
as Graph expands directory objects), and ``/applications`` for the app registrations
homed in the tenant (999 a page). Per-principal reads of only the apps that hold grants
would cost one request per app (20 to a $batch call, but each inner request is counted
and throttled on its own) and miss an owner-less app with no grant yet.

A delta re-sync (tenants.delta) reads the facts only of the principals its round reported
as new or changed, through ``$batch``: each principal with its owners expanded, and its
app registration where it has one in the tenant (a 404 otherwise). Every other principal
keeps the facts it has. No delta shows an owner changing (owners are a relationship, not a
property the round selects), so an owner added to an otherwise unchanged app is seen by
the next full read, at most SYNC_FULL_READ_DAYS later.

A failure of these reads never fails the sync: the run gets a note and the facts stay as
the last sync saw them (unknown where none has).
"""

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from django.utils.dateparse import parse_datetime

from tenants.graph import BATCH_ERROR, GraphClient, GraphError
from tenants.models import Credential, ServicePrincipal, Tenant
from tenants.ownership import ownership_of
from tenants.portal_app import READ_NEEDS
from tenants.snapshot import Snapshot, graph_guid, graph_text

logger = logging.getLogger(__name__)

FACT_FIELDS = "id,signInAudience,verifiedPublisher,passwordCredentials,keyCredentials"
OWNER_FIELDS = "id,displayName,userPrincipalName"
APPLICATION_FIELDS = "appId,createdDateTime,signInAudience,passwordCredentials,keyCredentials"
# Graph expands at most 20 related objects and says nothing of the rest.
EXPANDED_OWNERS = 20
_OWNER_TYPES = {
    "#microsoft.graph.user": "user",
    "#microsoft.graph.serviceprincipal": "servicePrincipal",
}


@dataclass(frozen=True)
class CredentialFact:
    kind: str
    key_id: str
    display_name: str
    start: dt.datetime | None
    end: dt.datetime | None
    on_application: bool


@dataclass
class AppFacts:
    owners: list[dict[str, str]] = field(default_factory=list)
    credentials: list[CredentialFact] = field(default_factory=list)
    verified_publisher: bool | None = None
    sign_in_audience: str = ""
    created: dt.datetime | None = None


@dataclass
class Facts:
    """The facts read by one sync. They cover only the principals in ``by_object_id``
    (every listed one for a full read, the changed ones for a delta read): applying them
    rewrites those principals' facts and leaves every other principal's as they were."""

    # By service principal object id.
    by_object_id: dict[str, AppFacts] = field(default_factory=dict)


_EXPAND_OWNERS = f"$expand=owners($select={OWNER_FIELDS})"


def facts_read(
    client: GraphClient, snapshot: Snapshot, only: set[str] | None = None
) -> Facts | None:
    """The facts of every listed principal, or of ``only`` these (object ids: a delta
    round's new and changed principals); None (with a note on the run) where Graph would
    not give them."""
    try:
        if only is None:
            return _every_principal(client, snapshot)
        return _these_principals(client, snapshot, sorted(only))
    except GraphError as exc:
        logger.info("Facts not read: %s", exc)
        snapshot.note(
            f"Owners and credentials could not be read ({str(exc)[:200]}); they are shown "
            "as the last sync saw them, or unknown."
        )
        return None


def _every_principal(client: GraphClient, snapshot: Snapshot) -> Facts:
    facts = Facts()
    for page in client.pages(
        f"/servicePrincipals?$select={FACT_FIELDS}&{_EXPAND_OWNERS}&$top=100", needs=READ_NEEDS
    ):
        for sp in page:
            if isinstance(sp, dict) and (object_id := graph_guid(sp.get("id"))):
                facts.by_object_id[object_id] = _principal_facts(sp)
    _merge_applications(client, snapshot, facts)
    return facts


def _these_principals(client: GraphClient, snapshot: Snapshot, object_ids: list[str]) -> Facts:
    """One inner ``$batch`` request per principal, and one per its app registration (a
    404 for an app registered in another tenant, tolerated: it has none here)."""
    facts = Facts()
    if not object_ids:
        return facts
    app_ids = {sp.object_id: sp.app_id for sp in snapshot.service_principals}
    wanted = [oid for oid in object_ids if oid in app_ids]
    bodies = client.batch(
        [
            {
                "id": f"sp-{object_id}",
                "method": "GET",
                "url": f"/servicePrincipals/{object_id}?$select={FACT_FIELDS}&{_EXPAND_OWNERS}",
            }
            for object_id in wanted
        ]
        + [
            {
                "id": f"app-{object_id}",
                "method": "GET",
                "url": f"/applications(appId='{app_ids[object_id]}')?$select={APPLICATION_FIELDS}",
            }
            for object_id in wanted
        ],
        needs=READ_NEEDS,
        tolerate=frozenset({404}),
    )
    for object_id in wanted:
        sp = bodies.get(f"sp-{object_id}", {})
        if BATCH_ERROR in sp or graph_guid(sp.get("id")) != object_id:
            continue  # gone since the round listed it: its facts stay as they were
        entry = facts.by_object_id[object_id] = _principal_facts(sp)
        app = bodies.get(f"app-{object_id}", {})
        if BATCH_ERROR not in app:
            _add_application(entry, app)
    return facts


def _principal_facts(sp: dict[str, Any]) -> AppFacts:
    publisher = sp.get("verifiedPublisher")
    verified = bool(publisher.get("verifiedPublisherId")) if isinstance(publisher, dict) else False
    owners = sp.get("owners")
    return AppFacts(
        owners=[_owner(o) for o in owners if isinstance(o, dict)][:EXPANDED_OWNERS]
        if isinstance(owners, list)
        else [],
        credentials=_credentials(sp, on_application=False),
        verified_publisher=verified,
        sign_in_audience=graph_text(sp.get("signInAudience"), 40)[0],
    )


def _owner(owner: dict[str, Any]) -> dict[str, str]:
    kind = _OWNER_TYPES.get(str(owner.get("@odata.type", "")).lower(), "")
    return {
        "id": graph_guid(owner.get("id")) or "",
        "name": graph_text(owner.get("displayName"), 300)[0],
        "upn": graph_text(owner.get("userPrincipalName"), 300)[0],
        "type": kind,
    }


def _credentials(entity: dict[str, Any], *, on_application: bool) -> list[CredentialFact]:
    found = []
    for graph_name, kind in (
        ("passwordCredentials", Credential.Kind.SECRET),
        ("keyCredentials", Credential.Kind.CERTIFICATE),
    ):
        listed = entity.get(graph_name)
        for item in listed if isinstance(listed, list) else []:
            key_id = graph_guid(item.get("keyId")) if isinstance(item, dict) else None
            if key_id is None:
                continue
            found.append(
                CredentialFact(
                    kind=kind,
                    key_id=key_id,
                    display_name=graph_text(item.get("displayName"), 300)[0],
                    start=_when(item.get("startDateTime")),
                    end=_when(item.get("endDateTime")),
                    on_application=on_application,
                )
            )
    # A SAML key is listed twice (Sign and Verify) under one keyId: once is enough.
    return list({(c.kind, c.key_id): c for c in found}.values())


def _when(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_datetime(value)
    except ValueError:
        return None


def _merge_applications(client: GraphClient, snapshot: Snapshot, facts: Facts) -> None:
    """The app registrations homed in this tenant: their created date, their audience and
    the credentials placed on them."""
    by_app_id = {sp.app_id: sp.object_id for sp in snapshot.service_principals}
    for page in client.pages(
        f"/applications?$select={APPLICATION_FIELDS}&$top=999", needs=READ_NEEDS
    ):
        for app in page:
            app_id = graph_guid(app.get("appId")) if isinstance(app, dict) else None
            object_id = by_app_id.get(app_id or "")
            if object_id is None or object_id not in facts.by_object_id:
                continue
            _add_application(facts.by_object_id[object_id], app)


def _add_application(entry: AppFacts, app: dict[str, Any]) -> None:
    entry.created = _when(app.get("createdDateTime"))
    entry.sign_in_audience = graph_text(app.get("signInAudience"), 40)[0] or (
        entry.sign_in_audience
    )
    entry.credentials += _credentials(app, on_application=True)


def facts_apply(*, tenant: Tenant, facts: Facts | None, sp_ids: dict[str, int]) -> None:
    """Store what was read, inside the sync's transaction: the principals the facts cover
    get theirs rewritten, every other keeps what it had. None: nothing was read (a failed
    read, or a held snapshot applied later); what the last sync saw stays."""
    if facts is None:
        return
    pks = {sp_ids[oid]: entry for oid, entry in facts.by_object_id.items() if oid in sp_ids}
    changed = []
    for sp in ServicePrincipal.objects.filter(tenant=tenant, pk__in=pks):
        entry = pks[sp.pk]
        values = {
            "owners": entry.owners,
            "verified_publisher": entry.verified_publisher,
            "sign_in_audience": entry.sign_in_audience,
            "app_created_at": entry.created,
        }
        # Only what changed is written: on a re-sync that is almost nothing.
        if any(getattr(sp, name) != value for name, value in values.items()):
            for name, value in values.items():
                setattr(sp, name, value)
            changed.append(sp)
    ServicePrincipal.objects.bulk_update(
        changed,
        ["owners", "verified_publisher", "sign_in_audience", "app_created_at"],
        batch_size=500,
    )
    Credential.objects.filter(tenant=tenant, service_principal_id__in=pks).delete()
    Credential.objects.bulk_create(
        [
            Credential(
                tenant=tenant,
                service_principal_id=pk,
                kind=c.kind,
                key_id=UUID(c.key_id),
                display_name=c.display_name,
                start_at=c.start,
                end_at=c.end,
                on_application=c.on_application,
            )
            for pk, entry in pks.items()
            for c in entry.credentials
        ],
        batch_size=500,
    )


# -- what the application's page shows ---------------------------------------------

KIND_LABELS = {
    "own": "this tenant's own",
    "third_party": "third-party",
    "microsoft": "Microsoft first-party",
    "managed_identity": "managed identity",
    "unknown": "unknown",
}


@dataclass(frozen=True)
class CredentialRow:
    credential: Credential
    expiry: str
    # Expired, or expiring within CREDENTIAL_WARNING_DAYS.
    warn: bool


def expiry_text(end: dt.datetime | None, now: dt.datetime) -> str:
    """ "expires in 20 days", "expired 30 days ago", "expires today"."""
    if end is None:
        return "no expiry on record"
    # Rounded to the nearest day: a secret made to last 20 days still reads "20 days"
    # a few minutes later.
    days = round(abs((end - now).total_seconds()) / 86400)
    if end < now:
        return "expired today" if days == 0 else f"expired {days} day{'s' if days != 1 else ''} ago"
    return "expires today" if days == 0 else f"expires in {days} day{'s' if days != 1 else ''}"


def warns(end: dt.datetime | None, now: dt.datetime, warning_days: int) -> bool:
    return end is not None and end <= now + dt.timedelta(days=warning_days)


@dataclass(frozen=True)
class PageFacts:
    owners: list[dict[str, str]] | None
    credentials: list[CredentialRow]
    kind: str
    verified_publisher: bool | None
    sign_in_audience: str
    created: dt.datetime | None


def page_facts(*, tenant: Tenant, service_principal: ServicePrincipal) -> PageFacts:
    from django.conf import settings
    from django.utils import timezone

    now = timezone.now()
    credentials = Credential.objects.filter(tenant=tenant, service_principal=service_principal)
    return PageFacts(
        owners=service_principal.owners,
        credentials=[
            CredentialRow(
                c,
                expiry_text(c.end_at, now),
                warns(c.end_at, now, settings.CREDENTIAL_WARNING_DAYS),
            )
            for c in credentials
        ],
        kind=KIND_LABELS[ownership_of(tenant=tenant, service_principal=service_principal)],
        verified_publisher=service_principal.verified_publisher,
        sign_in_audience=service_principal.sign_in_audience,
        created=service_principal.app_created_at,
    )
