"""What a digest or an alert says: plain data built from the grant history, for templates.

A digest covers the sync runs after the previous digest's (``floor``) up to the newest
finished one (``up_to_run``). Run ids grow with time per tenant, so the window is an id
range; grants added and removed come from the history (tenants.selectors.run_diff),
verdicts from the tenant report as it stands now.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

from django.conf import settings
from django.db.models import Max, Q, QuerySet
from django.urls import reverse
from django.utils import timezone

from permissions.models import Permission, Requirement, Tier
from permissions.selectors import catalog_changes_held
from tenants.models import Credential, Grant, RevokeRequest, SyncRun, Tenant
from tenants.report import GrantReport, MissingReport, tenant_report
from tenants.selectors import grants_at, holding_clients, run_diff
from tenants.signins import KNOWN as KNOWN_SIGN_INS
from tenants.signins import inactive_since

# A first digest of a large tenant could list thousands of grants: each application shows
# this many per list, then a count and the link to its page.
ITEMS_PER_APPLICATION = 20


def portal_url(name: str, *args: object) -> str:
    """An absolute link for e-mails, which are built by workers that have no request."""
    return f"{settings.PORTAL_URL}{reverse(name, args=args)}"


@dataclass(frozen=True)
class Item:
    """One permission (or request, or run) in a digest list, with the page it links to."""

    application: str
    text: str
    url: str
    note: str = ""


@dataclass(frozen=True)
class ApplicationChanges:
    application: str
    url: str
    added: list[str]
    removed: list[str]
    # How many there are, of which ``added`` and ``removed`` show the first ones.
    added_total: int
    removed_total: int

    @property
    def more_added(self) -> int:
        return self.added_total - len(self.added)

    @property
    def more_removed(self) -> int:
        return self.removed_total - len(self.removed)


@dataclass(frozen=True)
class Digest:
    tenant: Tenant
    tenant_url: str
    up_to_run: int
    changes: list[ApplicationChanges]
    control_plane: list[Item]
    newly_revocable: list[Item]
    newly_missing: list[Item]
    regranted: list[Item]
    # Every request still waiting; ``new_pending`` of them arrived since the last digest.
    pending: list[Item]
    new_pending: int
    pending_url: str
    failed_syncs: list[Item]
    # The unused, unexplained and missing permissions now, kept for the next digest.
    findings: list[str] = field(repr=False)
    # Permissions the tenant holds that the catalog removed, renamed or re-tiered.
    catalog_changes: list[Item] = field(default_factory=list)
    # Applications holding permissions with no sign-in in INACTIVE_DAYS (0 where sign-in
    # activity is unknown): a standing fact, said in every digest but not news by itself.
    inactive: int = 0
    inactive_url: str = ""
    # Credentials expired or expiring within CREDENTIAL_WARNING_DAYS (tenants.facts). Shown
    # in each digest while they last; they do not by themselves make a digest not quiet.
    credentials: list[Item] = field(default_factory=list)

    @property
    def credentials_title(self) -> str:
        return f"Credentials expired or expiring within {settings.CREDENTIAL_WARNING_DAYS} days"

    @property
    def added(self) -> int:
        return sum(app.added_total for app in self.changes)

    @property
    def removed(self) -> int:
        return sum(app.removed_total for app in self.changes)

    @property
    def is_empty(self) -> bool:
        """Nothing happened that the reader has not been told (waiting requests they
        were told about do not count again)."""
        return not (
            self.changes
            or self.control_plane
            or self.newly_revocable
            or self.newly_missing
            or self.regranted
            or self.new_pending
            or self.failed_syncs
            or self.catalog_changes
        )

    @property
    def subject(self) -> str:
        if self.is_empty:
            return f"{self.tenant.name}: all quiet"
        counts = [
            (self.added, "added"),
            (self.removed, "removed"),
            (len(self.control_plane), "ControlPlane"),
            (
                len(self.newly_revocable),
                "new revoke candidates"
                if len(self.newly_revocable) > 1
                else "new revoke candidate",
            ),
            (len(self.newly_missing), "missing"),
            (len(self.regranted), "granted again"),
            (self.new_pending, "to approve"),
            (
                len(self.failed_syncs),
                "failed syncs" if len(self.failed_syncs) > 1 else "failed sync",
            ),
            (len(self.catalog_changes), "changed in the catalog"),
        ]
        said = ", ".join(f"{number} {what}" for number, what in counts if number)
        return f"{self.tenant.name}: {said}"

    @property
    def inactive_line(self) -> str:
        if not self.inactive:
            return ""
        apps, have = ("app holds", "has") if self.inactive == 1 else ("apps hold", "have")
        return (
            f"{self.inactive} {apps} permissions and {have} not signed in for "
            f"{settings.INACTIVE_DAYS} days"
        )

    @property
    def catalog_title(self) -> str:
        count = len(self.catalog_changes)
        return (
            f"The catalog re-tiered, renamed or removed {count} "
            f"permission{'s' if count != 1 else ''} this tenant holds"
        )


def newest_finished_run(tenant: Tenant) -> int:
    """The id of the tenant's newest succeeded or failed run, 0 before its first."""
    newest = SyncRun.objects.filter(
        tenant=tenant, status__in=[SyncRun.Status.SUCCEEDED, SyncRun.Status.FAILED]
    ).aggregate(newest=Max("pk"))["newest"]
    return newest or 0


