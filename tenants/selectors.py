"""Reads behind the tenant pages: grant history (any past snapshot, the diff between two
runs) and the grants of tenants and applications with their verdicts."""

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, TypedDict
from uuid import UUID

from django.db.models import (
    CharField,
    Count,
    F,
    Min,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Window,
)
from django.db.models.expressions import OrderBy
from django.db.models.functions import Cast, RowNumber
from django.utils import timezone

from permissions.models import Application, Feature, Permission, Requirement, Tier
from permissions.selectors import call_index_for
from permissions.verdicts import (
    GrantFinding,
    MissingFinding,
    PermissionKey,
    Verdict,
    apply_justification,
    evaluate,
)
from tenants.justifications import justification_note, justifications_by_client
from tenants.models import (
    ApplicationFinding,
    ConsentingUser,
    FindingSummary,
    Grant,
    Justification,
    RevokeRequest,
    ServicePrincipal,
    SyncRun,
    Tenant,
    counts_by_verdict,
)
from tenants.report import application_needs, enabled_features
from tenants.signins import sign_in_known
from tenants.slots import GrantSlot


def grants_at(run: SyncRun) -> QuerySet[Grant]:
    """The tenant's grants as the given (succeeded) run saw them."""
    return Grant.objects.filter(tenant_id=run.tenant_id, first_seen_run_id__lte=run.pk).filter(
        Q(removed_in_run__isnull=True) | Q(removed_in_run_id__gt=run.pk)
    )


def previous_good_run(run: SyncRun) -> SyncRun | None:
    return (
        SyncRun.objects.filter(
            tenant_id=run.tenant_id, status=SyncRun.Status.SUCCEEDED, pk__lt=run.pk
        )
        .order_by("-pk")
        .first()
    )


@dataclass(frozen=True)
class RunDiff:
    since: SyncRun | None
    added: QuerySet[Grant]
    removed: QuerySet[Grant]


def run_diff(run: SyncRun, since: SyncRun | None = None) -> RunDiff:
    """Grants added and removed after ``since`` (default: the run before) up to ``run``.

    Failed runs write no grants, so every change lies in a succeeded run's id range.
    """
    since = since if since is not None else previous_good_run(run)
    floor = since.pk if since else 0
    grants = Grant.objects.filter(tenant_id=run.tenant_id).select_related("client")
    return RunDiff(
        since=since,
        added=grants.filter(first_seen_run_id__gt=floor, first_seen_run_id__lte=run.pk).filter(
            Q(removed_in_run__isnull=True) | Q(removed_in_run_id__gt=run.pk)
        ),
        removed=grants.filter(
            removed_in_run_id__gt=floor, removed_in_run_id__lte=run.pk, first_seen_run_id__lte=floor
        ),
    )


# --- verdicts for the pages ------------------------------------------------------------
#
# The pages count and explain grants with the same engine and the same grouping as the
# report (tenants/report.py): one entry per permission and consent type of a client. They
# need more than the report gives (catalog entries, dates, proposed feature sets) or less
# (counts without narrower suggestions, which need the catalog's whole API-call map), so
# they gather their inputs here, each in a fixed number of queries whatever the size.
# The lists (the tenant page, the dashboard, the matrix) read the counts tenants.findings
# stores instead of working them out per request.


@dataclass
class VerdictCounts:
    """An application's (or a tenant's) grant entries counted by verdict."""

    needed: int = 0
    unused: int = 0
    unexplained: int = 0
    missing: int = 0
    # Grants of a permission EntraOps classifies as control plane, whatever their verdict.
    control_plane: int = 0

    @property
    def permissions(self) -> int:
        return self.needed + self.unused + self.unexplained

    @property
    def by_verdict(self) -> list[tuple[str, int]]:
        return counts_by_verdict(self)

    def add(self, verdict: str, number: int = 1) -> None:
        setattr(self, verdict, getattr(self, verdict) + number)


def current_grants(tenant_ids: Iterable[int]) -> QuerySet[Grant]:
    return Grant.objects.filter(tenant_id__in=tenant_ids, removed_in_run__isnull=True)


def holding_clients(tenant_ids: Iterable[int]) -> QuerySet[ServicePrincipal]:
    """The clients that hold at least one permission now."""
    return ServicePrincipal.objects.filter(pk__in=current_grants(tenant_ids).values("client_id"))


