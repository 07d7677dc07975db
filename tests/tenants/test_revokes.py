"""Revoke requests against the emulator over HTTPS, with real MSAL: the exact Graph calls,
undo, bulk, manual mode, re-grants, concurrency and a worker lost mid-way."""

import threading
from datetime import timedelta
from functools import partial
from typing import Any

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.utils import timezone

from tenants.access import Role
from tenants.audit import actor_name
from tenants.graph import GraphClient, GraphError, new_session
from tenants.justifications import held_slots, justifications_set, slot_of
from tenants.models import (
    AuditEvent,
    Grant,
    Justification,
    RevokeRequest,
    ServicePrincipal,
    SyncRun,
)
from tenants.report import tenant_report
from tenants.revokes import (
    manual_steps,
    portal_can_write,
    revoke_bulk_candidates,
    revoke_bulk_create,
    revoke_request_approve,
    revoke_request_cancel,
    revoke_request_create,
    revoke_request_deny,
    revoke_request_execute,
    revoke_requests_resume_abandoned,
    revoke_restore,
)
from tenants.slots import GrantSlot
from tenants.tasks import (
    REVOKE_MAX_RETRIES,
    REVOKE_TIME_LIMIT,
    execute_revoke,
    notify_revoke_requests,
)
from tests.factories import UserFactory
from tests.helpers import sync
from tests.ids import ASKCODY, CONTOSO, FABRIKAM, GRAPH, LEGACY, MAIL_READ, PORTAL_APP, ROOMS
from tests.tenants.helpers import graph_assignments, graph_grants

pytestmark = pytest.mark.django_db(transaction=True)

DELETE_ASSIGNMENT = "DELETE /v1.0/servicePrincipals/{id}/appRoleAssignedTo/{assignmentId}"
ASKCODY_ADMIN_SCOPE = (
    "openid profile offline_access User.Read User.ReadBasic.All User.Read.All Group.Read.All"
)


class RecordingSession:
    """The portal's session, noting every Graph call (method, path, JSON body) it sends."""

    def __init__(self) -> None:
        self.session = new_session()
        self.calls: list[tuple[str, str, Any]] = []
        self.before: Any = None
        send = self.session.request

        def request(method: str, url: str, **kwargs: Any) -> Any:
            if "/v1.0/" in url:
                path = url.split("/v1.0", 1)[1]
                if self.before:
                    self.before(method, path)
                self.calls.append((method, path, kwargs.get("json")))
            return send(method, url, **kwargs)

        self.session.request = request  # type: ignore[method-assign,assignment]

    def writes(self) -> list[tuple[str, str, Any]]:
        return [call for call in self.calls if call[0] != "GET"]


@pytest.fixture
def recorder() -> RecordingSession:
    return RecordingSession()


@pytest.fixture
def graph_for(recorder, sleep):
    def make(tenant_id: str) -> GraphClient:
        return GraphClient(tenant_id=tenant_id, session=recorder.session, sleep=sleep)

    return make


@pytest.fixture
def mailed_at_once(monkeypatch) -> None:
    """The admins' e-mail task runs as soon as it is sent (on commit), in the test."""
    monkeypatch.setattr(
        notify_revoke_requests, "delay", lambda ids: notify_revoke_requests.apply((ids,))
    )


def sp(tenant, app_id: str) -> ServicePrincipal:
    return ServicePrincipal.objects.get(tenant=tenant, app_id=app_id)


def request_revoke(
    tenant, app_id, value, *, kind="application", consent="admin", actor=None, role=Role.ADMIN
):
    return revoke_request_create(
        tenant=tenant,
        client=sp(tenant, app_id),
        slot=GrantSlot(GRAPH, kind, value, consent),
        actor=actor,
        role=role,
    )


def grant_row(
    tenant, app_id: str, value: str, consent: str = "admin", kind: str = "application"
) -> Grant:
    return Grant.objects.get(
        tenant=tenant,
        client__app_id=app_id,
        value=value,
        kind=kind,
        consent=consent,
        removed_in_run__isnull=True,
    )


# -- the portal's own rights -------------------------------------------------------------


def test_the_portal_can_write_where_it_holds_both_write_rights(synced):
    contoso, fabrikam = synced
    assert portal_can_write(contoso) is True
    assert portal_can_write(fabrikam) is False


# -- application permissions -------------------------------------------------------------


