"""The sync on a tenant as Graph really behaves (the emulator's switches, over HTTPS):
short listings, principals that vanish, tokens without their new roles, throttling, odd
data. None of it may become a removal, a missed grant or a failed sync of the tenant.

Each test prints one ``FIGURE`` line (requests, seconds, outcome) for the issue's notes:
``pytest -s tests/tenants/test_sync_truth.py | grep FIGURE``.
"""

import re
import time
import uuid
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from emulator import run_emulator
from tenants.access import Role
from tenants.graph import PRIORITY_HIGH, GraphClient, GraphError, new_session
from tenants.models import AuditEvent, Grant, ServicePrincipal, SyncRun, Tenant
from tenants.onboarding import tenant_health
from tenants.revokes import revoke_request_create, revoke_request_execute
from tenants.services import sync_run_again, sync_run_queue, tenant_add
from tenants.slots import GrantSlot
from tenants.sync import sync_run_execute
from tenants.tasks import SYNC_MAX_RETRIES
from tests.ids import ASKCODY, CONTOSO, LOOKOUT, NORTHWIND, PORTAL_APP
from tests.tenants.helpers import tampered

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def full_reads(settings) -> None:
    """These re-syncs are full reads: they are about the listings (test_sync_delta.py has
    the delta re-syncs)."""
    settings.SYNC_FULL_READ_DAYS = 0


INTUNE = "c161e42e-d4df-4a3d-9b42-e7a3c31f59d4"
WOODGROVE = "5a7d3e2b-9c41-4f8e-b6a0-1d2c3b4a5e6f"
GLOBEX_TRAVEL = "6e7f8a9b-0c1d-4e2f-9a3b-4c5d6e7f8091"  # SAML app: user-only roles
UNTITLED = "8a9b0c1d-2e3f-4a4b-9c5d-6e7f80910213"  # no displayName
CONTROL_CHARACTERS = "0c1d2e3f-4a5b-4c6d-9e7f-809102132435"
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def figure(name: str, run: SyncRun, started: float) -> None:
    print(
        f"FIGURE {name}: requests={run.graph_requests} seconds={time.monotonic() - started:.2f} "
        f"outcome={run.status} added={run.grants_added} removed={run.grants_removed}"
    )


def sync(tenant: Tenant, client: GraphClient, **options: Any) -> SyncRun:
    run = sync_run_queue(tenant=tenant)
    assert run is not None
    return sync_run_execute(run_id=run.pk, client=client, **options)


def current(tenant: Tenant) -> set[tuple[uuid.UUID, str, str, str]]:
    """The tenant's current grants, by client appId, kind, value and Graph object."""
    return set(
        Grant.objects.filter(tenant=tenant, removed_in_run__isnull=True).values_list(
            "client__app_id", "kind", "value", "graph_object_id"
        )
    )


def delegated_ids_in_graph(emu, tenant_id: str) -> set[str]:
    return {grant["id"] for grant in emu.state(tenant_id)["oauth2PermissionGrants"]}


def delegated_ids(tenant: Tenant) -> set[str]:
    return set(
        Grant.objects.filter(
            tenant=tenant, removed_in_run__isnull=True, kind="delegated"
        ).values_list("graph_object_id", flat=True)
    )


@pytest.fixture
def graph_headers(emu) -> list[dict[str, str]]:
    """The headers of every Graph request the emulator received (batched ones too)."""
    seen: list[dict[str, str]] = []
    handle = emu.app.handle

    def recording(request: Any) -> Any:
        if request.path.startswith("/v1.0/"):
            seen.append({"path": request.path, **request.headers})
        return handle(request)

    emu.app.handle = recording
    return seen


# -- an incomplete delegated-grant listing ----------------------------------------------------


