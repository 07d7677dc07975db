"""Facts about each application (tenants.facts), read over HTTPS through the real sync."""

import datetime as dt
import uuid

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tenants.facts import expiry_text, warns
from tenants.models import Credential, ServicePrincipal
from tests.factories import UserFactory
from tests.helpers import sync
from tests.ids import ASKCODY, CONTOSO, FABRIKAM, LEGACY, PORTAL_APP, ROOMS

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_sync_stores_owners_and_credentials(emu, contoso, client_for):
    sync(contoso, client_for(CONTOSO))

    askcody = ServicePrincipal.objects.get(tenant=contoso, app_id=ASKCODY)
    assert {o["upn"] for o in askcody.owners} == {
        "erin@contoso.onmicrosoft.com",
        "frank@contoso.onmicrosoft.com",
    }
    assert {o["type"] for o in askcody.owners} == {"user"}
    legacy = ServicePrincipal.objects.get(tenant=contoso, app_id=LEGACY)
    assert legacy.owners == []
    credentials = Credential.objects.filter(tenant=contoso, service_principal=legacy)
    on_sp = {(c.kind, c.display_name, c.on_application) for c in credentials}
    assert ("secret", "legacy-export", False) in on_sp
    assert ("certificate", "CN=legacy-reporting", False) in on_sp
    secret = credentials.get(kind="secret", on_application=False)
    assert (secret.end_at - timezone.now()).days in (19, 20)
    cert = credentials.get(kind="certificate", on_application=False)
    assert cert.end_at < timezone.now() - dt.timedelta(days=29)
    # The tenant's own app (the portal's): its registration gives its created date and
    # the credentials placed on it, which are not flagged.
    portal = ServicePrincipal.objects.get(tenant=contoso, app_id=PORTAL_APP)
    assert portal.app_created_at is not None
    assert portal.sign_in_audience
    assert Credential.objects.filter(service_principal=portal, on_application=True).exists()
    assert legacy.app_created_at is None  # not registered in Contoso: not known


def test_a_second_sync_replaces_credentials_rather_than_adding(emu, contoso, client_for, settings):
    settings.SYNC_FULL_READ_DAYS = 0  # facts are read with the full reads
    sync(contoso, client_for(CONTOSO))
    first = Credential.objects.filter(tenant=contoso).count()
    sync(contoso, client_for(CONTOSO))
    assert Credential.objects.filter(tenant=contoso).count() == first > 0


def test_a_failed_facts_read_keeps_the_sync_succeeded_with_a_note(emu, contoso, client_for):
    emu.set_faults([{"path": "/v1.0/applications$", "status": 403}])
    run = sync(contoso, client_for(CONTOSO))

    assert any("Owners and credentials could not be read" in n for n in run.notes)
    legacy = ServicePrincipal.objects.get(tenant=contoso, app_id=LEGACY)
    assert legacy.owners is None  # unknown, not "no owner"
    assert not Credential.objects.filter(tenant=contoso).exists()
    assert run.grants_added > 0


def test_a_failed_read_keeps_what_the_last_sync_saw(emu, contoso, client_for, settings):
    settings.SYNC_FULL_READ_DAYS = 0  # facts are read with the full reads
    sync(contoso, client_for(CONTOSO))
    known = Credential.objects.filter(tenant=contoso).count()
    emu.set_faults([{"path": "/v1.0/applications$", "status": 403}])
    sync(contoso, client_for(CONTOSO))
    assert Credential.objects.filter(tenant=contoso).count() == known > 0
    assert ServicePrincipal.objects.get(tenant=contoso, app_id=LEGACY).owners == []


def owner_upns(tenant, app_id: str) -> set[str]:
    owners = ServicePrincipal.objects.get(tenant=tenant, app_id=app_id).owners
    return {o["upn"] for o in owners or []}


def credential_rows(tenant, app_id: str) -> set[tuple]:
    """The stored rows themselves (their pks too): rewritten rows would differ."""
    return set(
        Credential.objects.filter(tenant=tenant, service_principal__app_id=app_id).values_list(
            "pk", "kind", "key_id"
        )
    )


def test_a_delta_resync_reads_the_facts_of_the_principals_that_changed(emu, contoso, client_for):
    sync(contoso, client_for(CONTOSO))
    legacy = emu.sp_id(CONTOSO, LEGACY)
    emu.add_owner(CONTOSO, legacy, "erin@contoso.onmicrosoft.com")
    emu.update_service_principal(CONTOSO, legacy, notes="Reviewed")  # in the delta round
    others = owner_upns(contoso, ASKCODY), credential_rows(contoso, PORTAL_APP)
    assert owner_upns(contoso, LEGACY) == set() and others[0] and others[1]
    emu.reset_counters()

    run = sync(contoso, client_for(CONTOSO))

    assert run.read_mode == "delta", run.notes
    assert owner_upns(contoso, LEGACY) == {"erin@contoso.onmicrosoft.com"}
    # Its credentials were read again with it (and are the same ones).
    assert {
        c.display_name for c in Credential.objects.filter(service_principal__app_id=LEGACY)
    } >= {
        "legacy-export",
        "CN=legacy-reporting",
    }
    # Only the changed principal is read: one request for it, one for its registration
    # (a 404 here: it is registered in another tenant); no listing of every principal.
    assert emu.requests_to(f"/v1.0/servicePrincipals/{legacy}$") == 1
    assert emu.requests_to(r"/v1.0/applications") == 1
    assert emu.requests_to(r"/v1.0/servicePrincipals$") == 0
    # Every other principal keeps its facts, rows untouched.
    assert (owner_upns(contoso, ASKCODY), credential_rows(contoso, PORTAL_APP)) == others