def grant_key(
    resource_app_id: UUID, kind: str, value: str, permission_id: UUID | None
) -> PermissionKey:
    # An app role the resource does not publish keeps its id as its name (as in the report).
    return PermissionKey(str(resource_app_id), kind, value or str(permission_id))


def grant_entries(grants: QuerySet[Grant]) -> dict[int, list[tuple[PermissionKey, list[str]]]]:
    """Per client pk, the permissions it holds (each once), each with its entries' consent
    types: one per distinct grant row of the report's grouping (consent type, mostly)."""
    # Tens of thousands of grants name a few hundred permissions, so rows are read as plain
    # text (no UUID object per row) and each distinct permission becomes one key object,
    # shared by equal keys (PermissionKey ignores case). Rows are then counted per object
    # identity: a PermissionKey hashes slowly, and would be hashed once per row.
    rows = (
        grants.annotate(
            resource=Cast("resource_app_id", CharField()),
            role=Cast("permission_id", CharField()),
        )
        .values_list("client_id", "resource", "kind", "value", "role", "consent")
        .distinct()
        .order_by()
    )
    keys: dict[tuple, PermissionKey] = {}
    canonical: dict[PermissionKey, PermissionKey] = {}
    counted: dict[int, dict[int, list]] = defaultdict(dict)
    # Streamed (a server-side cursor on PostgreSQL): a large tenant has hundreds of thousands.
    for client_id, resource, kind, value, role, consent in rows.iterator(chunk_size=5000):
        raw = (resource, kind, value, role)
        key = keys.get(raw)
        if key is None:
            # SQLite keeps UUIDs as 32 hex digits, PostgreSQL with dashes: UUID reads both.
            key = grant_key(UUID(resource), kind, value, UUID(role) if role else None)
            key = keys[raw] = canonical.setdefault(key, key)
        client_counts = counted[client_id]
        entry = client_counts.get(id(key))
        if entry is None:
            client_counts[id(key)] = [key, [consent]]
        else:
            entry[1].append(consent)
    entries: dict[int, list[tuple[PermissionKey, list[str]]]] = defaultdict(list)
    for client_id, by_key in counted.items():
        entries[client_id] = [(key, consents) for key, consents in by_key.values()]
    return entries


# --- the tenant page, the dashboard and the matrix: stored findings ----------------------


@dataclass(frozen=True)
class ApplicationFilters:
    """The tenant page's filters and order (tenants.forms.ApplicationFilterForm); empty
    values filter nothing."""

    q: str = ""
    verdict: str = ""
    risk: str = ""
    tier: str = ""
    kind: str = ""
    party: str = ""
    activity: str = ""
    sort: str = ""

    def facets(self) -> list[tuple[str, str]]:
        """The filters set, as (field, value), but the name search."""
        return [(field, getattr(self, field)) for field in FACET_FIELDS if getattr(self, field)]


# The filters whose matches each tenant's FindingSummary counts (``facets``), so that a
# page filtered by one of them is counted without counting the tenant's applications.
FACET_FIELDS = ("verdict", "risk", "tier", "kind", "party", "activity")
# Each order the tenant page offers: its columns, most telling first (numbers from the
# highest, names from A), with the name and the row's id to keep pages stable. A leading
# "-" on the key reverses it.
APPLICATION_ORDERS: dict[str, tuple[str, ...]] = {
    "name": ("display_name",),
    "risk": ("-risk_score",),
    "permissions": ("-grant_total",),
    "unused": ("-unused",),
    "unexplained": ("-unexplained",),
    "missing": ("-missing",),
    "control_plane": ("-control_plane",),
    "privilege": ("-privilege_level",),
}
# Verdicts a filter can ask for: an application with at least one grant of it.
FILTERED_VERDICTS = ("needed", "unused", "unexplained", "missing")
NO_TIER = "none"


def facet_condition(field: str, value: str) -> Q:
    """What one filter of the tenant page asks of a stored finding."""
    if field == "verdict":
        return Q(**{f"{value}__gt": 0}) if value in FILTERED_VERDICTS else Q(pk__in=[])
    if field == "tier":
        return Q(tier="" if value == NO_TIER else value)
    if field == "party":
        return Q(first_party=value == "first")
    if field == "activity":
        return Q(inactive=True) if value == "inactive" else Q(pk__in=[])
    if field == "risk":
        return Q(risk_level=value)
    return Q(kind=value)


