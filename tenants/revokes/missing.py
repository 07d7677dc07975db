"""What granting a missing permission takes: the Graph objects to create or change, with
the real ids, and the same as steps for an admin where the portal may not write.

A missing permission is one an enabled feature of the application's manifest lists and
the tenant has not granted (:mod:`permissions.verdicts`). Granting exactly that one, and
nothing else the application asks for, takes Microsoft Graph (Microsoft documents both):

- an application permission: ``POST /servicePrincipals/{resourceId}/appRoleAssignedTo``
  with ``{principalId, resourceId, appRoleId}`` (201; 400 "Permission being assigned
  already exists on the object" when it is there already);
- a delegated one, for all users: its scope added to the client's existing AllPrincipals
  ``oauth2PermissionGrant`` on that resource (``PATCH`` its whole ``scope``), or a new
  grant ``POST /oauth2PermissionGrants`` with ``{clientId, consentType: AllPrincipals,
  resourceId, scope}`` where there is none (409 when one exists after all).

Both need the portal's revoke-mode rights (``AppRoleAssignment.ReadWrite.All``,
``DelegatedPermissionGrant.ReadWrite.All``). The admin center's "Grant admin consent"
is no substitute: it grants every permission the application asks for, not one.
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.conf import settings

from permissions.models import Permission, PermissionKind
from permissions.verdicts import PermissionKey
from tenants.models import Grant, RevokeRequest, ServicePrincipal, Tenant
from tenants.portal_app import is_portal_app
from tenants.revokes._shared import consent_type
from tenants.slots import GrantSlot


@dataclass(frozen=True)
class GrantPlan:
    """What granting one missing permission to one client writes, with the real ids.

    ``problem`` says, in one line, why it cannot be granted from the portal (then the
    other fields may be None); empty when it can.
    """

    client: ServicePrincipal
    slot: GrantSlot
    # The resource's service principal in the tenant (Microsoft Graph's, ...).
    resource_object_id: str | None
    # Application permissions: the resource's app role id.
    app_role_id: str | None
    # Delegated: the client's AllPrincipals grant on the resource, as the last sync saw it
    # ({"id", "scope"}), or None when it has none yet.
    existing_grant: dict[str, str] | None
    problem: str = ""

    @property
    def targets(self) -> list[dict[str, Any]]:
        """The Graph objects the grant puts in place, in the shape a restore's targets (a
        revoke's ``removed``) have, so that one code path writes both."""
        if self.problem or self.resource_object_id is None:
            return []
        client_id = str(self.client.object_id)
        if self.slot.kind == PermissionKind.APPLICATION:
            return [
                {
                    "type": "appRoleAssignment",
                    "id": None,
                    "principalId": client_id,
                    "resourceId": self.resource_object_id,
                    "appRoleId": self.app_role_id,
                }
            ]
        existing = self.existing_grant
        scope = f"{existing['scope']} {self.slot.value}".strip() if existing else self.slot.value
        return [
            {
                "type": "oauth2PermissionGrant",
                "id": existing["id"] if existing else None,
                "clientId": client_id,
                "consentType": consent_type(Grant.Consent.ADMIN),
                "principalId": None,
                "resourceId": self.resource_object_id,
                "scope": scope,
            }
        ]


def grant_slot(permission: PermissionKey) -> GrantSlot:
    """The slot a grant of a missing permission fills: admin consent (application
    permissions always are; a delegated one for all users, as an admin grants it)."""
    return GrantSlot.of(permission, Grant.Consent.ADMIN)


def grant_plans(
    *,
    tenant: Tenant,
    client: ServicePrincipal,
    missing: Iterable[tuple[PermissionKey, UUID | None]],
) -> list[GrantPlan]:
    """A plan for each (missing permission, its catalog id): two queries for them all, none
    when nothing is missing."""
    missing = list(missing)
    if not missing:
        return []
    resources = _resource_object_ids(tenant, {key.resource_app_id for key, _ in missing})
    grants = _admin_grants(tenant, client)
    return [
        _plan(client, key, graph_id, resources.get(key.resource_app_id.lower()), grants)
        for key, graph_id in missing
    ]


def grant_plan_for(revoke: RevokeRequest) -> GrantPlan:
    """The plan of a grant request, from what the last sync recorded now."""
    slot = GrantSlot.from_request(revoke)
    graph_id = _app_role_id(slot)
    return grant_plans(
        tenant=revoke.tenant, client=revoke.client, missing=[(slot.permission, graph_id)]
    )[0]


def _plan(
    client: ServicePrincipal,
    key: PermissionKey,
    graph_id: UUID | None,
    resource_object_id: str | None,
    grants: dict[str, dict[str, str]],
) -> GrantPlan:
    slot = grant_slot(key)
    problem = ""
    if is_portal_app(client.app_id):
        problem = (
            "The portal does not grant permissions to itself: an admin of the tenant grants "
            "them in Entra (the tenant's health page says how)."
        )
    elif resource_object_id is None:
        problem = (
            f"The last sync found no service principal of the resource {key.resource_app_id} "
            "in this tenant, so there is nothing to grant it on."
        )
    elif key.kind == PermissionKind.APPLICATION and graph_id is None:
        problem = f"The catalog does not know the app role id of {key.value}."
    return GrantPlan(
        client=client,
        slot=slot,
        resource_object_id=resource_object_id,
        app_role_id=str(graph_id) if graph_id else None,
        existing_grant=grants.get(resource_object_id or ""),
        problem=problem,
    )


