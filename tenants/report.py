"""The tenant report: every application's grants with their verdicts (DESIGN.md contract).

Reads only. The verdicts come from permissions.verdicts; this module gathers what the
engine needs from the database in a fixed number of queries, whatever the tenant's size.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.db.models import Count, Q

from permissions.models import (
    Application,
    Permission,
    Requirement,
)
from permissions.selectors import call_index_for
from permissions.verdicts import (
    Evaluation,
    Need,
    PermissionKey,
    evaluate,
)
from tenants.models import FeatureSwitch, Grant, ServicePrincipal, Tenant


@dataclass(frozen=True)
class GrantGroup:
    """The grants of one permission to one application, by consent type."""

    key: PermissionKey
    consent: str
    users: int


def tenant_report(*, tenant: Tenant, app_id: UUID | None = None) -> dict[str, Any]:
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
    last = tenant.last_good_sync
    return {
        "tenant_id": str(tenant.tenant_id),
        "synced_at": last.finished_at.isoformat() if last and last.finished_at else None,
        "applications": [
            _application_entry(sp, groups[sp.pk], evaluations[sp.pk], tiers) for sp in clients
        ],
    }


def _grant_groups(grants) -> dict[int, list[GrantGroup]]:  # noqa: ANN001 - a Grant queryset
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


def _application_entry(
    sp: ServicePrincipal,
    groups: list[GrantGroup],
    evaluation: Evaluation,
    tiers: dict[PermissionKey, str],
) -> dict[str, Any]:
    findings = {finding.permission: finding for finding in evaluation.grants}
    return {
        "app_id": str(sp.app_id),
        "display_name": sp.display_name,
        "service_principal_id": str(sp.object_id),
        "grants": [
            {
                "permission": group.key.value,
                "type": group.key.kind,
                "resource_app_id": group.key.resource_app_id,
                "consent": group.consent,
                "users": group.users,
                "verdict": findings[group.key].verdict.value,
                "features": list(findings[group.key].features),
                "narrower": findings[group.key].narrower.value
                if findings[group.key].narrower
                else None,
                "tier": tiers.get(group.key),
            }
            for group in groups
        ],
        "missing": [
            {
                "permission": missing.permission.value,
                "type": missing.permission.kind,
                "resource_app_id": missing.permission.resource_app_id,
                "features": list(missing.features),
            }
            for missing in evaluation.missing
        ],
    }