def facet_key(field: str, value: str) -> str:
    return f"{field}={value}"


def application_findings(tenant: Tenant, filters: ApplicationFilters) -> QuerySet:
    """The stored findings of the tenant's applications that pass ``filters``, in their
    order, with each service principal: the tenant page pages through these."""
    rows = ApplicationFinding.objects.filter(tenant=tenant).select_related("service_principal")
    for word in filters.q.split():
        rows = rows.filter(display_name__icontains=word)
    for facet, value in filters.facets():
        rows = rows.filter(facet_condition(facet, value))
    if filters.activity and not sign_in_known(tenant):
        # Where sign-in activity is unknown now, nothing is known to be inactive.
        rows = rows.none()
    return rows.annotate(grant_total=F("needed") + F("unused") + F("unexplained")).order_by(
        *_ordering(filters.sort, APPLICATION_ORDERS, then=("display_name", "pk"))
    )


def stored_count(summary: FindingSummary, filters: ApplicationFilters) -> int | None:
    """How many applications pass ``filters``, from the tenant's summary: known for none or
    one of them (the dashboard's links), None for a name search or several at once."""
    facets = filters.facets()
    if filters.q or len(facets) > 1:
        return None
    if not facets:
        return summary.applications
    return summary.facets.get(facet_key(*facets[0]), 0)


def _ordering(
    sort: str, orders: dict[str, tuple[str, ...]], *, then: tuple[str, ...]
) -> list[OrderBy]:
    """The order ``sort`` names in ``orders`` ("-key" reversed; anything else: by name),
    then ``then`` so that pages are stable."""
    key = sort.removeprefix("-")
    fields = orders.get(key, orders["name"])
    reverse = sort.startswith("-") and key in orders
    ordering = []
    for column in (*fields, *then):
        descending = column.startswith("-") != reverse
        name = column.removeprefix("-")
        expression = F(name)
        if name in NULLABLE_ORDERS:
            # Unknown privilege levels sort last in either direction.
            ordering.append(
                expression.desc(nulls_last=True) if descending else expression.asc(nulls_last=True)
            )
        else:
            # Plain ASC or DESC, as the indexes are built, so that a page reads one.
            ordering.append(expression.desc() if descending else expression.asc())
    return ordering


# The fields an order may find empty.
NULLABLE_ORDERS = {"privilege_level"}


def riskiest_applications(tenants: QuerySet[Tenant], *, limit: int) -> list[ApplicationFinding]:
    """The applications to look at first across ``tenants``: the highest risk scores, those
    with none left out."""
    return list(
        ApplicationFinding.objects.filter(tenant__in=tenants, risk_score__gt=0)
        .select_related("tenant")
        .order_by("-risk_score", "display_name", "pk")[:limit]
    )


@dataclass(frozen=True)
class TenantOverview:
    tenant: Tenant
    latest_status: SyncRun.Status | None
    # The tenant's stored counts; None until its first sync.
    summary: FindingSummary | None

    @property
    def applications(self) -> int:
        return self.summary.applications if self.summary else 0

    @property
    def counts(self) -> FindingSummary | None:
        """Grant entries by verdict and of control-plane permissions."""
        return self.summary

    @property
    def inactive(self) -> int | None:
        """Applications with no sign-in in INACTIVE_DAYS; None where that is unknown."""
        if self.summary is None or not sign_in_known(self.tenant):
            return None
        return self.summary.inactive


if TYPE_CHECKING:  # django-stubs' annotated model type; django_stubs_ext is a dev dependency
    from django_stubs_ext import WithAnnotations

    class LatestStatus(TypedDict):
        latest_status: str | None  # None: the tenant has no run yet

    TenantWithLatestStatus = WithAnnotations[Tenant, LatestStatus]


def tenants_with_latest_status(tenants: QuerySet[Tenant]) -> "QuerySet[TenantWithLatestStatus]":
    """``tenants`` with their last good sync and the status of their newest run."""
    latest = SyncRun.objects.filter(tenant=OuterRef("pk")).order_by("-pk").values("status")
    return tenants.select_related("last_good_sync").annotate(latest_status=Subquery(latest[:1]))