def test_an_admins_click_deletes_the_assignment_and_verifies_it_is_gone(
    synced, alice, emu, graph_for, recorder
):
    contoso, _ = synced
    mail_read = grant_row(contoso, ROOMS, "Mail.Read")
    rooms = sp(contoso, ROOMS)

    revoke, created = request_revoke(contoso, ROOMS, "Mail.Read", actor=alice)
    assert created and revoke.status == RevokeRequest.Status.QUEUED
    assert revoke.requested_by == alice == revoke.decided_by

    revoke = revoke_request_execute(revoke_id=revoke.pk, client=graph_for(CONTOSO))

    assert revoke.status == RevokeRequest.Status.SUCCEEDED, revoke.error
    # By the id the sync recorded: read it, delete it, read it again (404: gone).
    by_id = f"/servicePrincipals/{mail_read.resource_object_id}/appRoleAssignedTo/{mail_read.graph_object_id}"
    assert recorder.calls == [
        ("GET", by_id, None),
        ("DELETE", by_id, None),
        ("GET", by_id, None),
    ]
    assert [(c["method"], c["path"], c["status"]) for c in revoke.graph_calls] == [
        ("GET", by_id, 200),
        ("DELETE", by_id, 204),
        ("GET", by_id, 404),
    ]
    assert all(call["request_id"] for call in revoke.graph_calls)
    assert revoke.removed == [
        {
            "type": "appRoleAssignment",
            "id": mail_read.graph_object_id,
            "principalId": str(rooms.object_id),
            "resourceId": str(mail_read.resource_object_id),
            "appRoleId": MAIL_READ,
        }
    ]
    assert revoke.started_at <= revoke.finished_at
    assert MAIL_READ not in {
        a["appRoleId"] for a in graph_assignments(emu, CONTOSO, str(rooms.object_id))
    }
    actions = list(
        AuditEvent.objects.filter(tenant=contoso, action__startswith="revoke.").values_list(
            "action", flat=True
        )
    )
    assert actions == ["revoke.succeeded", "revoke.requested"]


def keep_rooms_grants(contoso, alice) -> list[GrantSlot]:
    """Every grant Teams Rooms holds, justified with one reason; Mail.Read among them."""
    rooms = sp(contoso, ROOMS)
    slots = sorted(held_slots(tenant=contoso, client=rooms), key=lambda s: s.key)
    assert GrantSlot(GRAPH, "application", "Mail.Read", "admin") in slots and len(slots) > 1
    justifications_set(
        tenant=contoso, client=rooms, slots=slots, reason="Room mailboxes book", actor=alice
    )
    return slots


def test_a_revoke_that_succeeds_ends_that_grants_justification_and_says_on_whose_decision(
    synced, alice, bob, graph_for
):
    contoso, _ = synced
    slots = keep_rooms_grants(contoso, alice)
    revoke, _ = request_revoke(contoso, ROOMS, "Mail.Read", actor=bob, role=Role.READER)
    revoke_request_approve(revoke=revoke, actor=alice)

    revoke = revoke_request_execute(revoke_id=revoke.pk, client=graph_for(CONTOSO))

    assert revoke.status == RevokeRequest.Status.SUCCEEDED, revoke.error
    kept = {slot_of(j) for j in Justification.objects.filter(tenant=contoso)}
    assert kept == set(slots) - {GrantSlot(GRAPH, "application", "Mail.Read", "admin")}
    # The portal ended it; the trail keeps its reason and names the request.
    ended = AuditEvent.objects.get(action=AuditEvent.Action.JUSTIFICATION_REMOVED)
    assert ended.actor is None and ended.details["permission"] == "Mail.Read"
    assert ended.details["reason"] == "Room mailboxes book"
    assert ended.details["revoke_request"] == revoke.pk
    # The outcome is the portal's act, on alice's decision (bob only asked).
    outcome = AuditEvent.objects.get(action=AuditEvent.Action.REVOKE_SUCCEEDED)
    assert outcome.actor is None and outcome.details["decided_by"] == actor_name(alice)


def test_a_revoke_that_does_not_succeed_keeps_the_justification(synced, alice, emu, graph_for):
    contoso, _ = synced
    slots = keep_rooms_grants(contoso, alice)
    emu.set_faults([{"path": "/appRoleAssignedTo/", "method": "DELETE", "status": 403}])
    revoke, _ = request_revoke(contoso, ROOMS, "Mail.Read", actor=alice)

    revoke = revoke_request_execute(revoke_id=revoke.pk, client=graph_for(CONTOSO))

    assert revoke.status == RevokeRequest.Status.MANUAL
    assert {slot_of(j) for j in Justification.objects.filter(tenant=contoso)} == set(slots)
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.JUSTIFICATION_REMOVED).exists()


def test_a_second_execution_of_a_finished_request_changes_nothing(synced, graph_for, recorder):
    contoso, _ = synced
    revoke, _ = request_revoke(contoso, ROOMS, "Mail.Read")
    revoke_request_execute(revoke_id=revoke.pk, client=graph_for(CONTOSO))
    recorder.calls.clear()

    again = revoke_request_execute(revoke_id=revoke.pk, client=graph_for(CONTOSO))

    assert again.status == RevokeRequest.Status.SUCCEEDED and recorder.calls == []


