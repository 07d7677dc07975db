"""Bulk actions and the portal itself (issue 11, section 4), against the emulator: bulk
revokes leave out the portal, Microsoft's first-party apps and managed identities (the
demo's Woodgrove has all three); the portal never revokes its own read permissions and
its write permissions only with an acknowledgement, after every other queued request;
``revoke --unused``, ``revokes`` and the report's ``regranted`` (DESIGN.md contracts)."""

import io
import json
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from permissions.catalog import catalog_import_starter
from permissions.manifests import BUNDLED_MANIFESTS_DIR, manifest_import, manifest_read
from permissions.models import Application
from tenants.access import Role
from tenants.graph import GraphClient
from tenants.models import MICROSOFT_TENANT_IDS, RevokeRequest, ServicePrincipal, SyncRun
from tenants.report import tenant_report
from tenants.revokes import (
    RevokeRefused,
    manual_steps,
    revoke_bulk_create,
    revoke_bulk_plan,
    revoke_request_create,
    revoke_request_execute,
    revoke_restore,
)
from tenants.services import features_set, sync_run_queue, tenant_add
from tenants.slots import GrantSlot
from tenants.sync import sync_run_execute
from tests.ids import CONTOSO

pytestmark = pytest.mark.django_db(transaction=True)

WOODGROVE = "5a7d3e2b-9c41-4f8e-b6a0-1d2c3b4a5e6f"
GRAPH = "00000003-0000-0000-c000-000000000000"
PORTAL_APP = "0d3c2b1a-9f8e-4d7c-8b6a-5f4e3d2c1b0a"
ROOMS = "3c1a9d6e-5b2f-4e8a-9c7d-1f0e2b3a4c5d"
LEGACY = "b1c2d3e4-f5a6-4b7c-8d9e-0f1a2b3c4d5e"
MANAGED_IDENTITIES = {
    "4c5d6e7f-8a9b-4c0d-9e1f-2a3b4c5d6e7f",
    "5d6e7f8a-9b0c-4d1e-8f2a-3b4c5d6e7f80",
}
TEAMS_SERVICES = "cc15fd57-2c6c-4117-a88c-83b1d56b4bbe"
CONTROL_CHARACTER_APP = "0c1d2e3f-4a5b-4c6d-9e7f-809102132435"
Status = RevokeRequest.Status


def sync(tenant, client_for) -> SyncRun:
    run = sync_run_queue(tenant=tenant)
    run = sync_run_execute(run_id=run.pk, client=client_for(str(tenant.tenant_id)))
    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    return run


@pytest.fixture
def demo(db):
    catalog_import_starter()
    for path in sorted(BUNDLED_MANIFESTS_DIR.glob("*.yaml")):
        manifest_import(spec=manifest_read(path=path))


@pytest.fixture
def contoso_synced(emu, demo, contoso, client_for):
    sync(contoso, client_for)
    contoso.refresh_from_db()
    return contoso


@pytest.fixture
def woodgrove(emu, demo, client_for):
    # The principal whose name holds a NUL is the sync's concern (PostgreSQL text cannot
    # hold one); these tests are about bulk revokes, so it leaves the tenant first.
    emu.delete_service_principal(WOODGROVE, emu.sp_id(WOODGROVE, CONTROL_CHARACTER_APP))
    tenant = tenant_add(tenant_id=WOODGROVE, name="Woodgrove")[0]
    sync(tenant, client_for)
    tenant.refresh_from_db()
    return tenant


def sp(tenant, app_id: str) -> ServicePrincipal:
    return ServicePrincipal.objects.get(tenant=tenant, app_id=app_id)


def own(tenant, value: str, **options: Any) -> tuple[RevokeRequest, bool]:
    return revoke_request_create(
        tenant=tenant,
        client=sp(tenant, PORTAL_APP),
        slot=GrantSlot(GRAPH, "application", value, "admin"),
        actor=None,
        role=Role.ADMIN,
        queue=False,
        **options,
    )