def tenant_overviews(
    tenants: "Sequence[TenantWithLatestStatus]", summaries: dict[int, FindingSummary]
) -> list[TenantOverview]:
    """Each tenant (from ``tenants_with_latest_status``) with its stored counts."""
    return [
        TenantOverview(
            tenant=tenant,
            latest_status=SyncRun.Status(tenant.latest_status) if tenant.latest_status else None,
            summary=summaries.get(tenant.pk) if tenant.last_good_sync_id else None,
        )
        for tenant in tenants
    ]


@dataclass(frozen=True)
class MatrixRow:
    app_id: UUID
    display_name: str
    # The application's risk score in its first tenant in the page's order: by risk, its
    # highest in the tenants shown.
    risk_score: int
    # One per tenant column, in the columns' order; None where the tenant grants it nothing.
    cells: list[tuple[Tenant, ApplicationFinding | None]]


@dataclass(frozen=True)
class MatrixPage:
    """One page of the matrix's rows. Pages are numbered from 1; there is no total, which
    would mean counting every application of every tenant shown."""

    number: int
    per_page: int
    rows: list[MatrixRow]
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def start_index(self) -> int:
        return (self.number - 1) * self.per_page + 1

    @property
    def end_index(self) -> int:
        return self.start_index + len(self.rows) - 1


# The matrix's orders, as APPLICATION_ORDERS: an application's name, or its highest risk.
MATRIX_ORDERS: dict[str, tuple[str, ...]] = {"name": ("display_name",), "risk": ("-risk_score",)}


def matrix_page(tenants: Sequence[Tenant], *, sort: str, number: int, per_page: int) -> MatrixPage:
    """Page ``number`` of the applications holding permissions in any of ``tenants``, one
    row per appId, by name (its first) or by risk (its highest), with its stored findings
    in each tenant.

    The tenants' findings are read in that order, an index's, and each application is kept
    where it first appears, until the page is full: the cost is the page's position, not
    the tenants' size. Two queries, and one more per further stretch of rows a page needs
    when applications repeat across many tenants.
    """
    wanted = number * per_page + 1  # one more than the page: is there a next one?
    ordered = (
        ApplicationFinding.objects.filter(tenant__in=[tenant.pk for tenant in tenants])
        .order_by(*_ordering(sort, MATRIX_ORDERS, then=("display_name", "app_id", "pk")))
        .values_list("app_id", "display_name", "risk_score")
    )
    first: dict[UUID, tuple[str, int]] = {}
    read, stretch = 0, 2 * wanted
    while len(first) < wanted:
        rows = list(ordered[read : read + stretch])
        for app_id, display_name, risk_score in rows:
            first.setdefault(app_id, (display_name, risk_score))
        if len(rows) < stretch:
            break
        read += stretch
    shown = list(first.items())[(number - 1) * per_page : number * per_page]
    cells = {
        (finding.app_id, finding.tenant_id): finding
        for finding in ApplicationFinding.objects.filter(
            tenant__in=[tenant.pk for tenant in tenants], app_id__in=[app_id for app_id, _ in shown]
        ).order_by()
    }
    return MatrixPage(
        number=number,
        per_page=per_page,
        rows=[
            MatrixRow(
                app_id=app_id,
                display_name=display_name,
                risk_score=risk_score,
                cells=[(tenant, cells.get((app_id, tenant.pk))) for tenant in tenants],
            )
            for app_id, (display_name, risk_score) in shown
        ],
        has_next=len(first) > number * per_page,
    )


# --- one application in a tenant -----------------------------------------------------


def current_service_principal(*, tenant: Tenant, app_id: UUID) -> ServicePrincipal | None:
    """The application's service principal in the tenant as the latest sync saw it; one
    that a sync found gone (deleted in Entra) is not current. Entra gives an application
    one per tenant; the order only keeps the answer stable should the rows say otherwise."""
    return (
        ServicePrincipal.objects.filter(tenant=tenant, app_id=app_id, removed_at__isnull=True)
        .order_by("pk")
        .first()
    )