def digest_build(
    *,
    tenant: Tenant,
    floor: int,
    up_to_run: int,
    previous_findings: Iterable[str] | None,
    since: datetime,
) -> Digest:
    """The digest of runs ``floor < id <= up_to_run``; ``previous_findings`` (None for a
    first digest) are the last digest's, ``since`` when it was sent."""
    good = SyncRun.objects.filter(tenant=tenant, status=SyncRun.Status.SUCCEEDED)
    latest = good.filter(pk__gt=floor, pk__lte=up_to_run).order_by("-pk").first()
    changes: list[ApplicationChanges] = []
    control_plane: list[Item] = []
    if latest is not None:
        baseline = good.filter(pk__lte=floor).order_by("-pk").first()
        if baseline is None:
            # Nothing synced before the window: all the tenant holds is new to the reader.
            added, removed = grants_at(latest).select_related("client"), Grant.objects.none()
        else:
            diff = run_diff(latest, since=baseline)
            added, removed = diff.added, diff.removed
        changes = _changes_by_application(tenant, added, removed)
        control_plane = control_plane_items(tenant, added)
    findings = _findings(tenant)
    if previous_findings is not None:
        known = set(previous_findings)
    else:
        known = _findings_before(tenant, floor, since, findings)
    new = {key: item for key, item in findings.items() if key not in known}
    pending = list(
        RevokeRequest.objects.filter(tenant=tenant, status=RevokeRequest.Status.PENDING_APPROVAL)
        .select_related("client", "requested_by")
        .order_by("created_at")
    )
    return Digest(
        tenant=tenant,
        tenant_url=portal_url("tenants:tenant-detail", tenant.tenant_id),
        up_to_run=up_to_run,
        changes=changes,
        control_plane=control_plane,
        newly_revocable=[item for key, item in new.items() if not key.endswith("|missing")],
        newly_missing=[item for key, item in new.items() if key.endswith("|missing")],
        regranted=_regranted(tenant, floor, up_to_run),
        pending=[_pending_item(tenant, revoke) for revoke in pending],
        new_pending=sum(revoke.created_at > since for revoke in pending),
        pending_url=portal_url("tenants:revoke-list", tenant.tenant_id),
        failed_syncs=_failed_syncs(tenant, floor, up_to_run),
        findings=sorted(findings),
        catalog_changes=_catalog_changes(
            good.filter(pk__lte=up_to_run).order_by("-pk").first(), since
        ),
        inactive=_inactive_holders(tenant),
        inactive_url=portal_url("tenants:tenant-detail", tenant.tenant_id) + "?activity=inactive",
        credentials=_credentials(tenant),
    )