def test_a_404_on_delete_means_already_gone_and_the_revoke_succeeds(
    synced, emu, graph_for, recorder, client_for
):
    contoso, _ = synced
    mail_read = grant_row(contoso, ROOMS, "Mail.Read")
    delete = f"/servicePrincipals/{mail_read.resource_object_id}/appRoleAssignedTo/{mail_read.graph_object_id}"
    other_admin = client_for(CONTOSO)

    def removed_meanwhile(method: str, path: str) -> None:
        # Someone else removes it between the portal's read and its DELETE.
        if method == "DELETE" and recorder.before:
            recorder.before = None
            other_admin.request("DELETE", path)

    recorder.before = removed_meanwhile
    revoke, _ = request_revoke(contoso, ROOMS, "Mail.Read")
    revoke = revoke_request_execute(revoke_id=revoke.pk, client=graph_for(CONTOSO))

    assert revoke.status == RevokeRequest.Status.SUCCEEDED, revoke.error
    assert [(c["method"], c["path"], c["status"]) for c in revoke.graph_calls][1] == (
        "DELETE",
        delete,
        404,
    )


def test_a_429_during_the_revoke_is_waited_out_and_the_revoke_succeeds(
    synced, emu, graph_for, sleep
):
    contoso, _ = synced
    emu.set_faults(
        [
            {
                "path": "appRoleAssignedTo",
                "method": "DELETE",
                "status": 429,
                "retry_after": 7,
                "times": 1,
            }
        ]
    )
    revoke, _ = request_revoke(contoso, ROOMS, "Mail.Read")

    revoke = revoke_request_execute(revoke_id=revoke.pk, client=graph_for(CONTOSO))

    assert revoke.status == RevokeRequest.Status.SUCCEEDED, revoke.error
    assert sleep.waits == [7.0]
    assert [c["status"] for c in revoke.graph_calls if c["method"] == "DELETE"] == [204]
    assert emu.counters()["requests"][DELETE_ASSIGNMENT] == 2  # the throttled one and the real one


def test_graph_unavailable_for_too_long_puts_the_request_back_in_the_queue(synced, emu, graph_for):
    contoso, _ = synced
    emu.set_faults([{"path": "appRoleAssignedTo", "method": "DELETE", "status": 503}])
    revoke, _ = request_revoke(contoso, ROOMS, "Mail.Read")

    with pytest.raises(GraphError) as raised:
        revoke_request_execute(revoke_id=revoke.pk, client=graph_for(CONTOSO))

    assert raised.value.retryable
    revoke.refresh_from_db()
    assert revoke.status == RevokeRequest.Status.QUEUED and "HTTP 503" in revoke.error
    emu.clear_faults()
    assert (
        revoke_request_execute(revoke_id=revoke.pk, client=graph_for(CONTOSO)).status == "succeeded"
    )


def test_a_403_switches_the_request_to_manual_with_the_steps(synced, emu, graph_for, client_for):
    contoso, _ = synced
    portal = sp(contoso, PORTAL_APP)
    # The tenant withdrew the portal's write right after the last sync.
    write_right = grant_row(contoso, PORTAL_APP, "AppRoleAssignment.ReadWrite.All")
    client_for(CONTOSO).request(
        "DELETE",
        f"/servicePrincipals/{write_right.resource_object_id}/appRoleAssignedTo/{write_right.graph_object_id}",
    )
    emu.expire_tokens()  # tokens carry the rights they were issued with
    assert portal.object_id  # the portal's app is still there, with fewer rights
    revoke, _ = request_revoke(contoso, ROOMS, "Mail.Read")

    revoke = revoke_request_execute(revoke_id=revoke.pk, client=graph_for(CONTOSO))

    assert revoke.status == RevokeRequest.Status.MANUAL
    assert "access denied" in revoke.error and "AppRoleAssignment.ReadWrite.All" in revoke.error
    assert [c["status"] for c in revoke.graph_calls if c["method"] == "DELETE"] == [403]
    event = AuditEvent.objects.get(action=AuditEvent.Action.REVOKE_MANUAL)
    assert event.details["steps"] == manual_steps(revoke)


def test_without_write_rights_the_request_waits_for_manual_removal_and_a_sync_completes_it(
    synced, emu, graph_for, recorder, client_for, settings
):
    _, fabrikam = synced
    directory = grant_row(fabrikam, "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", "Directory.Read.All")
    lookout = directory.client

    revoke, created = request_revoke(fabrikam, str(lookout.app_id), "Directory.Read.All")

    assert created and revoke.status == RevokeRequest.Status.MANUAL
    assert recorder.calls == []
    steps = manual_steps(revoke)
    assert steps[0].startswith("In the Microsoft Entra admin center (https://entra.microsoft.com)")
    assert f"Lookout MES Console (application ID {lookout.app_id})" in steps[0]
    assert "Permissions > Admin consent" in steps[0] and "Revoke permission" in steps[0]
    # The admin center does this one: no Graph calls, and the warning about re-consent.
    assert not any(settings.GRAPH_URL in step for step in steps)
    assert 'Do not use "Grant admin consent"' in steps[1]

    # A sync that still sees the grant leaves the request waiting.
    sync(fabrikam, client_for(FABRIKAM))
    revoke.refresh_from_db()
    assert revoke.status == RevokeRequest.Status.MANUAL

    # The tenant's admin removes it by hand (the portal's app may not).
    state = emu.app.state
    state.delete_assignment(
        state.tenant(FABRIKAM), str(directory.resource_object_id), directory.graph_object_id
    )
    run = sync(fabrikam, client_for(FABRIKAM))

    revoke.refresh_from_db()
    assert revoke.status == RevokeRequest.Status.SUCCEEDED and revoke.finished_at
    assert revoke.removed[0]["id"] == directory.graph_object_id
    event = AuditEvent.objects.get(action=AuditEvent.Action.REVOKE_SUCCEEDED, tenant=fabrikam)
    assert event.details["confirmed_by_sync"] == run.pk


