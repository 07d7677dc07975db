"""The `revoke` command (DESIGN.md contract) against the emulator."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tenants.access import Role
from tenants.models import AuditEvent, RevokeRequest, ServicePrincipal
from tenants.revokes import revoke_request_create
from tenants.slots import GrantSlot
from tests.helpers import sync
from tests.ids import ASKCODY, CONTOSO, FABRIKAM, GRAPH, LOOKOUT, MAIL_READ, ROOMS
from tests.tenants.helpers import graph_assignments

pytestmark = pytest.mark.django_db(transaction=True)


def revoke(*args: str) -> str:
    out = io.StringIO()
    call_command("revoke", *args, stdout=out)
    return out.getvalue()


def revoke_failing(*args: str, error: str) -> str:
    """What the command printed before it failed with ``error`` (a pattern)."""
    out = io.StringIO()
    with pytest.raises(CommandError, match=error):
        call_command("revoke", *args, stdout=out)
    return out.getvalue()


def test_without_yes_it_shows_what_would_go_and_changes_nothing(synced, emu):
    args = (CONTOSO, "--app", ROOMS, "--permission", "Mail.Read", "--type", "application")

    out = revoke_failing(*args, error="^add --yes to revoke$")

    assert out == (
        "would revoke: Mail.Read (application, admin consent) of Teams Rooms monitoring platform in Contoso\n"
    )
    assert RevokeRequest.objects.count() == 0


def test_it_revokes_an_application_permission_now_and_prints_the_result(synced, emu):
    contoso, _ = synced
    rooms = ServicePrincipal.objects.get(tenant=contoso, app_id=ROOMS)

    out = revoke(
        CONTOSO, "--app", ROOMS, "--permission", "Mail.Read", "--type", "application", "--yes"
    )

    request = RevokeRequest.objects.get()
    assert (
        out.splitlines()[-1]
        == f"revoke request {request.pk} (Mail.Read, admin consent): succeeded, 3 Graph calls"
    )
    assert (request.status, request.requested_by) == ("succeeded", None)
    assert MAIL_READ not in {
        a["appRoleId"] for a in graph_assignments(emu, CONTOSO, str(rooms.object_id))
    }
    assert (
        emu.counters()["requests"][
            "DELETE /v1.0/servicePrincipals/{id}/appRoleAssignedTo/{assignmentId}"
        ]
        == 1
    )
    assert AuditEvent.objects.filter(action=AuditEvent.Action.REVOKE_SUCCEEDED).count() == 1


def test_a_delegated_permission_gets_one_request_per_consent_type(synced, emu, client_for):
    contoso, _ = synced
    askcody = ServicePrincipal.objects.get(tenant=contoso, app_id=ASKCODY)
    erin = next(
        u["id"] for u in emu.state(CONTOSO)["users"] if u["userPrincipalName"].startswith("erin@")
    )
    # Erin consented to User.Read herself as well; the admin grant holds it for everyone.
    client_for(CONTOSO).request(
        "PATCH",
        f"/oauth2PermissionGrants/{_user_grant(emu, askcody, erin)['id']}",
        json={"scope": "Calendars.Read User.Read"},
    )
    sync(contoso, client_for(CONTOSO))

    out = revoke(
        CONTOSO, "--app", ASKCODY, "--permission", "User.Read", "--type", "delegated", "--yes"
    )

    assert "would revoke: User.Read (delegated, admin consent) of AskCody in Contoso" in out
    assert (
        "would revoke: User.Read (delegated, user consent of 1 users) of AskCody in Contoso" in out
    )
    assert sorted(RevokeRequest.objects.values_list("consent", "status")) == [
        ("admin", "succeeded"),
        ("user", "succeeded"),
    ]
    assert _user_grant(emu, askcody, erin)["scope"] == "Calendars.Read"


def _user_grant(emu, client: ServicePrincipal, user_id: str) -> dict:
    return next(
        g
        for g in emu.state(CONTOSO)["oauth2PermissionGrants"]
        if g["clientId"] == str(client.object_id) and g.get("principalId") == user_id
    )


def test_where_the_portal_may_not_write_it_prints_the_manual_steps_and_fails(synced, emu):
    args = (
        FABRIKAM,
        "--app",
        LOOKOUT,
        "--permission",
        "Directory.Read.All",
        "--type",
        "application",
    )

    text = revoke_failing(*args, "--yes", error="not every revoke succeeded")

    assert "manual: the portal may not revoke in this tenant. Do it by hand:" in text
    assert "  In the Microsoft Entra admin center" in text
    assert "> Admin consent, find Directory.Read.All" in text
    assert "  DELETE https://" not in text  # the admin center can do this one
    assert RevokeRequest.objects.get().status == RevokeRequest.Status.MANUAL
    assert (
        emu.counters()["requests"].get(
            "DELETE /v1.0/servicePrincipals/{id}/appRoleAssignedTo/{assignmentId}"
        )
        is None
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--app", ROOMS, "--permission", "Files.Read.All", "--type", "application"],
            "does not hold Files.Read.All",
        ),
        (
            ["--app", "not-a-guid", "--permission", "Mail.Read", "--type", "application"],
            "is not a GUID",
        ),
        (
            [
                "--app",
                "11111111-2222-3333-4444-555555555555",
                "--permission",
                "Mail.Read",
                "--type",
                "application",
            ],
            "has no service principal in Contoso",
        ),
        (
            [
                "--app",
                ROOMS,
                "--permission",
                "Mail.Read",
                "--type",
                "application",
                "--resource",
                "x",
            ],
            "is not a GUID",
        ),
    ],
)
def test_bad_input_is_one_line(synced, args, message):
    with pytest.raises(CommandError, match=message) as raised:
        call_command("revoke", CONTOSO, *args, "--yes", stdout=io.StringIO())
    assert "\n" not in str(raised.value)


def test_it_is_the_same_service_as_the_pages(synced, emu):
    """A request a reader opened in the portal is approved and run by the command."""
    contoso, _ = synced
    pending, _ = revoke_request_create(
        tenant=contoso,
        client=ServicePrincipal.objects.get(tenant=contoso, app_id=ROOMS),
        slot=GrantSlot(GRAPH, "application", "Mail.Read", "admin"),
        actor=None,
        role=Role.READER,
    )
    revoke(CONTOSO, "--app", ROOMS, "--permission", "Mail.Read", "--type", "application", "--yes")
    pending.refresh_from_db()
    assert pending.status == RevokeRequest.Status.SUCCEEDED
    assert RevokeRequest.objects.count() == 1
