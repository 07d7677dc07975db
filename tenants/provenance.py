"""Consent provenance: who granted each permission, and when, from Entra's directory audit
events (``GET /v1.0/auditLogs/directoryAudits``), kept by the portal for good because
Entra keeps them 7 days (Entra ID Free) or 30 (P1).

Each sync reads the events of category ApplicationManagement since the newest one it has
(less an overlap: audit events can show up minutes after they happened, and a re-read one
is the same event by its id), and keeps the five activities that grant or take away a
permission. Reading them needs ``AuditLog.Read.All``: without it Graph answers 403, and
the sync goes on, with the tenant's consent history "unknown" and the reason said. A read
that fails writes nothing and removes nothing: the events kept stay, the watermark too.

The events' shapes (directoryaudit.md, and as captured from real tenants in public
write-ups and detection queries, e.g. kqlsearch.com's AuditLogs permission-grant query):
``targetResources[0]`` is the API (the resource service principal) for the role and grant
events, and the client for "Consent to application"; ``modifiedProperties`` values are
JSON-encoded strings: ``AppRole.Value``, ``ServicePrincipal.ObjectID`` (the client),
``DelegatedPermissionGrant.Scope`` (space-separated, a space in front) and ``.ConsentType``
(AllPrincipals or Principal), ``ConsentContext.IsAdminConsent`` and ``.IsAppOnly``, and
``ConsentAction.Permissions`` (a text: ``[old grants] => [new grants]``, each grant with its
``ResourceId``, ``ConsentType`` and ``Scope``). A consent's initiator is a user whose
displayName is Entra's token service ("Azure ESTS Service") over their own UPN; an app's
has a null appId. Everything in an event is hostile input: what cannot be used is skipped.
"""

import datetime as dt
import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any
from uuid import UUID

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from permissions.models import PermissionKind
from tenants.graph import GraphClient, GraphError
from tenants.models import ConsentEvent, Grant, ServicePrincipal, Tenant
from tenants.signins import FAILED, KNOWN, NO_PERMISSION, NOT_READ
from tenants.slots import GrantSlot
from tenants.snapshot import Snapshot, graph_guid, graph_text, permission_value

NEEDS = "AuditLog.Read.All"
CONSENT = "Consent to application"
ADD_ROLE = "Add app role assignment to service principal"
REMOVE_ROLE = "Remove app role assignment from service principal"
ADD_GRANT = "Add delegated permission grant"
REMOVE_GRANT = "Remove delegated permission grant"
ACTIVITIES = frozenset({CONSENT, ADD_ROLE, REMOVE_ROLE, ADD_GRANT, REMOVE_GRANT})
# What gives a permission: the events a grant's "granted by" is taken from.
GRANTING = frozenset({CONSENT, ADD_ROLE, ADD_GRANT})
# Audit events show up 2 minutes after they happen (95%), 5 (99%) (Entra's reporting
# latencies): each read starts this long before the newest event already kept.
OVERLAP = dt.timedelta(hours=1)
# How long Entra keeps audit events: Entra ID Free, and P1 or P2.
RETENTION_FREE = dt.timedelta(days=7)
RETENTION_PREMIUM = dt.timedelta(days=30)
# The consent history an application's page lists, newest first.
HISTORY_SHOWN = 50
_EVENT_ID = re.compile(r"^[\w.\-]{1,200}$")
_CONSENT_ENTRY = re.compile(
    r"ResourceId:\s*(?P<resource>[0-9a-fA-F-]{36})\s*,\s*ConsentType:\s*(?P<type>\w*)\s*,"
    r"\s*Scope:\s*(?P<scope>[^,\]]*)"
)
_CONSENT_TYPES = {"allprincipals": Grant.Consent.ADMIN, "principal": Grant.Consent.USER}

WHY_UNKNOWN = {
    NOT_READ: "not read yet: it is read at the next sync",
    NO_PERMISSION: "the portal lacks AuditLog.Read.All: grant it to the portal's application "
    "in this tenant (admin consent) and sync again; Entra keeps 7 or 30 days of events, so "
    "what happened before that stays unknown",
    FAILED: "the last sync could not read Entra's audit events; they are read again at the "
    "next sync",
}


@dataclass(frozen=True)
class EventRecord:
    """One audit event the portal keeps, as plain values."""

    event_id: str
    activity: str
    at: dt.datetime
    result: str
    initiator_name: str
    initiator_upn: str
    initiator_id: str | None
    initiator_is_app: bool
    client_object_id: str
    resource_object_id: str | None
    resource_app_id: str | None
    kind: str
    permissions: tuple[str, ...]
    consent: str


