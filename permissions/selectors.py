"""Reads behind the portal's pages: the application list, manifests matched with the
catalog, and catalog search.

A requirement names its permission by (resource appId, kind, value), not by foreign key
(see models.py), so matching a manifest with the catalog happens here, in bulk.
"""

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import reduce
from operator import or_
from typing import TYPE_CHECKING

from django.db.models import (
    Case,
    CharField,
    Count,
    Exists,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import Cast, Concat

from permissions.models import (
    MICROSOFT_GRAPH_APP_ID,
    Application,
    CatalogChange,
    CatalogImport,
    Feature,
    Permission,
    PermissionApiCall,
    PermissionKind,
    Requirement,
    Resource,
    Tier,
)
from permissions.verdicts import CallIndex, PermissionKey, PermissionScope, normalize_api_call

if TYPE_CHECKING:
    from tenants.models import Tenant

GRAPH_APP_ID = uuid.UUID(MICROSOFT_GRAPH_APP_ID)

# Most sensitive first; a permission the catalog does not know sorts last.
TIER_RANK: dict[str, int] = {
    Tier.CONTROL_PLANE: 0,
    Tier.MANAGEMENT_PLANE: 1,
    Tier.USER_ACCESS: 2,
    Tier.UNCLASSIFIED: 3,
}
UNKNOWN_TIER_RANK = len(TIER_RANK)

# Catalog filter values that are not a field's own value.
TIER_UNCLASSIFIED = "unclassified"
CONSENT_REQUIRED = "required"
CONSENT_NOT_REQUIRED = "not-required"
CONSENT_UNKNOWN = "unknown"
_CONSENT_VALUES: dict[str, bool | None] = {
    CONSENT_REQUIRED: True,
    CONSENT_NOT_REQUIRED: False,
    CONSENT_UNKNOWN: None,
}

CatalogKey = tuple[uuid.UUID, str, str]


def application_list() -> QuerySet[Application]:
    """Applications by name, each with `feature_count` and the number of distinct
    permissions its features require, per kind (`application_permission_count`,
    `delegated_permission_count`)."""
    # Two features often list the same permission: count (resource, value) pairs once.
    requirement_key = Concat(
        Cast("features__requirements__resource_app_id", CharField()),
        Value(" "),
        "features__requirements__permission_value",
        output_field=CharField(),
    )

    def distinct_permissions(kind: str) -> Count:
        return Count(requirement_key, distinct=True, filter=Q(features__requirements__kind=kind))

    return Application.objects.annotate(
        feature_count=Count("features", distinct=True),
        application_permission_count=distinct_permissions(PermissionKind.APPLICATION),
        delegated_permission_count=distinct_permissions(PermissionKind.DELEGATED),
    ).order_by("name", "pk")


@dataclass(frozen=True)
class ExplainedRequirement:
    """A manifest requirement with what the catalog says about its permission."""

    requirement: Requirement
    # None when the catalog does not know the permission (yet).
    permission: Permission | None
    # Empty for Microsoft Graph, which the pages take as the default resource.
    resource_name: str


@dataclass(frozen=True)
class FeatureManifest:
    feature: Feature
    requirements: list[ExplainedRequirement]


@dataclass
class RequestedPermission:
    """One distinct permission that an application asks for, and the features that need it."""

    kind: str
    value: str
    permission: Permission | None
    resource_name: str
    features: list[Feature] = field(default_factory=list)

    @property
    def tier_rank(self) -> int:
        if self.permission is None:
            return UNKNOWN_TIER_RANK
        return TIER_RANK.get(self.permission.tier, UNKNOWN_TIER_RANK)


@dataclass(frozen=True)
class ApplicationManifest:
    features: list[FeatureManifest]
    # Most sensitive first, then by name.
    permissions: list[RequestedPermission]


def application_manifest(*, application: Application) -> ApplicationManifest:
    """The application's features and requirements, each matched with the catalog.

    At most four queries whatever the manifest's size: features, requirements, the
    catalog's permissions and the names of resources other than Microsoft Graph.
    """
    features = list(
        application.features.order_by("position", "pk").prefetch_related(
            Prefetch("requirements", queryset=Requirement.objects.order_by("position", "pk"))
        )
    )
    requirements = [r for f in features for r in f.requirements.all()]
    catalog = _catalog_permissions(requirements)
    resource_names = _resource_names({r.resource_app_id for r in requirements})

    explained_features: list[FeatureManifest] = []
    requested: dict[CatalogKey, RequestedPermission] = {}
    for feature in features:
        explained = []
        for requirement in feature.requirements.all():
            key = _requirement_key(requirement)
            item = ExplainedRequirement(
                requirement=requirement,
                permission=catalog.get(key),
                resource_name=resource_names.get(requirement.resource_app_id, ""),
            )
            explained.append(item)
            summary = requested.setdefault(
                key,
                RequestedPermission(
                    kind=requirement.kind,
                    value=requirement.permission_value,
                    permission=item.permission,
                    resource_name=item.resource_name,
                ),
            )
            if feature not in summary.features:
                summary.features.append(feature)
        explained_features.append(FeatureManifest(feature=feature, requirements=explained))

    permissions = sorted(requested.values(), key=lambda p: (p.tier_rank, p.value.lower(), p.kind))
    return ApplicationManifest(features=explained_features, permissions=permissions)


def _requirement_key(requirement: Requirement) -> CatalogKey:
    return (requirement.resource_app_id, requirement.kind, requirement.permission_value)


def _catalog_permissions(requirements: list[Requirement]) -> dict[CatalogKey, Permission]:
    if not requirements:
        return {}
    # A superset (any listed value on any listed resource), narrowed by exact key below.
    candidates = Permission.objects.select_related("resource").filter(
        resource__app_id__in={r.resource_app_id for r in requirements},
        value__in={r.permission_value for r in requirements},
    )
    return {(p.resource.app_id, p.kind, p.value): p for p in candidates}


def _resource_names(app_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Display names of resources other than Microsoft Graph; the raw appId when unknown."""
    others = app_ids - {GRAPH_APP_ID}
    if not others:
        return {}
    known = dict(Resource.objects.filter(app_id__in=others).values_list("app_id", "display_name"))
    return {app_id: known.get(app_id, f"Resource {app_id}") for app_id in others}


def visible_permissions(*, tenants: "QuerySet[Tenant]") -> QuerySet[Permission]:
    """The catalog as the users of ``tenants`` see it: every published permission, and
    those only a tenant's Graph described where one of ``tenants`` saw them."""
    seen = Permission.seen_in.through.objects.filter(permission=OuterRef("pk"), tenant__in=tenants)
    return Permission.objects.filter(Q(published=True) | Exists(seen))


def visible_resources(*, permissions: QuerySet[Permission]) -> QuerySet[Resource]:
    """The resources of ``permissions``: a custom API's name shows only with its roles."""
    return Resource.objects.filter(Exists(permissions.filter(resource=OuterRef("pk"))))


def permission_search(
    *,
    within: QuerySet[Permission] | None = None,
    q: str = "",
    resource: Resource | None = None,
    kind: str = "",
    tier: str = "",
    consent: str = "",
) -> QuerySet[Permission]:
    """Catalog permissions matching every word of `q` (in the value, display name or
    description) and each filter that is set; an empty filter matches everything.

    Permissions whose name holds every word come first: someone who types "group" looks
    for Group.Read.All before a permission that mentions groups in its description.
    `tier` is a Tier value or TIER_UNCLASSIFIED; `consent` is one of CONSENT_*; `within`
    (default: the whole catalog) is what the user may see (:func:`visible_permissions`).
    """
    words = q.split()
    permissions = (Permission.objects.all() if within is None else within).select_related(
        "resource"
    )
    for word in words:
        permissions = permissions.filter(
            Q(value__icontains=word)
            | Q(display_name__icontains=word)
            | Q(description__icontains=word)
        )
    if resource is not None:
        permissions = permissions.filter(resource=resource)
    if kind:
        permissions = permissions.filter(kind=kind)
    if tier:
        permissions = permissions.filter(
            tier=Tier.UNCLASSIFIED if tier == TIER_UNCLASSIFIED else tier
        )
    if consent:
        permissions = permissions.filter(admin_consent_required=_CONSENT_VALUES[consent])
    order = ["value", "kind", "resource__display_name", "pk"]
    if words:
        in_name = Q(*(Q(value__icontains=word) for word in words))
        permissions = permissions.annotate(
            name_rank=Case(When(in_name, then=Value(0)), default=Value(1))
        )
        order.insert(0, "name_rank")
    return permissions.order_by(*order)


def permission_requirements(*, permission: Permission) -> QuerySet[Requirement]:
    """The manifest requirements that name this permission, by application then feature."""
    return (
        Requirement.objects.filter(
            resource_app_id=permission.resource.app_id,
            kind=permission.kind,
            permission_value=permission.value,
        )
        .select_related("feature__application")
        .order_by(
            "feature__application__name", "feature__application_id", "feature__position", "pk"
        )
    )


def permission_api_calls(*, permission: Permission) -> QuerySet[PermissionApiCall]:
    """The API calls a permission allows, the schemes of one call side by side."""
    return permission.api_calls.order_by("path", "method", "scheme", "pk")


# Which of Microsoft's consent schemes describes each kind of grant in an organisation.
SCHEME_OF_KIND: dict[str, str] = {
    PermissionKind.APPLICATION: PermissionApiCall.Scheme.APPLICATION,
    PermissionKind.DELEGATED: PermissionApiCall.Scheme.DELEGATED_WORK,
}


def call_index_for(keys: set[PermissionKey]) -> CallIndex:
    """The API-call map of every permission in the families (resource + kind) of ``keys``.

    Narrower candidates can be any permission of the same resource and kind, so the whole
    family is loaded: for Microsoft Graph about 30,000 rows, read once per report.
    """
    families = {(key.resource_app_id.lower(), key.kind) for key in keys}
    if not families:
        return CallIndex()
    family_filter = Q()
    for resource, kind in families:
        family_filter |= Q(resource__app_id=resource, kind=kind)
    permissions = {
        pk: (str(resource), kind, value, level)
        for pk, resource, kind, value, level in Permission.objects.filter(
            family_filter
        ).values_list("pk", "resource__app_id", "kind", "value", "privilege_level")
    }
    calls: dict[int, set[tuple[str, str]]] = defaultdict(set)
    rows = PermissionApiCall.objects.filter(permission_id__in=list(permissions)).values_list(
        "permission_id", "permission__kind", "scheme", "method", "path"
    )
    for permission_id, kind, scheme, method, path in rows.iterator(chunk_size=5000):
        if SCHEME_OF_KIND[kind] == scheme:
            calls[permission_id].add(normalize_api_call(f"{method} {path}"))
    return CallIndex.build(
        PermissionScope(PermissionKey(resource, kind, value), level, frozenset(calls[pk]))
        for pk, (resource, kind, value, level) in permissions.items()
        if calls.get(pk)
    )


# --- what changed in the catalog -----------------------------------------------------------

Category = CatalogChange.Category
Action = CatalogChange.Action
_CATEGORY_FILTERS = {
    Category.NEW: Q(action=Action.ADDED),
    Category.REMOVED: Q(action=Action.REMOVED),
    Category.RENAMED: Q(action=Action.CHANGED, details__has_key="value"),
    Category.RETIERED: Q(action=Action.CHANGED, details__has_key="tier"),
}


def catalog_change_list(
    *,
    category: str = "",
    catalog_import: CatalogImport | None = None,
    within: QuerySet[Permission] | None = None,
) -> QuerySet[CatalogChange]:
    """New, removed, renamed and re-tiered permissions, newest first; `category` (a
    CatalogChange.Category value) narrows them to one kind of change. Other changes
    (a new description, a consent flag Graph corrected) are left out. With `within`,
    only changes of those permissions, and of deleted ones that an import (not a tenant's
    Graph) described."""
    wanted = (
        _CATEGORY_FILTERS[Category(category)]
        if category
        else reduce(or_, _CATEGORY_FILTERS.values())
    )
    changes = CatalogChange.objects.filter(wanted)
    if within is not None:
        changes = changes.filter(
            Q(permission__in=within)
            | Q(permission__isnull=True) & ~Q(source=Permission.Source.GRAPH)
        )
    if catalog_import is not None:
        changes = changes.filter(catalog_import=catalog_import)
    return changes.select_related("catalog_import", "permission__resource").order_by("-at", "-pk")


def catalog_changes_held(
    *, since: datetime, held: Iterable[tuple[uuid.UUID | str, str, str]]
) -> list[CatalogChange]:
    """Removals, renames and re-tierings since `since` of the permissions in `held`
    (resource appId, kind, value); names match ignoring case, as Entra matches them, and a
    renamed permission by either name."""
    held = {(str(resource).lower(), kind, value.lower()) for resource, kind, value in held}
    if not held:
        return []
    wanted = reduce(
        or_, (_CATEGORY_FILTERS[c] for c in (Category.REMOVED, Category.RENAMED, Category.RETIERED))
    )
    changes = CatalogChange.objects.filter(wanted, at__gt=since).select_related("permission")
    return [
        change
        for change in changes.order_by("value", "kind", "at", "pk")
        if any(
            (str(change.resource_app_id), change.kind, name.lower()) in held
            for name in (change.value, change.renamed_from)
            if name
        )
    ]
