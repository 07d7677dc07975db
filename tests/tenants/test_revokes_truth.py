"""Revokes and restores on Graph as it really behaves (issue 11, section 3), driven over
HTTPS against the emulator's switches with the real GraphClient and MSAL: replication lag
(the emulator's clock moves when the portal waits, instead of time), an assignment
removed outside the portal, Graph's "already exists" answers, strict $filter rules.

Each test prints a FIGURE line (requests, emulated seconds waited, outcome) for the
closing note; run with -s to see them."""

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from tenants.access import Role
from tenants.graph import GraphClient, GraphError
from tenants.models import Grant, RevokeRequest, ServicePrincipal, SyncRun
from tenants.revokes import revoke_request_create, revoke_request_execute, revoke_restore
from tenants.slots import GrantSlot
from tests.helpers import demo_catalog, sync
from tests.ids import CONTOSO

pytestmark = pytest.mark.django_db(transaction=True)

GRAPH = "00000003-0000-0000-c000-000000000000"
ROOMS = "3c1a9d6e-5b2f-4e8a-9c7d-1f0e2b3a4c5d"
ASKCODY = "6f4e2a1b-8c3d-4e5f-a6b7-c8d9e0f1a2b3"
MAIL_READ_ROLE = "810c84a8-4a9e-49e6-bf7d-12d183f40d01"
ASSIGNMENT_BY_ID = r"/appRoleAssignedTo/[^/]+$"
GRANT_BY_ID = r"/oauth2PermissionGrants/[^/]+$"
Status = RevokeRequest.Status


class EmulatorSleep:
    """Stands in for time.sleep: the emulator's clock moves by the wait, so replication
    lags pass as they would, at once."""

    def __init__(self, emu: Any) -> None:
        self.emu = emu
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.emu.advance_clock(seconds)


@pytest.fixture
def waiting(emu) -> EmulatorSleep:
    return EmulatorSleep(emu)


@pytest.fixture
def graph(waiting):
    """The portal's GraphClient for Contoso, waiting on the emulator's clock."""
    return GraphClient(tenant_id=CONTOSO, sleep=waiting)


@pytest.fixture
def synced_contoso(emu, contoso, client_for):
    """Contoso alone synced from the emulator, with the demo's catalog and manifests."""
    demo_catalog()
    sync(contoso, client_for(CONTOSO))
    return contoso


def sp(tenant, app_id: str) -> ServicePrincipal:
    return ServicePrincipal.objects.get(tenant=tenant, app_id=app_id)


def grant_row(tenant, app_id: str, value: str, kind: str = "application") -> Grant:
    return Grant.objects.get(
        tenant=tenant,
        client__app_id=app_id,
        value=value,
        kind=kind,
        consent="admin",
        removed_in_run__isnull=True,
    )


def revoke_of(tenant, app_id: str, value: str, *, kind="application", consent="admin"):
    revoke, created = revoke_request_create(
        tenant=tenant,
        client=sp(tenant, app_id),
        slot=GrantSlot(GRAPH, kind, value, consent),
        actor=None,
        role=Role.ADMIN,
        queue=False,
    )
    assert created and revoke.status == Status.QUEUED
    return revoke


def calls(revoke: RevokeRequest) -> list[tuple[str, int]]:
    revoke.refresh_from_db()
    return [(call["method"], call["status"]) for call in revoke.graph_calls]


def figure(name: str, revoke: RevokeRequest, waiting: EmulatorSleep, **extra: Any) -> None:
    revoke.refresh_from_db()
    details = " ".join(f"{key}={value}" for key, value in extra.items())
    print(
        f"FIGURE {name}: {len(revoke.graph_calls)} Graph requests, "
        f"{sum(waiting.waits):.0f} s waited (emulated), {revoke.status} {details}".rstrip()
    )


def role_ids(emu, client: ServicePrincipal) -> set[str]:
    return {
        a["appRoleId"]
        for a in emu.state(CONTOSO)["appRoleAssignments"]
        if a["principalId"] == str(client.object_id)
    }


