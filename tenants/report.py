"""The tenant report: every application's grants with their verdicts (DESIGN.md contract).

Reads only. The verdicts come from permissions.verdicts; this module gathers what the
engine needs from the database. :func:`application_reports` reads the tenant's
applications from a server-side cursor (``QuerySet.iterator``: a named cursor on
PostgreSQL) and works out :data:`REPORT_CHUNK` of them at a time, in a fixed number of
queries each, so that an export holds one chunk in memory whatever the tenant's size.
The report is typed data (:class:`ApplicationReport`); ``tenants.exports`` streams it as
the contract's JSON and as CSV.
"""

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from itertools import islice
from typing import Any
from uuid import UUID

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from permissions.models import (
    Application,
    Permission,
    Requirement,
)
from permissions.selectors import call_index_for
from permissions.verdicts import (
    Evaluation,
    JustificationNote,
    Need,
    PermissionKey,
    Verdict,
    apply_justification,
    evaluate,
)
from tenants.justifications import justification_note, justifications_by_client
from tenants.models import (
    Credential,
    FeatureSwitch,
    Grant,
    RevokeRequest,
    ServicePrincipal,
    Tenant,
)
from tenants.ownership import ownership_of
from tenants.signins import sign_in_json
from tenants.slots import GrantSlot

# Applications worked out at a time: what an export holds in memory, and how many rows
# the cursor fetches in one go. A chunk of the benchmark tenant's is about 7,500 grants.
REPORT_CHUNK = 250


@dataclass(frozen=True)
class GrantReport:
    """One permission an application holds, with one consent type, and its verdict."""

    permission: str
    kind: str
    resource_app_id: str
    consent: str
    # Users who consented (user consent only).
    users: int
    verdict: Verdict
    # needed: the enabled features that list it; unused: the disabled ones; else empty.
    features: tuple[str, ...]
    # A less privileged permission that allows every API call the features declare.
    narrower: str | None
    tier: str | None
    # An admin's reason for keeping it, while in force (an expired one counts for nothing).
    justification: JustificationNote | None = None
    # The portal revoked it and a later sync found it granted again.
    regranted: bool = False

    @property
    def is_revoke_candidate(self) -> bool:
        """Unused (only switched-off features list it) or unexplained (no manifest says what
        uses it): what a bulk revoke takes and a digest lists."""
        return self.verdict in (Verdict.UNUSED, Verdict.UNEXPLAINED)

    def as_json(self) -> dict[str, Any]:
        return {
            "permission": self.permission,
            "type": self.kind,
            "resource_app_id": self.resource_app_id,
            "consent": self.consent,
            "users": self.users,
            "verdict": self.verdict.value,
            "features": list(self.features),
            "narrower": self.narrower,
            "tier": self.tier,
            "justification": _justification_json(self.justification),
            "regranted": self.regranted,
        }


def _justification_json(note: JustificationNote | None) -> dict[str, Any] | None:
    if note is None:
        return None
    expires = note.expires.isoformat() if note.expires else None
    return {"reason": note.reason, "by": note.by, "expires": expires}


@dataclass(frozen=True)
class MissingReport:
    """A permission that enabled features list and the tenant has not granted."""

    permission: str
    kind: str
    resource_app_id: str
    features: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "permission": self.permission,
            "type": self.kind,
            "resource_app_id": self.resource_app_id,
            "features": list(self.features),
        }


@dataclass(frozen=True)
class CredentialsReport:
    """What an application signs in with, as the last sync saw it (tenants.facts)."""

    count: int
    # The earliest end of any of them, expired ones included; None without an end on record.
    soonest_expiry: datetime | None
    # Any placed directly on the service principal, where the app's owners may not see it.
    on_service_principal: bool

    @property
    def soonest_expiry_text(self) -> str | None:
        """In UTC with a Z, as ``sign_in.last`` is written."""
        expiry = self.soonest_expiry
        return expiry.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if expiry else None

    def as_json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "soonest_expiry": self.soonest_expiry_text,
            "on_service_principal": self.on_service_principal,
        }


