"""Consent sync against the emulator over HTTPS, with real MSAL."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from emulator.generator import generate
from permissions.models import Permission
from tenants.graph import GraphError
from tenants.models import Grant, ServicePrincipal, SyncRun
from tenants.portal_app import APPLICATION_READ, DIRECTORY_READ
from tenants.selectors import grants_at, run_diff
from tenants.services import sync_run_queue, tenant_add
from tenants.sync import sync_run_execute
from tests.helpers import sync
from tests.ids import ASKCODY, CONNECT_247, CONTOSO, DEVICE_READ_ALL, GRAPH, MAIL_READ

pytestmark = pytest.mark.django_db(transaction=True)


def current(tenant, app_id: str) -> set[tuple[str, str, str]]:
    grants = Grant.objects.filter(tenant=tenant, client__app_id=app_id, removed_in_run__isnull=True)
    return set(grants.values_list("kind", "value", "consent"))


def test_a_first_sync_records_every_application_and_delegated_grant(emu, contoso, client_for):
    run = sync(contoso, client_for(CONTOSO))

    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert current(contoso, CONNECT_247) == {
        ("application", "Device.Read.All", "admin"),
        ("application", "Group.Read.All", "admin"),
        ("application", "Organization.Read.All", "admin"),
    }
    askcody = current(contoso, ASKCODY)
    # The admin-consented scope string has spaces at both ends; each scope is one grant.
    assert ("delegated", "openid", "admin") in askcody
    assert ("delegated", "Calendars.Read", "user") in askcody
    assert ("application", "Calendars.Read", "admin") in askcody
    calendars_users = Grant.objects.filter(
        tenant=contoso, client__app_id=ASKCODY, value="Calendars.Read", consent="user"
    )
    assert calendars_users.values("principal_id").distinct().count() == 3
    assert run.grants_added == Grant.objects.filter(tenant=contoso).count() > 30
    assert run.service_principals == ServicePrincipal.objects.filter(tenant=contoso).count()
    assert run.graph_requests > 0 and run.finished_at is not None
    contoso.refresh_from_db()
    assert contoso.last_good_sync == run and contoso.next_sync_at > run.finished_at


def test_graph_is_the_authority_for_the_catalog_of_granted_resources(emu, contoso, client_for):
    sync(contoso, client_for(CONTOSO))
    device = Permission.objects.get(
        resource__app_id=GRAPH, kind="application", value="Device.Read.All"
    )
    assert str(device.graph_id) == DEVICE_READ_ALL
    assert device.source == Permission.Source.GRAPH
    intune = Permission.objects.get(
        resource__app_id="c161e42e-d4df-4a3d-9b42-e7a3c31f59d4", value="update_device_health"
    )
    assert intune.kind == "application"


def test_an_unchanged_resync_writes_no_grant_rows(emu, contoso, client_for):
    first = sync(contoso, client_for(CONTOSO))
    with CaptureQueriesContext(connection) as queries:
        second = sync(contoso, client_for(CONTOSO))

    grant_writes = [
        q["sql"]
        for q in queries.captured_queries
        if "tenants_grant" in q["sql"]
        and q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
    ]
    assert grant_writes == []
    assert (second.grants_added, second.grants_removed, second.grants_unchanged) == (
        0,
        0,
        first.grants_added,
    )


def test_grants_added_and_removed_between_runs_keep_history_and_diff(emu, contoso, client_for):
    client = client_for(CONTOSO)
    first = sync(contoso, client)
    device = Grant.objects.get(tenant=contoso, client__app_id=CONNECT_247, value="Device.Read.All")
    client.request(
        "DELETE",
        f"/servicePrincipals/{device.resource_object_id}/appRoleAssignedTo/{device.graph_object_id}",
    )
    connect = ServicePrincipal.objects.get(tenant=contoso, app_id=CONNECT_247)
    client.request(
        "POST",
        f"/servicePrincipals/{device.resource_object_id}/appRoleAssignedTo",
        json={
            "principalId": str(connect.object_id),
            "resourceId": str(device.resource_object_id),
            "appRoleId": MAIL_READ,
        },
    )

    second = sync(contoso, client)

    assert (second.grants_added, second.grants_removed) == (1, 1)
    diff = run_diff(second)
    assert diff.since == first
    assert [g.value for g in diff.added] == ["Mail.Read"]
    assert [g.value for g in diff.removed] == ["Device.Read.All"]
    assert "Device.Read.All" in set(
        grants_at(first).filter(client=connect).values_list("value", flat=True)
    )
    assert "Device.Read.All" not in set(
        grants_at(second).filter(client=connect).values_list("value", flat=True)
    )
    assert grants_at(first).count() == grants_at(second).count()


def test_throttling_is_waited_out_as_graph_asks_and_recorded(emu, contoso, client_for, sleep):
    emu.set_faults(
        [{"path": "oauth2PermissionGrants", "status": 429, "retry_after": 7, "times": 2}]
    )
    run = sync(contoso, client_for(CONTOSO))
    assert run.status == SyncRun.Status.SUCCEEDED
    assert sleep.waits == [7.0, 7.0]
    assert (run.throttled_waits, run.throttled_seconds) == (2, 14.0)


def test_a_503_is_retried_until_graph_answers(emu, contoso, client_for):
    emu.set_faults([{"path": "/v1.0/servicePrincipals$", "status": 503, "times": 1}])
    run = sync(contoso, client_for(CONTOSO))
    assert run.status == SyncRun.Status.SUCCEEDED
    assert run.throttled_waits == 1


def test_a_dropped_connection_mid_paging_is_retried(emu, client_for, sleep):
    scenario = generate(
        service_principals=50, app_role_assignments=100, delegated_grants=1500, users=100
    )
    emu.load(scenario)
    tenant = tenant_add(tenant_id=scenario["tenants"][0]["id"])[0]
    # The second request for delegated grants is the first @odata.nextLink page.
    emu.set_faults([{"path": "oauth2PermissionGrants", "drop": True, "after": 1, "times": 1}])

    run = sync(tenant, client_for(str(tenant.tenant_id)))

    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert len(sleep.waits) == 1  # one back-off before asking for that page again
    grant_objects = (
        Grant.objects.filter(tenant=tenant, kind="delegated").values("graph_object_id").distinct()
    )
    assert grant_objects.count() == 1500
    requests = emu.counters()["requests"]
    assert requests["GET /v1.0/oauth2PermissionGrants"] == 3  # 2 pages + the retried one


def test_a_persistent_failure_fails_the_run_and_keeps_the_previous_snapshot(
    emu, contoso, client_for
):
    first = sync(contoso, client_for(CONTOSO))
    before = set(
        Grant.objects.filter(tenant=contoso, removed_in_run__isnull=True).values_list(
            "pk", flat=True
        )
    )
    emu.set_faults([{"path": "oauth2PermissionGrants", "status": 503}])

    run = sync_run_queue(tenant=contoso)
    with pytest.raises(GraphError) as failure:
        sync_run_execute(run_id=run.pk, client=client_for(CONTOSO))

    run.refresh_from_db()
    assert failure.value.retryable
    assert run.status == SyncRun.Status.FAILED
    assert "oauth2PermissionGrants" in run.error and "503" in run.error
    assert (
        set(
            Grant.objects.filter(tenant=contoso, removed_in_run__isnull=True).values_list(
                "pk", flat=True
            )
        )
        == before
    )
    contoso.refresh_from_db()
    assert contoso.last_good_sync == first


def test_a_portal_without_application_read_all_fails_with_the_missing_permission_named(
    emu, contoso, client_for
):
    portal = next(
        sp
        for sp in emu.state(CONTOSO)["servicePrincipals"]
        if sp["appId"] == emu.env()["PORTAL_CLIENT_ID"]
    )
    graph = next(sp for sp in emu.state(CONTOSO)["servicePrincipals"] if sp["appId"] == GRAPH)
    client = client_for(CONTOSO)
    # Synced once (a first sync that Graph refuses is retried first: tests/tenants/
    # test_sync_truth.py); then the portal's read rights are taken away, as a cautious
    # admin might.
    sync(contoso, client)
    for assignment in emu.state(CONTOSO)["appRoleAssignments"]:
        if assignment["principalId"] == portal["id"] and assignment["appRoleId"] in {
            APPLICATION_READ.graph_id,
            DIRECTORY_READ.graph_id,
        }:
            client.request(
                "DELETE", f"/servicePrincipals/{graph['id']}/appRoleAssignedTo/{assignment['id']}"
            )
    emu.expire_tokens()  # roles are in the token: a new one must be fetched

    run = sync_run_queue(tenant=contoso)
    with pytest.raises(GraphError):
        sync_run_execute(run_id=run.pk, client=client_for(CONTOSO))

    run.refresh_from_db()
    assert run.status == SyncRun.Status.FAILED
    assert "Application.Read.All" in run.error and CONTOSO in run.error


def test_an_expired_secret_fails_with_the_fix(emu, contoso, client_for, settings):
    settings.PORTAL_CLIENT_SECRET = "emulator-portal-old-secret"
    run = sync_run_queue(tenant=contoso)
    with pytest.raises(GraphError) as failure:
        sync_run_execute(run_id=run.pk, client=client_for(CONTOSO))
    run.refresh_from_db()
    assert not failure.value.retryable
    assert "AADSTS7000222" in run.error and "create a new secret" in run.error


def test_a_certificate_authenticates_the_portal_too(emu, contoso, client_for, settings):
    credentials = emu.credentials(emu.env()["PORTAL_CLIENT_ID"])
    settings.PORTAL_CLIENT_SECRET = ""
    settings.PORTAL_CLIENT_CERTIFICATE = credentials.certificate_path.read_text()
    settings.PORTAL_CLIENT_PRIVATE_KEY = credentials.private_key_path.read_text()
    run = sync(contoso, client_for(CONTOSO))
    assert run.status == SyncRun.Status.SUCCEEDED, run.error


def test_a_run_claimed_by_another_worker_is_left_alone(emu, contoso, client_for):
    run = sync_run_queue(tenant=contoso)
    SyncRun.objects.filter(pk=run.pk).update(status=SyncRun.Status.RUNNING)
    result = sync_run_execute(run_id=run.pk, client=client_for(CONTOSO))
    assert result.status == SyncRun.Status.RUNNING
    assert emu.counters()["total"] == 0


def test_a_sync_records_the_tenants_default_domain_and_names_a_tenant_added_by_id(emu, client_for):
    tenant = tenant_add(tenant_id=CONTOSO)[0]
    assert tenant.name == CONTOSO
    sync(tenant, client_for(CONTOSO))
    tenant.refresh_from_db()
    assert (tenant.name, tenant.default_domain) == ("Contoso", "contoso.onmicrosoft.com")


def test_a_tenant_named_by_its_admin_keeps_that_name(emu, contoso, client_for):
    contoso.name = "Contoso (production)"
    contoso.save()
    sync(contoso, client_for(CONTOSO))
    contoso.refresh_from_db()
    assert contoso.name == "Contoso (production)"
