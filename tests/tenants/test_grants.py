"""Granting a missing permission against the emulator over HTTPS: the exact Graph writes,
the verification sync, undo (a revoke), approvals, the audit trail, the manual steps
where the portal may only read, and the application page's buttons."""

import json

import pytest
from django.core import mail
from django.urls import reverse

from permissions.models import Application, Permission
from permissions.verdicts import PermissionKey
from tenants import selectors
from tenants.access import Role
from tenants.graph import GraphClient
from tenants.models import AuditEvent, Grant, RevokeRequest, ServicePrincipal
from tenants.revokes import (
    grant_plans,
    grant_request_create,
    grant_steps,
    grant_undo,
    manual_steps,
    revoke_request_approve,
    revoke_request_execute,
)
from tenants.services import features_set
from tenants.tasks import notify_revoke_requests
from tests.helpers import sync
from tests.ids import ASKCODY, CONNECT_247, CONTOSO, DEVICE_READ_ALL, FABRIKAM, GRAPH, PORTAL_APP
from tests.tenants.helpers import graph_assignments, graph_grants

pytestmark = pytest.mark.django_db(transaction=True)

DEVICE_READ = PermissionKey(GRAPH, "application", "Device.Read.All")
GROUP_READ_DELEGATED = PermissionKey(GRAPH, "delegated", "Group.Read.All")


def sp(tenant, app_id: str) -> ServicePrincipal:
    return ServicePrincipal.objects.get(tenant=tenant, app_id=app_id)


def graph_sp_id(tenant) -> str:
    return str(sp(tenant, GRAPH).object_id)


def missing_values(tenant, app_id: str) -> set[tuple[str, str]]:
    detail = selectors.application_in_tenant(tenant=tenant, service_principal=sp(tenant, app_id))
    return {(m.finding.permission.value, m.finding.permission.kind) for m in detail.missing}


def remove_outside_the_portal(tenant, app_id: str, value: str, client_for) -> None:
    """Device.Read.All of 247connect deleted in Entra by someone else, then a sync: its
    device-assignment feature misses it."""
    row = Grant.objects.get(
        tenant=tenant, client__app_id=app_id, value=value, removed_in_run__isnull=True
    )
    GraphClient(tenant_id=str(tenant.tenant_id)).request(
        "DELETE",
        f"/servicePrincipals/{row.resource_object_id}/appRoleAssignedTo/{row.graph_object_id}",
    )
    sync(tenant, client_for(str(tenant.tenant_id)))


def askcody_admin_grant(emu, tenant) -> dict:
    """AskCody's admin consent (its AllPrincipals grant on Graph) as the emulator has it."""
    askcody = sp(tenant, ASKCODY)
    return next(
        g
        for g in graph_grants(emu, CONTOSO, str(askcody.object_id))
        if g["consentType"] == "AllPrincipals"
    )


def grant_and_execute(tenant, app_id: str, permission: PermissionKey, actor, client_for):
    """An admin's grant request, carried out at once; the request as it ended."""
    grant, created = grant_request_create(
        tenant=tenant,
        client=sp(tenant, app_id),
        permission=permission,
        actor=actor,
        role=Role.ADMIN,
    )
    assert created
    return revoke_request_execute(revoke_id=grant.pk, client=client_for(str(tenant.tenant_id)))


def narrow_askcody_admin_grant(tenant, emu, client_for) -> dict:
    """Group.Read.All taken out of AskCody's admin consent in Entra, then a sync."""
    grant = askcody_admin_grant(emu, tenant)
    scope = " ".join(s for s in grant["scope"].split() if s != "Group.Read.All")
    GraphClient(tenant_id=CONTOSO).request(
        "PATCH", f"/oauth2PermissionGrants/{grant['id']}", json={"scope": scope}
    )
    sync(tenant, client_for(CONTOSO))
    return {**grant, "scope": scope}


def writes(request: RevokeRequest) -> list[tuple[str, str, object, int]]:
    return [
        (call["method"], call["path"], call.get("body"), call["status"])
        for call in request.graph_calls
        if call["method"] != "GET"
    ]