@dataclass
class ConsentEvents:
    """What a sync read: ``status`` KNOWN with the events and how far back Entra still had
    them, or why they are unknown (and no events)."""

    status: str = KNOWN
    events: list[EventRecord] = field(default_factory=list)
    # Entra had dropped whatever happened before this moment when it was read.
    retained_from: dt.datetime | None = None


def consent_events_url(since: dt.datetime | None) -> str:
    clause = "category eq 'ApplicationManagement'"
    if since is not None:
        # DateTimeOffset values are unquoted in OData filters.
        clause += f" and activityDateTime ge {since.astimezone(dt.UTC):%Y-%m-%dT%H:%M:%SZ}"
    return f"/auditLogs/directoryAudits?$filter={clause}&$top=999"


def consent_events_read(
    client: GraphClient, snapshot: Snapshot, through: dt.datetime | None
) -> ConsentEvents:
    """Every page of the events since ``through`` (less :data:`OVERLAP`; all Entra keeps
    when None); on failure an unknown status and a note on the run instead of an
    exception."""
    now = timezone.now()
    # The sign-in report answers only with Entra ID P1, which keeps 30 days; otherwise
    # (Free, or not known) the safe assumption is 7.
    premium = snapshot.sign_ins is not None and snapshot.sign_ins.status == KNOWN
    retained_from = now - (RETENTION_PREMIUM if premium else RETENTION_FREE)
    app_ids = {sp.object_id: sp.app_id for sp in snapshot.service_principals}
    since = through - OVERLAP if through is not None else None
    found: dict[str, EventRecord] = {}
    skipped = 0
    try:
        for page in client.pages(consent_events_url(since), needs=NEEDS):
            for item in page if isinstance(page, list) else []:
                activity = item.get("activityDisplayName") if isinstance(item, dict) else None
                if not isinstance(activity, str) or activity not in ACTIVITIES:
                    continue  # ApplicationManagement has many other activities
                record = event_record(item, app_ids)
                if record is None:
                    skipped += 1
                elif record.event_id not in found:
                    found[record.event_id] = record
    except GraphError as exc:
        status = NO_PERMISSION if exc.status == 403 else FAILED
        snapshot.note(
            f"Consent history not read (HTTP {exc.status or '-'} {exc.code or 'error'}): "
            f"{WHY_UNKNOWN[status]}. The sync went on without it."
        )
        return ConsentEvents(status=status)
    if skipped:
        snapshot.note(f"Consent history: {skipped} events without a usable client were skipped.")
    if through is not None and through < retained_from:
        snapshot.note(
            f"Consent history: events between {through:%Y-%m-%d} and {retained_from:%Y-%m-%d} "
            "were past Entra's retention when read; they are not on record."
        )
    return ConsentEvents(events=list(found.values()), retained_from=retained_from)


def event_record(item: dict[str, Any], app_ids: dict[str, str]) -> EventRecord | None:
    """One event of the five activities as the portal keeps it, or None when it names no
    usable id, time or client."""
    event_id = item.get("id")
    at = _moment(item.get("activityDateTime"))
    targets = item.get("targetResources")
    target = targets[0] if isinstance(targets, list) and targets else None
    if not (isinstance(event_id, str) and _EVENT_ID.match(event_id)) or at is None:
        return None
    if not isinstance(target, dict):
        return None
    activity = str(item["activityDisplayName"])
    properties = _properties(target)
    if activity == CONSENT:
        parsed = _consent_parts(target, properties)
    else:
        parsed = _grant_parts(activity, target, properties)
    if parsed is None:
        return None
    client_id, resource_id, kind, permissions, consent = parsed
    name, upn, initiator_id, is_app = _initiator(item.get("initiatedBy"))
    return EventRecord(
        event_id=event_id,
        activity=activity,
        at=at,
        result=graph_text(item.get("result"), 20)[0],
        initiator_name=name,
        initiator_upn=upn,
        initiator_id=initiator_id,
        initiator_is_app=is_app,
        client_object_id=client_id,
        resource_object_id=resource_id,
        resource_app_id=app_ids.get(resource_id or ""),
        kind=kind,
        permissions=permissions,
        consent=consent,
    )


Parts = tuple[str, str | None, str, tuple[str, ...], str]


