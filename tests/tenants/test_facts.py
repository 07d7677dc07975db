"""Facts about each application (tenants.facts), read over HTTPS through the real sync."""

import datetime as dt

import pytest
from django.utils import timezone

from tenants.models import Credential, ServicePrincipal
from tests.helpers import sync
from tests.ids import ASKCODY, CONTOSO, LEGACY, PORTAL_APP

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


def test_a_second_sync_replaces_credentials_rather_than_adding(emu, contoso, client_for):
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


def test_a_failed_read_keeps_what_the_last_sync_saw(emu, contoso, client_for):
    sync(contoso, client_for(CONTOSO))
    known = Credential.objects.filter(tenant=contoso).count()
    emu.set_faults([{"path": "/v1.0/applications$", "status": 403}])
    sync(contoso, client_for(CONTOSO))
    assert Credential.objects.filter(tenant=contoso).count() == known > 0
    assert ServicePrincipal.objects.get(tenant=contoso, app_id=LEGACY).owners == []