@dataclass(frozen=True)
class GrantDetail:
    """One grant entry (a permission, by consent type) with everything that explains it."""

    finding: GrantFinding
    consent: str
    # Users who consented (user consent only): how many, and the first of them by name
    # (CONSENTING_USERS_SHOWN, as the sync read them; a user it has no name for is left out).
    users: int
    granted_at: datetime | None
    first_seen: datetime | None
    # The catalog's entries; None when the catalog does not know the permission.
    permission: Permission | None
    narrower: Permission | None
    # Every manifest requirement that lists the permission, enabled feature or not.
    requirements: list[Requirement]
    # An admin's justification for keeping it, in force or expired; the finding carries it
    # (and is needed) only while in force.
    justification: Justification | None = None
    consenting_users: list[ConsentingUser] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return self.finding.verdict.value

    @property
    def justification_expired(self) -> bool:
        return self.justification is not None and self.finding.justification is None

    @property
    def slot(self) -> GrantSlot:
        """The grant as revoke requests name it."""
        return GrantSlot.of(self.finding.permission, self.consent)

    @property
    def breaks(self) -> list[Requirement]:
        """What taking it away would break: the requirements of its enabled features (an
        unused grant's features are the switched-off ones that list it: nothing breaks)."""
        if self.finding.verdict != Verdict.NEEDED:
            return []
        return [
            requirement
            for requirement in self.requirements
            if requirement.feature.key in self.finding.features
        ]


@dataclass(frozen=True)
class MissingDetail:
    finding: MissingFinding
    permission: Permission | None
    requirements: list[Requirement]


@dataclass(frozen=True)
class FeatureState:
    feature: Feature
    enabled: bool


@dataclass(frozen=True)
class ApplicationInTenant:
    # None when no manifest names the application: everything it holds is unexplained.
    application: Application | None
    features: list[FeatureState]
    grants: list[GrantDetail]
    missing: list[MissingDetail]
    counts: VerdictCounts


# Revoke candidates first: they are what an admin comes to this page for.
VERDICT_ORDER = {Verdict.UNEXPLAINED: 0, Verdict.UNUSED: 1, Verdict.NEEDED: 2}


def application_in_tenant(
    *, tenant: Tenant, service_principal: ServicePrincipal, today: date | None = None
) -> ApplicationInTenant:
    """Every grant of one client with its verdict, narrower suggestion, catalog entry, dates,
    justification and the manifest requirements behind it; the missing permissions; its
    features. ``today`` decides which justifications are in force.

    Twelve queries (and one more where users consented), whatever the number of grants
    and features.
    """
    today = today or timezone.localdate()
    app_id = service_principal.app_id
    rows = list(
        current_grants([tenant.pk])
        .filter(client=service_principal)
        .values("resource_app_id", "kind", "value", "permission_id", "consent")
        .annotate(
            users=Count("principal_id", distinct=True, filter=Q(consent=Grant.Consent.USER)),
            granted_at=Min("granted_at"),
            first_seen=Min("first_seen_run__finished_at"),
        )
        .order_by("kind", "value", "consent")
    )
    keyed = [
        (grant_key(row["resource_app_id"], row["kind"], row["value"], row["permission_id"]), row)
        for row in rows
    ]
    needs = application_needs([app_id]).get(app_id, [])
    enabled = enabled_features(tenant, [app_id]).get(app_id, set())
    keys = [key for key, _ in keyed]
    call_index = call_index_for(set(keys) | {need.permission for need in needs})
    evaluation = evaluate(
        needs=needs, enabled_features=enabled, granted=keys, call_index=call_index
    )
    findings = {finding.permission: finding for finding in evaluation.grants}
    features = _features_with_requirements(app_id)
    requirements = _requirements_by_permission(features)
    catalog = catalog_entries(
        [*keys, *(m.permission for m in evaluation.missing)]
        + [f.narrower for f in evaluation.grants if f.narrower]
    )
    justified = justifications_by_client([tenant.pk], [app_id]).get((tenant.pk, app_id), {})
    has_user_consents = any(row["consent"] == Grant.Consent.USER for row in rows)
    consenting = _consenting_users(tenant, service_principal) if has_user_consents else {}
    grants = []
    for key, row in keyed:
        # Justifications name a grant with its consent type: applied per entry.
        justification = justified.get(GrantSlot.of(key, row["consent"]))
        finding = apply_justification(
            findings[key],
            justification_note(justification) if justification else None,
            today=today,
        )
        grants.append(
            GrantDetail(
                finding=finding,
                consent=row["consent"],
                users=row["users"],
                granted_at=row["granted_at"],
                first_seen=row["first_seen"],
                permission=catalog.get(key),
                narrower=_narrower_entry(catalog, finding),
                requirements=requirements.get(key, []),
                justification=justification,
                consenting_users=consenting.get(key, [])
                if row["consent"] == Grant.Consent.USER
                else [],
            )
        )
    grants.sort(key=lambda g: VERDICT_ORDER[g.finding.verdict])
    counts = VerdictCounts(missing=len(evaluation.missing))
    for grant in grants:
        counts.add(grant.verdict)
        counts.control_plane += bool(
            grant.permission and grant.permission.tier == Tier.CONTROL_PLANE
        )
    return ApplicationInTenant(
        application=Application.objects.filter(app_id=app_id).first(),
        features=[FeatureState(feature=f, enabled=f.key in enabled) for f in features],
        grants=grants,
        missing=[
            MissingDetail(
                finding=missing,
                permission=catalog.get(missing.permission),
                requirements=requirements.get(missing.permission, []),
            )
            for missing in evaluation.missing
        ],
        counts=counts,
    )


