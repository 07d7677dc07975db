"""The audit trail (tenants.views.audit): one tenant's, filtered, exported as CSV, and
every tenant's one sees. alice is an admin and bob a reader of Contoso."""

import csv
import datetime as dt
import io
import re

import pytest
from django.http import HttpResponse
from django.urls import reverse

from tenants.audit import audit_record
from tenants.models import AuditEvent
from tests.tenants.helpers import recorded_at
from tests.tenants.views.helpers import HTMX

pytestmark = pytest.mark.django_db


def text(response: HttpResponse) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


ALICE = "Alice Anders (alice@contoso.onmicrosoft.com)"


@pytest.fixture
def events(contoso, fabrikam, alice) -> list[AuditEvent]:
    old = recorded_at(
        dt.datetime(2024, 1, 2, tzinfo=dt.UTC),
        tenant=contoso,
        action=AuditEvent.Action.SYNC_SUCCEEDED,
        target="Sync 1",
    )
    new = audit_record(
        tenant=contoso,
        action=AuditEvent.Action.REVOKE_SUCCEEDED,
        actor=alice,
        target="Place.Read.All (application) of Rooms",
        details={"graph_calls": 2},
    )
    audit_record(tenant=fabrikam, action=AuditEvent.Action.REVOKE_SUCCEEDED, target="Elsewhere")
    return [old, new]


def test_readers_see_the_audit_trail_filtered_by_action_and_date(bob_client, contoso, events):
    address = reverse("tenants:audit", args=[contoso.tenant_id])

    everything = text(bob_client.get(address))
    by_action = text(bob_client.get(address, {"action": "revoke.succeeded"}))
    since = text(bob_client.get(address, {"since": "2025-01-01"}, **HTMX))

    assert "Sync 1" in everything and "Place.Read.All (application) of Rooms" in everything
    assert "Elsewhere" not in everything
    assert "Sync 1" not in by_action and "graph_calls" in by_action
    assert "Sync 1" not in since and "<html" not in since


def test_the_audit_trail_exports_csv_with_the_same_filters(bob_client, contoso, events):
    address = reverse("tenants:audit-csv", args=[contoso.tenant_id])

    response = bob_client.get(address, {"action": "revoke.succeeded"})

    rows = list(csv.DictReader(io.StringIO(response.getvalue().decode())))
    assert response.streaming
    assert response["Content-Disposition"].startswith('attachment; filename="audit-')
    assert [(r["action"], r["actor"], r["target"]) for r in rows] == [
        ("revoke.succeeded", ALICE, "Place.Read.All (application) of Rooms")
    ]


def test_nobody_can_change_the_audit_trail_through_the_portal(alice_client, contoso, events):
    for name in ("tenants:audit", "tenants:audit-csv"):
        address = reverse(name, args=[contoso.tenant_id])
        assert alice_client.post(address).status_code == 405
        assert alice_client.delete(address).status_code == 405
    assert AuditEvent.objects.count() == 3


def test_the_trail_across_tenants_shows_only_the_tenants_one_sees(alice_client, events):
    page = text(alice_client.get(reverse("tenants:audit-all")))
    exported = alice_client.get(reverse("tenants:audit-all-csv")).getvalue().decode()

    assert "Sync 1" in page and "Elsewhere" not in page
    assert "Sync 1" in exported and "Elsewhere" not in exported