def test_an_admin_grants_a_missing_app_role_a_sync_sees_it_and_undo_revokes_it(
    synced, alice, emu, client_for, sent_revokes
):
    contoso = synced.contoso
    connect = sp(contoso, CONNECT_247)
    remove_outside_the_portal(contoso, CONNECT_247, "Device.Read.All", client_for)
    assert ("Device.Read.All", "application") in missing_values(contoso, CONNECT_247)

    grant, created = grant_request_create(
        tenant=contoso, client=connect, permission=DEVICE_READ, actor=alice, role=Role.ADMIN
    )
    assert created and (grant.action, grant.status) == ("grant", "queued")
    assert sent_revokes == [grant.pk]
    grant = revoke_request_execute(revoke_id=grant.pk, client=client_for(CONTOSO))

    assert grant.status == RevokeRequest.Status.SUCCEEDED, grant.error
    resource = graph_sp_id(contoso)
    body = {
        "principalId": str(connect.object_id),
        "resourceId": resource,
        "appRoleId": DEVICE_READ_ALL,
    }
    assert writes(grant) == [
        ("POST", f"/servicePrincipals/{resource}/appRoleAssignedTo", body, 201)
    ]
    assert DEVICE_READ_ALL in {
        a["appRoleId"] for a in graph_assignments(emu, CONTOSO, str(connect.object_id))
    }
    # The verification sync shows it held, and needed again.
    sync(contoso, client_for(CONTOSO))
    assert ("Device.Read.All", "application") not in missing_values(contoso, CONNECT_247)
    held = Grant.objects.get(
        tenant=contoso, client=connect, value="Device.Read.All", removed_in_run__isnull=True
    )
    assert held.graph_object_id == grant.removed[0]["id"]

    undo = grant_undo(revoke=grant, actor=alice)
    assert (undo.action, undo.status, undo.restores) == ("revoke", "queued", grant)
    undo = revoke_request_execute(revoke_id=undo.pk, client=client_for(CONTOSO))
    assert undo.status == RevokeRequest.Status.SUCCEEDED, undo.error
    by_id = f"/servicePrincipals/{resource}/appRoleAssignedTo/{held.graph_object_id}"
    assert writes(undo) == [("DELETE", by_id, None, 204)]
    sync(contoso, client_for(CONTOSO))
    assert ("Device.Read.All", "application") in missing_values(contoso, CONNECT_247)
    with pytest.raises(ValueError, match="already taken back"):
        grant_undo(revoke=grant, actor=alice)

    trail = AuditEvent.objects.filter(
        tenant=contoso, details__revoke_request__in=[grant.pk, undo.pk]
    )
    assert list(trail.order_by("pk").values_list("action", "target")) == [
        ("grant.requested", "Grant Device.Read.All (application) of 247connect"),
        ("grant.succeeded", "Grant Device.Read.All (application) of 247connect"),
        ("revoke.requested", "Device.Read.All (application) of 247connect"),
        ("revoke.succeeded", "Device.Read.All (application) of 247connect"),
    ]


def test_undo_waits_for_the_sync_that_records_the_grant(synced, alice, client_for, sent_revokes):
    contoso = synced.contoso
    remove_outside_the_portal(contoso, CONNECT_247, "Device.Read.All", client_for)
    grant = grant_and_execute(contoso, CONNECT_247, DEVICE_READ, alice, client_for)

    with pytest.raises(ValueError, match="No sync has recorded Device.Read.All"):
        grant_undo(revoke=grant, actor=alice)


def test_a_missing_scope_is_added_to_the_admin_consent_grant(
    synced, alice, emu, client_for, sent_revokes
):
    contoso = synced.contoso
    askcody = sp(contoso, ASKCODY)
    before = narrow_askcody_admin_grant(contoso, emu, client_for)
    assert ("Group.Read.All", "delegated") in missing_values(contoso, ASKCODY)

    grant = grant_and_execute(contoso, ASKCODY, GROUP_READ_DELEGATED, alice, client_for)

    assert grant.status == RevokeRequest.Status.SUCCEEDED, grant.error
    path = f"/oauth2PermissionGrants/{before['id']}"
    assert writes(grant) == [("PATCH", path, {"scope": f"{before['scope']} Group.Read.All"}, 204)]
    after = next(
        g for g in graph_grants(emu, CONTOSO, str(askcody.object_id)) if g["id"] == before["id"]
    )
    assert after["scope"].split() == [*before["scope"].split(), "Group.Read.All"]
    sync(contoso, client_for(CONTOSO))
    assert ("Group.Read.All", "delegated") not in missing_values(contoso, ASKCODY)


