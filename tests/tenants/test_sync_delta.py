"""Delta re-syncs against the emulator over HTTPS, through the real sync: what changed is
read, merged and applied; a full read when the token is gone, after a failed sync and
every SYNC_FULL_READ_DAYS, which checks what the deltas said."""

from datetime import timedelta

import pytest

from tenants.delta import Collections, base_load
from tenants.graph import GraphError
from tenants.models import Grant, ServicePrincipal, SyncRun, TenantDelta
from tenants.services import sync_run_queue
from tenants.sync import sync_run_apply_held, sync_run_execute
from tenants.sync_read import DELEGATED_FIELDS
from tests.helpers import sync
from tests.ids import ASKCODY, CONNECT_247, CONTOSO, GRAPH, LOOKOUT
from tests.tenants.helpers import consent_and_unconsent_outside, graph_grants, tampered

pytestmark = pytest.mark.django_db(transaction=True)

DELEGATED_LISTING = r"/v1.0/oauth2PermissionGrants$"
SP_LISTING = r"/v1.0/servicePrincipals$"
DELTAS = r"/delta$"
CATALOG_READ = r"/v1.0/servicePrincipals/[0-9a-f-]{36}$"


def current(tenant, app_id: str) -> set[tuple[str, str, str]]:
    grants = Grant.objects.filter(tenant=tenant, client__app_id=app_id, removed_in_run__isnull=True)
    return set(grants.values_list("kind", "value", "consent"))


def test_an_unchanged_resync_reads_only_the_deltas(emu, contoso, client_for):
    first = sync(contoso, client_for(CONTOSO))
    emu.reset_counters()

    second = sync(contoso, client_for(CONTOSO))

    assert (first.read_mode, second.read_mode) == ("full", "delta")
    assert emu.requests_to(DELTAS) == 2  # one page of each, nothing changed
    # Nor the owners and credentials (no delta shows an owner change): full reads do.
    assert emu.requests_to(DELEGATED_LISTING) == 0 and emu.requests_to(SP_LISTING) == 0
    assert emu.requests_to(r"/v1.0/applications") == 0  # no principal changed: no facts read
    assert emu.requests_to(r"/oauth2PermissionGrants/\$count") == 0
    assert emu.requests_to(CATALOG_READ) == 0  # no API changed: the catalog is as it was
    assert (second.grants_added, second.grants_removed) == (0, 0)
    assert second.grants_unchanged == first.grants_added
    assert second.graph_requests < first.graph_requests
    assert second.notes == []


def test_a_delta_resync_finds_consents_given_and_grants_removed_outside_the_portal(
    emu, contoso, client_for
):
    sync(contoso, client_for(CONTOSO))
    graph = client_for(CONTOSO)
    assert graph_grants(emu, CONTOSO, emu.sp_id(CONTOSO, CONNECT_247)) == []
    graph_sp = emu.sp_id(CONTOSO, GRAPH)
    admin_grant = consent_and_unconsent_outside(emu, graph, CONTOSO)
    before = current(contoso, ASKCODY)
    emu.reset_counters()

    run = sync(contoso, client_for(CONTOSO))

    assert run.read_mode == "delta", run.notes
    # The API the new consent names has its delegated permissions described again.
    assert emu.requests_to(f"/v1.0/servicePrincipals/{graph_sp}$") == 1
    assert {("delegated", "User.Read", "admin"), ("delegated", "openid", "admin")} <= current(
        contoso, CONNECT_247
    )
    gone = {("delegated", v, "admin") for v in admin_grant["scope"].split()}
    assert gone and gone <= before and not gone & current(contoso, ASKCODY)
    assert run.grants_added == 2 and run.grants_removed == len(gone)