def _inactive_holders(tenant: Tenant) -> int:
    if tenant.sign_in_status != KNOWN_SIGN_INS:
        return 0
    return (
        holding_clients([tenant.pk])
        .filter(tenant=tenant)
        .filter(Q(last_sign_in_at__isnull=True) | Q(last_sign_in_at__lt=inactive_since()))
        .count()
    )


def _credentials(tenant: Tenant) -> list[Item]:
    from tenants.facts import expiry_text

    now = timezone.now()
    credentials = (
        Credential.objects.filter(
            tenant=tenant,
            service_principal__removed_at__isnull=True,
            end_at__lte=now + timedelta(days=settings.CREDENTIAL_WARNING_DAYS),
        )
        .select_related("service_principal")
        .order_by("end_at", "pk")
    )
    return [
        Item(
            c.service_principal.display_name,
            f"{c.get_kind_display()} {c.display_name or c.key_id}",
            _application_url(tenant, c.service_principal.app_id),
            note=expiry_text(c.end_at, now)
            + ("" if c.on_application else ", on the service principal"),
        )
        for c in credentials
    ]


def _application_url(tenant: Tenant, app_id: UUID | str) -> str:
    return portal_url("tenants:application", tenant.tenant_id, app_id)


def _label(kind: str, value: str, consent: str) -> str:
    return f"{value} ({kind}{', user consent' if consent == Grant.Consent.USER else ''})"


def _changes_by_application(
    tenant: Tenant, added: QuerySet[Grant], removed: QuerySet[Grant]
) -> list[ApplicationChanges]:
    lists: dict[tuple[str, UUID], dict[str, list[str]]] = defaultdict(
        lambda: {"added": [], "removed": []}
    )
    for side, grants in (("added", added), ("removed", removed)):
        # One line per permission and consent type: each user's consent is a grant row.
        rows = (
            grants.values_list("client__display_name", "client__app_id", "kind", "value", "consent")
            .distinct()
            .order_by("client__display_name", "client__app_id", "kind", "value", "consent")
        )
        for name, app_id, kind, value, consent in rows:
            lists[(name, app_id)][side].append(_label(kind, value, consent))
    return [
        ApplicationChanges(
            application=name,
            url=_application_url(tenant, app_id),
            added=lists_of_app["added"][:ITEMS_PER_APPLICATION],
            removed=lists_of_app["removed"][:ITEMS_PER_APPLICATION],
            added_total=len(lists_of_app["added"]),
            removed_total=len(lists_of_app["removed"]),
        )
        for (name, app_id), lists_of_app in sorted(lists.items())
    ]


def control_plane_items(tenant: Tenant, added: QuerySet[Grant]) -> list[Item]:
    """Of ``added``, the grants of a permission EntraOps classifies as ControlPlane."""
    rows = list(
        added.values_list(
            "client__display_name", "client__app_id", "resource_app_id", "kind", "value", "consent"
        )
        .distinct()
        .order_by("client__display_name", "value")
    )
    # Entra matches permission names ignoring case, and so does the catalog.
    tiered = {
        (str(resource), kind, value.lower())
        for resource, kind, value in Permission.objects.filter(
            tier=Tier.CONTROL_PLANE, resource__app_id__in={row[2] for row in rows}
        ).values_list("resource__app_id", "kind", "value")
    }
    return [
        Item(name, _label(kind, value, consent), _application_url(tenant, app_id))
        for name, app_id, resource, kind, value, consent in rows
        if (str(resource), kind, value.lower()) in tiered
    ]


def _findings(tenant: Tenant) -> dict[str, Item]:
    """The tenant's revoke candidates and missing permissions now, by a stable key."""
    findings: dict[str, Item] = {}
    for app in tenant_report(tenant=tenant).applications:
        url = _application_url(tenant, app.app_id)
        for grant in app.grants:
            if grant.is_revoke_candidate:
                key = _finding_key(app.app_id, grant, grant.verdict.value)
                findings[key] = Item(
                    app.display_name,
                    _label(grant.kind, grant.permission, grant.consent),
                    url,
                    note=grant.verdict.value,
                )
        for missing in app.missing:
            key = _finding_key(app.app_id, missing, "missing")
            findings[key] = Item(
                app.display_name,
                f"{missing.permission} ({missing.kind})",
                url,
                note="needed by " + ", ".join(missing.features),
            )
    return findings