def test_a_resync_under_an_incomplete_listing_removes_nothing(emu, contoso, client_for):
    first = sync(contoso, client_for(CONTOSO))
    before = current(contoso)
    emu.set_behaviour(incomplete_grants={"clients": [ASKCODY]})
    emu.reset_counters()

    started = time.monotonic()
    run = sync(contoso, client_for(CONTOSO))
    figure("incomplete listing, re-sync", run, started)

    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert (run.grants_added, run.grants_removed) == (0, 0)
    assert current(contoso) == before and first.grants_added == len(before)
    # The four AskCody grants the listing left out were read from AskCody itself.
    askcody = emu.sp_id(CONTOSO, ASKCODY)
    assert emu.requests_to(f"servicePrincipals/{askcody}/oauth2PermissionGrants") == 1
    assert any("the other 4 were read from their clients" in note for note in run.notes)


def test_a_first_sync_under_an_incomplete_listing_misses_nothing(emu, contoso, client_for):
    emu.set_behaviour(incomplete_grants={"fraction": 0.5, "seed": 3})

    started = time.monotonic()
    run = sync(contoso, client_for(CONTOSO))
    figure("incomplete listing, first sync", run, started)

    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert delegated_ids(contoso) == delegated_ids_in_graph(emu, CONTOSO)
    calendars = Grant.objects.filter(
        tenant=contoso, client__app_id=ASKCODY, value="Calendars.Read", consent="user"
    )
    assert calendars.values("principal_id").distinct().count() == 3


def test_a_complete_listing_costs_one_count_and_no_client_reads(emu, contoso, client_for):
    run = sync(contoso, client_for(CONTOSO))

    assert run.notes == []
    assert emu.requests_to(r"oauth2PermissionGrants/\$count") == 1
    assert emu.requests_to(r"servicePrincipals/[^/]+/oauth2PermissionGrants") == 0


def test_where_graph_will_not_count_a_resync_confirms_removals_client_by_client(
    emu, contoso, client_for
):
    sync(contoso, client_for(CONTOSO))
    before = current(contoso)
    emu.set_behaviour(incomplete_grants={"clients": [ASKCODY]})
    emu.set_faults([{"path": r"oauth2PermissionGrants/\$count", "status": 403}])

    started = time.monotonic()
    run = sync(contoso, client_for(CONTOSO))
    figure("incomplete listing, no count, re-sync", run, started)

    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert current(contoso) == before
    assert any("Graph would not count" in note for note in run.notes)
    # Only the client whose grants the listing did not show was asked.
    assert emu.requests_to(r"servicePrincipals/[^/]+/oauth2PermissionGrants") == 1


def test_where_graph_will_not_count_a_first_sync_reads_every_client(emu, contoso, client_for):
    emu.set_behaviour(incomplete_grants={"fraction": 0.5, "seed": 3})
    emu.set_faults([{"path": r"oauth2PermissionGrants/\$count", "status": 400}])

    run = sync(contoso, client_for(CONTOSO))

    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert delegated_ids(contoso) == delegated_ids_in_graph(emu, CONTOSO)
    principals = len(emu.state(CONTOSO)["servicePrincipals"])
    assert emu.requests_to(r"servicePrincipals/[^/]+/oauth2PermissionGrants") == principals


def test_the_count_is_asked_for_as_an_advanced_query(emu, contoso, client_for, graph_headers):
    sync(contoso, client_for(CONTOSO))

    counts = [h for h in graph_headers if h["path"].endswith("/$count")]
    assert [h.get("consistencylevel") for h in counts] == ["eventual"]


# -- principals that vanish, principals with odd fields -----------------------------------------