def test_manual_steps_for_user_consents_patch_each_users_grant_with_the_other_scopes(
    synced, settings
):
    _, fabrikam = synced
    users = Grant.objects.filter(
        tenant=fabrikam, client__app_id=ASKCODY, value="Calendars.Read", consent="user"
    ).order_by("pk")
    assert users.count() == 2

    revoke, _ = request_revoke(
        fabrikam, ASKCODY, "Calendars.Read", kind="delegated", consent="user"
    )

    assert revoke.status == RevokeRequest.Status.MANUAL
    steps = manual_steps(revoke)
    # The admin center cannot revoke one user's consent: Graph calls only.
    assert steps[0].startswith("The Entra admin center cannot take one user's consent")
    assert "Enterprise applications" not in " ".join(steps)
    assert steps[1:-2] == [
        f"PATCH {settings.GRAPH_URL}/v1.0/oauth2PermissionGrants/{row.graph_object_id} "
        'with the body {"scope": "openid profile offline_access User.Read"}'
        for row in users
    ]
    assert 'Do not use "Grant admin consent"' in steps[-2]
    assert steps[-1] == "The portal confirms the change at the tenant's next sync."


# -- delegated permissions ---------------------------------------------------------------


def test_a_delegated_admin_consent_revoke_patches_the_grant_keeping_every_other_scope(
    synced, emu, graph_for, recorder
):
    contoso, _ = synced
    askcody = sp(contoso, ASKCODY)
    row = grant_row(contoso, ASKCODY, "User.Read.All", kind="delegated")

    revoke, _ = request_revoke(contoso, ASKCODY, "User.Read.All", kind="delegated")
    revoke = revoke_request_execute(revoke_id=revoke.pk, client=graph_for(CONTOSO))

    assert revoke.status == RevokeRequest.Status.SUCCEEDED, revoke.error
    by_id = f"/oauth2PermissionGrants/{row.graph_object_id}"
    remaining = "openid profile offline_access User.Read User.ReadBasic.All Group.Read.All"
    assert recorder.calls == [
        ("GET", by_id, None),
        ("PATCH", by_id, {"scope": remaining}),
        ("GET", by_id, None),
    ]
    admin_grant = next(
        g
        for g in graph_grants(emu, CONTOSO, str(askcody.object_id))
        if g["id"] == row.graph_object_id
    )
    assert admin_grant["scope"] == remaining
    assert revoke.removed[0]["scope"].split() == ASKCODY_ADMIN_SCOPE.split()


def test_a_scope_from_user_consents_is_removed_from_each_users_grant(
    synced, emu, graph_for, recorder
):
    contoso, _ = synced
    askcody = sp(contoso, ASKCODY)
    users = list(
        Grant.objects.filter(
            tenant=contoso, client=askcody, value="Calendars.Read", consent="user"
        ).order_by("pk")
    )
    assert len(users) == 3

    revoke, _ = request_revoke(contoso, ASKCODY, "Calendars.Read", kind="delegated", consent="user")
    revoke = revoke_request_execute(revoke_id=revoke.pk, client=graph_for(CONTOSO))

    assert revoke.status == RevokeRequest.Status.SUCCEEDED, revoke.error
    # Each user's grant held only this scope, so each one is deleted; the admin grant stays.
    assert sorted(recorder.writes()) == sorted(
        ("DELETE", f"/oauth2PermissionGrants/{row.graph_object_id}", None) for row in users
    )
    left = graph_grants(emu, CONTOSO, str(askcody.object_id))
    assert [g["consentType"] for g in left] == ["AllPrincipals"]
    assert sorted(entry["principalId"] for entry in revoke.removed) == sorted(
        str(r.principal_id) for r in users
    )


# -- undo --------------------------------------------------------------------------------