def _findings_before(
    tenant: Tenant, floor: int, since: datetime, findings: dict[str, Item]
) -> set[str]:
    """Of today's ``findings``, those a first digest's reader had before its window: the
    verdicts of then are not stored, so a finding counts as old when nothing it rests on
    changed since (its grant held, or for a missing one not held, by the last good sync
    before the window, and no switch saved after ``since`` of a feature that lists it).
    Without such a sync, everything the tenant holds is news to the reader."""
    baseline = (
        SyncRun.objects.filter(tenant=tenant, status=SyncRun.Status.SUCCEEDED, pk__lte=floor)
        .order_by("-pk")
        .first()
    )
    if baseline is None:
        return set()
    held = {
        f"{app_id}|{resource}|{kind}|{value.lower()}"
        for app_id, resource, kind, value in grants_at(baseline).values_list(
            "client__app_id", "resource_app_id", "kind", "value"
        )
    }
    # The permissions whose verdict a feature switch saved since may have changed.
    switched = {
        f"{app_id}|{resource}|{kind}|{value.lower()}"
        for app_id, resource, kind, value in Requirement.objects.filter(
            feature__switches__tenant=tenant, feature__switches__changed_at__gt=since
        ).values_list("feature__application__app_id", "resource_app_id", "kind", "permission_value")
    }
    old = set()
    for key in findings:
        slot, verdict = key.rsplit("|", 1)
        if slot not in switched and (slot in held) == (verdict != "missing"):
            old.add(key)
    return old


def _finding_key(app_id: UUID, entry: GrantReport | MissingReport, verdict: str) -> str:
    permission = entry.permission.lower()
    return f"{app_id}|{entry.resource_app_id}|{entry.kind}|{permission}|{verdict}"


def _regranted(tenant: Tenant, floor: int, up_to_run: int) -> list[Item]:
    revokes = RevokeRequest.objects.filter(
        tenant=tenant, regranted_in_run_id__gt=floor, regranted_in_run_id__lte=up_to_run
    ).select_related("client")
    return [
        Item(
            revoke.client.display_name,
            f"{revoke.value} ({revoke.kind})",
            _application_url(tenant, revoke.client.app_id),
            note=f"revoked {revoke.finished_at:%Y-%m-%d}" if revoke.finished_at else "",
        )
        for revoke in revokes
    ]


def _pending_item(tenant: Tenant, revoke: RevokeRequest) -> Item:
    who = revoke.requested_by.get_username() if revoke.requested_by else "someone"
    return Item(
        revoke.client.display_name,
        f"{revoke.value} ({revoke.kind})",
        _application_url(tenant, revoke.client.app_id),
        note=f"asked by {who} on {revoke.created_at:%Y-%m-%d}",
    )


def _catalog_changes(holding: SyncRun | None, since: datetime) -> list[Item]:
    """What the catalog changed since ``since`` about the grants ``holding`` found."""
    if holding is None:
        return []
    held = grants_at(holding).values_list("resource_app_id", "kind", "value")
    return [
        Item(
            "",
            f"{change.value} ({change.kind})",
            portal_url("permissions:permission-detail", change.permission_id)
            if change.permission_id
            else portal_url("permissions:catalog-changes"),
            note=change.summary,
        )
        for change in catalog_changes_held(since=since, held=held)
    ]


def _failed_syncs(tenant: Tenant, floor: int, up_to_run: int) -> list[Item]:
    runs = SyncRun.objects.filter(
        tenant=tenant, status=SyncRun.Status.FAILED, pk__gt=floor, pk__lte=up_to_run
    ).order_by("pk")
    return [
        Item(
            "",
            f"Sync {run.pk}",
            portal_url("tenants:run-detail", tenant.tenant_id, run.pk),
            run.error,
        )
        for run in runs
    ]
