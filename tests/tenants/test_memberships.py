"""Roles re-read at each sync (issue 12, item 2): who holds the portal's app roles in a
tenant, users and groups assigned on its own service principal, groups expanded through
nested groups. A lost role ends access at the next sync, without a new sign-in; a failed
read removes nobody's access."""

import datetime as dt

import pytest
import yaml
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from digests.services import digest_send, subscription_set
from emulator.scenario import SCENARIOS_DIR
from portal.models import User
from tenants.access import Role, role_in
from tenants.memberships import role_holders_read
from tenants.models import SyncRun
from tenants.services import sync_run_queue
from tenants.sync import sync_run_execute
from tests.ids import CONTOSO

pytestmark = pytest.mark.django_db(transaction=True)

PORTAL_APP_ID = "0d3c2b1a-9f8e-4d7c-8b6a-5f4e3d2c1b0a"


def sync(tenant, client) -> SyncRun:
    run = sync_run_execute(run_id=sync_run_queue(tenant=tenant).pk, client=client)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    return run


def signed_in_once(emu, upn: str, roles: list[str], *, when: dt.datetime | None = None) -> User:
    """A user as their last sign-in left them: object id and roles from the id token."""
    oid = next(u["id"] for u in emu.state(CONTOSO)["users"] if u["userPrincipalName"] == upn)
    return User.objects.create(
        username=upn,
        email=upn,
        entra_tenant_id=CONTOSO,
        entra_object_id=oid,
        entra_roles=roles,
        last_login=when or timezone.now() - dt.timedelta(hours=1),
    )


def without_bobs_role(emu) -> None:
    """An Entra admin removes bob's Portal.Reader assignment."""
    scenario = yaml.safe_load((SCENARIOS_DIR / "demo.yaml").read_text())
    contoso = next(t for t in scenario["tenants"] if t["id"] == CONTOSO)
    next(u for u in contoso["users"] if u["upn"].startswith("bob@"))["roles"] = []
    emu.load(scenario)


def as_client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_role_removed_in_entra_ends_access_at_the_next_sync(emu, contoso, client_for):
    bob = signed_in_once(emu, "bob@contoso.onmicrosoft.com", ["Portal.Reader"])
    sync(contoso, client_for(CONTOSO))
    reader = as_client(bob)
    assert reader.get(reverse("tenants:report-csv", args=[CONTOSO])).status_code == 200

    without_bobs_role(emu)
    sync(contoso, client_for(CONTOSO))

    bob.refresh_from_db()
    assert bob.entra_roles == [] and role_in(bob, contoso) is None
    # The same session, no new sign-in: the tenant, its exports and revokes are closed.
    for url in (
        reverse("tenants:tenant-detail", args=[CONTOSO]),
        reverse("tenants:report-csv", args=[CONTOSO]),
        reverse("tenants:audit-csv", args=[CONTOSO]),
    ):
        assert reader.get(url).status_code == 404, url


def test_a_role_held_through_nested_groups_counts(emu, contoso, client_for):
    frank = signed_in_once(emu, "frank@contoso.onmicrosoft.com", [])

    sync(contoso, client_for(CONTOSO))

    frank.refresh_from_db()
    assert frank.entra_roles == ["Portal.Reader"]
    assert role_in(frank, contoso) == Role.READER


def test_everyones_roles_are_as_entra_has_them(emu, contoso, client_for):
    users = {
        upn: signed_in_once(emu, f"{upn}@contoso.onmicrosoft.com", roles)
        for upn, roles in [("alice", []), ("oscar", ["Portal.Admin"]), ("erin", ["Portal.Reader"])]
    }

    sync(contoso, client_for(CONTOSO))

    assert {upn: User.objects.get(pk=u.pk).entra_roles for upn, u in users.items()} == {
        "alice": ["Portal.Admin"],
        "oscar": ["Portal.Operator"],
        "erin": [],
    }


def test_a_failed_read_of_the_role_holders_removes_nobodys_access(emu, contoso, client_for):
    bob = signed_in_once(emu, "bob@contoso.onmicrosoft.com", ["Portal.Reader"])
    without_bobs_role(emu)
    # Reading the groups' members is refused: whether bob is a reader through a group
    # cannot be known, so nobody loses a role.
    emu.set_faults([{"path": "transitiveMembers", "status": 403}])

    run = sync(contoso, client_for(CONTOSO))

    bob.refresh_from_db()
    assert bob.entra_roles == ["Portal.Reader"]
    assert run.status == SyncRun.Status.SUCCEEDED  # the grants were read all the same


def test_the_read_says_none_rather_than_a_partial_answer(emu, client_for):
    emu.set_faults([{"path": "transitiveMembers", "status": 503}])

    assert role_holders_read(client_for(CONTOSO)) is None


def test_a_sign_in_during_the_sync_is_newer_than_what_the_sync_read(emu, contoso, client_for):
    # bob signs in while the sync runs: his id token is newer than the sync's read.
    bob = signed_in_once(
        emu,
        "bob@contoso.onmicrosoft.com",
        ["Portal.Admin"],
        when=timezone.now() + dt.timedelta(minutes=5),
    )

    sync(contoso, client_for(CONTOSO))

    bob.refresh_from_db()
    assert bob.entra_roles == ["Portal.Admin"]


def test_digests_check_the_role_the_sync_read_when_they_go_out(
    emu, contoso, client_for, mailoutbox
):
    bob = signed_in_once(emu, "bob@contoso.onmicrosoft.com", ["Portal.Reader"])
    sync(contoso, client_for(CONTOSO))
    subscription = subscription_set(user=bob, tenant=contoso, frequency="daily", all_quiet=False)
    without_bobs_role(emu)
    sync(contoso, client_for(CONTOSO))

    assert digest_send(subscription_id=subscription.pk, period="daily-1") == "no recipient"
    assert mailoutbox == []


def test_it_costs_a_few_requests(emu, contoso, client_for):
    emu.reset_counters()

    assert role_holders_read(client_for(CONTOSO)) is not None

    # The portal's principal, its role holders (one page), the one group assigned.
    assert emu.counters()["requests"]["GET /v1.0/groups/{groupId}/transitiveMembers"] == 1
    graph = {k: n for k, n in emu.counters()["requests"].items() if " /v1.0/" in k}
    assert sum(graph.values()) == 3, graph
