"""Revoking from the pages (tenants.views.revokes): the buttons on an application's grants,
live status with 286 at the end, approvals, undo, manual steps, bulk revokes, the requests
page. alice is an admin and bob a reader of Contoso."""

import html
import re
from smtplib import SMTPServerDisconnected

import pytest
from django.core import mail
from django.urls import reverse

from permissions.models import MICROSOFT_GRAPH_APP_ID
from tenants.models import RevokeRequest, ServicePrincipal, Tenant
from tenants.notifications import revoke_decision_notify
from tenants.portal_app import WRITE_PERMISSIONS
from tenants.revokes import revoke_bulk_candidates, revoke_request_approve
from tenants.tasks import notify_revoke_decision, notify_revoke_requests
from tests.factories import (
    ApplicationFactory,
    FeatureFactory,
    GrantFactory,
    RequirementFactory,
    RevokeRequestFactory,
    ServicePrincipalFactory,
    SyncRunFactory,
    UserFactory,
)
from tests.helpers import signed_in
from tests.ids import PORTAL_APP
from tests.tenants.views.helpers import HTMX, succeeded_run

pytestmark = pytest.mark.django_db

Status = RevokeRequest.Status


@pytest.fixture
def contoso(contoso) -> Tenant:
    """Contoso (tests/conftest.py), synced once."""
    succeeded_run(contoso)
    return contoso


@pytest.fixture
def writable(contoso, settings) -> None:
    """The portal's own app holds both write rights in Contoso: revokes run in Graph."""
    settings.PORTAL_CLIENT_ID = PORTAL_APP
    portal = ServicePrincipalFactory(tenant=contoso, app_id=PORTAL_APP, display_name="Portal")
    for value in WRITE_PERMISSIONS:
        GrantFactory(client=portal, value=value, first_seen_run=contoso.last_good_sync)


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


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


# --- the buttons on the application page -------------------------------------------------


def test_an_admin_sees_revoke_on_unused_and_unexplained_grants_and_revoke_with_dots_on_needed(
    alice_client, rooms, writable
):
    page = text(alice_client.get(page_url(rooms)))

    assert page.count(">Revoke</button>") == 2
    assert page.count(">Revoke&hellip;</button>") == 1
    assert "Request revoke" not in page
    assert "may only read" not in page


def test_a_reader_sees_request_revoke_instead(bob_client, rooms, writable):
    page = text(bob_client.get(page_url(rooms)))

    assert page.count(">Request revoke</button>") == 2
    assert ">Revoke</button>" not in page