def test_a_vanished_principal_skips_with_a_note_and_removes_nothing(emu, contoso, client_for):
    sync(contoso, client_for(CONTOSO))
    before = current(contoso)
    # Intune's API (a resource with app roles) and AskCody (a client, whose grants the
    # listing leaves out) answer 404 on every read, though still listed.
    emu.set_behaviour(
        vanished_principals=[INTUNE, ASKCODY], incomplete_grants={"clients": [ASKCODY]}
    )

    started = time.monotonic()
    run = sync(contoso, client_for(CONTOSO))
    figure("vanished principals", run, started)

    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert (run.grants_added, run.grants_removed) == (0, 0)
    assert current(contoso) == before
    intune, askcody = emu.sp_id(CONTOSO, INTUNE), emu.sp_id(CONTOSO, ASKCODY)
    assert any(intune in note and "application grants" in note for note in run.notes)
    assert any(askcody in note and "delegated grants" in note for note in run.notes)
    assert ("update_device_health", "application") in {
        (value, kind) for app, kind, value, _ in current(contoso) if str(app) == LOOKOUT
    }


def test_a_vanished_principal_on_a_first_sync_fails_nothing(emu, contoso, client_for):
    emu.set_behaviour(vanished_principals=[INTUNE])

    run = sync(contoso, client_for(CONTOSO))

    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert len(run.notes) == 1 and "404" in run.notes[0]
    assert ServicePrincipal.objects.filter(tenant=contoso, app_id=INTUNE).exists()


def test_principals_with_fields_the_portal_does_not_expect_are_kept_or_skipped(
    emu, contoso, client_for
):
    client = client_for(CONTOSO)
    sync(contoso, client)
    before = current(contoso)
    askcody, lookout = emu.sp_id(CONTOSO, ASKCODY), emu.sp_id(CONTOSO, LOOKOUT)

    def odd(body: dict[str, Any]) -> None:
        for sp in body["value"]:
            if sp["id"] == askcody:
                sp["appId"] = None  # skipped: it and its grants stay as they were
            elif sp["id"] == lookout:
                sp["displayName"] = "Look\x00out\u202e\x1b[31m" + "x" * 400
                sp["appOwnerOrganizationId"] = "not-a-guid"
                sp["verifiedPublisher"] = "a string, not an object"
        body["value"].append({"id": "not-a-guid", "appId": str(uuid.uuid4())})
        body["value"].append("not an object")

    with tampered(client.session, r"/v1\.0/servicePrincipals\?", odd):
        run = sync(contoso, client)

    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert current(contoso) == before
    assert not ServicePrincipal.objects.get(tenant=contoso, app_id=ASKCODY).removed_at
    name = ServicePrincipal.objects.get(tenant=contoso, app_id=LOOKOUT).display_name
    # Each hidden character shows as a mark that the pages flag: nothing is silently merged.
    assert name.startswith("Look\ufffdout") and "[31m" in name and len(name) == 300
    assert not any(ch in name for ch in "\x00\u202e\x1b")
    assert len(run.notes) == 5, run.notes


def test_grants_with_fields_the_portal_does_not_expect_stay_as_they_were(emu, contoso, client_for):
    client = client_for(CONTOSO)
    sync(contoso, client)
    before = current(contoso)

    def odd_assignments(body: dict[str, Any]) -> None:
        for answer in body.get("responses", []):
            for assignment in (answer.get("body") or {}).get("value", [])[:1]:
                assignment["appRoleId"] = "Device.Read.All"  # not a GUID

    def odd_grants(body: dict[str, Any]) -> None:
        body["value"][0]["scope"] = "User.Read Bad\x00Scope"
        body["value"][1]["clientId"] = 42

    with (
        tampered(client.session, r"/\$batch", odd_assignments),
        tampered(client.session, r"/oauth2PermissionGrants\?", odd_grants),
    ):
        run = sync(contoso, client)

    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert run.grants_removed == 0 and current(contoso) == before
    assert any("cannot store" in note for note in run.notes)


def test_woodgroves_odd_principals_sync_with_notes(emu, client_for):
    woodgrove = tenant_add(tenant_id=WOODGROVE, name="Woodgrove")[0]

    started = time.monotonic()
    run = sync(woodgrove, client_for(WOODGROVE))
    figure("Woodgrove first sync", run, started)

    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    names = dict(
        ServicePrincipal.objects.filter(tenant=woodgrove).values_list("app_id", "display_name")
    )
    assert names[uuid.UUID(UNTITLED)] == UNTITLED
    assert not any(ord(ch) < 32 or ch == "\u202e" for ch in names[uuid.UUID(CONTROL_CHARACTERS)])
    assert any("control characters" in note for note in run.notes)