def test_without_an_admin_consent_grant_one_is_created(
    synced, alice, emu, client_for, sent_revokes
):
    contoso = synced.contoso
    askcody = sp(contoso, ASKCODY)
    admin = askcody_admin_grant(emu, contoso)
    GraphClient(tenant_id=CONTOSO).request("DELETE", f"/oauth2PermissionGrants/{admin['id']}")
    sync(contoso, client_for(CONTOSO))

    grant = grant_and_execute(contoso, ASKCODY, GROUP_READ_DELEGATED, alice, client_for)

    assert grant.status == RevokeRequest.Status.SUCCEEDED, grant.error
    body = {
        "clientId": str(askcody.object_id),
        "consentType": "AllPrincipals",
        "resourceId": graph_sp_id(contoso),
        "scope": "Group.Read.All",
    }
    assert writes(grant) == [("POST", "/oauth2PermissionGrants", body, 201)]
    created = [
        g
        for g in graph_grants(emu, CONTOSO, str(askcody.object_id))
        if g["consentType"] == "AllPrincipals"
    ]
    assert [g["scope"] for g in created] == ["Group.Read.All"]


def test_a_readers_grant_waits_for_an_admins_approval(
    synced, alice, bob, client_for, sent_revokes, monkeypatch
):
    monkeypatch.setattr(
        notify_revoke_requests, "delay", lambda ids: notify_revoke_requests.apply((ids,))
    )
    contoso = synced.contoso
    remove_outside_the_portal(contoso, CONNECT_247, "Device.Read.All", client_for)
    grant, _ = grant_request_create(
        tenant=contoso,
        client=sp(contoso, CONNECT_247),
        permission=DEVICE_READ,
        actor=bob,
        role=Role.READER,
    )
    assert grant.status == RevokeRequest.Status.PENDING_APPROVAL and sent_revokes == []
    (message,) = mail.outbox
    assert message.subject == "Grant request in Contoso: Device.Read.All of 247connect"
    assert message.body.startswith("Bob Berg asks to grant these permissions in Contoso:")

    grant = revoke_request_approve(revoke=grant, actor=alice)

    assert (grant.status, grant.decided_by) == ("queued", alice) and sent_revokes == [grant.pk]
    actions = AuditEvent.objects.filter(details__revoke_request=grant.pk).order_by("pk")
    assert [(e.action, e.actor) for e in actions] == [
        ("grant.requested", bob),
        ("grant.approved", alice),
    ]


def test_only_what_is_missing_can_be_granted_and_never_to_the_portal_itself(synced, alice):
    contoso, fabrikam = synced
    with pytest.raises(ValueError, match="does not miss Device.Read.All"):
        grant_request_create(
            tenant=contoso,
            client=sp(contoso, CONNECT_247),
            permission=DEVICE_READ,
            actor=alice,
            role=Role.ADMIN,
        )
    # The portal's "revoke" feature, switched on in Fabrikam, misses its write rights there:
    # an admin consents to those in Entra, the portal does not grant itself anything.
    features_set(
        tenant=fabrikam,
        application=Application.objects.get(app_id=PORTAL_APP),
        enable=["revoke"],
        disable=[],
        actor=None,
    )
    write = PermissionKey(GRAPH, "application", "AppRoleAssignment.ReadWrite.All")
    assert (write.value, write.kind) in missing_values(fabrikam, PORTAL_APP)
    with pytest.raises(ValueError, match="does not grant permissions to itself"):
        grant_request_create(
            tenant=fabrikam,
            client=sp(fabrikam, PORTAL_APP),
            permission=write,
            actor=None,
            role=Role.ADMIN,
        )
    assert not RevokeRequest.objects.filter(action="grant").exists()