def test_undo_recreates_the_exact_assignment(synced, alice, emu, graph_for, recorder, client_for):
    contoso, _ = synced
    rooms = sp(contoso, ROOMS)
    mail_read = grant_row(contoso, ROOMS, "Mail.Read")
    revoke, _ = request_revoke(contoso, ROOMS, "Mail.Read", actor=alice)
    revoke = revoke_request_execute(revoke_id=revoke.pk, client=graph_for(CONTOSO))
    recorder.calls.clear()

    restore = revoke_restore(revoke=revoke, actor=alice)
    assert (restore.action, restore.status, restore.restores) == ("restore", "queued", revoke)
    restore = revoke_request_execute(revoke_id=restore.pk, client=graph_for(CONTOSO))

    assert restore.status == RevokeRequest.Status.SUCCEEDED, restore.error
    body = {
        "principalId": str(rooms.object_id),
        "resourceId": str(mail_read.resource_object_id),
        "appRoleId": MAIL_READ,
    }
    assert recorder.writes() == [
        ("POST", f"/servicePrincipals/{mail_read.resource_object_id}/appRoleAssignedTo", body)
    ]
    assert MAIL_READ in {
        a["appRoleId"] for a in graph_assignments(emu, CONTOSO, str(rooms.object_id))
    }
    assert restore.removed[0]["appRoleId"] == MAIL_READ
    # A restored permission showing up in the next sync is not a re-grant.
    sync(contoso, client_for(CONTOSO))
    revoke.refresh_from_db()
    assert revoke.regranted_in_run is None
    assert (
        AuditEvent.objects.filter(
            action=AuditEvent.Action.RESTORE_SUCCEEDED, tenant=contoso
        ).count()
        == 1
    )
    with pytest.raises(ValueError, match="already restored"):
        revoke_restore(revoke=revoke, actor=alice)


def test_undo_adds_the_scope_back_to_the_admin_consent_grant(synced, emu, graph_for, recorder):
    contoso, _ = synced
    askcody = sp(contoso, ASKCODY)
    row = grant_row(contoso, ASKCODY, "User.Read.All", kind="delegated")
    revoke, _ = request_revoke(contoso, ASKCODY, "User.Read.All", kind="delegated")
    revoke = revoke_request_execute(revoke_id=revoke.pk, client=graph_for(CONTOSO))
    recorder.calls.clear()

    restore = revoke_request_execute(
        revoke_id=revoke_restore(revoke=revoke, actor=None).pk, client=graph_for(CONTOSO)
    )

    assert restore.status == RevokeRequest.Status.SUCCEEDED, restore.error
    scope = (
        "openid profile offline_access User.Read User.ReadBasic.All Group.Read.All User.Read.All"
    )
    assert recorder.writes() == [
        ("PATCH", f"/oauth2PermissionGrants/{row.graph_object_id}", {"scope": scope})
    ]
    grant = next(
        g
        for g in graph_grants(emu, CONTOSO, str(askcody.object_id))
        if g["id"] == row.graph_object_id
    )
    assert set(grant["scope"].split()) == set(ASKCODY_ADMIN_SCOPE.split())


def test_undo_of_user_consents_creates_each_users_grant_again(synced, emu, graph_for, recorder):
    contoso, _ = synced
    askcody = sp(contoso, ASKCODY)
    graph_resource = grant_row(contoso, ASKCODY, "openid", kind="delegated").resource_object_id
    revoke, _ = request_revoke(contoso, ASKCODY, "Calendars.Read", kind="delegated", consent="user")
    revoke = revoke_request_execute(revoke_id=revoke.pk, client=graph_for(CONTOSO))
    recorder.calls.clear()

    restore = revoke_request_execute(
        revoke_id=revoke_restore(revoke=revoke, actor=None).pk, client=graph_for(CONTOSO)
    )

    assert restore.status == RevokeRequest.Status.SUCCEEDED, restore.error
    assert sorted(recorder.writes(), key=lambda c: c[2]["principalId"]) == [
        (
            "POST",
            "/oauth2PermissionGrants",
            {
                "clientId": str(askcody.object_id),
                "consentType": "Principal",
                "resourceId": str(graph_resource),
                "scope": "Calendars.Read",
                "principalId": entry["principalId"],
            },
        )
        for entry in sorted(revoke.removed, key=lambda e: e["principalId"])
    ]
    users = [
        g
        for g in graph_grants(emu, CONTOSO, str(askcody.object_id))
        if g["consentType"] == "Principal"
    ]
    assert sorted(g["principalId"] for g in users) == sorted(
        e["principalId"] for e in revoke.removed
    )


def test_only_a_succeeded_revoke_can_be_undone(synced):
    contoso, _ = synced
    revoke, _ = request_revoke(contoso, ROOMS, "Mail.Read")
    with pytest.raises(ValueError, match="only a revoke that succeeded"):
        revoke_restore(revoke=revoke, actor=None)


# -- requests, approvals, one open request per grant --------------------------------------