def test_a_new_application_has_its_owners_after_the_delta_resync(emu, fabrikam, client_for):
    sync(fabrikam, client_for(FABRIKAM))
    assert not ServicePrincipal.objects.filter(tenant=fabrikam, app_id=ROOMS).exists()
    rooms = emu.add_service_principal(FABRIKAM, ROOMS)
    emu.add_owner(FABRIKAM, rooms, "charlie@fabrikam.onmicrosoft.com")
    others = owner_upns(fabrikam, LEGACY)
    emu.reset_counters()

    run = sync(fabrikam, client_for(FABRIKAM))

    assert run.read_mode == "delta", run.notes
    assert owner_upns(fabrikam, ROOMS) == {"charlie@fabrikam.onmicrosoft.com"}
    assert emu.requests_to(f"/v1.0/servicePrincipals/{rooms}$") == 1
    assert owner_upns(fabrikam, LEGACY) == others == {"charlie@fabrikam.onmicrosoft.com"}


def test_an_owner_added_to_an_unchanged_app_waits_for_the_next_full_read(
    emu, contoso, client_for, settings
):
    """Owners are a relationship: no delta round shows one added (the documented limit)."""
    sync(contoso, client_for(CONTOSO))
    emu.add_owner(CONTOSO, emu.sp_id(CONTOSO, LEGACY), "erin@contoso.onmicrosoft.com")

    emu.reset_counters()
    unchanged = sync(contoso, client_for(CONTOSO))
    assert unchanged.read_mode == "delta"
    assert owner_upns(contoso, LEGACY) == set()
    assert emu.requests_to(r"/v1.0/applications") == 0  # nothing changed: no facts read

    settings.SYNC_FULL_READ_DAYS = 0
    full = sync(contoso, client_for(CONTOSO))
    assert full.read_mode == "full"
    assert owner_upns(contoso, LEGACY) == {"erin@contoso.onmicrosoft.com"}


def application_page(tenant, app_id: str) -> str:
    client = Client()
    client.force_login(
        UserFactory(entra_tenant_id=str(tenant.tenant_id), entra_roles=["Portal.Reader"])
    )
    response = client.get(reverse("tenants:application", args=[tenant.tenant_id, app_id]))
    assert response.status_code == 200
    return " ".join(response.content.decode().split())


def test_the_application_page_shows_owners_credentials_and_kind(emu, contoso, client_for):
    sync(contoso, client_for(CONTOSO))

    legacy = application_page(contoso, LEGACY)
    assert "No owner</span>" in legacy
    assert "Secret legacy-export: expires in 20 days" in legacy
    assert "Certificate CN=legacy-reporting: expired 30 days ago" in legacy
    assert legacy.count("On the service principal</span>") == 2
    assert "Expiring soon" in legacy and "Expired</span>" in legacy
    # The emulator's principals carry no verifiedPublisherId.
    assert "<dt>Publisher</dt><dd>Publisher not verified</dd>" in legacy
    askcody = application_page(contoso, ASKCODY)
    assert "erin@contoso.onmicrosoft.com" in askcody and "No owner</span>" not in askcody
    portal = application_page(contoso, PORTAL_APP)
    assert "<dt>Kind</dt><dd>This tenant&#x27;s own</dd>" in portal or (
        "<dt>Kind</dt><dd>This tenant's own</dd>" in portal
    )


def test_before_any_sync_reads_them_the_facts_are_unknown(contoso):
    sp = ServicePrincipal.objects.create(
        tenant=contoso, object_id=uuid.uuid4(), app_id=uuid.uuid4(), display_name="New"
    )
    html = application_page(contoso, str(sp.app_id))
    assert "Unknown: no sync has read them yet." in html
    assert "No owner</span>" not in html


@pytest.mark.parametrize(
    ("offset", "text", "warn"),
    [
        (dt.timedelta(days=20, minutes=-5), "expires in 20 days", True),
        (dt.timedelta(days=-30, minutes=5), "expired 30 days ago", True),
        (dt.timedelta(days=1), "expires in 1 day", True),
        (dt.timedelta(hours=2), "expires today", True),
        (dt.timedelta(days=31), "expires in 31 days", False),
        (dt.timedelta(days=400), "expires in 400 days", False),
    ],
)
def test_expiry_texts_and_warnings(offset, text, warn):
    now = timezone.now()
    assert expiry_text(now + offset, now) == text
    assert warns(now + offset, now, 30) is warn