def admin_grant(emu, client: ServicePrincipal) -> dict[str, Any]:
    return next(
        g
        for g in emu.state(CONTOSO)["oauth2PermissionGrants"]
        if g["clientId"] == str(client.object_id) and g["consentType"] == "AllPrincipals"
    )


# -- a revoke under replication lag ---------------------------------------------------------


def test_a_revoke_under_replication_lag_ends_succeeded_with_exactly_one_delete(
    synced_contoso, emu, graph, waiting
):
    contoso = synced_contoso
    emu.set_behaviour(replication_lag={"collections": 60, "by_id": 5})
    revoke = revoke_of(contoso, ROOMS, "Mail.Read")
    emu.reset_counters()

    revoke = revoke_request_execute(revoke_id=revoke.pk, client=graph)

    assert revoke.status == Status.SUCCEEDED, revoke.error
    assert emu.requests_to(ASSIGNMENT_BY_ID, "DELETE") == 1
    # Read by id, delete, then read by id until the replica stops showing it (5 s of lag:
    # waits of 1, 2 and 4 s), never a listing.
    assert calls(revoke) == [
        ("GET", 200),
        ("DELETE", 204),
        ("GET", 200),
        ("GET", 200),
        ("GET", 200),
        ("GET", 404),
    ]
    assert waiting.waits == [1.0, 2.0, 4.0]
    assert emu.requests_to(r"/appRoleAssignments") == 0
    assert MAIL_READ_ROLE not in role_ids(emu, sp(contoso, ROOMS))
    figure("revoke under lag (collections 60 s, by id 5 s)", revoke, waiting, deletes=1)


def test_verification_that_runs_out_of_patience_is_retried_without_a_second_write(
    synced_contoso, emu, graph, waiting, settings
):
    contoso = synced_contoso
    settings.REVOKE_VERIFY_SECONDS = 10
    emu.set_behaviour(replication_lag={"collections": 120, "by_id": 60})
    revoke = revoke_of(contoso, ROOMS, "Mail.Read")
    emu.reset_counters()

    with pytest.raises(GraphError) as raised:
        revoke_request_execute(revoke_id=revoke.pk, client=graph)

    assert raised.value.retryable
    revoke.refresh_from_db()
    assert revoke.status == Status.QUEUED
    assert revoke.error.startswith(
        "Graph still shows Mail.Read for Teams Rooms monitoring platform"
    )
    assert "waited 7 s for replication" in revoke.error
    # The retry (the task's, later) only verifies: the DELETE is on record.
    emu.advance_clock(60)
    revoke = revoke_request_execute(revoke_id=revoke.pk, client=graph)

    assert revoke.status == Status.SUCCEEDED, revoke.error
    assert emu.requests_to(ASSIGNMENT_BY_ID, "DELETE") == 1
    assert [method for method, _ in calls(revoke)].count("DELETE") == 1
    figure("revoke whose verification outlasted its patience, then retried", revoke, waiting)


def test_a_sync_inside_the_lag_window_marks_nothing_granted_again(
    synced_contoso, emu, graph, waiting, client_for
):
    contoso = synced_contoso
    emu.set_behaviour(replication_lag={"collections": 60, "by_id": 2})
    rooms = revoke_of(contoso, ROOMS, "Mail.Read")
    askcody = revoke_of(contoso, ASKCODY, "User.Read.All", kind="delegated")
    for revoke in (rooms, askcody):
        assert revoke_request_execute(revoke_id=revoke.pk, client=graph).status == "succeeded"

    # Listings still show both grants as they were (60 s of lag): a sync now reads them.
    stale = sync(contoso, client_for(CONTOSO))

    assert grant_row(contoso, ROOMS, "Mail.Read").first_seen_run_id < stale.pk
    assert grant_row(contoso, ASKCODY, "User.Read.All", kind="delegated")
    for revoke in (rooms, askcody):
        revoke.refresh_from_db()
        assert revoke.regranted_in_run is None
    print(f"FIGURE sync inside the lag window: {stale.graph_requests} requests, 0 marked again")

    # Once the listings caught up, a sync sees both gone, and nothing is granted again.
    emu.advance_clock(61)
    caught_up = sync(contoso, client_for(CONTOSO))
    assert caught_up.grants_removed == 2
    for revoke in (rooms, askcody):
        revoke.refresh_from_db()
        assert revoke.regranted_in_run is None