# -- only application roles are application grants ---------------------------------------------


def test_an_sso_apps_user_assignments_are_never_paged(emu, client_for):
    woodgrove = tenant_add(tenant_id=WOODGROVE, name="Woodgrove")[0]

    run = sync(woodgrove, client_for(WOODGROVE))

    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    globex = emu.sp_id(WOODGROVE, GLOBEX_TRAVEL)
    portal = emu.sp_id(WOODGROVE, PORTAL_APP)  # its roles are for users too
    print(
        f"FIGURE SSO app paging: requests to its appRoleAssignedTo="
        f"{emu.requests_to(f'{globex}/appRoleAssignedTo')} (sync: {run.graph_requests} requests)"
    )
    assert emu.requests_to(f"{globex}/appRoleAssignedTo") == 0
    # The portal's own roles are read once, for who holds them (tenants.memberships).
    assert emu.requests_to(f"{portal}/appRoleAssignedTo") == 1
    payroll = emu.sp_id(WOODGROVE, "7e1c2d3b-4a5f-4e6d-8c7b-9a0f1e2d3c4b")
    assert emu.requests_to(f"{payroll}/appRoleAssignedTo") == 1
    assert Grant.objects.filter(tenant=woodgrove, value="Payroll.Read.All").exists()


# -- tokens without the new roles ---------------------------------------------------------------


def consent(emu, tenant_id: str, user: str) -> None:
    response = new_session().post(
        f"{emu.url}/{tenant_id}/adminconsent",
        data={
            "client_id": PORTAL_APP,
            "redirect_uri": "http://127.0.0.1:8000/tenants/connect/callback/",
            "decision": "accept",
            "user": user,
        },
        allow_redirects=False,
    )
    assert response.status_code == 302, response.text


def test_a_403_drops_the_cached_token_and_the_fresh_one_succeeds(emu, client_for):
    emu.set_behaviour(token_role_lag=30)
    consent(emu, NORTHWIND, "nina@northwind.onmicrosoft.com")
    northwind = tenant_add(tenant_id=NORTHWIND, name="Northwind")[0]
    # A token fetched right after consent, without the roles, stays in MSAL's cache.
    with pytest.raises(GraphError):
        client_for(NORTHWIND).get_json("/servicePrincipals?$top=1")
    emu.advance_clock(31)
    emu.reset_counters()

    started = time.monotonic()
    run = sync(northwind, client_for(NORTHWIND))
    figure("token without the new roles, lag passed", run, started)

    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    requests_ = emu.counters()["requests"]
    assert requests_["POST /{tenant}/oauth2/v2.0/token"] == 1  # the fresh one
    assert requests_["GET /v1.0/organization"] == 2  # refused, then with the fresh token


def test_a_batch_refused_with_an_old_token_is_sent_again_with_a_fresh_one(emu, client_for):
    emu.set_behaviour(token_role_lag=30)
    consent(emu, NORTHWIND, "nina@northwind.onmicrosoft.com")
    with pytest.raises(GraphError):
        client_for(NORTHWIND).get_json("/organization")  # caches a token without the roles
    emu.advance_clock(31)
    portal = emu.sp_id(NORTHWIND, PORTAL_APP)
    emu.reset_counters()

    bodies = client_for(NORTHWIND).batch(
        [{"id": "1", "method": "GET", "url": f"/servicePrincipals/{portal}?$select=id"}]
    )

    assert bodies["1"]["id"] == portal
    assert emu.requests_to(r"\$batch") == 2