@dataclass(frozen=True)
class ApplicationReport:
    app_id: UUID
    display_name: str
    # The object id of the application's service principal in the tenant.
    service_principal_id: UUID
    # Graph's servicePrincipalType ("Application", "ManagedIdentity", "Legacy",
    # "SocialIdp"); None where Graph did not say.
    service_principal_type: str | None
    # Published by one of Microsoft's own tenants (appOwnerOrganizationId).
    first_party: bool
    # {"last": "...Z" or None, "inactive": bool}; None where the portal cannot know.
    sign_in: dict[str, Any] | None
    grants: tuple[GrantReport, ...]
    missing: tuple[MissingReport, ...]
    # Whose application it is (permissions.risk.Ownership: own, third_party, microsoft,
    # managed_identity, unknown), as the application's page says.
    kind: str = "unknown"
    # The facts the sync reads (tenants.facts); None until a sync has read them.
    verified_publisher: bool | None = None
    # {"id", "name", "upn", "type"} each, at most the 20 Graph expands.
    owners: tuple[dict[str, str], ...] | None = None
    credentials: CredentialsReport | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "app_id": str(self.app_id),
            "display_name": self.display_name,
            "service_principal_id": str(self.service_principal_id),
            "service_principal_type": self.service_principal_type,
            "first_party": self.first_party,
            "sign_in": self.sign_in,
            "kind": self.kind,
            "verified_publisher": self.verified_publisher,
            "owners": None if self.owners is None else [dict(owner) for owner in self.owners],
            "credentials": self.credentials.as_json() if self.credentials else None,
            "grants": [grant.as_json() for grant in self.grants],
            "missing": [missing.as_json() for missing in self.missing],
        }


@dataclass(frozen=True)
class TenantReport:
    tenant_id: UUID
    # When the sync the report reflects finished; None before the first good sync.
    synced_at: datetime | None
    applications: tuple[ApplicationReport, ...]

    def as_json(self) -> dict[str, Any]:
        """The report as DESIGN.md's contract has it."""
        return {
            "tenant_id": str(self.tenant_id),
            "synced_at": self.synced_at.isoformat() if self.synced_at else None,
            "applications": [application.as_json() for application in self.applications],
        }


@dataclass(frozen=True)
class GrantGroup:
    """The grants of one permission to one application, by consent type."""

    key: PermissionKey
    consent: str
    users: int


def tenant_report(
    *, tenant: Tenant, app_id: UUID | None = None, today: date | None = None
) -> TenantReport:
    """The whole report in memory: for callers that need every application at once
    (digests, bulk revokes). Exports stream :func:`application_reports` instead."""
    return TenantReport(
        tenant_id=tenant.tenant_id,
        synced_at=report_synced_at(tenant),
        applications=tuple(application_reports(tenant=tenant, app_id=app_id, today=today)),
    )


def report_synced_at(tenant: Tenant) -> datetime | None:
    last = tenant.last_good_sync
    return last.finished_at if last else None


def application_reports(
    *,
    tenant: Tenant,
    app_id: UUID | None = None,
    today: date | None = None,
    chunk_size: int = REPORT_CHUNK,
) -> Iterator[ApplicationReport]:
    """The applications holding grants in the tenant, by name, a chunk at a time.

    ``today`` decides which justifications are in force (default: the local date).
    """
    today = today or timezone.localdate()
    now = timezone.now()
    regranted = _regranted(tenant)
    holding = Grant.objects.filter(client=OuterRef("pk"), removed_in_run__isnull=True)
    clients = ServicePrincipal.objects.filter(Exists(holding), tenant=tenant)
    if app_id is not None:
        clients = clients.filter(app_id=app_id)
    rows = clients.order_by("display_name", "object_id").iterator(chunk_size=chunk_size)
    while chunk := tuple(islice(rows, chunk_size)):
        yield from _chunk_reports(tenant, chunk, regranted, today=today, now=now)