def command(name: str, *args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(name, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


# -- bulk exclusions ------------------------------------------------------------------------


def test_bulk_revoke_leaves_out_managed_identities_and_microsofts_apps(woodgrove):
    plan = revoke_bulk_plan(tenant=woodgrove)

    left_out = {str(left.client.app_id): left.reason for left in plan.left_out}
    assert {app_id: left_out[app_id] for app_id in MANAGED_IDENTITIES} == dict.fromkeys(
        MANAGED_IDENTITIES, "a managed identity"
    )
    assert left_out[TEAMS_SERVICES] == "a Microsoft first-party app"
    candidates = {c.client for c in plan.candidates}
    assert candidates  # Woodgrove's own unexplained apps are still candidates
    assert not any(
        c.is_managed_identity or c.is_first_party or str(c.app_id) == PORTAL_APP for c in candidates
    )
    # Every unneeded grant of the tenant is either a candidate or left out, and why.
    report = tenant_report(tenant=woodgrove)
    unneeded = sum(1 for app in report.applications for g in app.grants if g.is_revoke_candidate)
    assert unneeded == len(plan.candidates) + sum(left.grants for left in plan.left_out)
    print(
        f"FIGURE Woodgrove bulk: {len(plan.candidates)} candidates, "
        f"{sum(left.grants for left in plan.left_out)} grants of {len(plan.left_out)} apps left out"
    )


def test_the_portal_itself_is_left_out_of_bulk_revokes(contoso_synced):
    plan = revoke_bulk_plan(tenant=contoso_synced)

    [portal] = [left for left in plan.left_out if str(left.client.app_id) == PORTAL_APP]
    assert portal.reason == "the portal itself" and portal.grants == 2  # its write rights
    assert all(str(c.client.app_id) != PORTAL_APP for c in plan.candidates)
    # Even when asked for by name, one application's bulk revoke of the portal is empty.
    assert (
        revoke_bulk_plan(tenant=contoso_synced, client=sp(contoso_synced, PORTAL_APP)).candidates
        == []
    )


def test_a_bulk_revoke_takes_exactly_the_list_shown_and_skips_what_changed(contoso_synced):
    contoso = contoso_synced
    plan = revoke_bulk_plan(tenant=contoso)
    shown = [(str(c.client.object_id), c.slot) for c in plan.candidates]
    report = tenant_report(tenant=contoso)
    # After the page was shown, an admin switches on the feature behind one unused grant
    # (it is needed now) and off the feature behind a needed one (a new candidate).
    unused = next(c for c in plan.candidates if c.verdict == "unused")
    [now_needed] = [
        g
        for a in report.applications
        if a.app_id == unused.client.app_id
        for g in a.grants
        if g.permission == unused.slot.value and g.kind == unused.slot.kind
    ]
    needed_app, needed = next(
        (a, g)
        for a in report.applications
        if str(a.app_id) not in (PORTAL_APP, str(unused.client.app_id))
        for g in a.grants
        if g.verdict.value == "needed" and len(g.features) == 1
    )
    features_set(
        tenant=contoso,
        application=Application.objects.get(app_id=unused.client.app_id),
        enable=list(now_needed.features),
        disable=[],
        actor=None,
    )
    features_set(
        tenant=contoso,
        application=Application.objects.get(app_id=needed_app.app_id),
        enable=[],
        disable=list(needed.features),
        actor=None,
    )
    # And the one grant a bulk revoke must never take is slipped into the form.
    forged = (
        str(sp(contoso, PORTAL_APP).object_id),
        GrantSlot(GRAPH, "application", "Application.Read.All", "admin"),
    )

    result = revoke_bulk_create(
        tenant=contoso, actor=None, role=Role.ADMIN, shown=[*shown, forged], queue=False
    )

    now = [(str(c.client.object_id), c.slot) for c in revoke_bulk_plan(tenant=contoso).candidates]
    new = [item for item in now if item not in shown]
    gone = [item for item in shown if item not in now]
    assert any(slot.value == needed.permission for _, slot in new)
    assert (str(unused.client.object_id), unused.slot) in gone
    taken = [(str(r.client.object_id), GrantSlot.from_request(r)) for r in result.requests]
    # What was shown and still is a candidate; never what became one since.
    assert taken == [item for item in shown if item in now]
    assert not set(new) & set(taken)
    assert result.skipped == [
        *(
            f"{slot.value} ({slot.kind}) of {unused.client.display_name} is no longer a "
            "revoke candidate: left as it is."
            for _, slot in gone
        ),
        "Application.Read.All (application) of Permission Portal is no longer a revoke "
        "candidate: left as it is.",
    ]


# -- the portal's own permissions -------------------------------------------------------------


def test_the_portal_never_revokes_its_own_read_permissions(contoso_synced, emu):
    for value in ("Application.Read.All", "Directory.Read.All"):
        with pytest.raises(RevokeRefused, match=f"never revokes its own {value}"):
            own(contoso_synced, value, acknowledge_self=True)
    assert not RevokeRequest.objects.exists()

    with pytest.raises(CommandError) as raised:
        command(
            "revoke", CONTOSO, "--app", PORTAL_APP, "--permission", "Directory.Read.All",
            "--type", "application", "--self", "--yes",
        )  # fmt: skip
    assert str(raised.value) == (
        "The portal never revokes its own Directory.Read.All: without it, it could no longer "
        "sync Contoso."
    )
    assert emu.requests_to(r"/appRoleAssignedTo/", "DELETE") == 0


def test_its_write_permission_needs_an_acknowledgement_and_undo_is_then_manual(
    contoso_synced, emu, client_for
):
    contoso = contoso_synced
    args = ("revoke", CONTOSO, "--app", PORTAL_APP, "--permission", "AppRoleAssignment.ReadWrite.All", "--type", "application", "--yes")  # fmt: skip
    with pytest.raises(CommandError, match=r"needs an explicit acknowledgement \(--self"):
        command(*args)
    with pytest.raises(RevokeRefused, match="Only an admin"):
        revoke_request_create(
            tenant=contoso,
            client=sp(contoso, PORTAL_APP),
            slot=GrantSlot(GRAPH, "application", "AppRoleAssignment.ReadWrite.All", "admin"),
            actor=None,
            role=Role.READER,
            acknowledge_self=True,
        )
    assert not RevokeRequest.objects.exists()

    out, _ = command(*args, "--self")

    revoke = RevokeRequest.objects.get()
    assert revoke.status == Status.SUCCEEDED
    assert out.splitlines()[-1].startswith(f"revoke request {revoke.pk} (AppRoleAssignment")
    # Now the portal may no longer assign roles: its own undo is manual steps.
    emu.expire_tokens()
    restore = revoke_restore(revoke=revoke, actor=None)
    restore = revoke_request_execute(revoke_id=restore.pk, client=client_for(CONTOSO))
    assert restore.status == Status.MANUAL
    steps = manual_steps(restore)
    assert steps[0].startswith("The Entra admin center cannot take a revoked permission back")
    assert "/appRoleAssignedTo with the body" in steps[1]


def test_its_write_permission_is_revoked_only_after_every_other_queued_request(
    contoso_synced, emu, client_for, monkeypatch
):
    contoso = contoso_synced
    later: list[dict[str, Any]] = []
    monkeypatch.setattr(
        "tenants.tasks.execute_revoke.apply_async", lambda *a, **kw: later.append(kw)
    )
    other, _ = revoke_request_create(
        tenant=contoso,
        client=sp(contoso, LEGACY),
        slot=GrantSlot(GRAPH, "application", "Directory.ReadWrite.All", "admin"),
        actor=None,
        role=Role.ADMIN,
        queue=False,
    )
    mine, _ = own(contoso, "DelegatedPermissionGrant.ReadWrite.All", acknowledge_self=True)
    emu.reset_counters()

    waiting = revoke_request_execute(revoke_id=mine.pk, client=client_for(CONTOSO))

    assert waiting.status == Status.QUEUED and waiting.graph_calls == []
    assert waiting.error == "Waits for 1 other request(s) of Contoso to end first."
    assert later == [{"args": (mine.pk,), "countdown": 30}]
    assert emu.counters()["requests"] == {} or sum(emu.counters()["requests"].values()) == 0

    assert (
        revoke_request_execute(revoke_id=other.pk, client=client_for(CONTOSO)).status == "succeeded"
    )
    done = revoke_request_execute(revoke_id=mine.pk, client=client_for(CONTOSO))
    assert done.status == Status.SUCCEEDED, done.error
    assert done.started_at > RevokeRequest.objects.get(pk=other.pk).finished_at


# -- revoke --unused, revokes, regranted ------------------------------------------------------


def test_revoke_unused_lists_one_tab_separated_line_per_grant_and_exits_non_zero(contoso_synced):
    plan = revoke_bulk_plan(tenant=contoso_synced)
    out = io.StringIO()
    err = io.StringIO()

    with pytest.raises(
        CommandError, match=rf"^add --yes to revoke these {len(plan.candidates)} grant\(s\)$"
    ):
        call_command("revoke", CONTOSO, "--unused", stdout=out, stderr=err)

    lines = out.getvalue().splitlines()
    assert lines == [
        "\t".join(
            (
                str(c.client.app_id),
                c.slot.value,
                c.slot.kind,
                c.slot.resource_app_id,
                c.slot.consent,
            )
        )
        for c in plan.candidates
    ]
    assert f"{ROOMS}\tMail.Read\tapplication\t{GRAPH}\tadmin" in lines
    assert all(len(line.split("\t")) == 5 for line in lines)
    assert not any(PORTAL_APP in line for line in lines)
    assert "left out: 2 grant(s) of Permission Portal" in err.getvalue()
    assert not RevokeRequest.objects.exists()

    one_app, _ = io.StringIO(), None
    with pytest.raises(CommandError):
        call_command("revoke", CONTOSO, "--unused", "--app", LEGACY, stdout=one_app)
    assert one_app.getvalue() == f"{LEGACY}\tDirectory.ReadWrite.All\tapplication\t{GRAPH}\tadmin\n"


def test_revoke_unused_with_yes_revokes_exactly_those_one_request_each(contoso_synced, emu):
    listed = [line.split("\t") for line in _listing(CONTOSO, LEGACY)]

    out, _ = command("revoke", CONTOSO, "--unused", "--app", LEGACY, "--yes")

    [revoke] = RevokeRequest.objects.all()
    assert [
        [
            str(revoke.client.app_id),
            revoke.value,
            revoke.kind,
            str(revoke.resource_app_id),
            revoke.consent,
        ]
    ] == listed
    assert revoke.status == Status.SUCCEEDED
    assert f"revoke request {revoke.pk} (Directory.ReadWrite.All, admin consent): succeeded" in out


def _listing(*args: str) -> list[str]:
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("revoke", args[0], "--unused", "--app", args[1], stdout=out)
    return out.getvalue().splitlines()


def test_revokes_prints_the_tenants_requests_and_the_report_says_what_came_back(
    contoso_synced, emu, client_for
):
    contoso = contoso_synced
    command("revoke", CONTOSO, "--app", ROOMS, "--permission", "Mail.Read", "--type", "application", "--yes")  # fmt: skip
    revoke = RevokeRequest.objects.get()
    # Consent again (a new assignment), then a sync: granted again.
    rooms = sp(contoso, ROOMS)
    entry = revoke.removed[0]
    client_for(CONTOSO).request(
        "POST",
        f"/servicePrincipals/{entry['resourceId']}/appRoleAssignedTo",
        json={k: entry[k] for k in ("principalId", "resourceId", "appRoleId")},
    )
    sync(contoso, client_for)
    revoke.refresh_from_db()

    out, _ = command("revokes", CONTOSO)

    assert json.loads(out) == [
        {
            "id": revoke.pk,
            "app_id": ROOMS,
            "permission": "Mail.Read",
            "type": "application",
            "resource_app_id": GRAPH,
            "consent": "admin",
            "status": "succeeded",
            "regranted": True,
            "requested_at": revoke.created_at.isoformat(),
            "finished_at": revoke.finished_at.isoformat(),
            "error": None,
        }
    ]
    text, _ = command("revokes", CONTOSO, "--format", "text")
    assert text.startswith(f"{revoke.pk}\tsucceeded\t{ROOMS}\tMail.Read\tapplication\tadmin\t")
    assert text.rstrip("\n").endswith("\tgranted again")
    report = tenant_report(tenant=contoso).as_json()
    [app] = [a for a in report["applications"] if a["app_id"] == ROOMS]
    regranted = {g["permission"]: g["regranted"] for g in app["grants"]}
    assert regranted["Mail.Read"] is True
    assert set(regranted.values()) == {True, False}
    assert rooms.pk


def test_revokes_names_a_waiting_request_as_the_pages_do(contoso_synced):
    revoke_request_create(
        tenant=contoso_synced,
        client=sp(contoso_synced, ROOMS),
        slot=GrantSlot(GRAPH, "application", "Mail.Read", "admin"),
        actor=None,
        role=Role.READER,
    )
    out, _ = command("revokes", CONTOSO)
    [row] = json.loads(out)
    assert (row["status"], row["finished_at"], row["regranted"]) == (
        "waiting for approval",
        None,
        False,
    )
    with pytest.raises(CommandError, match="is not onboarded"):
        command("revokes", "11111111-2222-3333-4444-555555555555")


def test_first_party_means_owned_by_one_of_microsofts_tenants(woodgrove):
    teams = sp(woodgrove, TEAMS_SERVICES)
    assert str(teams.app_owner_tenant_id) in MICROSOFT_TENANT_IDS and teams.is_first_party
    assert all(sp(woodgrove, app_id).is_managed_identity for app_id in MANAGED_IDENTITIES)
    assert not sp(woodgrove, PORTAL_APP).is_managed_identity
    assert GraphClient  # the real client synced Woodgrove over HTTPS
