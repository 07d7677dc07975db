"""Stored findings: each application's verdicts counted, its highest tier and its risk,
written when an input of the verdicts changes, so that the lists read rows instead of
working out every verdict of a tenant per request.

``permissions.verdicts`` still decides and ``permissions.risk`` still scores: the rows are
their output for every client holding grants in a tenant (ApplicationFinding), with the
tenant's totals (FindingSummary). Whatever changes an input calls :func:`findings_refresh`
in its own transaction: a sync's apply, a feature switch, a manifest import, a
justification added or removed, a catalog import. A justification that lapses changes a
verdict without any write: the summary records the first day that happens
(``stale_after``), and so does a tenant whose last good sync is not the one its findings
were written for (data from before this module, or written around the services): the
pages recompute such a tenant's findings before showing them (:func:`findings_current`).
The ``recompute_findings`` command recomputes every tenant's.

A sync refreshes only the clients it changed (:func:`findings_after_sync`): what the
findings read of a client is its service principal's row, whether credentials sit on the
principal, and its grants, so the clients whose row or credentials differ after the apply,
and those whose grants the run added or closed, are the ones whose findings can change.
Everything else the findings read is the tenant's or the portal's, and changing it
refreshes every client: the stored findings not describing the snapshot in force before
the apply (the first sync, rows from before this module, a lapse), a held snapshot
applied, a permission new to the catalog, the tenant's sign-in activity becoming known
or unknown.

Inactivity depends on the clock, not only on the inputs: a client that signed in
INACTIVE_DAYS ago becomes inactive without any write. The summary's ``stale_after`` is
therefore also the day after the first stored active client crosses that line, so the
next sync or page from then on refreshes the whole tenant: an inactive flag (and the risk
it feeds) is at most a day late, and a tenant whose clients all sign in every day is
never refreshed in full for it.
"""

from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import cast
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Min, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from permissions.models import Permission, Tier
from permissions.risk import HeldPermission, RiskLevel
from permissions.verdicts import PermissionKey, apply_justification, evaluate
from tenants.justifications import justification_note, justifications_by_client
from tenants.models import (
    ApplicationFinding,
    Credential,
    FindingSummary,
    Grant,
    Justification,
    ServicePrincipal,
    SyncRun,
    Tenant,
)
from tenants.report import application_needs, enabled_features
from tenants.risk import ownership_of, risk_assess
from tenants.selectors import (
    FILTERED_VERDICTS,
    NO_TIER,
    VerdictCounts,
    catalog_entries,
    current_grants,
    facet_condition,
    facet_key,
    grant_entries,
)
from tenants.signins import inactive_since, is_inactive, sign_in_known
from tenants.slots import GrantSlot

BATCH = 2000


def findings_refresh(*, tenant: Tenant, app_ids: Collection[UUID] | None = None) -> FindingSummary:
    """Recompute and store the findings of ``tenant``'s applications (only those of
    ``app_ids``, when given: what a feature switch or a manifest changes) and its summary.

    In one transaction, joining the caller's: the rows change exactly when the input that
    changes them does. The tenant row is locked, so two refreshes of a tenant queue up
    rather than interleave their deletes and inserts.
    """
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
        stale = ApplicationFinding.objects.filter(tenant=tenant)
        if app_ids is not None:
            stale = stale.filter(app_id__in=list(app_ids))
        if app_ids is None or app_ids:
            stale.delete()
            ApplicationFinding.objects.bulk_create(
                findings_compute(tenant=tenant, app_ids=app_ids), batch_size=BATCH
            )
        return _summary_write(tenant)


# The service principal's columns a client's findings may read: all but its keys. Every
# one, rather than the few the rules read today, so that a new rule cannot be missed.
_SP_INPUTS = tuple(
    field.attname
    for field in ServicePrincipal._meta.concrete_fields
    if field.attname not in ("id", "tenant_id")
)
_APP_ID = _SP_INPUTS.index("app_id")