def test_in_read_only_mode_the_grant_gives_steps_with_the_real_ids_and_a_sync_completes_it(
    synced, charlie, emu, client_for, sent_revokes
):
    fabrikam = synced.fabrikam
    connect = sp(fabrikam, CONNECT_247)
    group_read = PermissionKey(GRAPH, "application", "Group.Read.All")
    role_id = str(
        Permission.objects.get(
            resource__app_id=GRAPH, kind="application", value="Group.Read.All"
        ).graph_id
    )

    grant, _ = grant_request_create(
        tenant=fabrikam, client=connect, permission=group_read, actor=charlie, role=Role.ADMIN
    )

    assert grant.status == RevokeRequest.Status.MANUAL and sent_revokes == []
    steps = manual_steps(grant)
    resource = graph_sp_id(fabrikam)
    assert any(
        "POST https://" in step
        and f"/v1.0/servicePrincipals/{resource}/appRoleAssignedTo" in step
        and f'"principalId": "{connect.object_id}"' in step
        and f'"appRoleId": "{role_id}"' in step
        for step in steps
    )
    assert any(
        f"New-MgServicePrincipalAppRoleAssignedTo -ServicePrincipalId {resource} "
        f"-PrincipalId {connect.object_id} -ResourceId {resource} -AppRoleId {role_id}" in step
        for step in steps
    )
    event = AuditEvent.objects.get(action=AuditEvent.Action.GRANT_MANUAL)
    assert event.details["steps"] == steps

    # A sync that does not see it yet leaves the request waiting.
    sync(fabrikam, client_for(FABRIKAM))
    grant.refresh_from_db()
    assert grant.status == RevokeRequest.Status.MANUAL

    # The tenant's admin makes that call by hand (the portal's app may not).
    body = {"principalId": str(connect.object_id), "resourceId": resource, "appRoleId": role_id}
    state = emu.app.state
    state.create_assignment(state.tenant(FABRIKAM), resource, body)
    run = sync(fabrikam, client_for(FABRIKAM))

    grant.refresh_from_db()
    assert grant.status == RevokeRequest.Status.SUCCEEDED
    event = AuditEvent.objects.get(action=AuditEvent.Action.GRANT_SUCCEEDED, tenant=fabrikam)
    assert event.details["confirmed_by_sync"] == run.pk
    assert ("Group.Read.All", "application") not in missing_values(fabrikam, CONNECT_247)


# -- the application page -----------------------------------------------------------------


def application_url(tenant, app_id: str) -> str:
    return reverse("tenants:application", args=[tenant.tenant_id, app_id])


def grant_form(permission: PermissionKey) -> dict[str, str]:
    return {
        "resource_app_id": permission.resource_app_id,
        "kind": permission.kind,
        "value": permission.value,
        "consent": "admin",
    }


def test_the_page_grants_a_missing_permission_and_shows_the_request_in_its_place(
    synced, alice_client, client_for, sent_revokes
):
    contoso = synced.contoso
    remove_outside_the_portal(contoso, CONNECT_247, "Device.Read.All", client_for)
    page = alice_client.get(application_url(contoso, CONNECT_247)).content.decode()
    assert "Grant Device.Read.All</button>" in page
    # Or the feature that needs it goes off, through the switches' preview.
    assert "Or switch Device assignment off" in page

    answer = alice_client.post(
        reverse("tenants:grant-create", args=[contoso.tenant_id, CONNECT_247]),
        grant_form(DEVICE_READ),
        HTTP_HX_REQUEST="true",
    )

    grant = RevokeRequest.objects.get(action="grant")
    assert answer.status_code == 200 and f"Grant request {grant.pk}" in answer.content.decode()
    assert sent_revokes == [grant.pk]
    page = alice_client.get(application_url(contoso, CONNECT_247)).content.decode()
    assert (
        f'id="revoke-request-{grant.pk}"' in page and "Grant Device.Read.All</button>" not in page
    )
    assert "Revoked permissions" not in page


def test_a_reader_asks_for_the_grant_and_an_admin_sees_it_waiting(
    synced, bob_client, client_for, sent_revokes
):
    contoso = synced.contoso
    remove_outside_the_portal(contoso, CONNECT_247, "Device.Read.All", client_for)
    url = reverse("tenants:grant-create", args=[contoso.tenant_id, CONNECT_247])

    answer = bob_client.post(url, grant_form(DEVICE_READ))

    assert answer.status_code == 302
    grant = RevokeRequest.objects.get(action="grant")
    assert grant.status == RevokeRequest.Status.PENDING_APPROVAL and sent_revokes == []