def test_granted_again_means_a_new_assignment_id_or_the_scope_after_the_lag_window(
    synced_contoso, emu, graph, client_for
):
    contoso = synced_contoso
    rooms_sp, askcody_sp = sp(contoso, ROOMS), sp(contoso, ASKCODY)
    mail_read = grant_row(contoso, ROOMS, "Mail.Read")
    scope = admin_grant(emu, askcody_sp)["scope"]
    rooms = revoke_of(contoso, ROOMS, "Mail.Read")
    askcody = revoke_of(contoso, ASKCODY, "User.Read.All", kind="delegated")
    for revoke in (rooms, askcody):
        assert revoke_request_execute(revoke_id=revoke.pk, client=graph).status == "succeeded"
    # An admin consents to both apps again right away, before any sync.
    other_admin = client_for(CONTOSO)
    other_admin.request(
        "POST",
        f"/servicePrincipals/{mail_read.resource_object_id}/appRoleAssignedTo",
        json={
            "principalId": str(rooms_sp.object_id),
            "resourceId": str(mail_read.resource_object_id),
            "appRoleId": MAIL_READ_ROLE,
        },
    )
    other_admin.request(
        "PATCH",
        f"/oauth2PermissionGrants/{admin_grant(emu, askcody_sp)['id']}",
        json={"scope": scope},
    )

    inside = sync(contoso, client_for(CONTOSO))

    rooms.refresh_from_db()
    askcody.refresh_from_db()
    # A new assignment id cannot be a stale read: granted again at once.
    assert rooms.regranted_in_run == inside
    # The delegated grant keeps its id: inside the lag window, its scope proves nothing.
    assert askcody.regranted_in_run is None

    RevokeRequest.objects.filter(pk=askcody.pk).update(
        finished_at=timezone.now() - timedelta(minutes=6)
    )
    after = sync(contoso, client_for(CONTOSO))
    askcody.refresh_from_db()
    assert askcody.regranted_in_run == after


# -- what Graph cannot find ------------------------------------------------------------------


def test_an_assignment_graph_cannot_find_fails_the_revoke_with_the_reason(
    synced_contoso, emu, graph, waiting, client_for
):
    contoso = synced_contoso
    mail_read = grant_row(contoso, ROOMS, "Mail.Read")
    # Someone removes it outside the portal after the last sync.
    client_for(CONTOSO).request(
        "DELETE",
        f"/servicePrincipals/{mail_read.resource_object_id}/appRoleAssignedTo/{mail_read.graph_object_id}",
    )
    revoke = revoke_of(contoso, ROOMS, "Mail.Read")
    emu.reset_counters()

    with pytest.raises(GraphError):
        revoke_request_execute(revoke_id=revoke.pk, client=graph)

    revoke.refresh_from_db()
    assert revoke.status == Status.FAILED
    assert revoke.error == (
        f"Graph no longer has assignment {mail_read.graph_object_id} (Mail.Read of Teams Rooms "
        "monitoring platform): it may have been removed outside the portal; the next sync will tell"
    )
    assert calls(revoke) == [("GET", 404)]
    assert emu.requests_to(ASSIGNMENT_BY_ID, "DELETE") == 0 and revoke.removed == []
    figure("assignment removed outside the portal", revoke, waiting)


def test_a_delegated_grant_graph_cannot_find_fails_the_revoke_with_the_reason(
    synced_contoso, emu, graph, client_for
):
    contoso = synced_contoso
    row = grant_row(contoso, ASKCODY, "User.Read.All", kind="delegated")
    client_for(CONTOSO).request("DELETE", f"/oauth2PermissionGrants/{row.graph_object_id}")
    revoke = revoke_of(contoso, ASKCODY, "User.Read.All", kind="delegated")

    with pytest.raises(GraphError):
        revoke_request_execute(revoke_id=revoke.pk, client=graph)

    revoke.refresh_from_db()
    assert revoke.status == Status.FAILED
    assert revoke.error.startswith(f"Graph no longer has delegated grant {row.graph_object_id}")
    assert [method for method, _ in calls(revoke)] == ["GET"]