@dataclass(frozen=True)
class SyncInputs:
    """What a sync's apply may change of a tenant's findings' inputs, read before and
    after it: each client's row and credentials-on-principal, the tenant's sign-in status,
    and whether the stored findings describe the tenant as it is before the apply."""

    principals: dict[int, tuple[object, ...]]
    credentials_on_sp: frozenset[int]
    sign_in_status: str
    stored_current: bool

    def app_ids_changed(self, after: "SyncInputs") -> set[UUID]:
        """The appIds (before and after) of the clients whose inputs differ."""
        changed = {
            pk
            for pk in self.principals.keys() | after.principals.keys()
            if self.principals.get(pk) != after.principals.get(pk)
        }
        changed |= self.credentials_on_sp ^ after.credentials_on_sp
        return {
            cast(UUID, row[_APP_ID])
            for pk in changed
            for row in (self.principals.get(pk), after.principals.get(pk))
            if row is not None
        }


def sync_inputs(tenant: Tenant) -> SyncInputs:
    """The inputs a sync may change (three queries), for :func:`findings_after_sync`."""
    summary = FindingSummary.objects.filter(tenant=tenant).first()
    return SyncInputs(
        principals={
            row[0]: row[1:]
            for row in ServicePrincipal.objects.filter(tenant=tenant).values_list("pk", *_SP_INPUTS)
        },
        credentials_on_sp=_credentials_on_sp(tenant),
        sign_in_status=tenant.sign_in_status,
        stored_current=summary is not None and _is_current(summary, tenant, timezone.localdate()),
    )


def findings_after_sync(
    *, tenant: Tenant, run: SyncRun, before: SyncInputs, full: bool = False
) -> FindingSummary:
    """Refresh the findings a sync's apply changed, in its transaction: ``before`` was
    read at the apply's start, ``tenant`` is read now. Every client's when ``full`` (a
    held snapshot), or when the change is tenant-wide (see the module's docstring)."""
    tenant = Tenant.objects.get(pk=tenant.pk)
    after = sync_inputs(tenant)
    if full or not before.stored_current or before.sign_in_status != after.sign_in_status:
        return findings_refresh(tenant=tenant)
    app_ids = before.app_ids_changed(after)
    app_ids.update(
        Grant.objects.filter(Q(first_seen_run=run) | Q(removed_in_run=run), tenant=tenant)
        .values_list("client__app_id", flat=True)
        .distinct()
    )
    return findings_refresh(tenant=tenant, app_ids=app_ids)


def _credentials_on_sp(tenant: Tenant) -> frozenset[int]:
    """The service principals with credentials of their own (not their application's)."""
    return frozenset(
        Credential.objects.filter(tenant=tenant, on_application=False).values_list(
            "service_principal_id", flat=True
        )
    )


def findings_refresh_holding(*, app_ids: Collection[UUID]) -> int:
    """Refresh the findings of these applications in every tenant they hold grants in (a
    manifest describes an application everywhere). Returns how many tenants."""
    tenants = Tenant.objects.filter(
        pk__in=ServicePrincipal.objects.filter(app_id__in=list(app_ids)).values("tenant_id"),
        last_good_sync__isnull=False,
    )
    count = 0
    for tenant in tenants:
        findings_refresh(tenant=tenant, app_ids=app_ids)
        count += 1
    return count


def findings_refresh_all() -> int:
    """Refresh every synced tenant's findings (the catalog changed, or after an upgrade).
    Returns how many tenants."""
    count = 0
    for tenant in Tenant.objects.filter(last_good_sync__isnull=False).order_by("pk"):
        findings_refresh(tenant=tenant)
        count += 1
    return count


def findings_current(tenants: Iterable[Tenant]) -> dict[int, FindingSummary]:
    """The summaries of the synced ``tenants`` (by tenant pk), after recomputing the
    findings of any whose stored ones are missing or out of date. One query when all are
    current, which is every time but the first after an upgrade or a lapsed justification."""
    synced = [tenant for tenant in tenants if tenant.last_good_sync_id is not None]
    summaries = {
        summary.tenant_id: summary
        for summary in FindingSummary.objects.filter(tenant__in=[t.pk for t in synced])
    }
    today = timezone.localdate()
    for tenant in synced:
        summary = summaries.get(tenant.pk)
        if summary is None or not _is_current(summary, tenant, today):
            summaries[tenant.pk] = findings_refresh(tenant=tenant)
    return summaries