def test_a_first_sync_refused_while_the_roles_are_on_their_way_is_retried(emu, client_for):
    emu.set_behaviour(token_role_lag=120)
    consent(emu, NORTHWIND, "nina@northwind.onmicrosoft.com")
    northwind = tenant_add(tenant_id=NORTHWIND, name="Northwind")[0]

    started = time.monotonic()
    first = sync_run_queue(tenant=northwind)
    with pytest.raises(GraphError) as refused:
        sync_run_execute(run_id=first.pk, client=client_for(NORTHWIND))
    first.refresh_from_db()
    figure("first sync inside the token lag", first, started)

    assert refused.value.retryable
    assert "not in the token yet; retrying" in first.error
    # Not an access problem to fix: the health page does not tell anyone to reconnect.
    assert tenant_health(northwind).problems == []

    emu.advance_clock(121)
    retry = sync_run_again(run_id=first.pk)
    retried = sync_run_execute(run_id=retry.pk, client=client_for(NORTHWIND))
    assert retried.status == SyncRun.Status.SUCCEEDED, retried.error


def test_the_last_attempt_of_a_first_sync_says_what_is_missing(emu, client_for):
    emu.set_behaviour(token_role_lag=3600)
    consent(emu, NORTHWIND, "nina@northwind.onmicrosoft.com")
    northwind = tenant_add(tenant_id=NORTHWIND, name="Northwind")[0]

    errors = []
    for _ in range(SYNC_MAX_RETRIES + 1):  # the task's first attempt and its retries
        run = sync_run_queue(tenant=northwind)
        with pytest.raises(GraphError) as refused:
            sync_run_execute(run_id=run.pk, client=client_for(NORTHWIND))
        run.refresh_from_db()
        errors.append((refused.value.retryable, run.error))

    assert all(retryable for retryable, _ in errors[:-1])
    assert all("not in the token yet; retrying" in error for _, error in errors[:-1])
    retryable, error = errors[-1]
    assert not retryable
    assert "access denied" in error and "Application.Read.All" in error


def test_the_sync_command_says_what_is_missing_at_once(emu):
    emu.set_behaviour(token_role_lag=120)
    consent(emu, NORTHWIND, "nina@northwind.onmicrosoft.com")
    tenant_add(tenant_id=NORTHWIND, name="Northwind")

    with pytest.raises(CommandError, match="access denied"):
        call_command("sync_tenant", NORTHWIND)


def test_the_sync_task_retries_a_first_sync_until_the_roles_arrive(emu, monkeypatch, settings):
    """The task itself: its first attempt is refused, its retry (a fresh run) succeeds."""
    from tenants import sync as sync_module
    from tenants.tasks import sync_tenant

    emu.set_behaviour(token_role_lag=120)
    consent(emu, NORTHWIND, "nina@northwind.onmicrosoft.com")
    northwind = tenant_add(tenant_id=NORTHWIND, name="Northwind")[0]
    real = sync_module.sync_run_execute
    attempts: list[int] = []

    def then_the_lag_passes(**options: Any) -> SyncRun:
        attempts.append(options["run_id"])
        try:
            return real(**options)
        finally:
            emu.advance_clock(121)  # what the task's countdown waits for, in no time

    monkeypatch.setattr(sync_module, "sync_run_execute", then_the_lag_passes)
    first = sync_run_queue(tenant=northwind)

    # Eagerly, Celery runs the retry at once instead of after its countdown.
    assert sync_tenant.apply(args=(first.pk,)).get() == SyncRun.Status.SUCCEEDED

    assert len(attempts) == 2
    runs = list(SyncRun.objects.filter(tenant=northwind).order_by("pk"))
    assert [r.status for r in runs] == [SyncRun.Status.FAILED, SyncRun.Status.SUCCEEDED]
    assert "not in the token yet" in runs[0].error


# -- where the token goes, what each request carries --------------------------------------------