def test_a_readers_request_waits_for_approval_and_mails_the_tenants_admins(
    synced, alice, bob, charlie, graph_for, mailed_at_once
):
    contoso, _ = synced
    # Neither an admin without an address nor charlie, an admin of another tenant, is mailed.
    UserFactory(entra_tenant_id=CONTOSO, entra_roles=["Portal.Admin"], email="")

    revoke, created = request_revoke(contoso, ROOMS, "Mail.Read", actor=bob, role=Role.READER)

    assert created and revoke.status == RevokeRequest.Status.PENDING_APPROVAL
    assert revoke.decided_by is None
    [message] = mail.outbox
    assert message.to == ["alice@contoso.onmicrosoft.com"]
    assert "Mail.Read" in message.subject
    assert f"http://127.0.0.1:8000/tenants/{CONTOSO}/applications/{ROOMS}/" in message.body
    assert message.body.startswith("Bob Berg asks to revoke these permissions in Contoso:")

    with pytest.raises(PermissionDenied):
        revoke_request_approve(revoke=revoke, actor=bob)
    revoke = revoke_request_approve(revoke=revoke, actor=alice)
    assert (revoke.status, revoke.decided_by) == (RevokeRequest.Status.QUEUED, alice)
    # A second click on approve changes nothing.
    assert revoke_request_approve(revoke=revoke, actor=alice).status == RevokeRequest.Status.QUEUED
    assert AuditEvent.objects.filter(action=AuditEvent.Action.REVOKE_APPROVED).count() == 1
    assert (
        revoke_request_execute(revoke_id=revoke.pk, client=graph_for(CONTOSO)).status == "succeeded"
    )


def test_an_admin_denies_a_request_and_a_reader_cancels_their_own(synced, alice, bob):
    contoso, _ = synced
    denied, _ = request_revoke(contoso, ROOMS, "Mail.Read", actor=bob, role=Role.READER)
    assert revoke_request_deny(revoke=denied, actor=alice).status == RevokeRequest.Status.DENIED
    assert revoke_request_approve(revoke=denied, actor=alice).status == RevokeRequest.Status.DENIED

    # The grant is free for a new request once the previous one is closed.
    again, created = request_revoke(contoso, ROOMS, "Mail.Read", actor=bob, role=Role.READER)
    assert created and again.pk != denied.pk
    assert revoke_request_cancel(revoke=again, actor=bob).status == RevokeRequest.Status.CANCELLED
    assert list(
        AuditEvent.objects.filter(
            tenant=contoso, action__in=["revoke.denied", "revoke.cancelled"]
        ).values_list("action", "actor")
    ) == [("revoke.cancelled", bob.pk), ("revoke.denied", alice.pk)]


def test_a_double_click_makes_one_request(synced, alice):
    contoso, _ = synced
    first, created = request_revoke(contoso, ROOMS, "Mail.Read", actor=alice)
    second, created_again = request_revoke(contoso, ROOMS, "Mail.Read", actor=alice)
    assert (created, created_again) == (True, False)
    assert first.pk == second.pk and RevokeRequest.objects.count() == 1


def test_a_request_for_a_grant_that_does_not_exist_is_refused(synced):
    contoso, _ = synced
    with pytest.raises(ValueError, match="does not hold Files.Read.All"):
        request_revoke(contoso, ROOMS, "Files.Read.All")


def test_twenty_simultaneous_clicks_make_one_request_and_one_delete(synced, alice, emu, graph_for):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises every write, so it cannot show a race; CI runs PostgreSQL")
    contoso, _ = synced
    rooms = sp(contoso, ROOMS)
    barrier = threading.Barrier(20)
    results: list[tuple[int, bool]] = []
    errors: list[BaseException] = []

    def click() -> None:
        try:
            barrier.wait()
            revoke, created = revoke_request_create(
                tenant=contoso,
                client=rooms,
                slot=GrantSlot(GRAPH, "application", "Mail.Read", "admin"),
                actor=alice,
                role=Role.ADMIN,
            )
            results.append((revoke.pk, created))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=click) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len({pk for pk, _ in results}) == 1 and sum(created for _, created in results) == 1
    assert RevokeRequest.objects.count() == 1
    pk = results[0][0]
    emu.reset_counters()
    assert revoke_request_execute(revoke_id=pk, client=graph_for(CONTOSO)).status == "succeeded"
    assert revoke_request_execute(revoke_id=pk, client=graph_for(CONTOSO)).status == "succeeded"
    assert emu.counters()["requests"][DELETE_ASSIGNMENT] == 1


# -- a worker lost mid-way ----------------------------------------------------------------


class DiesAfterDelete(GraphClient):
    """A worker killed right after Graph carried out its DELETE."""

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = super().request(method, path, **kwargs)
        if method == "DELETE":
            raise SystemExit("worker killed")
        return response


def test_a_request_whose_worker_died_after_the_delete_is_resumed_and_ends_right(synced, emu, sleep):
    contoso, _ = synced
    rooms = sp(contoso, ROOMS)
    revoke, _ = request_revoke(contoso, ROOMS, "Mail.Read")
    emu.reset_counters()

    with pytest.raises(SystemExit):
        revoke_request_execute(
            revoke_id=revoke.pk, client=DiesAfterDelete(tenant_id=CONTOSO, sleep=sleep)
        )

    revoke.refresh_from_db()
    assert revoke.status == RevokeRequest.Status.RUNNING
    assert [entry["appRoleId"] for entry in revoke.removed] == [MAIL_READ]
    # While the worker might still be alive, nobody else takes the request over...
    assert revoke_request_execute(revoke_id=revoke.pk).status == RevokeRequest.Status.RUNNING
    # ...once it is older than the task's hard time limit, the next run resumes it.
    RevokeRequest.objects.filter(pk=revoke.pk).update(
        started_at=timezone.now() - timedelta(seconds=REVOKE_TIME_LIMIT + 1)
    )
    revoke = revoke_request_execute(
        revoke_id=revoke.pk, client=GraphClient(tenant_id=CONTOSO, sleep=sleep)
    )

    assert revoke.status == RevokeRequest.Status.SUCCEEDED, revoke.error
    assert emu.counters()["requests"][DELETE_ASSIGNMENT] == 1
    assert MAIL_READ not in {
        a["appRoleId"] for a in graph_assignments(emu, CONTOSO, str(rooms.object_id))
    }
    assert len(revoke.removed) == 1  # the undo puts back exactly one assignment