def _is_current(summary: FindingSummary, tenant: Tenant, today: date) -> bool:
    return summary.run_id == tenant.last_good_sync_id and (
        summary.stale_after is None or today < summary.stale_after
    )


def findings_compute(
    *, tenant: Tenant, app_ids: Collection[UUID] | None = None
) -> list[ApplicationFinding]:
    """The findings of every client holding grants in ``tenant`` (of ``app_ids``), unsaved.

    Eight queries, whatever the number of clients and grants: the grants, their clients,
    the manifests, the feature switches, the justifications, the catalog entries of what
    is held, and the clients with credentials on their service principal.
    """
    today = timezone.localdate()
    grants = current_grants([tenant.pk])
    if app_ids is not None:
        grants = grants.filter(client__app_id__in=list(app_ids))
    entries = grant_entries(grants)
    holders = list(ServicePrincipal.objects.filter(pk__in=grants.values("client_id")))
    held_app_ids = {sp.app_id for sp in holders}
    needs = application_needs(held_app_ids)
    enabled = enabled_features(tenant, held_app_ids)
    # A tenant holds a handful of justifications: all of them, rather than a list of
    # thousands of appIds to match.
    justified = justifications_by_client([tenant.pk])
    held = _held_permissions({key for sp_entries in entries.values() for key, _ in sp_entries})
    sp_credentials = _credentials_on_sp(tenant)
    known_sign_ins = sign_in_known(tenant)
    findings = []
    for sp in holders:
        sp_entries = entries[sp.pk]
        evaluation = evaluate(
            needs=needs.get(sp.app_id, []),
            enabled_features=enabled.get(sp.app_id, set()),
            granted=[key for key, _ in sp_entries],
        )
        counts = VerdictCounts(missing=len(evaluation.missing))
        sp_justified = justified.get((tenant.pk, sp.app_id), {})
        # The engine answers in the order it was asked, one finding per distinct key; a
        # justification names one entry (a consent type) of a permission.
        for finding, (key, consents) in zip(evaluation.grants, sp_entries, strict=True):
            if not sp_justified:  # most clients: every entry has the engine's verdict
                counts.add(finding.verdict.value, len(consents))
            else:
                for consent in consents:
                    justification = sp_justified.get(GrantSlot.of(key, consent))
                    note = justification_note(justification) if justification else None
                    counts.add(apply_justification(finding, note, today=today).verdict.value)
            if held[key].tier == Tier.CONTROL_PLANE:
                counts.control_plane += len(consents)
        sp_held = tuple(held[key] for key, _ in sp_entries)
        risk = risk_assess(
            tenant=tenant,
            service_principal=sp,
            held=sp_held,
            unused=counts.unused,
            unexplained=counts.unexplained,
            credentials_on_sp=sp.pk in sp_credentials,
        )
        levels = [p.privilege_level for p in sp_held if p.privilege_level is not None]
        findings.append(
            ApplicationFinding(
                tenant=tenant,
                service_principal=sp,
                app_id=sp.app_id,
                display_name=sp.display_name,
                kind=ownership_of(tenant=tenant, service_principal=sp).value,
                first_party=sp.is_first_party,
                needed=counts.needed,
                unused=counts.unused,
                unexplained=counts.unexplained,
                missing=counts.missing,
                control_plane=counts.control_plane,
                tier=_highest_tier(sp_held),
                privilege_level=max(levels, default=None),
                risk_score=risk.score,
                risk_level=risk.level.value,
                risk_reasons=[reason.text for reason in risk.reasons],
                inactive=is_inactive(sp.last_sign_in_at) if known_sign_ins else None,
            )
        )
    return findings


def _held_permissions(keys: Iterable[PermissionKey]) -> dict[PermissionKey, HeldPermission]:
    """Each permission held with the catalog's facts about it, as the risk rule takes it;
    one object per permission, shared by every client that holds it."""
    keys = list(keys)
    catalog: dict[PermissionKey, Permission] = catalog_entries(keys)
    held = {}
    for key in keys:
        entry = catalog.get(key)
        held[key] = HeldPermission(
            value=key.value,
            kind=key.kind,
            tier=entry.tier if entry else "",
            privilege_level=entry.privilege_level if entry else None,
            resource_app_id=key.resource_app_id,
        )
    return held