def _resource_object_ids(tenant: Tenant, app_ids: set[str]) -> dict[str, str]:
    """Each resource's current service principal object id, by its appId (lower case); of
    two, the older row, as ``current_service_principal`` picks it."""
    rows = ServicePrincipal.objects.filter(
        tenant=tenant, app_id__in=app_ids, removed_at__isnull=True
    ).order_by("-pk")
    return {
        str(app_id): str(object_id) for app_id, object_id in rows.values_list("app_id", "object_id")
    }


def _admin_grants(tenant: Tenant, client: ServicePrincipal) -> dict[str, dict[str, str]]:
    """The client's AllPrincipals delegated grants as the last sync saw them: by resource
    object id, the grant's id and its scopes in Graph's order."""
    rows = (
        Grant.objects.filter(
            tenant=tenant,
            client=client,
            kind=PermissionKind.DELEGATED,
            consent=Grant.Consent.ADMIN,
            removed_in_run__isnull=True,
        )
        .order_by("pk")
        .values_list("resource_object_id", "graph_object_id", "value")
    )
    grants: dict[str, dict[str, str]] = {}
    for resource, grant_id, value in rows:
        entry = grants.setdefault(str(resource), {"id": grant_id, "scope": ""})
        if entry["id"] == grant_id:
            entry["scope"] = f"{entry['scope']} {value}".strip()
    return grants


def _app_role_id(slot: GrantSlot) -> UUID | None:
    """The catalog's id of an application permission (an unknown role is named by it)."""
    if slot.kind != PermissionKind.APPLICATION:
        return None
    found = (
        Permission.objects.filter(
            value__iexact=slot.value,
            resource__app_id=slot.resource_app_id,
            kind=PermissionKind.APPLICATION,
            graph_id__isnull=False,
        )
        .values_list("graph_id", flat=True)
        .first()
    )
    if found is None:
        try:
            return UUID(slot.value)
        except ValueError:
            return None
    return found


# -- by hand --------------------------------------------------------------------------------


def grant_steps(plan: GrantPlan) -> list[str]:
    """What an admin does by hand to grant exactly this permission: the Graph call with
    the real ids, its Microsoft Graph PowerShell equivalent, and the warning."""
    if plan.problem:
        return [plan.problem]
    base = f"{settings.GRAPH_URL}/v1.0"
    client = plan.client
    steps = [
        f"The Entra admin center cannot grant one permission of {client.display_name} "
        f"(application ID {client.app_id}) on its own, so make this Microsoft Graph call as "
        "an admin (Graph Explorer, or Invoke-MgGraphRequest in Microsoft Graph PowerShell):"
    ]
    target = plan.targets[0]
    if target["type"] == "appRoleAssignment":
        body = {key: target[key] for key in ("principalId", "resourceId", "appRoleId")}
        steps.append(
            f"POST {base}/servicePrincipals/{target['resourceId']}/appRoleAssignedTo "
            f"with the body {json.dumps(body)}"
        )
        steps.append(
            "Or in Microsoft Graph PowerShell: New-MgServicePrincipalAppRoleAssignedTo "
            f"-ServicePrincipalId {target['resourceId']} -PrincipalId {target['principalId']} "
            f"-ResourceId {target['resourceId']} -AppRoleId {target['appRoleId']}"
        )
    elif target["id"]:
        body = {"scope": target["scope"]}
        steps.append(
            f"PATCH {base}/oauth2PermissionGrants/{target['id']} with the body {json.dumps(body)} "
            "(its scopes as the last sync saw them, and this one: read it first with GET, "
            "and keep any scope added since)"
        )
        steps.append(
            "Or in Microsoft Graph PowerShell: Update-MgOauth2PermissionGrant "
            f'-OAuth2PermissionGrantId {target["id"]} -Scope "{target["scope"]}"'
        )
    else:
        body = {
            "clientId": target["clientId"],
            "consentType": target["consentType"],
            "resourceId": target["resourceId"],
            "scope": target["scope"],
        }
        steps.append(f"POST {base}/oauth2PermissionGrants with the body {json.dumps(body)}")
        steps.append(
            "Or in Microsoft Graph PowerShell: New-MgOauth2PermissionGrant "
            f"-ClientId {target['clientId']} -ConsentType AllPrincipals "
            f'-ResourceId {target["resourceId"]} -Scope "{target["scope"]}"'
        )
    steps.append(
        f'Do not use "Grant admin consent" on {client.display_name}\'s Permissions page for '
        "this: it grants every permission the app asks for, not only this one."
    )
    steps.append("The portal sees the new grant at the tenant's next sync.")
    return steps
