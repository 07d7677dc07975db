"""Revoking from the pages (tenants.views.revokes): the buttons on an application's grants,
live status with 286 at the end, approvals, undo, manual steps, bulk revokes, the requests
page. alice is an admin and bob a reader of Contoso."""

import re
import uuid
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from permissions.models import MICROSOFT_GRAPH_APP_ID
from portal.models import User
from tenants.models import RevokeRequest, ServicePrincipal, SyncRun, Tenant
from tenants.portal_app import WRITE_PERMISSIONS
from tenants.revokes import revoke_bulk_candidates
from tenants.tasks import notify_revoke_requests
from tests.factories import (
    ApplicationFactory,
    FeatureFactory,
    GrantFactory,
    RequirementFactory,
    ServicePrincipalFactory,
    SyncRunFactory,
    TenantFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
PORTAL_APP_ID = "6a9f3c1e-0b7d-4e55-8a21-3c4d5e6f7a8b"
Status = RevokeRequest.Status


@pytest.fixture
def contoso() -> Tenant:
    tenant = TenantFactory(name="Contoso")
    run = SyncRunFactory(tenant=tenant, status=SyncRun.Status.SUCCEEDED)
    Tenant.objects.filter(pk=tenant.pk).update(last_good_sync=run)
    tenant.refresh_from_db()
    return tenant


@pytest.fixture
def writable(contoso, settings) -> None:
    """The portal's own app holds both write rights in Contoso: revokes run in Graph."""
    settings.PORTAL_CLIENT_ID = PORTAL_APP_ID
    portal = ServicePrincipalFactory(tenant=contoso, app_id=PORTAL_APP_ID, display_name="Portal")
    for value in WRITE_PERMISSIONS:
        GrantFactory(client=portal, value=value, first_seen_run=contoso.last_good_sync)


@pytest.fixture
def queued(monkeypatch) -> list[int]:
    """The revoke tasks sent, by request id (no worker runs here)."""
    sent: list[int] = []
    monkeypatch.setattr("tenants.tasks.execute_revoke.delay", sent.append)
    return sent


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def alice(contoso):
    return UserFactory(
        username="alice",
        first_name="Alice",
        email="alice@contoso.example",
        entra_tenant_id=str(contoso.tenant_id),
        entra_roles=["Portal.Admin"],
    )


@pytest.fixture
def bob(contoso):
    return UserFactory(
        username="bob",
        first_name="Bob",
        email="bob@contoso.example",
        entra_tenant_id=str(contoso.tenant_id),
        entra_roles=["Portal.Reader"],
    )


@pytest.fixture
def admin(alice) -> Client:
    return signed_in(alice)


@pytest.fixture
def reader(bob) -> Client:
    return signed_in(bob)


@pytest.fixture
def rooms(contoso) -> ServicePrincipal:
    """A rooms app: Rooms.Read.All needed (rooms, on), Place.Read.All unused (smart
    buildings, off), Sites.Read.All unexplained."""
    application = ApplicationFactory(name="Rooms")
    on = FeatureFactory(application=application, key="rooms", name="Room monitoring")
    off = FeatureFactory(
        application=application, key="smart", name="Smart buildings", default_enabled=False
    )
    RequirementFactory(feature=on, permission_value="Rooms.Read.All", reason="Lists the rooms.")
    RequirementFactory(feature=off, permission_value="Place.Read.All", reason="Finds places.")
    sp = ServicePrincipalFactory(tenant=contoso, app_id=application.app_id, display_name="Rooms")
    for value in ("Rooms.Read.All", "Place.Read.All", "Sites.Read.All"):
        GrantFactory(client=sp, value=value, first_seen_run=contoso.last_good_sync)
    return sp


def page_url(sp: ServicePrincipal) -> str:
    return reverse("tenants:application", args=[sp.tenant.tenant_id, sp.app_id])


def create_url(sp: ServicePrincipal) -> str:
    return reverse("tenants:revoke-create", args=[sp.tenant.tenant_id, sp.app_id])


def url(name: str, revoke: RevokeRequest) -> str:
    return reverse(name, args=[revoke.tenant.tenant_id, revoke.pk])


def grant_fields(value: str, **extra: str) -> dict[str, str]:
    return {
        "resource_app_id": MICROSOFT_GRAPH_APP_ID,
        "kind": "application",
        "value": value,
        "consent": "admin",
        **extra,
    }


def make_request(sp: ServicePrincipal, value: str, status: str, **fields: Any) -> RevokeRequest:
    return RevokeRequest.objects.create(
        tenant=sp.tenant,
        client=sp,
        resource_app_id=MICROSOFT_GRAPH_APP_ID,
        kind="application",
        value=value,
        consent="admin",
        status=status,
        **fields,
    )


def removed_entry(sp: ServicePrincipal) -> list[dict[str, str]]:
    return [
        {
            "type": "appRoleAssignment",
            "id": "assignment-x",
            "principalId": str(sp.object_id),
            "resourceId": str(uuid.uuid4()),
            "appRoleId": str(uuid.uuid4()),
        }
    ]


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


# --- the buttons on the application page -------------------------------------------------


def test_an_admin_sees_revoke_on_unused_and_unexplained_grants_and_revoke_with_dots_on_needed(
    admin, rooms, writable
):
    page = text(admin.get(page_url(rooms)))

    assert page.count(">Revoke</button>") == 2
    assert page.count(">Revoke&hellip;</button>") == 1
    assert "Request revoke" not in page
    assert "may only read" not in page


def test_a_reader_sees_request_revoke_instead(reader, rooms, writable):
    page = text(reader.get(page_url(rooms)))

    assert page.count(">Request revoke</button>") == 2
    assert ">Revoke</button>" not in page


def test_an_admins_click_queues_the_revoke_and_answers_with_its_polling_status(
    admin, rooms, writable, queued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post(create_url(rooms), grant_fields("Place.Read.All"), **HTMX)

    revoke = RevokeRequest.objects.get()
    assert (revoke.value, revoke.status, revoke.requested_by.username) == (
        "Place.Read.All",
        Status.QUEUED,
        "alice",
    )
    assert queued == [revoke.pk]
    assert response.status_code == 200
    assert f'hx-get="{url("tenants:revoke-status", revoke)}"' in text(response)
    assert 'hx-trigger="every 2s"' in text(response)
    assert "<html" not in text(response)


def test_without_javascript_the_click_goes_back_to_the_page(admin, rooms, writable, queued):
    response = admin.post(create_url(rooms), grant_fields("Sites.Read.All"))

    assert response.status_code == 302 and response["Location"] == page_url(rooms)
    page = text(admin.get(page_url(rooms)))
    assert "Revoking Sites.Read.All: Queued." in page
    assert "Revoke request" in page


def test_a_second_click_returns_the_open_request(admin, rooms, writable, queued):
    admin.post(create_url(rooms), grant_fields("Place.Read.All"))
    response = admin.post(create_url(rooms), grant_fields("Place.Read.All"), follow=True)

    assert RevokeRequest.objects.count() == 1
    assert "already open" in text(response)


def test_a_needed_grant_first_names_the_features_that_break(admin, rooms, writable, queued):
    response = admin.post(create_url(rooms), grant_fields("Rooms.Read.All"), **HTMX)

    page = text(response)
    assert "Room monitoring" in page and "Lists the rooms." in page
    assert 'name="confirm"' in page and "Revoke it anyway" in page
    assert not RevokeRequest.objects.exists()

    confirmed = admin.post(create_url(rooms), grant_fields("Rooms.Read.All", confirm="on"))

    assert confirmed.status_code == 302
    assert RevokeRequest.objects.get().value == "Rooms.Read.All"


def test_without_javascript_the_confirmation_is_a_page(admin, rooms, writable):
    response = admin.post(create_url(rooms), grant_fields("Rooms.Read.All"))

    assert response.status_code == 200
    assert "<title>Revoke Rooms.Read.All?" in text(response)


def test_a_grant_the_application_does_not_hold_is_refused(admin, rooms, writable):
    response = admin.post(create_url(rooms), grant_fields("Mail.Send"), **HTMX)

    assert "does not hold this now" in text(response)
    assert not RevokeRequest.objects.exists()


def test_a_bad_form_is_a_bad_request(admin, rooms):
    assert admin.post(create_url(rooms), {"value": "Place.Read.All"}).status_code == 400


def test_a_readers_request_waits_and_mails_the_admins(
    reader, rooms, alice, writable, queued, monkeypatch, django_capture_on_commit_callbacks
):
    # The admins' e-mail goes from a task once the request is committed: run it at once.
    monkeypatch.setattr(
        notify_revoke_requests, "delay", lambda ids: notify_revoke_requests.apply((ids,))
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = reader.post(create_url(rooms), grant_fields("Place.Read.All"), **HTMX)

    revoke = RevokeRequest.objects.get()
    assert revoke.status == Status.PENDING_APPROVAL and queued == []
    assert [message.to for message in mail.outbox] == [["alice@contoso.example"]]
    assert "Place.Read.All" in mail.outbox[0].subject
    page = text(response)
    assert "Waiting for approval" in page and "Cancel my request" in page
    assert "Approve" not in page


def test_an_admin_approves_a_readers_request_in_one_click(
    admin, rooms, bob, writable, queued, django_capture_on_commit_callbacks
):
    revoke = make_request(rooms, "Place.Read.All", Status.PENDING_APPROVAL, requested_by=bob)
    page = text(admin.get(page_url(rooms)))
    assert f'hx-post="{url("tenants:revoke-approve", revoke)}"' in page

    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post(url("tenants:revoke-approve", revoke), **HTMX)

    revoke.refresh_from_db()
    assert (revoke.status, revoke.decided_by.username) == (Status.QUEUED, "alice")
    assert queued == [revoke.pk]
    assert "Queued" in text(response)


def test_an_admin_denies_and_the_reader_may_not_decide(admin, reader, rooms, bob):
    revoke = make_request(rooms, "Place.Read.All", Status.PENDING_APPROVAL, requested_by=bob)

    assert reader.post(url("tenants:revoke-approve", revoke)).status_code == 403
    assert reader.post(url("tenants:revoke-deny", revoke)).status_code == 403
    response = admin.post(url("tenants:revoke-deny", revoke), {"next": page_url(rooms)})

    assert response["Location"] == page_url(rooms)
    revoke.refresh_from_db()
    assert revoke.status == Status.DENIED


def test_a_reader_cancels_their_own_request_only(reader, rooms, bob, alice):
    own = make_request(rooms, "Place.Read.All", Status.PENDING_APPROVAL, requested_by=bob)
    other = make_request(rooms, "Sites.Read.All", Status.PENDING_APPROVAL, requested_by=alice)

    assert reader.post(url("tenants:revoke-cancel", other)).status_code == 403
    response = reader.post(url("tenants:revoke-cancel", own))

    assert response.status_code == 302
    own.refresh_from_db()
    other.refresh_from_db()
    assert (own.status, other.status) == (Status.CANCELLED, Status.PENDING_APPROVAL)


@pytest.mark.parametrize("status", [Status.QUEUED, Status.MANUAL])
def test_a_reader_cannot_cancel_their_request_once_an_admin_approved_it(
    reader, admin, rooms, bob, alice, status
):
    approved = make_request(rooms, "Place.Read.All", status, requested_by=bob, decided_by=alice)

    assert reader.post(url("tenants:revoke-cancel", approved)).status_code == 403
    approved.refresh_from_db()
    assert approved.status == status
    # The admin who approved it still may.
    assert admin.post(url("tenants:revoke-cancel", approved)).status_code == 302
    approved.refresh_from_db()
    assert approved.status == Status.CANCELLED


def test_a_next_that_leaves_the_portal_is_ignored(admin, rooms, bob):
    revoke = make_request(rooms, "Place.Read.All", Status.PENDING_APPROVAL, requested_by=bob)

    response = admin.post(url("tenants:revoke-deny", revoke), {"next": "https://evil.example/"})

    assert response["Location"] == reverse("tenants:revoke-list", args=[rooms.tenant.tenant_id])


# --- live status, undo, re-grants, manual steps ------------------------------------------


def test_the_status_polls_while_open_and_ends_with_286(admin, rooms):
    revoke = make_request(rooms, "Place.Read.All", Status.RUNNING)
    running = admin.get(url("tenants:revoke-status", revoke), **HTMX)
    assert running.status_code == 200
    assert 'hx-trigger="every 2s"' in text(running) and "Removing it" in text(running)

    RevokeRequest.objects.filter(pk=revoke.pk).update(status=Status.FAILED, error="Graph said no")
    ended = admin.get(url("tenants:revoke-status", revoke), **HTMX)

    assert ended.status_code == 286
    assert "hx-trigger" not in text(ended) and "Graph said no" in text(ended)


def test_a_succeeded_revoke_offers_undo_which_queues_a_restore(
    admin, rooms, writable, queued, django_capture_on_commit_callbacks
):
    revoke = make_request(rooms, "Place.Read.All", Status.SUCCEEDED, removed=removed_entry(rooms))
    done = admin.get(url("tenants:revoke-status", revoke), **HTMX)
    assert done.status_code == 286 and ">Undo</button>" in text(done)

    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post(url("tenants:revoke-undo", revoke), **HTMX)

    restore = RevokeRequest.objects.get(restores=revoke)
    assert (restore.action, restore.status) == (RevokeRequest.Action.RESTORE, Status.QUEUED)
    assert queued == [restore.pk]
    assert f'id="revoke-request-{restore.pk}"' in text(response)
    assert ">Undo</button>" not in text(admin.get(url("tenants:revoke-status", revoke)))


def test_readers_see_no_undo_and_may_not_undo(reader, rooms):
    revoke = make_request(rooms, "Place.Read.All", Status.SUCCEEDED, removed=removed_entry(rooms))

    assert ">Undo</button>" not in text(reader.get(url("tenants:revoke-status", revoke)))
    assert reader.post(url("tenants:revoke-undo", revoke)).status_code == 403


def test_a_revoked_grant_the_application_no_longer_holds_keeps_its_undo(admin, rooms):
    revoke = make_request(rooms, "Mail.Send", Status.SUCCEEDED, removed=removed_entry(rooms))

    page = text(admin.get(page_url(rooms)))

    assert "Revoked permissions" in page and "<code>Mail.Send</code>" in page
    assert f'action="{url("tenants:revoke-undo", revoke)}"' in page


def test_a_regranted_permission_is_marked_and_can_be_revoked_again(admin, rooms):
    run = SyncRunFactory(tenant=rooms.tenant, status=SyncRun.Status.SUCCEEDED)
    make_request(
        rooms,
        "Place.Read.All",
        Status.SUCCEEDED,
        removed=removed_entry(rooms),
        regranted_in_run=run,
    )

    page = text(admin.get(page_url(rooms)))

    assert "Granted again" in page
    assert ">Undo</button>" not in page
    assert page.count(">Revoke</button>") == 2


def test_where_the_portal_may_not_write_the_revoke_gives_the_manual_steps(admin, rooms):
    page = text(admin.get(page_url(rooms)))
    assert "The portal may only read in Contoso" in page

    response = admin.post(create_url(rooms), grant_fields("Place.Read.All"), **HTMX)

    revoke = RevokeRequest.objects.get()
    assert revoke.status == Status.MANUAL
    shown = text(response)
    assert "Enterprise applications" in shown
    assert "appRoleAssignedTo/" in shown
    assert 'hx-trigger="every 2s"' in shown  # the next sync confirms it


# --- the tenant's requests page ----------------------------------------------------------


def test_the_requests_page_lists_waiting_ones_first_then_the_history(admin, reader, rooms, bob):
    make_request(rooms, "Place.Read.All", Status.PENDING_APPROVAL, requested_by=bob)
    failed = make_request(
        rooms,
        "Sites.Read.All",
        Status.FAILED,
        error="Graph marker failure",
        graph_calls=[{"method": "DELETE", "path": "/servicePrincipals/x", "status": 500}],
    )
    list_url = reverse("tenants:revoke-list", args=[rooms.tenant.tenant_id])

    page = text(admin.get(list_url))

    assert page.index("Waiting for approval") < page.index("History")
    assert ">Approve</button>" in page and ">Deny</button>" in page
    assert "Graph marker failure" in page and "DELETE /servicePrincipals/x" in page
    assert f"Revoke {failed.pk}" in page
    assert ">Approve</button>" not in text(reader.get(list_url))


def test_the_tenant_page_links_the_requests_with_the_number_waiting(admin, rooms, bob):
    make_request(rooms, "Place.Read.All", Status.PENDING_APPROVAL, requested_by=bob)

    page = text(admin.get(reverse("tenants:tenant-detail", args=[rooms.tenant.tenant_id])))

    assert "1 waiting for approval" in page
    assert reverse("tenants:audit", args=[rooms.tenant.tenant_id]) in page


# --- bulk ---------------------------------------------------------------------------------


def bulk_rows(response) -> list[str]:
    return re.findall(
        r'<th scope="row" data-label="Permission"><code>([^<]+)</code>', text(response)
    )


def test_bulk_lists_exactly_the_candidates_then_creates_one_request_each(
    admin, rooms, writable, queued
):
    other = ServicePrincipalFactory(tenant=rooms.tenant, display_name="Other")
    GrantFactory(client=other, value="Files.Read.All", first_seen_run=rooms.tenant.last_good_sync)
    tenant_url = reverse("tenants:revoke-unused", args=[rooms.tenant.tenant_id])
    app_url = reverse(
        "tenants:revoke-unused-application", args=[rooms.tenant.tenant_id, rooms.app_id]
    )

    for address, client in ((tenant_url, None), (app_url, rooms)):
        expected = [
            c.slot.value for c in revoke_bulk_candidates(tenant=rooms.tenant, client=client)
        ]
        assert bulk_rows(admin.get(address)) == expected
    assert sorted(bulk_rows(admin.get(app_url))) == ["Place.Read.All", "Sites.Read.All"]

    response = admin.post(app_url)

    assert response["Location"] == reverse("tenants:revoke-list", args=[rooms.tenant.tenant_id])
    assert sorted(RevokeRequest.objects.values_list("value", flat=True)) == [
        "Place.Read.All",
        "Sites.Read.All",
    ]


def test_readers_see_the_bulk_list_but_may_not_post_it(reader, rooms):
    address = reverse("tenants:revoke-unused", args=[rooms.tenant.tenant_id])

    assert "Only the tenant's admins" in text(reader.get(address))
    assert reader.post(address).status_code == 403
    assert not RevokeRequest.objects.exists()
