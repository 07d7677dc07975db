"""The second line: a snapshot that would remove an unusual share of a tenant's grants is
held, not applied. The tenant page says so; an admin applies or discards it (audited);
the next sync still runs; the report keeps the last applied snapshot."""

import io
import json
import re
import time
import uuid

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse

from emulator.generator import generate
from portal.models import User
from tenants.models import (
    ApplicationFinding,
    AuditEvent,
    FindingSummary,
    Grant,
    HeldSnapshot,
    SyncRun,
    Tenant,
)
from tenants.services import sync_run_queue, tenant_add
from tenants.sync import HeldSyncError, sync_run_apply_held, sync_run_execute
from tests.factories import SyncRunFactory
from tests.helpers import signed_in
from tests.ids import CONTOSO

pytestmark = pytest.mark.django_db(transaction=True)

ASKCODY = "6f4e2a1b-8c3d-4e5f-a6b7-c8d9e0f1a2b3"
LOOKOUT = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
ROOMS = "3c1a9d6e-5b2f-4e8a-9c7d-1f0e2b3a4c5d"


def sync(tenant: Tenant, client) -> SyncRun:
    run = sync_run_queue(tenant=tenant)
    assert run is not None, "a held run must not count as open"
    return sync_run_execute(run_id=run.pk, client=client)


def current_pks(tenant: Tenant) -> set[int]:
    return set(
        Grant.objects.filter(tenant=tenant, removed_in_run__isnull=True).values_list(
            "pk", flat=True
        )
    )


@pytest.fixture
def held(emu, contoso, client_for, settings) -> tuple[SyncRun, SyncRun]:
    """Contoso synced, then read again after most of its apps went: (first, held)."""
    settings.SYNC_HOLD_REMOVED_MIN = 5  # Contoso is small; the share (20%) as shipped
    first = sync(contoso, client_for(CONTOSO))
    for app_id in (ASKCODY, LOOKOUT, ROOMS):
        emu.delete_service_principal(CONTOSO, emu.sp_id(CONTOSO, app_id))
    run = sync(contoso, client_for(CONTOSO))
    assert run.status == SyncRun.Status.HELD, run.error
    return first, run


def report(tenant_id: str) -> dict:
    out = io.StringIO()
    call_command("report", tenant_id, "--format", "json", stdout=out)
    return json.loads(out.getvalue())


def test_a_tenant_whose_grants_mostly_vanish_in_one_read_is_held(held, contoso):
    first, run = held
    contoso.refresh_from_db()

    assert contoso.last_good_sync == first
    assert len(current_pks(contoso)) == first.grants_added  # nothing removed
    assert run.grants_removed > 0.2 * first.grants_added
    assert run.grants_removed + run.grants_unchanged == first.grants_added
    assert HeldSnapshot.objects.filter(run=run).exists()
    assert AuditEvent.objects.filter(action=AuditEvent.Action.SYNC_HELD, tenant=contoso).exists()


def test_the_report_still_reports_the_last_applied_snapshot(held, contoso):
    first, _ = held
    data = report(CONTOSO)
    assert data["synced_at"] == first.finished_at.isoformat()
    assert ASKCODY in {app["app_id"] for app in data["applications"]}


def test_a_held_run_does_not_block_the_next_sync_which_supersedes_it(
    held, emu, contoso, client_for
):
    _, run = held

    started = time.monotonic()
    again = sync(contoso, client_for(CONTOSO))
    print(
        f"FIGURE held again: requests={again.graph_requests} "
        f"seconds={time.monotonic() - started:.2f} outcome={again.status}"
    )

    assert again.status == SyncRun.Status.HELD  # the apps are still gone
    run.refresh_from_db()
    assert run.status == SyncRun.Status.DISCARDED
    assert not HeldSnapshot.objects.filter(run=run).exists()
    assert any("superseded by sync" in note for note in run.notes)


def test_the_sync_command_says_it_was_held_and_fails(held, emu):
    with pytest.raises(CommandError, match=r"held: it would remove \d+ of \d+ grants"):
        call_command("sync_tenant", CONTOSO)


def test_applying_a_held_snapshot_refreshes_every_clients_findings(held, contoso, alice):
    """A held snapshot was read before the findings in force were written: every client's
    are written again, not only those it changes."""
    before = set(ApplicationFinding.objects.filter(tenant=contoso).values_list("pk", flat=True))

    applied = sync_run_apply_held(run=held[1], actor=alice)

    after = ApplicationFinding.objects.filter(tenant=contoso)
    assert after.exists() and not before & set(after.values_list("pk", flat=True))
    assert FindingSummary.objects.get(tenant=contoso).run == applied


def test_applying_a_held_snapshot_applies_exactly_what_it_read(held, contoso, emu, alice):
    first, run = held

    applied = sync_run_apply_held(run=run, actor=alice)

    contoso.refresh_from_db()
    assert applied.status == SyncRun.Status.SUCCEEDED
    assert contoso.last_good_sync == applied
    assert applied.finished_at == run.finished_at  # the snapshot is as of its read
    assert len(current_pks(contoso)) == run.grants_unchanged + run.grants_added
    removed = Grant.objects.filter(tenant=contoso, removed_in_run=applied)
    assert removed.count() == run.grants_removed
    assert set(removed.values_list("client__app_id", flat=True)) == {
        uuid.UUID(app_id) for app_id in (ASKCODY, LOOKOUT, ROOMS)
    }
    assert not HeldSnapshot.objects.filter(run=run).exists()
    event = AuditEvent.objects.get(action=AuditEvent.Action.SYNC_HELD_APPLIED)
    assert (event.actor, event.details["removed"]) == (alice, run.grants_removed)
    assert report(CONTOSO)["synced_at"] == run.finished_at.isoformat()