def test_a_next_link_to_another_host_is_refused_and_gets_no_token(
    emu, contoso, client_for, emulator_data_dir
):
    client = client_for(CONTOSO)
    with run_emulator("demo", data_dir=emulator_data_dir) as elsewhere:
        # Same address, another port: another origin, so no token for it.
        foreign = f"{elsewhere.url}/v1.0/servicePrincipals?$skiptoken=x"

        def redirect(body: dict[str, Any]) -> None:
            body["@odata.nextLink"] = foreign

        with tampered(client.session, r"/v1\.0/servicePrincipals\?", redirect):
            run = sync_run_queue(tenant=contoso)
            with pytest.raises(GraphError) as refused:
                sync_run_execute(run_id=run.pk, client=client)

        assert elsewhere.counters()["total"] == 0
    run.refresh_from_db()
    assert not refused.value.retryable
    assert run.status == SyncRun.Status.FAILED
    assert elsewhere.url in run.error and "does not follow it" in run.error
    assert "skiptoken" not in run.error


@pytest.mark.parametrize(
    "link",
    [
        "https://graph.example.com/v1.0/servicePrincipals",
        "http://{host}/v1.0/servicePrincipals",
        "https://{host}.evil.example/v1.0/servicePrincipals",
        "https://{hostname}@evil.example/v1.0/servicePrincipals",
        "https://{hostname}:1/v1.0/servicePrincipals",
    ],
)
def test_only_links_on_graphs_own_scheme_host_and_port_are_followed(emu, client_for, link):
    host = emu.url.split("://", 1)[1]
    link = link.format(host=host, hostname=host.rsplit(":", 1)[0])
    with pytest.raises(GraphError, match="does not follow it"):
        client_for(CONTOSO).url(link)


def test_a_link_on_graphs_host_is_followed(emu, client_for):
    link = f"{emu.url.upper().replace('HTTPS', 'https')}/v1.0/servicePrincipals"
    assert client_for(CONTOSO).url(link) == link


def test_every_request_carries_its_own_client_request_id_and_low_priority(
    emu, contoso, client_for, graph_headers
):
    sync(contoso, client_for(CONTOSO))

    outer = [h for h in graph_headers if "x-ms-throttle-priority" in h]
    assert outer and {h["x-ms-throttle-priority"] for h in outer} == {"Low"}
    ids = [h["client-request-id"] for h in outer]
    assert all(GUID.match(i) for i in ids) and len(set(ids)) == len(ids)


def test_a_client_for_revokes_asks_for_high_priority(emu, graph_headers):
    GraphClient(tenant_id=CONTOSO, priority=PRIORITY_HIGH).get_json("/organization")
    assert [h["x-ms-throttle-priority"] for h in graph_headers] == ["High"]


def test_a_revoke_executed_by_its_task_asks_graph_for_high_priority(emu, synced, graph_headers):
    contoso = synced.contoso
    grant = (
        Grant.objects.filter(tenant=contoso, removed_in_run__isnull=True, kind="application")
        .exclude(client__app_id=PORTAL_APP)
        .first()
    )
    revoke, _ = revoke_request_create(
        tenant=contoso,
        client=grant.client,
        slot=GrantSlot.from_grant(grant),
        actor=None,
        role=Role.ADMIN,
    )

    revoke_request_execute(revoke_id=revoke.pk)  # no client given: the task's own

    assert graph_headers and {h["x-ms-throttle-priority"] for h in graph_headers} == {"High"}


def test_a_failed_run_shows_the_client_request_id_it_sent(emu, contoso, client_for, graph_headers):
    emu.set_faults([{"path": "oauth2PermissionGrants", "status": 500}])

    run = sync_run_queue(tenant=contoso)
    with pytest.raises(GraphError) as failed:
        sync_run_execute(run_id=run.pk, client=client_for(CONTOSO))
    run.refresh_from_db()

    sent = next(h for h in graph_headers if "oauth2PermissionGrants" in h["path"])
    assert failed.value.client_request_id == sent["client-request-id"]
    assert f"client-request-id {sent['client-request-id']}" in run.error
    assert "request-id" in run.error


# -- throttling -------------------------------------------------------------------------------