# -- restores ----------------------------------------------------------------------------------


def test_a_restore_under_lag_posts_once_and_waits_until_reads_by_id_show_it(
    synced_contoso, emu, graph, waiting
):
    contoso = synced_contoso
    revoke = revoke_of(contoso, ROOMS, "Mail.Read")
    revoke = revoke_request_execute(revoke_id=revoke.pk, client=graph)
    emu.set_behaviour(replication_lag={"collections": 60, "by_id": 3})
    restore = revoke_restore(revoke=revoke, actor=None)
    emu.reset_counters()
    waiting.waits.clear()

    restore = revoke_request_execute(revoke_id=restore.pk, client=graph)

    assert restore.status == Status.SUCCEEDED, restore.error
    assert emu.requests_to(r"/appRoleAssignedTo$", "POST") == 1
    # The new assignment is invisible by id for 3 s: 404, 404 (after 1 s), 200 (after 3).
    assert calls(restore) == [("POST", 201), ("GET", 404), ("GET", 404), ("GET", 200)]
    assert MAIL_READ_ROLE in role_ids(emu, sp(contoso, ROOMS))
    assert restore.removed[0]["id"] != revoke.removed[0]["id"]  # Graph's new assignment
    figure("restore under lag (by id 3 s)", restore, waiting, posts=1)


def test_a_delegated_restore_under_lag_puts_the_scope_back_in_one_patch(
    synced_contoso, emu, graph, waiting
):
    contoso = synced_contoso
    askcody = sp(contoso, ASKCODY)
    before = admin_grant(emu, askcody)["scope"].split()
    emu.set_behaviour(replication_lag={"collections": 60, "by_id": 3})
    revoke = revoke_of(contoso, ASKCODY, "User.Read.All", kind="delegated")
    revoke = revoke_request_execute(revoke_id=revoke.pk, client=graph)
    restore = revoke_restore(revoke=revoke, actor=None)
    waiting.waits.clear()

    restore = revoke_request_execute(revoke_id=restore.pk, client=graph)

    assert restore.status == Status.SUCCEEDED, restore.error
    assert [method for method, _ in calls(restore)].count("PATCH") == 1
    assert sorted(admin_grant(emu, askcody)["scope"].split()) == sorted(before)
    figure("delegated restore under lag (by id 3 s)", restore, waiting, patches=1)


def test_graphs_already_exists_answers_mean_the_restore_succeeded(
    synced_contoso, emu, graph, client_for
):
    contoso = synced_contoso
    emu.set_behaviour(strict_filters=True)  # Graph's own $filter rules on assignments
    rooms = sp(contoso, ROOMS)
    mail_read = grant_row(contoso, ROOMS, "Mail.Read")
    revoke = revoke_request_execute(
        revoke_id=revoke_of(contoso, ROOMS, "Mail.Read").pk, client=graph
    )
    # Another admin assigns it again before the undo runs.
    again = client_for(CONTOSO).request(
        "POST",
        f"/servicePrincipals/{mail_read.resource_object_id}/appRoleAssignedTo",
        json={
            "principalId": str(rooms.object_id),
            "resourceId": str(mail_read.resource_object_id),
            "appRoleId": MAIL_READ_ROLE,
        },
    )

    restore = revoke_request_execute(
        revoke_id=revoke_restore(revoke=revoke, actor=None).pk, client=graph
    )

    assert restore.status == Status.SUCCEEDED, restore.error
    assert calls(restore) == [("POST", 400), ("GET", 200), ("GET", 200)]
    listing = restore.graph_calls[1]["path"]
    assert listing == (
        f"/servicePrincipals/{rooms.object_id}/appRoleAssignments"
        f"?$filter=resourceId eq {mail_read.resource_object_id}&$top=999"
    )
    assert restore.removed[0]["id"] == again.json()["id"]