def _grant_parts(
    activity: str, target: dict[str, Any], properties: dict[str, tuple]
) -> Parts | None:
    """An app role assignment's or a delegated grant's event: the target is the API, the
    client is in ``ServicePrincipal.ObjectID``; an addition's values are what the new
    value has that the old had not, a removal's the other way round (a changed scope is
    logged as an Add and a Remove, both old -> new)."""
    old_client, new_client = properties.get("ServicePrincipal.ObjectID", (None, None))
    client_id = graph_guid(new_client) or graph_guid(old_client)
    if client_id is None:
        return None
    adds = activity in (ADD_ROLE, ADD_GRANT)
    if activity in (ADD_ROLE, REMOVE_ROLE):
        old, new = properties.get("AppRole.Value", (None, None))
        kind, consent = PermissionKind.APPLICATION, str(Grant.Consent.ADMIN)
    else:
        old, new = properties.get("DelegatedPermissionGrant.Scope", (None, None))
        kind = PermissionKind.DELEGATED
        # Of the new grant for an addition, of the old one for a removal.
        types = properties.get("DelegatedPermissionGrant.ConsentType", (None, None))
        consent = _consent_type(types[1] if adds else types[0]) or _consent_type(
            types[0] if adds else types[1]
        )
    before, after = _values(old), _values(new)
    changed = (
        [v for v in after if v not in before] if adds else [v for v in before if v not in after]
    )
    return client_id, graph_guid(target.get("id")), kind, tuple(changed), consent


def _consent_parts(target: dict[str, Any], properties: dict[str, tuple]) -> Parts | None:
    """A "Consent to application" event: the target is the client; the delegated scopes it
    granted are in ``ConsentAction.Permissions`` (an app-only consent's roles come as
    their own "Add app role assignment" events, under the same correlation id)."""
    client_id = graph_guid(target.get("id"))
    if client_id is None:
        return None
    admin = str(properties.get("ConsentContext.IsAdminConsent", (None, None))[1]).lower() == "true"
    app_only = str(properties.get("ConsentContext.IsAppOnly", (None, None))[1]).lower() == "true"
    text = properties.get("ConsentAction.Permissions", (None, None))[1]
    old_text, _, new_text = (text if isinstance(text, str) else "").partition("=>")
    before = {(r, v) for r, _, values in _consent_entries(old_text) for v in values}
    resources: set[str] = set()
    values: list[str] = []
    for resource, _, scopes in _consent_entries(new_text):
        for value in scopes:
            if (resource, value) not in before and value not in values:
                values.append(value)
                resources.add(resource)
    kind = PermissionKind.APPLICATION if app_only else PermissionKind.DELEGATED
    consent = Grant.Consent.ADMIN if admin or app_only else Grant.Consent.USER
    resource_id = next(iter(resources)) if len(resources) == 1 else None
    return client_id, resource_id, kind, tuple(values), consent


def _consent_entries(text: str) -> Iterable[tuple[str, str, list[str]]]:
    for match in _CONSENT_ENTRY.finditer(text[:20000]):
        resource = graph_guid(match["resource"])
        if resource is not None:
            yield resource, match["type"], _values(match["scope"])