# How many consenting users the application page names per permission.
CONSENTING_USERS_SHOWN = 10


def _consenting_users(
    tenant: Tenant, client: ServicePrincipal
) -> dict[PermissionKey, list[ConsentingUser]]:
    """The named users of the client's user consents, by permission, in name order. One
    query: each user-consent grant with the name the sync read for its user (as unsaved
    rows: only their names are shown)."""
    named_user = ConsentingUser.objects.filter(tenant=tenant, object_id=OuterRef("principal_id"))
    rows = (
        current_grants([tenant.pk])
        .filter(client=client, consent=Grant.Consent.USER)
        .annotate(
            user_name=Subquery(named_user.values("display_name")[:1]),
            user_upn=Subquery(named_user.values("user_principal_name")[:1]),
        )
        .filter(user_upn__isnull=False)
        .values_list("resource_app_id", "kind", "value", "permission_id", "user_name", "user_upn")
    )
    named: dict[PermissionKey, list[ConsentingUser]] = defaultdict(list)
    for resource, kind, value, permission_id, name, upn in rows:
        user = ConsentingUser(display_name=name, user_principal_name=upn)
        named[grant_key(resource, kind, value, permission_id)].append(user)
    return {
        key: sorted(users, key=lambda u: (u.display_name.casefold(), u.user_principal_name))[
            :CONSENTING_USERS_SHOWN
        ]
        for key, users in named.items()
    }


def _features_with_requirements(app_id: UUID) -> list[Feature]:
    return list(
        Feature.objects.filter(application__app_id=app_id)
        .order_by("position", "pk")
        .prefetch_related(
            Prefetch("requirements", queryset=Requirement.objects.order_by("position", "pk"))
        )
    )


def _requirements_by_permission(features: list[Feature]) -> dict[PermissionKey, list[Requirement]]:
    by_key: dict[PermissionKey, list[Requirement]] = defaultdict(list)
    for feature in features:
        for requirement in feature.requirements.all():
            key = PermissionKey(
                str(requirement.resource_app_id), requirement.kind, requirement.permission_value
            )
            by_key[key].append(requirement)
    return by_key


def _narrower_entry(
    catalog: dict[PermissionKey, Permission], finding: GrantFinding
) -> Permission | None:
    return catalog.get(finding.narrower) if finding.narrower else None


def catalog_entries(keys: Iterable[PermissionKey]) -> dict[PermissionKey, Permission]:
    keys = set(keys)
    if not keys:
        return {}
    # A superset (any of the values on any of the resources), matched by key below, where
    # PermissionKey's equality ignores case as Entra does.
    candidates = Permission.objects.select_related("resource").filter(
        resource__app_id__in={key.resource_app_id for key in keys},
        value__in={key.value for key in keys},
    )
    entries = {PermissionKey(str(p.resource.app_id), p.kind, p.value): p for p in candidates}
    return {key: entries[key] for key in keys if key in entries}