def _chunk_reports(
    tenant: Tenant,
    chunk: tuple[ServicePrincipal, ...],
    regranted: set[tuple[int, GrantSlot]],
    *,
    today: date,
    now: datetime,
) -> Iterator[ApplicationReport]:
    """One chunk of applications, in a fixed number of queries."""
    by_pk = {sp.pk: sp for sp in chunk}
    groups = _grant_groups(
        Grant.objects.filter(tenant=tenant, removed_in_run__isnull=True, client_id__in=by_pk)
    )
    evaluations = _evaluations(tenant, by_pk, groups)
    tiers = _tiers(
        key for client_groups in groups.values() for key in {g.key for g in client_groups}
    )
    justifications = justifications_by_client([tenant.pk], {sp.app_id for sp in chunk})
    credentials = _credentials(tenant, by_pk)
    for sp in chunk:
        yield _application_report(
            tenant,
            sp,
            groups[sp.pk],
            evaluations[sp.pk],
            tiers,
            regranted,
            notes={
                slot: justification_note(justification)
                for slot, justification in justifications.get((tenant.pk, sp.app_id), {}).items()
            },
            today=today,
            sign_in=sign_in_json(tenant=tenant, sp=sp, now=now),
            credentials=credentials.get(sp.pk, []),
        )


def _credentials(
    tenant: Tenant, by_pk: dict[int, ServicePrincipal]
) -> dict[int, list[tuple[datetime | None, bool]]]:
    """(end, on the application) of each credential of the chunk's applications."""
    found: dict[int, list[tuple[datetime | None, bool]]] = defaultdict(list)
    rows = Credential.objects.filter(tenant=tenant, service_principal_id__in=by_pk).values_list(
        "service_principal_id", "end_at", "on_application"
    )
    for pk, end, on_application in rows:
        found[pk].append((end, on_application))
    return found


def _credentials_report(
    sp: ServicePrincipal, credentials: list[tuple[datetime | None, bool]]
) -> CredentialsReport | None:
    """None until a sync has read the facts (its owners are None then too): unknown, not
    "no credentials"."""
    if sp.owners is None:
        return None
    return CredentialsReport(
        count=len(credentials),
        soonest_expiry=min((end for end, _ in credentials if end is not None), default=None),
        on_service_principal=any(not on_application for _, on_application in credentials),
    )


def _regranted(tenant: Tenant) -> set[tuple[int, GrantSlot]]:
    """(client pk, slot) of grants whose latest succeeded revoke a later sync found
    granted again. One query; a tenant collects a handful of revokes, not thousands."""
    latest: dict[tuple[int, GrantSlot], bool] = {}
    revokes = (
        RevokeRequest.objects.filter(
            tenant=tenant,
            action=RevokeRequest.Action.REVOKE,
            status=RevokeRequest.Status.SUCCEEDED,
        )
        .order_by("pk")
        .values_list(
            "client_id", "resource_app_id", "kind", "value", "consent", "regranted_in_run_id"
        )
    )
    for client_id, resource, kind, value, consent, regranted_in in revokes:
        latest[(client_id, GrantSlot(str(resource), kind, value, consent))] = bool(regranted_in)
    return {key for key, regranted in latest.items() if regranted}


def _grant_groups(grants: QuerySet[Grant]) -> dict[int, list[GrantGroup]]:
    rows = (
        grants.values("client_id", "resource_app_id", "kind", "value", "permission_id", "consent")
        .annotate(users=Count("principal_id", distinct=True, filter=Q(consent=Grant.Consent.USER)))
        .order_by("client_id", "kind", "value", "consent")
    )
    groups: dict[int, list[GrantGroup]] = defaultdict(list)
    for row in rows:
        # An app role the resource does not publish keeps its id as its name.
        value = row["value"] or str(row["permission_id"])
        key = PermissionKey(str(row["resource_app_id"]), row["kind"], value)
        groups[row["client_id"]].append(
            GrantGroup(key=key, consent=row["consent"], users=row["users"])
        )
    return groups


def _evaluations(
    tenant: Tenant, clients: dict[int, ServicePrincipal], groups: dict[int, list[GrantGroup]]
) -> dict[int, Evaluation]:
    app_ids = {sp.app_id for sp in clients.values()}
    needs = application_needs(app_ids)
    enabled = enabled_features(tenant, app_ids)
    call_index = call_index_for(
        {key for client_groups in groups.values() for key in (g.key for g in client_groups)}
        | {need.permission for app_needs in needs.values() for need in app_needs}
    )
    return {
        pk: evaluate(
            needs=needs.get(sp.app_id, []),
            enabled_features=enabled.get(sp.app_id, set()),
            granted=[group.key for group in groups[pk]],
            call_index=call_index,
        )
        for pk, sp in clients.items()
    }