# -- bulk --------------------------------------------------------------------------------


def test_bulk_lists_every_unused_and_unexplained_grant_but_the_portals_own(synced):
    contoso, _ = synced
    report_candidates = {
        (str(app.app_id), grant.permission, grant.kind, grant.consent)
        for app in tenant_report(tenant=contoso).applications
        if str(app.app_id) != PORTAL_APP
        for grant in app.grants
        if grant.verdict in ("unused", "unexplained")
    }

    candidates = revoke_bulk_candidates(tenant=contoso)

    assert {
        (str(c.client.app_id), c.slot.value, c.slot.kind, c.slot.consent) for c in candidates
    } == report_candidates
    assert (
        "3c1a9d6e-5b2f-4e8a-9c7d-1f0e2b3a4c5d",
        "Mail.Read",
        "application",
        "admin",
    ) in report_candidates
    assert all(str(c.client.app_id) != PORTAL_APP for c in candidates)
    legacy = revoke_bulk_candidates(tenant=contoso, client=sp(contoso, LEGACY))
    assert [(c.slot.value, c.verdict) for c in legacy] == [
        ("Directory.ReadWrite.All", "unexplained")
    ]


def test_bulk_creates_one_request_per_candidate_once(synced, alice, graph_for, emu):
    contoso, _ = synced
    rooms = sp(contoso, ROOMS)
    candidates = revoke_bulk_candidates(tenant=contoso, client=rooms)
    assert candidates
    shown = [(str(c.client.object_id), c.slot) for c in candidates]

    revokes = revoke_bulk_create(
        tenant=contoso, actor=alice, role=Role.ADMIN, shown=shown, client=rooms
    ).requests
    again = revoke_bulk_create(
        tenant=contoso, actor=alice, role=Role.ADMIN, shown=shown, client=rooms
    ).requests

    assert [r.pk for r in revokes] == [r.pk for r in again]
    assert [(r.value, r.kind, r.consent, r.status) for r in revokes] == [
        (c.slot.value, c.slot.kind, c.slot.consent, "queued") for c in candidates
    ]
    for revoke in revokes:
        assert (
            revoke_request_execute(revoke_id=revoke.pk, client=graph_for(CONTOSO)).status
            == "succeeded"
        )
    assert emu.counters()["requests"][DELETE_ASSIGNMENT] == len(candidates)


def test_a_readers_bulk_request_sends_the_admins_one_mail(synced, alice, bob, mailed_at_once):
    contoso, _ = synced
    shown = [(str(c.client.object_id), c.slot) for c in revoke_bulk_candidates(tenant=contoso)]
    revokes = revoke_bulk_create(tenant=contoso, actor=bob, role=Role.READER, shown=shown).requests
    assert len(revokes) > 1 and {r.status for r in revokes} == {"pending_approval"}
    [message] = mail.outbox
    assert f"{len(revokes)} revoke requests" in message.subject


# -- re-grants ---------------------------------------------------------------------------


def test_a_revoked_permission_granted_again_is_marked_at_the_next_sync(
    synced, graph_for, client_for
):
    contoso, _ = synced
    rooms = sp(contoso, ROOMS)
    mail_read = grant_row(contoso, ROOMS, "Mail.Read")
    revoke, _ = request_revoke(contoso, ROOMS, "Mail.Read")
    revoke_request_execute(revoke_id=revoke.pk, client=graph_for(CONTOSO))
    sync(contoso, client_for(CONTOSO))
    revoke.refresh_from_db()
    assert revoke.regranted_in_run is None

    # An admin consents to the app again, which grants every permission it asks for.
    client_for(CONTOSO).request(
        "POST",
        f"/servicePrincipals/{mail_read.resource_object_id}/appRoleAssignedTo",
        json={
            "principalId": str(rooms.object_id),
            "resourceId": str(mail_read.resource_object_id),
            "appRoleId": MAIL_READ,
        },
    )
    run = sync(contoso, client_for(CONTOSO))

    revoke.refresh_from_db()
    assert revoke.regranted_in_run_id == run.pk
    event = AuditEvent.objects.get(action=AuditEvent.Action.REGRANTED)
    assert event.details == {"revoke_request": revoke.pk, "sync_run": run.pk}
    sync(contoso, client_for(CONTOSO))  # marked once, not at every sync
    assert AuditEvent.objects.filter(action=AuditEvent.Action.REGRANTED).count() == 1