@dataclass(frozen=True)
class PreviewItem:
    permission: PermissionKey
    # Names of the features behind the new verdict: the switched-off features that list an
    # unused grant, the switched-on ones that need a needed or missing permission.
    features: list[str]


@dataclass(frozen=True)
class FeaturesPreview:
    """What switching an application's features to a proposed set would change."""

    to_unused: list[PreviewItem]
    to_needed: list[PreviewItem]
    newly_missing: list[PreviewItem]
    no_longer_missing: list[PreviewItem]

    @property
    def changes_nothing(self) -> bool:
        return not (
            self.to_unused or self.to_needed or self.newly_missing or self.no_longer_missing
        )


def features_preview(
    *, tenant: Tenant, service_principal: ServicePrincipal, enabled: Collection[str]
) -> FeaturesPreview:
    """The verdicts under the saved switches against those under ``enabled``; reads only.

    Six queries. Narrower suggestions are left out: a switch never changes them.
    """
    app_id = service_principal.app_id
    needs = application_needs([app_id]).get(app_id, [])
    saved = enabled_features(tenant, [app_id]).get(app_id, set())
    grants = current_grants([tenant.pk]).filter(client=service_principal)
    entries = grant_entries(grants)[service_principal.pk]
    granted = [key for key, _ in entries]
    before = evaluate(needs=needs, enabled_features=saved, granted=granted)
    after = evaluate(needs=needs, enabled_features=set(enabled), granted=granted)
    names = dict(Feature.objects.filter(application__app_id=app_id).values_list("key", "name"))
    kept = _justified_throughout(tenant, service_principal, entries)

    def item(finding: GrantFinding | MissingFinding) -> PreviewItem:
        return PreviewItem(finding.permission, [names[key] for key in finding.features])

    # A permission justified in every entry stays needed whatever the switches say.
    was = {
        finding.permission: Verdict.NEEDED if finding.permission in kept else finding.verdict
        for finding in before.grants
    }
    missing_before = {m.permission for m in before.missing}
    missing_after = {m.permission for m in after.missing}
    return FeaturesPreview(
        to_unused=[
            item(f)
            for f in after.grants
            if f.verdict == Verdict.UNUSED
            and f.permission not in kept
            and was[f.permission] == Verdict.NEEDED
        ],
        to_needed=[
            item(f)
            for f in after.grants
            if f.verdict == Verdict.NEEDED and was[f.permission] == Verdict.UNUSED
        ],
        newly_missing=[item(m) for m in after.missing if m.permission not in missing_before],
        no_longer_missing=[item(m) for m in before.missing if m.permission not in missing_after],
    )


def _justified_throughout(
    tenant: Tenant,
    service_principal: ServicePrincipal,
    entries: list[tuple[PermissionKey, list[str]]],
) -> set[PermissionKey]:
    """The permissions whose every entry (consent type) has a justification in force: no
    switch makes them unused."""
    today = timezone.localdate()
    app_id = service_principal.app_id
    justified = justifications_by_client([tenant.pk], [app_id]).get((tenant.pk, app_id), {})
    if not justified:
        return set()
    return {
        key
        for key, consents in entries
        if all(
            (justification := justified.get(GrantSlot.of(key, consent))) is not None
            and justification.in_force(today)
            for consent in consents
        )
    }


# --- a catalog permission across tenants ----------------------------------------------

# A permission such as User.Read can be held by thousands of clients in one tenant: the
# permission page names the first ones and counts the rest.
HOLDERS_SHOWN_PER_TENANT = 25


@dataclass(frozen=True)
class TenantHolders:
    tenant: Tenant
    total: int
    # The first HOLDERS_SHOWN_PER_TENANT by name.
    clients: list[ServicePrincipal]