def test_an_update_that_carries_only_what_changed_is_merged_field_by_field(
    emu, contoso, client_for
):
    """Graph may send an updated object with only the properties that changed."""
    sync(contoso, client_for(CONTOSO))
    graph_sp = emu.sp_id(CONTOSO, GRAPH)
    emu.update_service_principal(CONTOSO, graph_sp, displayName="Microsoft Graph (renamed)")
    before = Grant.objects.filter(tenant=contoso, removed_in_run__isnull=True).count()

    def only_what_changed(body: dict) -> None:
        body["value"] = [{"id": sp["id"], "displayName": sp["displayName"]} for sp in body["value"]]

    client = client_for(CONTOSO)
    with tampered(client.session, r"/servicePrincipals/delta", only_what_changed):
        run = sync(contoso, client)

    assert run.read_mode == "delta" and run.notes == []
    principal = ServicePrincipal.objects.get(tenant=contoso, app_id=GRAPH)
    assert principal.display_name == "Microsoft Graph (renamed)" and principal.removed_at is None
    # Its app roles were kept: the application grants on it are read and stay.
    assert (run.grants_added, run.grants_removed, run.grants_unchanged) == (0, 0, before)


def test_application_grants_are_read_per_resource_at_a_delta_resync(emu, contoso, client_for):
    """appRoleAssignedTo has no delta, and a new assignment changes no service principal."""
    sync(contoso, client_for(CONTOSO))
    lookout, graph_sp = emu.sp_id(CONTOSO, LOOKOUT), emu.sp_id(CONTOSO, GRAPH)
    graph = client_for(CONTOSO)
    held = {
        a["appRoleId"]
        for a in emu.state(CONTOSO)["appRoleAssignments"]
        if a["principalId"] == lookout and a["resourceId"] == graph_sp
    }
    roles = graph.get_json(f"/servicePrincipals/{graph_sp}?$select=appRoles")["appRoles"]
    role = next(
        r for r in roles if r["id"] not in held and "Application" in r["allowedMemberTypes"]
    )
    graph.request(
        "POST",
        f"/servicePrincipals/{graph_sp}/appRoleAssignedTo",
        json={"principalId": lookout, "resourceId": graph_sp, "appRoleId": role["id"]},
    )

    run = sync(contoso, client_for(CONTOSO))

    assert run.read_mode == "delta"
    assert ("application", role["value"], "admin") in current(contoso, LOOKOUT)
    assert run.grants_added == 1


def test_a_service_principal_deleted_is_removed_with_its_grants(emu, contoso, client_for):
    sync(contoso, client_for(CONTOSO))
    assert current(contoso, LOOKOUT)
    emu.delete_service_principal(CONTOSO, emu.sp_id(CONTOSO, LOOKOUT))

    run = sync(contoso, client_for(CONTOSO))

    assert run.read_mode == "delta"
    assert ServicePrincipal.objects.get(tenant=contoso, app_id=LOOKOUT).removed_at is not None
    assert current(contoso, LOOKOUT) == set()
    assert run.grants_removed > 0


def test_a_lost_sync_state_410_means_a_full_read_and_deltas_after_it(emu, contoso, client_for):
    sync(contoso, client_for(CONTOSO))
    emu.expire_delta_tokens()  # Graph lost the sync state: 410 Gone, resyncRequired
    emu.reset_counters()

    run = sync(contoso, client_for(CONTOSO))

    assert run.read_mode == "full"
    assert any("410 resyncRequired" in note for note in run.notes), run.notes
    assert emu.requests_to(DELEGATED_LISTING) >= 1
    assert (run.grants_added, run.grants_removed) == (0, 0)
    assert sync(contoso, client_for(CONTOSO)).read_mode == "delta"


def test_a_token_past_its_age_means_a_full_read(emu, contoso, client_for):
    sync(contoso, client_for(CONTOSO))
    emu.advance_clock(8 * 86400)  # Graph keeps a directory delta token for 7 days

    run = sync(contoso, client_for(CONTOSO))

    assert run.read_mode == "full"
    assert any("400 syncStateNotFound" in note for note in run.notes), run.notes
    assert (run.grants_added, run.grants_removed) == (0, 0)