def test_read_only_mode_shows_the_steps_with_the_real_ids_on_the_page(synced, charlie_client):
    fabrikam = synced.fabrikam
    connect = sp(fabrikam, CONNECT_247)
    role_id = Permission.objects.get(
        resource__app_id=GRAPH, kind="application", value="Group.Read.All"
    ).graph_id

    page = charlie_client.get(application_url(fabrikam, CONNECT_247)).content.decode()

    resource = graph_sp_id(fabrikam)
    assert "Grant it by hand" in page
    assert f"/v1.0/servicePrincipals/{resource}/appRoleAssignedTo" in page
    assert f"&quot;principalId&quot;: &quot;{connect.object_id}&quot;" in page
    assert f"&quot;appRoleId&quot;: &quot;{role_id}&quot;" in page


def test_an_outsider_cannot_grant(synced, charlie_client, client_for):
    contoso = synced.contoso
    remove_outside_the_portal(contoso, CONNECT_247, "Device.Read.All", client_for)
    url = reverse("tenants:grant-create", args=[contoso.tenant_id, CONNECT_247])

    assert charlie_client.post(url, grant_form(DEVICE_READ)).status_code == 404
    assert not RevokeRequest.objects.filter(action="grant").exists()


def test_steps_for_a_delegated_scope_patch_the_admin_consent_grant(
    synced, emu, client_for, settings
):
    contoso = synced.contoso
    before = narrow_askcody_admin_grant(contoso, emu, client_for)
    scope = f"{before['scope']} Group.Read.All"

    (plan,) = grant_plans(
        tenant=contoso, client=sp(contoso, ASKCODY), missing=[(GROUP_READ_DELEGATED, None)]
    )
    steps = grant_steps(plan)

    url = f"{settings.GRAPH_URL}/v1.0/oauth2PermissionGrants/{before['id']}"
    assert steps[1].startswith(f"PATCH {url} with the body ")
    assert json.dumps({"scope": scope}) in steps[1]
    assert steps[2] == (
        "Or in Microsoft Graph PowerShell: Update-MgOauth2PermissionGrant "
        f'-OAuth2PermissionGrantId {before["id"]} -Scope "{scope}"'
    )


def test_steps_for_a_delegated_scope_without_admin_consent_create_the_grant(synced):
    fabrikam = synced.fabrikam
    askcody = sp(fabrikam, ASKCODY)
    resource = graph_sp_id(fabrikam)

    (plan,) = grant_plans(tenant=fabrikam, client=askcody, missing=[(GROUP_READ_DELEGATED, None)])
    steps = grant_steps(plan)

    body = {
        "clientId": str(askcody.object_id),
        "consentType": "AllPrincipals",
        "resourceId": resource,
        "scope": "Group.Read.All",
    }
    assert steps[1].endswith(f"/v1.0/oauth2PermissionGrants with the body {json.dumps(body)}")
    assert steps[2] == (
        "Or in Microsoft Graph PowerShell: New-MgOauth2PermissionGrant "
        f"-ClientId {askcody.object_id} -ConsentType AllPrincipals "
        f'-ResourceId {resource} -Scope "Group.Read.All"'
    )
    assert 'Do not use "Grant admin consent"' in steps[3]


def test_a_grant_made_since_the_sync_is_found_and_the_scope_added_to_it(
    synced, alice, emu, client_for, sent_revokes
):
    contoso = synced.contoso
    askcody = sp(contoso, ASKCODY)
    graph = GraphClient(tenant_id=CONTOSO)
    graph.request("DELETE", f"/oauth2PermissionGrants/{askcody_admin_grant(emu, contoso)['id']}")
    sync(contoso, client_for(CONTOSO))
    # Someone consents to one scope for everyone after that sync: the portal has not seen it.
    made = graph.request(
        "POST",
        "/oauth2PermissionGrants",
        json={
            "clientId": str(askcody.object_id),
            "consentType": "AllPrincipals",
            "resourceId": graph_sp_id(contoso),
            "scope": "User.Read",
        },
    ).json()

    grant = grant_and_execute(contoso, ASKCODY, GROUP_READ_DELEGATED, alice, client_for)

    assert grant.status == RevokeRequest.Status.SUCCEEDED, grant.error
    assert [(m, p, s) for m, p, _body, s in writes(grant)] == [
        ("POST", "/oauth2PermissionGrants", 409),
        ("PATCH", f"/oauth2PermissionGrants/{made['id']}", 204),
    ]
    assert askcody_admin_grant(emu, contoso)["scope"].split() == ["User.Read", "Group.Read.All"]