def _highest_tier(held: Sequence[HeldPermission]) -> str:
    """The most sensitive tier of what is held (Tier lists them so); "" when none is."""
    tiers = {permission.tier for permission in held}
    return next((tier.value for tier in Tier if tier and tier in tiers), "")


# The counts of grant entries a summary adds up over its applications.
SUMMED = ("needed", "unused", "unexplained", "missing", "control_plane")
# The facets counted with a condition each; the others by grouping (_grouped_facets).
COUNTED_FACETS = [
    *(("verdict", verdict) for verdict in FILTERED_VERDICTS),
    ("activity", "inactive"),
]


def _summary_write(tenant: Tenant) -> FindingSummary:
    """The tenant's totals and facets from its stored rows (two queries), and until when
    they hold."""
    rows = ApplicationFinding.objects.filter(tenant=tenant)
    counted = rows.aggregate(
        applications=Count("pk"),
        # Named apart from the fields: the facets' conditions read those.
        **{f"total_{name}": Coalesce(Sum(name), 0) for name in SUMMED},
        **{
            f"facet_{n}": Count("pk", filter=facet_condition(*facet))
            for n, facet in enumerate(COUNTED_FACETS)
        },
    )
    facets = {facet_key(*facet): counted[f"facet_{n}"] for n, facet in enumerate(COUNTED_FACETS)}
    facets.update(_grouped_facets(rows))
    summary, _ = FindingSummary.objects.update_or_create(
        tenant=tenant,
        defaults={
            "applications": counted["applications"],
            **{name: counted[f"total_{name}"] for name in SUMMED},
            "inactive": facets[facet_key("activity", "inactive")]
            if sign_in_known(tenant)
            else None,
            "critical": facets.get(facet_key("risk", RiskLevel.CRITICAL), 0),
            "high": facets.get(facet_key("risk", RiskLevel.HIGH), 0),
            "facets": facets,
            "run_id": tenant.last_good_sync_id,
            "computed_at": timezone.now(),
            "stale_after": min(
                filter(None, (_first_lapse(tenant), _first_inactive(tenant))), default=None
            ),
        },
    )
    return summary


def _grouped_facets(rows: QuerySet[ApplicationFinding]) -> Counter[str]:
    """Applications per risk level, highest tier, kind and party, from one grouping."""
    facets: Counter[str] = Counter()
    grouped = (
        rows.values_list("risk_level", "tier", "kind", "first_party")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for risk, tier, kind, first_party, n in grouped:
        facets[facet_key("risk", risk)] += n
        facets[facet_key("tier", tier or NO_TIER)] += n
        facets[facet_key("kind", kind)] += n
        facets[facet_key("party", "first" if first_party else "third")] += n
    return facets


def _first_lapse(tenant: Tenant) -> date | None:
    """The first day a justification in force today no longer counts: from then on the
    stored verdicts may be wrong."""
    last_day = (
        Justification.objects.filter(tenant=tenant, expires__gte=timezone.localdate())
        .order_by("expires")
        .values_list("expires", flat=True)
        .first()
    )
    return last_day + timedelta(days=1) if last_day else None


def _first_inactive(tenant: Tenant) -> date | None:
    """The day after the first client stored as active becomes inactive (its last sign-in
    INACTIVE_DAYS behind): from then on its inactive flag and risk may be wrong."""
    if not sign_in_known(tenant):
        return None
    first = ServicePrincipal.objects.filter(
        pk__in=ApplicationFinding.objects.filter(tenant=tenant, inactive=False).values(
            "service_principal_id"
        ),
        last_sign_in_at__gte=inactive_since(),
    ).aggregate(first=Min("last_sign_in_at"))["first"]
    if first is None:
        return None
    crossing = first + timedelta(days=settings.INACTIVE_DAYS)
    return timezone.localdate(crossing) + timedelta(days=1)