def test_a_delegated_scope_consented_again_in_place_is_a_regrant(
    synced, graph_for, client_for, settings
):
    contoso, _ = synced
    # A delegated scope counts as granted again once the revoke's lag window is over
    # (here at once; tests/tenants/test_revokes_truth.py has the window itself).
    settings.REVOKE_LAG_SECONDS = 0
    row = grant_row(contoso, ASKCODY, "User.Read.All", kind="delegated")
    revoke, _ = request_revoke(contoso, ASKCODY, "User.Read.All", kind="delegated")
    revoke_request_execute(revoke_id=revoke.pk, client=graph_for(CONTOSO))
    # Consent again before any sync saw the revoke: the grant row never went away.
    client_for(CONTOSO).request(
        "PATCH",
        f"/oauth2PermissionGrants/{row.graph_object_id}",
        json={"scope": ASKCODY_ADMIN_SCOPE},
    )

    run = sync(contoso, client_for(CONTOSO))

    revoke.refresh_from_db()
    assert revoke.regranted_in_run == run


# -- the Celery task -----------------------------------------------------------------------


@pytest.fixture
def patient_graph(monkeypatch, sleep):
    """The task's own GraphClient, with waits recorded instead of spent."""
    monkeypatch.setattr("tenants.revokes.execution.GraphClient", partial(GraphClient, sleep=sleep))


def test_the_task_runs_the_request_and_queues_a_sync_that_shows_the_change(synced, patient_graph):
    contoso, _ = synced
    revoke, _ = request_revoke(contoso, ROOMS, "Mail.Read")

    assert execute_revoke.apply(args=(revoke.pk,)).get() == "succeeded"

    assert SyncRun.objects.filter(tenant=contoso, status=SyncRun.Status.QUEUED).exists()


def test_the_task_retries_an_outage_and_finally_fails_the_request(synced, emu, patient_graph):
    contoso, _ = synced
    emu.set_faults([{"path": "appRoleAssignedTo", "method": "DELETE", "status": 503}])
    revoke, _ = request_revoke(contoso, ROOMS, "Mail.Read")

    # Eagerly, Celery runs each retry at once instead of after its countdown.
    assert execute_revoke.apply(args=(revoke.pk,)).get() == "failed"

    revoke.refresh_from_db()
    assert revoke.status == RevokeRequest.Status.FAILED
    assert revoke.error.startswith("Gave up after repeated errors: DELETE ")
    deletes = [c for c in revoke.graph_calls if c["method"] == "DELETE"]
    assert len(deletes) == REVOKE_MAX_RETRIES + 1 and {c["status"] for c in deletes} == {503}
    assert AuditEvent.objects.filter(action=AuditEvent.Action.REVOKE_FAILED).count() == 1


def test_requests_queued_whose_message_was_lost_are_sent_again(
    synced, monkeypatch, django_capture_on_commit_callbacks
):
    # A broker restarted without persistence loses the message of a queued request.
    contoso, _ = synced
    queued: list[int] = []
    monkeypatch.setattr(execute_revoke, "delay", queued.append)
    lost, _ = request_revoke(contoso, ROOMS, "Mail.Read")
    waiting, _ = request_revoke(contoso, LEGACY, "Directory.ReadWrite.All")
    retried, _ = request_revoke(contoso, ASKCODY, "Calendars.Read")
    queued.clear()
    long_ago = timezone.now() - timedelta(seconds=REVOKE_TIME_LIMIT + 1)
    RevokeRequest.objects.filter(pk=lost.pk).update(decided_at=long_ago)
    # Approved long ago, but its last attempt is recent: its retry is on its way.
    RevokeRequest.objects.filter(pk=retried.pk).update(
        decided_at=long_ago, started_at=timezone.now()
    )

    # Queued a moment ago (``waiting``) or tried a moment ago (``retried``): not sent again.
    with django_capture_on_commit_callbacks(execute=True):
        assert revoke_requests_resume_abandoned() == 1
    assert queued == [lost.pk]


def test_requests_abandoned_by_a_dead_worker_are_queued_again(
    synced, monkeypatch, django_capture_on_commit_callbacks
):
    contoso, _ = synced
    queued: list[int] = []
    monkeypatch.setattr(execute_revoke, "delay", queued.append)
    stuck, _ = request_revoke(contoso, ROOMS, "Mail.Read")
    alive, _ = request_revoke(contoso, LEGACY, "Directory.ReadWrite.All")
    queued.clear()
    long_ago = timezone.now() - timedelta(seconds=REVOKE_TIME_LIMIT + 1)
    RevokeRequest.objects.filter(pk=stuck.pk).update(status="running", started_at=long_ago)
    RevokeRequest.objects.filter(pk=alive.pk).update(status="running", started_at=timezone.now())

    with django_capture_on_commit_callbacks(execute=True):
        assert revoke_requests_resume_abandoned() == 1
    assert queued == [stuck.pk]