def _properties(target: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """A target's modifiedProperties by name: (old, new), each decoded from its JSON."""
    found: dict[str, tuple[Any, Any]] = {}
    listed = target.get("modifiedProperties")
    for item in listed if isinstance(listed, list) else []:
        if isinstance(item, dict) and isinstance(item.get("displayName"), str):
            found[item["displayName"]] = (
                _decoded(item.get("oldValue")),
                _decoded(item.get("newValue")),
            )
    return found


def _decoded(value: Any) -> Any:
    if not isinstance(value, str):
        return None
    try:
        return json.loads(value)
    except ValueError:
        return value  # not every value is JSON-encoded: take it as it is


def _values(value: Any) -> list[str]:
    """Permission values from a property (a scope list, a role value), each once, only
    those a permission could be named."""
    if not isinstance(value, str):
        return []
    found: list[str] = []
    for word in value.split():
        cleaned = permission_value(word)
        if cleaned and cleaned not in found:
            found.append(cleaned)
    return found


def _consent_type(value: Any) -> str:
    return _CONSENT_TYPES.get(str(value).lower(), "") if isinstance(value, str) else ""


def _initiator(value: Any) -> tuple[str, str, str | None, bool]:
    """(name, UPN, id, is an app) of who did it: a user, or an application."""
    by = value if isinstance(value, dict) else {}
    user, app = by.get("user"), by.get("app")
    if isinstance(user, dict):
        return (
            graph_text(user.get("displayName"), 300)[0],
            graph_text(user.get("userPrincipalName"), 300)[0],
            graph_guid(user.get("id")),
            False,
        )
    if isinstance(app, dict):
        return (
            graph_text(app.get("displayName"), 300)[0],
            "",
            graph_guid(app.get("servicePrincipalId")),
            True,
        )
    return "", "", None, False


def _moment(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        moment = parse_datetime(value)
    except ValueError:
        return None
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def consent_events_apply(*, tenant: Tenant, events: ConsentEvents | None) -> int:
    """Keep the events not kept yet, inside the sync's apply transaction; returns how many
    were new. None (not read, e.g. a held snapshot) changes nothing; an unknown status
    keeps every event and the watermark, and marks the tenant unknown."""
    if events is None:
        return 0
    fields: dict[str, Any] = {"consent_history_status": events.status}
    new: list[EventRecord] = []
    if events.status == KNOWN:
        ids = [record.event_id for record in events.events]
        kept: set[str] = set()
        for start in range(0, len(ids), 1000):
            kept.update(
                ConsentEvent.objects.filter(
                    tenant=tenant, event_id__in=ids[start : start + 1000]
                ).values_list("event_id", flat=True)
            )
        new = [record for record in events.events if record.event_id not in kept]
        ConsentEvent.objects.bulk_create([_row(tenant, r) for r in new], batch_size=1000)
        newest = max((record.at for record in events.events), default=None)
        through = tenant.consent_history_through
        fields["consent_history_through"] = max(filter(None, [through, newest]), default=None)
        # The first read decides it: later ones start where the kept events end.
        fields["consent_history_from"] = tenant.consent_history_from or events.retained_from
    Tenant.objects.filter(pk=tenant.pk).update(**fields)
    for name, value in fields.items():
        setattr(tenant, name, value)
    return len(new)


def _row(tenant: Tenant, record: EventRecord) -> ConsentEvent:
    # The record's fields are the model's, its GUIDs as text.
    values: dict[str, Any] = asdict(record)
    for name in ("initiator_id", "client_object_id", "resource_object_id", "resource_app_id"):
        values[name] = _uuid(values[name])
    values["permissions"] = list(record.permissions)
    return ConsentEvent(tenant=tenant, **values)


def _uuid(value: str | None) -> UUID | None:
    return UUID(value) if value else None


# -- what the application's page shows ---------------------------------------------


def who(event: ConsentEvent) -> str:
    """Who did it, in words: a user by their UPN (a consent's displayName is Entra's token
    service, not theirs), an application by its name."""
    if event.initiator_is_app:
        return f"{event.initiator_name or event.initiator_id or 'an application'} (an application)"
    return event.initiator_upn or event.initiator_name or str(event.initiator_id or "someone")


@dataclass(frozen=True)
class Origin:
    """A grant's line: the event that gave it, or None (then ``before`` says since when the
    portal would have seen one)."""

    event: ConsentEvent | None
    by: str = ""


@dataclass(frozen=True)
class HistoryRow:
    event: ConsentEvent
    # Who did it (:func:`who`), and the API whose permissions it gave or took ("" unknown).
    by: str
    api: str


@dataclass(frozen=True)
class ConsentHistory:
    known: bool
    # Why the history is unknown, and how to enable it ("" when known).
    why_unknown: str
    # Events before this were past Entra's retention when the portal first read them.
    since: dt.datetime | None
    rows: list[HistoryRow]
    total: int


def why_unknown(tenant: Tenant) -> str:
    return WHY_UNKNOWN.get(tenant.consent_history_status, WHY_UNKNOWN[FAILED])


def consent_history(*, tenant: Tenant, service_principal: ServicePrincipal) -> ConsentHistory:
    """An application's consent history, newest first, at most :data:`HISTORY_SHOWN`."""
    known = tenant.consent_history_status == KNOWN
    events = ConsentEvent.objects.filter(
        tenant=tenant, client_object_id=service_principal.object_id
    )
    shown = list(events[:HISTORY_SHOWN])
    apis = {event.resource_app_id for event in shown if event.resource_app_id}
    names: dict[UUID | None, str] = {}
    if apis:
        found = ServicePrincipal.objects.filter(tenant=tenant, app_id__in=apis)
        names.update(found.values_list("app_id", "display_name"))
    return ConsentHistory(
        known=known,
        why_unknown="" if known else why_unknown(tenant),
        since=tenant.consent_history_from,
        rows=[
            HistoryRow(event, who(event), names.get(event.resource_app_id, "")) for event in shown
        ],
        total=len(shown) if len(shown) < HISTORY_SHOWN else events.count(),
    )


def grant_origins(
    *, tenant: Tenant, service_principal: ServicePrincipal, slots: list[GrantSlot]
) -> list[Origin]:
    """For each grant (by slot), the newest successful event that gave its permission to
    this client: matched by kind, value (ignoring case), API and consent type where the
    event says them."""
    granting = ConsentEvent.objects.filter(
        tenant=tenant,
        client_object_id=service_principal.object_id,
        activity__in=GRANTING,
        result__iexact="success",
    )
    events = list(granting[:2000])
    origins = []
    for slot in slots:
        event = next((e for e in events if _gives(e, slot)), None)
        origins.append(Origin(event=event, by=who(event) if event else ""))
    return origins


def _gives(event: ConsentEvent, slot: GrantSlot) -> bool:
    return (
        event.kind == slot.kind
        and (not event.consent or event.consent == slot.consent)
        and (event.resource_app_id is None or str(event.resource_app_id) == slot.resource_app_id)
        and slot.value.casefold() in {value.casefold() for value in event.permissions}
    )