def permission_holders(*, permission: Permission, tenants: QuerySet[Tenant]) -> list[TenantHolders]:
    """Per tenant of ``tenants`` that grants ``permission`` now, the clients holding it.

    Two queries, whatever the number of tenants and clients.
    """
    matches = Q(value__iexact=permission.value)
    if permission.graph_id:
        # An app role the catalog learnt after the sync stored the grant without a value.
        matches |= Q(permission_id=permission.graph_id)
    holding = Grant.objects.filter(
        matches,
        tenant__in=tenants,
        removed_in_run__isnull=True,
        resource_app_id=permission.resource.app_id,
        kind=permission.kind,
    )
    clients = ServicePrincipal.objects.filter(pk__in=holding.values("client_id"))
    totals = dict(
        clients.order_by().values("tenant_id").annotate(n=Count("pk")).values_list("tenant_id", "n")
    )
    ranked = (
        clients.select_related("tenant")
        .annotate(
            rank=Window(
                RowNumber(),
                partition_by=F("tenant_id"),
                order_by=[F("display_name").asc(), F("object_id").asc()],
            )
        )
        .filter(rank__lte=HOLDERS_SHOWN_PER_TENANT)
        .order_by("tenant__name", "tenant_id", "display_name", "object_id")
    )
    by_tenant: dict[int, TenantHolders] = {}
    for sp in ranked:
        entry = by_tenant.setdefault(
            sp.tenant_id, TenantHolders(tenant=sp.tenant, total=totals[sp.tenant_id], clients=[])
        )
        entry.clients.append(sp)
    return list(by_tenant.values())


# --- revoke requests ---------------------------------------------------------------------


def latest_revoke_requests(
    *, tenant: Tenant, client: ServicePrincipal
) -> dict[GrantSlot, RevokeRequest]:
    """The newest request (revoke or restore) for each grant of ``client``: what its row
    shows. One query; a client collects a handful of requests, not thousands."""
    requests = (
        RevokeRequest.objects.filter(tenant=tenant, client=client)
        .select_related("requested_by", "decided_by", "regranted_in_run")
        .order_by("pk")
    )
    return {GrantSlot.from_request(revoke): revoke for revoke in requests}


def revoke_impacts(revokes: Iterable[RevokeRequest]) -> dict[int, GrantDetail]:
    """For each revoke (not restore) in ``revokes`` whose client still holds the grant, the
    grant as its application's page shows it: its verdict now and the features it would
    break. What an admin weighs before approving. One application_in_tenant per client."""
    by_client: dict[tuple[int, int], list[RevokeRequest]] = defaultdict(list)
    for revoke in revokes:
        if revoke.action == RevokeRequest.Action.REVOKE:
            by_client[(revoke.tenant_id, revoke.client_id)].append(revoke)
    impacts: dict[int, GrantDetail] = {}
    for requests in by_client.values():
        first = requests[0]
        detail = application_in_tenant(tenant=first.tenant, service_principal=first.client)
        grants = {grant.slot: grant for grant in detail.grants}
        for revoke in requests:
            grant = grants.get(GrantSlot.from_request(revoke))
            if grant is not None:
                impacts[revoke.pk] = grant
    return impacts


# A restore in one of these states has not put the grant back, nor will it.
RESTORE_GAVE_UP = ("failed", "denied", "cancelled")


def undoable_revoke_ids(revokes: Iterable[RevokeRequest]) -> set[int]:
    """Of ``revokes``, the succeeded ones that a restore can still undo: not granted again
    since, and no restore under way or done. One query."""
    candidates = {
        revoke.pk
        for revoke in revokes
        if revoke.action == RevokeRequest.Action.REVOKE
        and revoke.status == RevokeRequest.Status.SUCCEEDED
        and revoke.regranted_in_run_id is None
        # A revoke that recorded nothing it removed has nothing to put back.
        and revoke.removed
    }
    if not candidates:
        return set()
    restored = (
        RevokeRequest.objects.filter(restores_id__in=candidates)
        .exclude(status__in=RESTORE_GAVE_UP)
        .values_list("restores_id", flat=True)
    )
    return candidates - set(restored)


def consenting_users_named(tenant: Tenant, grants: Iterable[Grant]) -> list[Grant]:
    """``grants``, each user consent with its user (``consenting_user``: the name and UPN
    the sync read, or None where it has none) in place of a bare object id. One query."""
    listed = list(grants)
    ids = {grant.principal_id for grant in listed if grant.principal_id}
    users = {
        user.object_id: user
        for user in ConsentingUser.objects.filter(tenant=tenant, object_id__in=ids)
    }
    for grant in listed:
        user = users.get(grant.principal_id) if grant.principal_id else None
        grant.consenting_user = user  # type: ignore[attr-defined]
    return listed