def test_a_failed_delta_round_applies_nothing_and_the_next_sync_reads_everything(
    emu, contoso, client_for
):
    sync(contoso, client_for(CONTOSO))
    askcody = emu.sp_id(CONTOSO, ASKCODY)
    grant = graph_grants(emu, CONTOSO, askcody)[0]
    client_for(CONTOSO).request("DELETE", f"/oauth2PermissionGrants/{grant['id']}")
    emu.update_service_principal(CONTOSO, askcody, displayName="AskCody (renamed)")
    before = current(contoso, ASKCODY)
    link_before = TenantDelta.objects.get(tenant=contoso).grants_link
    # The service principals' round is read, then the grants' fails.
    emu.set_faults([{"path": "/v1.0/oauth2PermissionGrants/delta", "status": 500, "times": 1}])
    queued = sync_run_queue(tenant=contoso)

    with pytest.raises(GraphError):
        sync_run_execute(run_id=queued.pk, client=client_for(CONTOSO))

    assert SyncRun.objects.get(pk=queued.pk).status == SyncRun.Status.FAILED
    assert current(contoso, ASKCODY) == before
    assert ServicePrincipal.objects.get(tenant=contoso, app_id=ASKCODY).display_name != (
        "AskCody (renamed)"
    )
    stored = TenantDelta.objects.get(tenant=contoso)
    assert stored.grants_link == link_before and stored.full_read_reason
    emu.clear_faults()
    emu.reset_counters()

    run = sync(contoso, client_for(CONTOSO))

    assert run.read_mode == "full"
    assert any(f"sync ({queued.pk}) failed" in note for note in run.notes), run.notes
    assert emu.requests_to(DELEGATED_LISTING) >= 1
    assert run.grants_removed == len(grant["scope"].split())
    assert ServicePrincipal.objects.get(tenant=contoso, app_id=ASKCODY).display_name == (
        "AskCody (renamed)"
    )
    assert not TenantDelta.objects.get(tenant=contoso).full_read_reason


def test_every_few_days_a_full_read_checks_what_the_deltas_said(emu, contoso, client_for, settings):
    settings.SYNC_FULL_READ_DAYS = 7
    sync(contoso, client_for(CONTOSO))
    sync(contoso, client_for(CONTOSO))
    stored = TenantDelta.objects.get(tenant=contoso)
    TenantDelta.objects.filter(pk=stored.pk).update(
        full_read_at=stored.full_read_at - timedelta(days=7)
    )
    emu.reset_counters()

    run = sync(contoso, client_for(CONTOSO))

    assert run.read_mode == "full" and run.delta_discrepancies == 0
    assert emu.requests_to(DELTAS) == 2 and emu.requests_to(DELEGATED_LISTING) >= 1
    assert emu.requests_to("/v1.0/servicePrincipals$") >= 2  # the listing and the owners
    stored.refresh_from_db()
    assert stored.full_read_at > run.started_at - timedelta(minutes=1)
    assert sync(contoso, client_for(CONTOSO)).read_mode == "delta"


def test_a_full_read_counts_what_the_deltas_missed(emu, contoso, client_for):
    sync(contoso, client_for(CONTOSO))
    stored = TenantDelta.objects.get(tenant=contoso)
    sps, grants = base_load(bytes(stored.base))
    missed = next(iter(grants))
    del grants[missed]  # as if a delta round had not reported this grant
    kept = Collections(
        sps, grants, links=None, full_read_at=stored.full_read_at - timedelta(days=8)
    )
    TenantDelta.objects.filter(pk=stored.pk).update(
        base=kept.dump(), full_read_at=kept.full_read_at
    )

    run = sync(contoso, client_for(CONTOSO))

    assert run.read_mode == "full" and run.delta_discrepancies == 1
    assert any("differs from what the delta queries said in 1" in n for n in run.notes)
    assert (run.grants_added, run.grants_removed) == (0, 0)  # the full read is the truth


