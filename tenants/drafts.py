"""A draft manifest of one application from the permissions it holds in one tenant: the
reads behind it (its grants, the catalog's API calls, the portal's manifest of it);
permissions/drafts.py groups and writes it."""

from collections import defaultdict
from uuid import UUID

from django.db.models import Q
from django.utils import timezone

from permissions.drafts import DRAFT_API_CALLS, Draft, HeldPermission, manifest_draft
from permissions.manifests import HTTP_METHODS, manifest_spec
from permissions.models import Application, Permission, PermissionApiCall, PermissionKind, Resource
from permissions.selectors import SCHEME_OF_KIND
from tenants.models import ServicePrincipal, Tenant
from tenants.selectors import current_grants

_METHOD_ORDER = {method: index for index, method in enumerate(HTTP_METHODS)}


def application_manifest_draft(*, tenant: Tenant, service_principal: ServicePrincipal) -> Draft:
    """The draft for ``service_principal``'s application from its current grants in
    ``tenant``. Five queries, whatever the number of grants."""
    rows = (
        current_grants([tenant.pk])
        .filter(client=service_principal)
        .values_list("resource_app_id", "kind", "value", "permission_id")
        .distinct()
        .order_by()
    )
    # An app role the resource does not publish is stored without a value: its id names it.
    held = {(resource, kind, value or str(role_id)) for resource, kind, value, role_id in rows}
    names = dict(
        Resource.objects.filter(app_id__in={resource for resource, _, _ in held}).values_list(
            "app_id", "display_name"
        )
    )
    calls = _least_privileged_calls(held)
    application = Application.objects.filter(app_id=service_principal.app_id).first()
    existing = (
        manifest_spec(application=application)
        if application is not None and application.has_manifest
        else None
    )
    return manifest_draft(
        app_id=service_principal.app_id,
        name=service_principal.display_name,
        publisher=service_principal.publisher,
        existing=existing,
        held=[
            HeldPermission(
                resource_app_id=resource,
                kind=PermissionKind(kind),
                value=value,
                resource_name=names.get(resource, ""),
                api_calls=calls.get((resource, kind, value.casefold()), ()),
            )
            for resource, kind, value in held
        ],
        drafted_on=timezone.localdate(),
    )


def _least_privileged_calls(
    held: set[tuple[UUID, str, str]],
) -> dict[tuple[UUID, str, str], tuple[str, ...]]:
    """Per held permission, the calls Microsoft's reference names it least privileged for,
    shortest paths first (the collections before their items' parts), at most
    DRAFT_API_CALLS. Empty where the catalog has no API calls (the built-in snapshot)."""
    if not held:
        return {}
    matches = Q()
    for resource, kind, value in held:
        matches |= Q(resource__app_id=resource, kind=kind, value__iexact=value)
    permissions = {
        pk: (resource, kind, value.casefold())
        for pk, resource, kind, value in Permission.objects.filter(matches).values_list(
            "pk", "resource__app_id", "kind", "value"
        )
    }
    found: dict[int, list[tuple[str, str]]] = defaultdict(list)
    rows = PermissionApiCall.objects.filter(
        permission_id__in=list(permissions), least_privileged=True
    ).values_list("permission_id", "permission__kind", "scheme", "method", "path")
    for permission_id, kind, scheme, method, path in rows:
        if SCHEME_OF_KIND[kind] == scheme:
            found[permission_id].append((method, path))
    return {
        permissions[pk]: tuple(
            f"{method} {path}"
            for method, path in sorted(
                set(calls),
                key=lambda call: (call[1].count("/"), call[1], _METHOD_ORDER.get(call[0], 99)),
            )[:DRAFT_API_CALLS]
        )
        for pk, calls in found.items()
    }