def test_a_fractional_retry_after_is_waited_as_given(emu, contoso, client_for, sleep):
    emu.set_faults(
        [{"path": "oauth2PermissionGrants", "status": 429, "retry_after": 1.5, "times": 2}]
    )

    started = time.monotonic()
    run = sync(contoso, client_for(CONTOSO))
    figure("fractional Retry-After", run, started)

    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert sleep.waits == [1.5, 1.5]
    assert (run.throttled_waits, run.throttled_seconds) == (2, 3.0)


def test_a_long_retry_after_is_waited_out_when_the_run_has_time(emu, contoso, client_for, sleep):
    emu.set_faults([{"path": "oauth2PermissionGrants", "status": 429, "retry_after": 90}])
    emu.set_faults(
        [{"path": "oauth2PermissionGrants", "status": 429, "retry_after": 90, "times": 1}]
    )
    run = sync(contoso, client_for(CONTOSO))
    assert run.status == SyncRun.Status.SUCCEEDED
    assert sleep.waits == [90.0]  # no 60 s cap: Graph said 90


def test_a_wait_longer_than_the_run_has_left_fails_it_as_retryable(emu, contoso, sleep, settings):
    settings.CELERY_TASK_SOFT_TIME_LIMIT = 120  # 60 s for Graph, 60 s kept for saving
    emu.set_faults([{"path": "oauth2PermissionGrants", "status": 429, "retry_after": 75}])

    run = sync_run_queue(tenant=contoso)
    with pytest.raises(GraphError) as throttled:
        sync_run_execute(run_id=run.pk, client=GraphClient(tenant_id=CONTOSO, sleep=sleep))
    run.refresh_from_db()

    assert throttled.value.retryable and sleep.waits == []
    assert "wait 75.0 s" in run.error and "tried again later" in run.error


def test_graphs_own_throttling_with_fractional_waits_is_ridden_out(emu, contoso):
    emu.set_behaviour(
        throttling={
            "limit": 5,
            "window_seconds": 1.5,
            "enforce": True,
            "fractional_retry_after": True,
        }
    )
    waits: list[float] = []

    def sleep(seconds: float) -> None:  # the emulator's clock, not ours, moves
        waits.append(seconds)
        emu.advance_clock(seconds)

    started = time.monotonic()
    run = sync(contoso, GraphClient(tenant_id=CONTOSO, sleep=sleep))
    figure("throttled by Graph's budget", run, started)

    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert waits and any(w != int(w) for w in waits)
    assert run.throttled_waits == len(waits)


# -- the held snapshot ----------------------------------------------------------------------------


def test_a_snapshot_within_the_usual_share_is_applied(emu, contoso, client_for):
    sync(contoso, client_for(CONTOSO))
    emu.delete_service_principal(CONTOSO, emu.sp_id(CONTOSO, ASKCODY))

    run = sync(contoso, client_for(CONTOSO))

    assert run.status == SyncRun.Status.SUCCEEDED and run.grants_removed > 0
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.SYNC_HELD).exists()


def test_the_held_runs_audit_says_what_it_would_remove(emu, contoso, client_for, settings):
    settings.SYNC_HOLD_REMOVED_MIN = 5
    first = sync(contoso, client_for(CONTOSO))
    for app_id in (ASKCODY, LOOKOUT, "3c1a9d6e-5b2f-4e8a-9c7d-1f0e2b3a4c5d"):
        emu.delete_service_principal(CONTOSO, emu.sp_id(CONTOSO, app_id))

    started = time.monotonic()
    run = sync(contoso, client_for(CONTOSO))
    figure("held snapshot", run, started)

    assert run.status == SyncRun.Status.HELD
    contoso.refresh_from_db()
    assert contoso.last_good_sync == first
    event = AuditEvent.objects.get(action=AuditEvent.Action.SYNC_HELD)
    assert event.details["would_remove"] == run.grants_removed
    assert event.details["of"] == first.grants_added
    assert "Held: this snapshot would remove" in run.notes[0]