def test_an_admins_click_queues_the_revoke_and_answers_with_its_polling_status(
    alice, alice_client, rooms, writable, sent_revokes, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(create_url(rooms), grant_fields("Place.Read.All"), **HTMX)

    revoke = RevokeRequest.objects.get()
    assert (revoke.value, revoke.status, revoke.requested_by) == (
        "Place.Read.All",
        Status.QUEUED,
        alice,
    )
    assert sent_revokes == [revoke.pk]
    assert response.status_code == 200
    assert f'hx-get="{url("tenants:revoke-status", revoke)}"' in text(response)
    assert 'hx-trigger="every 2s"' in text(response)
    assert "<html" not in text(response)


def test_without_javascript_the_click_goes_back_to_the_page(
    alice_client, rooms, writable, sent_revokes
):
    response = alice_client.post(create_url(rooms), grant_fields("Sites.Read.All"))

    assert response.status_code == 302 and response["Location"] == page_url(rooms)
    page = text(alice_client.get(page_url(rooms)))
    assert "Revoking Sites.Read.All: Queued." in page
    assert "Revoke request" in page


def test_a_second_click_returns_the_open_request(alice_client, rooms, writable, sent_revokes):
    alice_client.post(create_url(rooms), grant_fields("Place.Read.All"))
    response = alice_client.post(create_url(rooms), grant_fields("Place.Read.All"), follow=True)

    assert RevokeRequest.objects.count() == 1
    assert "already open" in text(response)


def test_a_needed_grant_first_names_the_features_that_break(
    alice_client, rooms, writable, sent_revokes
):
    response = alice_client.post(create_url(rooms), grant_fields("Rooms.Read.All"), **HTMX)

    page = text(response)
    assert "Room monitoring" in page and "Lists the rooms." in page
    assert 'name="confirm"' in page and "Revoke it anyway" in page
    assert not RevokeRequest.objects.exists()

    confirmed = alice_client.post(create_url(rooms), grant_fields("Rooms.Read.All", confirm="on"))

    assert confirmed.status_code == 302
    assert RevokeRequest.objects.get().value == "Rooms.Read.All"


def test_without_javascript_the_confirmation_is_a_page(alice_client, rooms, writable):
    response = alice_client.post(create_url(rooms), grant_fields("Rooms.Read.All"))

    assert response.status_code == 200
    assert "<title>Revoke Rooms.Read.All?" in text(response)


def test_a_grant_the_application_does_not_hold_is_refused(alice_client, rooms, writable):
    response = alice_client.post(create_url(rooms), grant_fields("Mail.Send"), **HTMX)

    assert "does not hold this now" in text(response)
    assert not RevokeRequest.objects.exists()


def test_a_bad_form_is_a_bad_request(alice_client, rooms):
    assert alice_client.post(create_url(rooms), {"value": "Place.Read.All"}).status_code == 400


def test_a_readers_request_waits_and_mails_the_admins(
    bob_client,
    rooms,
    alice,
    writable,
    sent_revokes,
    monkeypatch,
    django_capture_on_commit_callbacks,
):
    # The admins' e-mail goes from a task once the request is committed: run it at once.
    monkeypatch.setattr(
        notify_revoke_requests, "delay", lambda ids: notify_revoke_requests.apply((ids,))
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = bob_client.post(
            create_url(rooms), grant_fields("Place.Read.All", reason="No smart buildings."), **HTMX
        )

    revoke = RevokeRequest.objects.get()
    assert revoke.status == Status.PENDING_APPROVAL and sent_revokes == []
    assert revoke.reason == "No smart buildings."
    assert [message.to for message in mail.outbox] == [["alice@contoso.onmicrosoft.com"]]
    assert "Place.Read.All" in mail.outbox[0].subject
    assert "Verdict: unused" in mail.outbox[0].body
    assert "Why: No smart buildings." in mail.outbox[0].body
    page = text(response)
    assert "Waiting for approval" in page and "Cancel my request" in page
    assert "No smart buildings." in page
    assert "Approve" not in page


def test_an_admin_approves_a_readers_request_in_one_click(
    alice, alice_client, rooms, bob, writable, sent_revokes, django_capture_on_commit_callbacks
):
    revoke = RevokeRequestFactory(
        client=rooms, value="Place.Read.All", pending_approval=True, requested_by=bob
    )
    page = text(alice_client.get(page_url(rooms)))
    assert f'hx-post="{url("tenants:revoke-approve", revoke)}"' in page

    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(url("tenants:revoke-approve", revoke), **HTMX)

    revoke.refresh_from_db()
    assert (revoke.status, revoke.decided_by) == (Status.QUEUED, alice)
    assert sent_revokes == [revoke.pk]
    assert "Queued" in text(response)


def test_an_admin_denies_and_the_reader_may_not_decide(alice_client, bob_client, rooms, bob):
    revoke = RevokeRequestFactory(
        client=rooms, value="Place.Read.All", pending_approval=True, requested_by=bob
    )

    assert bob_client.post(url("tenants:revoke-approve", revoke)).status_code == 403
    assert bob_client.post(url("tenants:revoke-deny", revoke)).status_code == 403
    response = alice_client.post(url("tenants:revoke-deny", revoke), {"next": page_url(rooms)})

    assert response["Location"] == page_url(rooms)
    revoke.refresh_from_db()
    assert revoke.status == Status.DENIED


def test_a_reader_cancels_their_own_request_only(bob_client, rooms, bob, alice):
    own = RevokeRequestFactory(
        client=rooms, value="Place.Read.All", pending_approval=True, requested_by=bob
    )
    other = RevokeRequestFactory(
        client=rooms, value="Sites.Read.All", pending_approval=True, requested_by=alice
    )

    assert bob_client.post(url("tenants:revoke-cancel", other)).status_code == 403
    response = bob_client.post(url("tenants:revoke-cancel", own))

    assert response.status_code == 302
    own.refresh_from_db()
    other.refresh_from_db()
    assert (own.status, other.status) == (Status.CANCELLED, Status.PENDING_APPROVAL)


@pytest.mark.parametrize("status", ["queued", "manual"])
def test_a_reader_cannot_cancel_their_request_once_an_admin_approved_it(
    bob_client, alice_client, rooms, bob, alice, status
):
    approved = RevokeRequestFactory(
        client=rooms,
        value="Place.Read.All",
        status=status,
        requested_by=bob,
        decided_by=alice,
    )

    assert bob_client.post(url("tenants:revoke-cancel", approved)).status_code == 403
    approved.refresh_from_db()
    assert approved.status == status
    # The admin who approved it still may.
    assert alice_client.post(url("tenants:revoke-cancel", approved)).status_code == 302
    approved.refresh_from_db()
    assert approved.status == "cancelled"


def test_a_next_that_leaves_the_portal_is_ignored(alice_client, rooms, bob):
    revoke = RevokeRequestFactory(
        client=rooms, value="Place.Read.All", pending_approval=True, requested_by=bob
    )

    response = alice_client.post(
        url("tenants:revoke-deny", revoke), {"next": "https://evil.example/"}
    )

    assert response["Location"] == reverse("tenants:revoke-list", args=[rooms.tenant.tenant_id])


# --- live status, undo, re-grants, manual steps ------------------------------------------


def test_the_status_polls_while_open_and_ends_with_286(alice_client, rooms):
    revoke = RevokeRequestFactory(client=rooms, value="Place.Read.All", running=True)
    running = alice_client.get(url("tenants:revoke-status", revoke), **HTMX)
    assert running.status_code == 200
    assert 'hx-trigger="every 2s"' in text(running) and "Removing it" in text(running)

    RevokeRequest.objects.filter(pk=revoke.pk).update(status=Status.FAILED, error="Graph said no")
    ended = alice_client.get(url("tenants:revoke-status", revoke), **HTMX)

    assert ended.status_code == 286
    assert "hx-trigger" not in text(ended) and "Graph said no" in text(ended)


def test_a_succeeded_revoke_offers_undo_which_queues_a_restore(
    alice_client, rooms, writable, sent_revokes, django_capture_on_commit_callbacks
):
    revoke = RevokeRequestFactory(client=rooms, value="Place.Read.All", succeeded=True)
    done = alice_client.get(url("tenants:revoke-status", revoke), **HTMX)
    assert done.status_code == 286 and ">Undo</button>" in text(done)

    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(url("tenants:revoke-undo", revoke), **HTMX)

    restore = RevokeRequest.objects.get(restores=revoke)
    assert (restore.action, restore.status) == (RevokeRequest.Action.RESTORE, Status.QUEUED)
    assert sent_revokes == [restore.pk]
    assert f'id="revoke-request-{restore.pk}"' in text(response)
    assert ">Undo</button>" not in text(alice_client.get(url("tenants:revoke-status", revoke)))


def test_readers_see_no_undo_and_may_not_undo(bob_client, rooms):
    revoke = RevokeRequestFactory(client=rooms, value="Place.Read.All", succeeded=True)

    assert ">Undo</button>" not in text(bob_client.get(url("tenants:revoke-status", revoke)))
    assert bob_client.post(url("tenants:revoke-undo", revoke)).status_code == 403


def test_a_revoked_grant_the_application_no_longer_holds_keeps_its_undo(alice_client, rooms):
    revoke = RevokeRequestFactory(client=rooms, value="Mail.Send", succeeded=True)

    page = text(alice_client.get(page_url(rooms)))

    assert "Revoked permissions" in page and "<code>Mail.Send</code>" in page
    assert f'action="{url("tenants:revoke-undo", revoke)}"' in page


def test_a_regranted_permission_is_marked_and_can_be_revoked_again(alice_client, rooms):
    run = SyncRunFactory(tenant=rooms.tenant, succeeded=True)
    RevokeRequestFactory(client=rooms, value="Place.Read.All", succeeded=True, regranted_in_run=run)

    page = text(alice_client.get(page_url(rooms)))

    assert "Granted again" in page
    assert ">Undo</button>" not in page
    assert page.count(">Revoke</button>") == 2


def test_where_the_portal_may_not_write_the_revoke_gives_the_manual_steps(alice_client, rooms):
    page = text(alice_client.get(page_url(rooms)))
    assert "The portal may only read in Contoso" in page

    response = alice_client.post(create_url(rooms), grant_fields("Place.Read.All"), **HTMX)

    revoke = RevokeRequest.objects.get()
    assert revoke.status == Status.MANUAL
    shown = text(response)
    assert "Enterprise applications" in shown
    # The admin center revokes an admin consent: no Graph calls, a warning about re-consent.
    assert "appRoleAssignedTo/" not in shown
    assert "Do not use &quot;Grant admin consent&quot;" in shown
    assert 'hx-trigger="every 2s"' in shown  # the next sync confirms it


# --- the tenant's requests page ----------------------------------------------------------


def test_the_requests_page_lists_waiting_ones_first_then_the_history(
    alice_client, bob_client, rooms, bob
):
    RevokeRequestFactory(
        client=rooms, value="Place.Read.All", pending_approval=True, requested_by=bob
    )
    failed = RevokeRequestFactory(
        client=rooms,
        value="Sites.Read.All",
        failed=True,
        error="Graph marker failure",
        graph_calls=[{"method": "DELETE", "path": "/servicePrincipals/x", "status": 500}],
    )
    list_url = reverse("tenants:revoke-list", args=[rooms.tenant.tenant_id])

    page = text(alice_client.get(list_url))

    assert page.index("Waiting for approval") < page.index("History")
    assert ">Approve</button>" in page and ">Deny</button>" in page
    assert "Graph marker failure" in page and "DELETE /servicePrincipals/x" in page
    assert f"Revoke {failed.pk}" in page
    assert ">Approve</button>" not in text(bob_client.get(list_url))


def test_the_tenant_page_links_the_requests_with_the_number_waiting(alice_client, rooms, bob):
    RevokeRequestFactory(
        client=rooms, value="Place.Read.All", pending_approval=True, requested_by=bob
    )

    page = text(alice_client.get(reverse("tenants:tenant-detail", args=[rooms.tenant.tenant_id])))

    assert "1 waiting for approval" in page
    assert reverse("tenants:audit", args=[rooms.tenant.tenant_id]) in page


# --- bulk ---------------------------------------------------------------------------------


def bulk_rows(response) -> list[str]:
    return re.findall(
        r'<th scope="row" data-label="Permission"><code>([^<]+)</code>', text(response)
    )


def bulk_tokens(response) -> list[str]:
    return [
        html.unescape(token)
        for token in re.findall(
            r'<input type="checkbox" name="grant" value="([^"]+)" checked', text(response)
        )
    ]


def test_bulk_lists_exactly_the_candidates_then_creates_one_request_each(
    alice_client, rooms, writable, sent_revokes
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
        assert bulk_rows(alice_client.get(address)) == expected
    assert sorted(bulk_rows(alice_client.get(app_url))) == ["Place.Read.All", "Sites.Read.All"]

    # The form carries back exactly the grants it showed (every box checked at first).
    response = alice_client.post(app_url, {"grant": bulk_tokens(alice_client.get(app_url))})

    assert response["Location"].startswith(results_url(rooms.tenant))
    assert sorted(RevokeRequest.objects.values_list("value", flat=True)) == [
        "Place.Read.All",
        "Sites.Read.All",
    ]


def test_readers_see_the_bulk_list_but_may_not_post_it(bob_client, rooms):
    address = reverse("tenants:revoke-unused", args=[rooms.tenant.tenant_id])

    assert "Only the tenant's admins" in text(bob_client.get(address))
    assert bob_client.post(address).status_code == 403
    assert not RevokeRequest.objects.exists()


def results_url(tenant: Tenant, *revokes: RevokeRequest) -> str:
    address = reverse("tenants:revoke-results", args=[tenant.tenant_id])
    return address + ("?" + "&".join(f"request={r.pk}" for r in revokes) if revokes else "")


def test_bulk_revokes_exactly_the_checked_grants_and_shows_their_live_results(
    alice_client, rooms, writable, sent_revokes, django_capture_on_commit_callbacks
):
    address = reverse("tenants:revoke-unused", args=[rooms.tenant.tenant_id])
    tokens = bulk_tokens(alice_client.get(address))
    assert len(tokens) == 2  # Place.Read.All and Sites.Read.All, both checked
    checked = [token for token in tokens if "Sites.Read.All" in token]

    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(address, {"grant": checked})

    [revoke] = RevokeRequest.objects.all()
    assert revoke.value == "Sites.Read.All" and sent_revokes == [revoke.pk]
    assert response["Location"] == results_url(rooms.tenant, revoke)
    page = text(alice_client.get(response["Location"]))
    assert f'hx-get="{url("tenants:revoke-status", revoke)}" hx-trigger="every 2s"' in page
    assert page_url(rooms) in page and "Undo all of these" in page
    assert "Place.Read.All" not in page


def test_bulk_skips_a_posted_grant_that_is_no_candidate(
    alice_client, rooms, writable, sent_revokes
):
    address = reverse("tenants:revoke-unused", args=[rooms.tenant.tenant_id])
    needed = bulk_tokens(alice_client.get(address))[0].replace("Place.Read.All", "Rooms.Read.All")

    response = alice_client.post(address, {"grant": [needed]}, follow=True)

    assert not RevokeRequest.objects.exists()
    assert "Rooms.Read.All (application) of Rooms is no longer a revoke candidate" in text(response)


def test_the_results_page_shows_only_the_tenants_own_requests(
    alice_client, charlie_client, rooms, fabrikam
):
    own = RevokeRequestFactory(client=rooms, value="Place.Read.All", succeeded=True)
    foreign_client = ServicePrincipalFactory(tenant=fabrikam, display_name="Fabrikam app")
    foreign = RevokeRequestFactory(client=foreign_client, value="Mail.Read", succeeded=True)

    page = text(alice_client.get(results_url(rooms.tenant, own, foreign)))

    assert f"Revoke request {own.pk}" in page and "Mail.Read" not in page
    assert charlie_client.get(results_url(rooms.tenant, own)).status_code == 404


def test_undo_all_restores_every_succeeded_revoke_and_shows_the_restores(
    alice, alice_client, bob_client, rooms, writable, sent_revokes
):
    done = [
        RevokeRequestFactory(client=rooms, value=value, succeeded=True)
        for value in ("Place.Read.All", "Sites.Read.All")
    ]
    running = RevokeRequestFactory(client=rooms, value="Rooms.Read.All", running=True)
    undo_all = reverse("tenants:revoke-undo-all", args=[rooms.tenant.tenant_id])
    named = {"request": [r.pk for r in (*done, running)]}

    assert bob_client.post(undo_all, named).status_code == 403
    assert signed_in(alice, enforce_csrf_checks=True).post(undo_all, named).status_code == 403
    response = alice_client.post(undo_all, named)

    restores = list(RevokeRequest.objects.filter(restores__in=done).order_by("value"))
    assert [r.restores_id for r in restores] == [done[0].pk, done[1].pk]
    assert all(r.requested_by == alice for r in restores)
    assert response["Location"] == results_url(rooms.tenant, *restores)
    page = html.unescape(text(alice_client.get(response["Location"])))
    assert "Undoing 2 permissions" in page and "Undo all of these" not in page
    assert "Rooms.Read.All of Rooms: not undone (running" in page
    assert not RevokeRequest.objects.filter(restores=running).exists()


def test_an_application_that_holds_nothing_any_more_keeps_its_page_and_undo(
    alice_client, contoso, writable
):
    gone = ServicePrincipalFactory(tenant=contoso, display_name="Emptied")
    revoke = RevokeRequestFactory(client=gone, value="Mail.Read", succeeded=True)

    response = alice_client.get(page_url(gone))

    assert response.status_code == 200
    page = text(response)
    assert "It holds no permission in this tenant now." in page
    assert f'hx-post="{url("tenants:revoke-undo", revoke)}"' in page


# --- approvals that see what they decide (issue 15, item 1) --------------------------------


def test_a_readers_request_needs_a_reason_and_the_button_comes_back_asking_for_it(
    bob_client, rooms, writable
):
    page = text(bob_client.get(page_url(rooms)))
    assert page.count('name="reason" rows="2" required maxlength="500"') == 3

    response = bob_client.post(create_url(rooms), grant_fields("Place.Read.All"), **HTMX)

    assert "Say why it should go" in html.unescape(text(response))
    assert ">Request revoke</button>" in text(response)
    assert not RevokeRequest.objects.exists()
    too_long = bob_client.post(create_url(rooms), grant_fields("Place.Read.All", reason="x" * 501))
    assert too_long.status_code == 400 and b"longer than 500" in too_long.content


def test_a_readers_reason_goes_through_the_needed_grants_confirmation(bob_client, rooms, writable):
    asked = grant_fields("Rooms.Read.All", reason="We moved to another room system.")

    confirmation = text(bob_client.post(create_url(rooms), asked, **HTMX))

    assert "Request the revoke anyway" in confirmation
    assert 'name="reason" value="We moved to another room system."' in confirmation
    bob_client.post(create_url(rooms), {**asked, "confirm": "on"})
    revoke = RevokeRequest.objects.get()
    assert (revoke.status, revoke.reason) == (Status.PENDING_APPROVAL, asked["reason"])


def test_a_pending_card_shows_the_reason_the_verdict_and_the_features_that_break(
    alice_client, rooms, bob
):
    needed = RevokeRequestFactory(
        client=rooms,
        value="Rooms.Read.All",
        pending_approval=True,
        requested_by=bob,
        reason="We moved to another room system.",
    )
    RevokeRequestFactory(
        client=rooms, value="Place.Read.All", pending_approval=True, requested_by=bob
    )

    page = text(alice_client.get(reverse("tenants:revoke-list", args=[rooms.tenant.tenant_id])))

    card = page[page.index(f'id="revoke-request-{needed.pk}"') :]
    assert "Why:</strong> We moved to another room system." in card
    assert 'class="tag verdict-needed">Needed' in card
    assert (
        "breaks 1 enabled feature" in card and "Room monitoring</strong>: Lists the rooms." in card
    )
    assert ">Approve&hellip;</button>" in page  # the needed one asks first
    assert ">Approve</button>" in page  # the unused one goes in one click
    assert "only switched-off features list it" in page


def test_approving_a_needed_grant_asks_first_naming_the_features(
    alice, alice_client, rooms, bob, writable, sent_revokes, django_capture_on_commit_callbacks
):
    revoke = RevokeRequestFactory(
        client=rooms, value="Rooms.Read.All", pending_approval=True, requested_by=bob
    )

    asked = text(alice_client.post(url("tenants:revoke-approve", revoke), **HTMX))

    assert "Room monitoring" in asked and "Lists the rooms." in asked
    assert "Approve, breaking 1 feature" in asked and 'name="confirm" value="on"' in asked
    assert f'id="revoke-request-{revoke.pk}"' in asked  # takes the card's place
    revoke.refresh_from_db()
    assert revoke.status == Status.PENDING_APPROVAL and sent_revokes == []
    page = alice_client.post(url("tenants:revoke-approve", revoke))
    assert page.status_code == 200 and "<title>Approve revoking Rooms.Read.All?" in text(page)

    with django_capture_on_commit_callbacks(execute=True):
        alice_client.post(url("tenants:revoke-approve", revoke), {"confirm": "on"}, **HTMX)

    revoke.refresh_from_db()
    assert (revoke.status, revoke.decided_by) == (Status.QUEUED, alice)
    assert sent_revokes == [revoke.pk]


@pytest.fixture
def decision_mails_at_once(monkeypatch) -> None:
    monkeypatch.setattr(
        notify_revoke_decision, "delay", lambda pk: notify_revoke_decision.apply((pk,))
    )


@pytest.mark.parametrize(("decision", "said"), [("approve", "approved"), ("deny", "denied")])
def test_the_requester_is_mailed_the_decision_and_who_made_it(
    decision,
    said,
    alice_client,
    rooms,
    bob,
    writable,
    sent_revokes,
    decision_mails_at_once,
    django_capture_on_commit_callbacks,
):
    revoke = RevokeRequestFactory(
        client=rooms, value="Place.Read.All", pending_approval=True, requested_by=bob
    )

    with django_capture_on_commit_callbacks(execute=True):
        alice_client.post(url(f"tenants:revoke-{decision}", revoke))

    [message] = mail.outbox
    assert message.to == ["bob@contoso.onmicrosoft.com"]
    assert f"was {said}: Place.Read.All of Rooms" in message.subject
    assert f"Alice Anders {said} your request" in message.body
    revoke.refresh_from_db()
    assert revoke.decision_mailed_at is not None
    assert notify_revoke_decision(revoke.pk) == "already sent"


def test_an_admin_deciding_their_own_request_is_not_mailed(
    alice, rooms, writable, sent_revokes, monkeypatch, django_capture_on_commit_callbacks
):
    queued: list[int] = []
    monkeypatch.setattr(notify_revoke_decision, "delay", queued.append)
    revoke = RevokeRequestFactory(
        client=rooms, value="Place.Read.All", pending_approval=True, requested_by=alice
    )

    with django_capture_on_commit_callbacks(execute=True):
        revoke_request_approve(revoke=revoke, actor=alice)

    assert queued == []


def test_a_failed_decision_mail_is_kept_on_the_request_and_sent_by_the_retry(
    alice, alice_client, rooms, bob, monkeypatch
):
    revoke = RevokeRequestFactory(
        client=rooms, value="Place.Read.All", denied=True, requested_by=bob, decided_by=alice
    )

    def refuse(*args, **kwargs):
        raise SMTPServerDisconnected("the mail server went away")

    monkeypatch.setattr("tenants.notifications.send_mail", refuse)
    with pytest.raises(SMTPServerDisconnected):
        revoke_decision_notify(revoke_id=revoke.pk)

    revoke.refresh_from_db()
    assert revoke.decision_mailed_at is None
    assert revoke.decision_mail_error == "SMTPServerDisconnected: the mail server went away"
    page = text(alice_client.get(reverse("tenants:revoke-list", args=[rooms.tenant.tenant_id])))
    assert "could not be mailed" in page and "the mail server went away" in page
    outbox = text(signed_in(UserFactory(is_staff=True)).get(reverse("digests:outbox")))
    assert "Failed revoke decisions" in outbox and "Denied: Place.Read.All of Rooms" in outbox

    monkeypatch.undo()
    assert revoke_decision_notify(revoke_id=revoke.pk) == "sent"
    revoke.refresh_from_db()
    assert revoke.decision_mail_error == "" and len(mail.outbox) == 1


def test_decisions_need_the_csrf_token(alice, rooms, bob):
    revoke = RevokeRequestFactory(
        client=rooms, value="Place.Read.All", pending_approval=True, requested_by=bob
    )
    client = signed_in(alice, enforce_csrf_checks=True)

    for name in ("approve", "deny", "undo", "cancel"):
        assert (
            client.post(url(f"tenants:revoke-{name}", revoke), {"confirm": "on"}).status_code == 403
        )
    bulk = reverse("tenants:revoke-unused", args=[rooms.tenant.tenant_id])
    assert client.post(bulk, {"grant": bulk_tokens(client.get(bulk))}).status_code == 403
    asked = grant_fields("Sites.Read.All", reason="Unexplained.")
    assert (
        signed_in(bob, enforce_csrf_checks=True).post(create_url(rooms), asked).status_code == 403
    )
    revoke.refresh_from_db()
    assert revoke.status == Status.PENDING_APPROVAL
    assert RevokeRequest.objects.count() == 1


def test_an_empty_revoke_history_points_an_admin_to_the_bulk_revoke(
    alice_client, bob_client, contoso
):
    revoke_list = reverse("tenants:revoke-list", args=[contoso.tenant_id])
    bulk = reverse("tenants:revoke-unused", args=[contoso.tenant_id])
    assert f'<a href="{bulk}">Revoke everything unused</a> takes them all at once' in text(
        alice_client.get(revoke_list)
    )
    assert "takes them all at once" not in text(bob_client.get(revoke_list))