def application_needs(app_ids: Iterable[UUID]) -> dict[UUID, list[Need]]:
    """Every manifest requirement of the given applications, as the engine's Needs."""
    needs: dict[UUID, list[Need]] = defaultdict(list)
    requirements = (
        Requirement.objects.filter(feature__application__app_id__in=list(app_ids))
        .values_list(
            "feature__application__app_id",
            "feature__key",
            "resource_app_id",
            "kind",
            "permission_value",
            "api_calls",
        )
        .order_by("feature__application_id", "feature__position", "position")
    )
    for app_id, feature_key, resource, kind, value, api_calls in requirements:
        needs[app_id].append(
            Need(feature_key, PermissionKey(str(resource), kind, value), tuple(api_calls))
        )
    return needs


def enabled_features(tenant: Tenant, app_ids: Iterable[UUID]) -> dict[UUID, set[str]]:
    """The features switched on in the tenant: its own choices, else the manifest default."""
    switches = dict(
        FeatureSwitch.objects.filter(
            tenant=tenant, feature__application__app_id__in=list(app_ids)
        ).values_list("feature_id", "enabled")
    )
    enabled: dict[UUID, set[str]] = defaultdict(set)
    features = Application.objects.filter(app_id__in=list(app_ids)).values_list(
        "app_id", "features__pk", "features__key", "features__default_enabled"
    )
    for app_id, feature_pk, key, default in features:
        if feature_pk is not None and switches.get(feature_pk, default):
            enabled[app_id].add(key)
    return enabled


def _tiers(keys: Iterable[PermissionKey]) -> dict[PermissionKey, str]:
    keys = set(keys)
    if not keys:
        return {}
    rows = Permission.objects.filter(value__in={k.value for k in keys}).values_list(
        "resource__app_id", "kind", "value", "tier"
    )
    return {
        PermissionKey(str(resource), kind, value): tier
        for resource, kind, value, tier in rows
        if tier
    }


def _application_report(
    tenant: Tenant,
    sp: ServicePrincipal,
    groups: list[GrantGroup],
    evaluation: Evaluation,
    tiers: dict[PermissionKey, str],
    regranted: set[tuple[int, GrantSlot]],
    *,
    notes: dict[GrantSlot, JustificationNote],
    today: date,
    sign_in: dict[str, Any] | None,
    credentials: list[tuple[datetime | None, bool]],
) -> ApplicationReport:
    by_key = {finding.permission: finding for finding in evaluation.grants}
    # Justifications name a grant with its consent type: applied per entry, for the few
    # applications that have any.
    findings = [
        apply_justification(
            by_key[group.key], notes.get(GrantSlot.of(group.key, group.consent)), today=today
        )
        if notes
        else by_key[group.key]
        for group in groups
    ]
    return ApplicationReport(
        app_id=sp.app_id,
        display_name=sp.display_name,
        service_principal_id=sp.object_id,
        service_principal_type=sp.service_principal_type or None,
        first_party=sp.is_first_party,
        sign_in=sign_in,
        kind=ownership_of(tenant=tenant, service_principal=sp).value,
        verified_publisher=sp.verified_publisher,
        owners=None if sp.owners is None else tuple(sp.owners),
        credentials=_credentials_report(sp, credentials),
        grants=tuple(
            GrantReport(
                permission=group.key.value,
                kind=group.key.kind,
                resource_app_id=group.key.resource_app_id,
                consent=group.consent,
                users=group.users,
                verdict=finding.verdict,
                features=finding.features,
                narrower=_value(finding.narrower),
                tier=tiers.get(group.key),
                justification=finding.justification,
                regranted=(sp.pk, GrantSlot.of(group.key, group.consent)) in regranted,
            )
            for group, finding in zip(groups, findings, strict=True)
        ),
        missing=tuple(
            MissingReport(
                permission=missing.permission.value,
                kind=missing.permission.kind,
                resource_app_id=missing.permission.resource_app_id,
                features=missing.features,
            )
            for missing in evaluation.missing
        ),
    )


def _value(key: PermissionKey | None) -> str | None:
    return key.value if key else None
