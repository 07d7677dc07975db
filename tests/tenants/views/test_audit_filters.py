"""The audit trail's filters (by person, application, end date, without sign-ins) and the
link from each event to what it changed (issue 15, item 10). alice is an admin of Contoso."""

import datetime as dt
import re

import pytest
from django.http import HttpResponse
from django.urls import reverse

from tenants.audit import audit_record
from tenants.models import AuditEvent
from tests.factories import RevokeRequestFactory, ServicePrincipalFactory, SyncRunFactory
from tests.ids import ROOMS
from tests.tenants.helpers import recorded_at

pytestmark = pytest.mark.django_db


def text(response: HttpResponse) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


@pytest.fixture
def trail(contoso, alice, bob) -> dict[str, AuditEvent]:
    rooms = ServicePrincipalFactory(tenant=contoso, app_id=ROOMS, display_name="Rooms")
    revoke = RevokeRequestFactory(client=rooms, value="Place.Read.All", succeeded=True)
    run = SyncRunFactory(tenant=contoso, succeeded=True)
    return {
        "revoke": audit_record(
            tenant=contoso,
            action=AuditEvent.Action.REVOKE_SUCCEEDED,
            actor=alice,
            target="Place.Read.All (application) of Rooms",
            details={"revoke_request": revoke.pk},
        ),
        "features": audit_record(
            tenant=contoso,
            action=AuditEvent.Action.FEATURES_SWITCHED,
            actor=bob,
            target="Teams Rooms platform",
            details={"app_id": ROOMS, "enabled": [], "disabled": ["smart"]},
        ),
        "sync": recorded_at(
            dt.datetime(2024, 1, 2, 12, tzinfo=dt.UTC),
            tenant=contoso,
            action=AuditEvent.Action.SYNC_SUCCEEDED,
            target=f"Sync {run.pk}",
            details={"sync_run": run.pk},
        ),
        "sign_in": audit_record(
            tenant=contoso,
            action=AuditEvent.Action.ADMIN_SIGNED_IN,
            actor=alice,
            target="alice@contoso.onmicrosoft.com",
        ),
    }


def shown(client, contoso, **filters: str) -> str:
    return text(client.get(reverse("tenants:audit", args=[contoso.tenant_id]), filters))


def test_the_trail_filters_by_who_did_it(alice_client, contoso, trail):
    page = shown(alice_client, contoso, actor="bob")

    assert "Teams Rooms platform" in page
    assert "Place.Read.All (application) of Rooms" not in page


def test_the_trail_filters_by_application_name_or_app_id(alice_client, contoso, trail):
    by_name = shown(alice_client, contoso, application="rooms")
    by_id = shown(alice_client, contoso, application=ROOMS)

    assert "Place.Read.All (application) of Rooms" in by_name and "Teams Rooms platform" in by_name
    assert "Sync " not in by_name.split('class="table', 1)[1]
    assert "Teams Rooms platform" in by_id
    assert "Place.Read.All (application) of Rooms" not in by_id  # no appId recorded on it


def test_until_includes_that_whole_day_and_nothing_after(alice_client, contoso, trail):
    page = shown(alice_client, contoso, until="2024-01-02")

    assert "1 event," in page and trail["sync"].target in page
    assert "Teams Rooms platform" not in shown(alice_client, contoso, until="2024-01-01")


def test_hide_sign_ins_leaves_them_out(alice_client, contoso, trail):
    def rows(page: str) -> str:
        return page.split('class="table', 1)[1]

    assert "Admin signed in" in rows(shown(alice_client, contoso))
    page = shown(alice_client, contoso, hide_sign_ins="on")

    assert "Admin signed in" not in rows(page) and "3 events" in page


def test_each_event_links_to_what_it_changed(alice_client, contoso, trail):
    page = shown(alice_client, contoso)
    revoke_pk = trail["revoke"].details["revoke_request"]
    run_pk = trail["sync"].details["sync_run"]

    results = reverse("tenants:revoke-results", args=[contoso.tenant_id])
    assert f'href="{results}?request={revoke_pk}">Request {revoke_pk}</a>' in page
    assert f'href="{reverse("tenants:run-detail", args=[contoso.tenant_id, run_pk])}"' in page
    assert f'href="{reverse("tenants:application", args=[contoso.tenant_id, ROOMS])}"' in page


def test_a_filter_that_is_not_valid_is_dropped_not_an_error(alice_client, contoso, trail):
    page = shown(alice_client, contoso, until="not a date", actor="x" * 400)

    assert "4 events" in page