def test_a_held_delta_read_keeps_the_delta_state_where_it_was(
    emu, contoso, client_for, settings, alice
):
    settings.SYNC_HOLD_REMOVED_MIN = 5  # Contoso is small; the share (20%) as shipped
    sync(contoso, client_for(CONTOSO))
    kept = TenantDelta.objects.get(tenant=contoso)
    for app_id in (ASKCODY, LOOKOUT):
        emu.delete_service_principal(CONTOSO, emu.sp_id(CONTOSO, app_id))
    queued = sync_run_queue(tenant=contoso)

    held = sync_run_execute(run_id=queued.pk, client=client_for(CONTOSO))

    assert (held.status, held.read_mode) == (SyncRun.Status.HELD, "delta")
    assert TenantDelta.objects.get(tenant=contoso).grants_link == kept.grants_link
    applied = sync_run_apply_held(run=held, actor=alice)
    assert applied.status == SyncRun.Status.SUCCEEDED and current(contoso, LOOKOUT) == set()
    # The next round starts where the last applied delta state was: it sees the same
    # removals again, which change nothing now.
    after = sync(contoso, client_for(CONTOSO))
    assert after.read_mode == "delta" and (after.grants_added, after.grants_removed) == (0, 0)


def test_a_kept_delta_state_that_cannot_be_read_means_a_full_read(emu, contoso, client_for):
    sync(contoso, client_for(CONTOSO))
    TenantDelta.objects.filter(tenant=contoso).update(base=b"not zlib")
    emu.reset_counters()

    run = sync(contoso, client_for(CONTOSO))

    assert run.read_mode == "full" and emu.requests_to(DELTAS) == 2  # the two latest links
    assert any("kept delta state could not be used" in note for note in run.notes)
    assert (run.grants_added, run.grants_removed) == (0, 0)
    assert sync(contoso, client_for(CONTOSO)).read_mode == "delta"


def small_pages(client, contoso) -> None:
    """The grants' deltaLink re-taken with 2 changes a page, so a round has several."""
    link = client.get_json(
        f"/oauth2PermissionGrants/delta?$select={DELEGATED_FIELDS}&$top=2&$deltatoken=latest"
    )["@odata.deltaLink"]
    TenantDelta.objects.filter(tenant=contoso).update(grants_link=link)


def test_a_round_of_several_pages_is_read_to_its_delta_link(emu, contoso, client_for):
    sync(contoso, client_for(CONTOSO))
    graph = client_for(CONTOSO)
    small_pages(graph, contoso)
    askcody = emu.sp_id(CONTOSO, ASKCODY)
    users = [g for g in graph_grants(emu, CONTOSO, askcody) if g["consentType"] == "Principal"]
    assert len(users) >= 3
    for grant in users:
        graph.request("DELETE", f"/oauth2PermissionGrants/{grant['id']}")
    emu.reset_counters()

    run = sync(contoso, client_for(CONTOSO))

    assert run.read_mode == "delta"
    assert emu.requests_to(r"/oauth2PermissionGrants/delta$") == -(-len(users) // 2)
    assert run.grants_removed == sum(len(g["scope"].split()) for g in users)


def test_a_round_that_fails_on_a_later_page_applies_nothing(emu, contoso, client_for):
    sync(contoso, client_for(CONTOSO))
    graph = client_for(CONTOSO)
    small_pages(graph, contoso)
    askcody = emu.sp_id(CONTOSO, ASKCODY)
    for grant in graph_grants(emu, CONTOSO, askcody)[:3]:
        graph.request("DELETE", f"/oauth2PermissionGrants/{grant['id']}")
    before = current(contoso, ASKCODY)
    emu.set_faults([{"path": "/oauth2PermissionGrants/delta$", "status": 500, "after": 1}])
    queued = sync_run_queue(tenant=contoso)

    with pytest.raises(GraphError):
        sync_run_execute(run_id=queued.pk, client=client_for(CONTOSO))

    assert current(contoso, ASKCODY) == before  # the first page's removals are not applied
    emu.clear_faults()
    run = sync(contoso, client_for(CONTOSO))
    assert run.read_mode == "full" and run.grants_removed > 0