def test_a_409_on_recreating_a_users_grant_means_it_is_there(
    synced_contoso, emu, graph, client_for
):
    contoso = synced_contoso
    askcody = sp(contoso, ASKCODY)
    revoke = revoke_of(contoso, ASKCODY, "Calendars.Read", kind="delegated", consent="user")
    revoke = revoke_request_execute(revoke_id=revoke.pk, client=graph)
    assert revoke.status == Status.SUCCEEDED and len(revoke.removed) == 3
    # One of the three users consents again herself before the undo runs.
    first = revoke.removed[0]
    client_for(CONTOSO).request(
        "POST",
        "/oauth2PermissionGrants",
        json={
            "clientId": str(askcody.object_id),
            "consentType": "Principal",
            "principalId": first["principalId"],
            "resourceId": first["resourceId"],
            "scope": "Calendars.Read",
        },
    )

    restore = revoke_request_execute(
        revoke_id=revoke_restore(revoke=revoke, actor=None).pk, client=graph
    )

    assert restore.status == Status.SUCCEEDED, restore.error
    posts = [call["status"] for call in restore.graph_calls if call["method"] == "POST"]
    assert sorted(posts) == [201, 201, 409]
    users = [
        g
        for g in emu.state(CONTOSO)["oauth2PermissionGrants"]
        if g["clientId"] == str(askcody.object_id) and g["consentType"] == "Principal"
    ]
    assert sorted(g["principalId"] for g in users) == sorted(
        e["principalId"] for e in revoke.removed
    )
    assert all(g["scope"] == "Calendars.Read" for g in users)


# -- two revokes of one grant's scopes ---------------------------------------------------------


def test_a_second_revoke_on_the_same_grant_never_puts_the_first_scope_back(
    synced_contoso, emu, graph, settings
):
    """Two workers at once: the second reads the grant by id while the replica still shows
    the first one's scope; the portal's own record corrects the read."""
    contoso = synced_contoso
    askcody = sp(contoso, ASKCODY)
    emu.set_behaviour(replication_lag={"by_id": 30})
    first = revoke_of(contoso, ASKCODY, "User.Read.All", kind="delegated")
    second = revoke_of(contoso, ASKCODY, "Group.Read.All", kind="delegated")
    settings.REVOKE_VERIFY_SECONDS = 0  # the first stops before verifying, as if still busy
    with pytest.raises(GraphError):
        revoke_request_execute(revoke_id=first.pk, client=graph)
    settings.REVOKE_VERIFY_SECONDS = 300

    second = revoke_request_execute(revoke_id=second.pk, client=graph)
    first = revoke_request_execute(revoke_id=first.pk, client=graph)

    assert (first.status, second.status) == ("succeeded", "succeeded")
    scopes = admin_grant(emu, askcody)["scope"].split()
    assert "User.Read.All" not in scopes and "Group.Read.All" not in scopes
    assert "User.Read" in scopes
    [patch] = [call for call in second.graph_calls if call["method"] == "PATCH"]
    assert "User.Read.All" not in patch["body"]["scope"].split()


# -- the sync after a revoke ------------------------------------------------------------------


def test_the_sync_queued_after_a_revoke_waits_out_the_lag(synced_contoso, monkeypatch, waiting):
    contoso = synced_contoso
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr("tenants.tasks.sync_tenant.apply_async", lambda *a, **kw: sent.append(kw))
    monkeypatch.setattr(
        "tenants.revokes.execution.GraphClient",
        lambda tenant_id, **options: GraphClient(tenant_id=tenant_id, sleep=waiting, **options),
    )
    from tenants.tasks import execute_revoke

    revoke = revoke_of(contoso, ROOMS, "Mail.Read")
    assert execute_revoke.apply(args=(revoke.pk,)).get() == "succeeded"

    queued = SyncRun.objects.get(tenant=contoso, status=SyncRun.Status.QUEUED)
    assert sent == [{"args": (queued.pk,), "countdown": 300}]
