"""The tenant report: every application's grants with their verdicts (DESIGN.md contract).

Reads only. The verdicts come from permissions.verdicts; this module gathers what the
engine needs from the database in a fixed number of queries, whatever the tenant's size.
The report is typed data (:class:`TenantReport`); its ``as_json()`` is the contract's JSON,
which the ``report`` command and the JSON export print; ``tenants.exports`` writes its CSV.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from django.db.models import Count, Q, QuerySet
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
from tenants.models import FeatureSwitch, Grant, RevokeRequest, ServicePrincipal, Tenant
from tenants.signins import sign_in_json
from tenants.slots import GrantSlot


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

    def as_json(self) -> dict[str, Any]:
        return {
            "app_id": str(self.app_id),
            "display_name": self.display_name,
            "service_principal_id": str(self.service_principal_id),
            "service_principal_type": self.service_principal_type,
            "first_party": self.first_party,
            "sign_in": self.sign_in,
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
    """``today`` decides which justifications are in force (default: the local date)."""
    today = today or timezone.localdate()
    grants = Grant.objects.filter(tenant=tenant, removed_in_run__isnull=True)
    if app_id is not None:
        grants = grants.filter(client__app_id=app_id)
    groups = _grant_groups(grants)
    clients = ServicePrincipal.objects.filter(pk__in=groups.keys()).order_by(
        "display_name", "object_id"
    )
    evaluations = _evaluations(tenant, {sp.pk: sp for sp in clients}, groups)
    tiers = _tiers(
        key for client_groups in groups.values() for key in {g.key for g in client_groups}
    )
    regranted = _regranted(tenant)
    justifications = justifications_by_client([tenant.pk], [app_id] if app_id else None)
    last = tenant.last_good_sync
    now = timezone.now()
    return TenantReport(
        tenant_id=tenant.tenant_id,
        synced_at=last.finished_at if last else None,
        applications=tuple(
            _application_report(
                sp,
                groups[sp.pk],
                evaluations[sp.pk],
                tiers,
                regranted,
                notes={
                    slot: justification_note(justification)
                    for slot, justification in justifications.get(
                        (tenant.pk, sp.app_id), {}
                    ).items()
                },
                today=today,
                sign_in=sign_in_json(tenant=tenant, sp=sp, now=now),
            )
            for sp in clients
        ),
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
    sp: ServicePrincipal,
    groups: list[GrantGroup],
    evaluation: Evaluation,
    tiers: dict[PermissionKey, str],
    regranted: set[tuple[int, GrantSlot]],
    *,
    notes: dict[GrantSlot, JustificationNote],
    today: date,
    sign_in: dict[str, Any] | None,
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