def test_a_held_snapshot_is_not_applied_once_a_newer_sync_succeeded(held, contoso, alice):
    _, run = held
    SyncRunFactory(tenant=contoso, status=SyncRun.Status.SUCCEEDED)

    with pytest.raises(HeldSyncError, match="has succeeded since"):
        sync_run_apply_held(run=run, actor=alice)

    run.refresh_from_db()
    assert run.status == SyncRun.Status.HELD


def test_a_snapshot_removing_more_than_the_share_and_count_is_held_by_default(emu, client_for):
    scenario = generate(
        service_principals=40, app_role_assignments=150, delegated_grants=60, users=30, seed=4
    )
    emu.load(scenario)
    tenant_id = scenario["tenants"][0]["id"]
    tenant = tenant_add(tenant_id=tenant_id)[0]
    first = sync(tenant, client_for(tenant_id))
    clients = [
        sp
        for sp in emu.state(tenant_id)["servicePrincipals"]
        if sp["appId"] != "00000003-0000-0000-c000-000000000000"
    ]
    for sp in clients[: len(clients) // 2]:
        emu.delete_service_principal(tenant_id, sp["id"])

    run = sync(tenant, client_for(tenant_id))

    assert run.status == SyncRun.Status.HELD
    assert run.grants_removed > 50 and run.grants_removed * 5 > first.grants_added


# -- the pages -------------------------------------------------------------------------------


def tenant_page(tenant: Tenant) -> str:
    return reverse("tenants:tenant-detail", args=[tenant.tenant_id])


def csrf_token(html: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


def test_the_tenant_page_says_a_sync_is_held_with_apply_and_discard_for_admins(
    held, contoso, alice
):
    _, run = held
    html = signed_in(alice).get(tenant_page(contoso))
    text = html.content.decode()

    assert f"Sync {run.pk} is held for review" in text
    assert (
        f"would remove {run.grants_removed} of the {run.grants_removed + run.grants_unchanged}"
        in text
    )
    assert reverse("tenants:run-apply", args=[contoso.tenant_id, run.pk]) in text
    assert reverse("tenants:run-discard", args=[contoso.tenant_id, run.pk]) in text


def test_readers_see_the_held_sync_without_the_buttons(held, contoso, bob):
    _, run = held
    text = signed_in(bob).get(tenant_page(contoso)).content.decode()

    assert f"Sync {run.pk} is held for review" in text
    assert reverse("tenants:run-apply", args=[contoso.tenant_id, run.pk]) not in text


def test_the_held_runs_page_lists_what_it_would_remove(held, contoso, bob):
    _, run = held
    page = signed_in(bob).get(reverse("tenants:run-detail", args=[contoso.tenant_id, run.pk]))
    text = page.content.decode()

    assert "What applying it would remove" in text
    assert "AskCody" in text and "Held: this snapshot would remove" in text


def admin_with_csrf(admin: User, tenant: Tenant) -> tuple[Client, str]:
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    return client, csrf_token(client.get(tenant_page(tenant)).content.decode())


def test_an_admin_applies_a_held_sync_from_the_page(held, contoso, alice):
    _, run = held
    client, token = admin_with_csrf(alice, contoso)
    url = reverse("tenants:run-apply", args=[contoso.tenant_id, run.pk])

    assert client.post(url).status_code == 403  # no CSRF token
    response = client.post(url, {"csrfmiddlewaretoken": token})

    assert response.status_code == 302 and response["Location"] == tenant_page(contoso)
    run.refresh_from_db()
    assert run.status == SyncRun.Status.SUCCEEDED
    event = AuditEvent.objects.get(action=AuditEvent.Action.SYNC_HELD_APPLIED)
    assert event.actor_name and event.target == f"Sync {run.pk}"
    assert any(note.startswith(f"Applied by {alice.username}") for note in run.notes)


def test_an_admin_discards_a_held_sync_from_the_page(held, contoso, alice):
    first, run = held
    before = current_pks(contoso)
    client, token = admin_with_csrf(alice, contoso)

    response = client.post(
        reverse("tenants:run-discard", args=[contoso.tenant_id, run.pk]),
        {"csrfmiddlewaretoken": token},
    )

    assert response.status_code == 302
    run.refresh_from_db()
    contoso.refresh_from_db()
    assert run.status == SyncRun.Status.DISCARDED
    assert contoso.last_good_sync == first and current_pks(contoso) == before
    event = AuditEvent.objects.get(action=AuditEvent.Action.SYNC_HELD_DISCARDED)
    assert event.details["why"] == f"by {alice.username}"
    # Discarded once: the second time says why not, and changes nothing.
    again = client.post(
        reverse("tenants:run-discard", args=[contoso.tenant_id, run.pk]),
        {"csrfmiddlewaretoken": token},
        follow=True,
    )
    assert "is not held for review" in again.content.decode()


def test_a_reader_may_not_apply_a_held_sync(held, contoso, bob):
    _, run = held
    response = signed_in(bob).post(reverse("tenants:run-apply", args=[contoso.tenant_id, run.pk]))
    assert response.status_code == 403
    run.refresh_from_db()
    assert run.status == SyncRun.Status.HELD
