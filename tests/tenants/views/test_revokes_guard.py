"""The pages' side of issue 11, section 4: the portal's own read permissions have no
revoke button and are refused; its write permissions take a typed confirmation; bulk
pages leave out the portal, Microsoft's apps and managed identities, and their POST
carries exactly the list shown. alice is an admin and bob a reader of Contoso."""

import html
import re

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from permissions.models import MICROSOFT_GRAPH_APP_ID
from tenants.models import RevokeRequest, ServicePrincipal, SyncRun, Tenant
from tenants.portal_app import READ_PERMISSIONS, WRITE_PERMISSIONS
from tests.factories import (
    GrantFactory,
    ServicePrincipalFactory,
    SyncRunFactory,
    TenantFactory,
)

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
PORTAL_APP_ID = "6a9f3c1e-0b7d-4e55-8a21-3c4d5e6f7a8b"
MICROSOFT = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"
WRITE = WRITE_PERMISSIONS[0]


@pytest.fixture
def contoso() -> Tenant:
    tenant = TenantFactory(name="Contoso")
    run = SyncRunFactory(tenant=tenant, status=SyncRun.Status.SUCCEEDED)
    Tenant.objects.filter(pk=tenant.pk).update(last_good_sync=run)
    tenant.refresh_from_db()
    return tenant


@pytest.fixture
def portal(contoso, settings) -> ServicePrincipal:
    """The portal's own app in Contoso, holding its read and write permissions."""
    settings.PORTAL_CLIENT_ID = PORTAL_APP_ID
    sp = ServicePrincipalFactory(tenant=contoso, app_id=PORTAL_APP_ID, display_name="Portal")
    for value in (*READ_PERMISSIONS, *WRITE_PERMISSIONS):
        GrantFactory(client=sp, value=value, first_seen_run=contoso.last_good_sync)
    return sp


@pytest.fixture
def queued(monkeypatch) -> list[int]:
    sent: list[int] = []
    monkeypatch.setattr("tenants.tasks.execute_revoke.delay", sent.append)
    return sent


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def revoke_url(sp: ServicePrincipal) -> str:
    return reverse("tenants:revoke-create", args=[sp.tenant.tenant_id, sp.app_id])


def fields(value: str, **extra: str) -> dict[str, str]:
    return {
        "resource_app_id": MICROSOFT_GRAPH_APP_ID,
        "kind": "application",
        "value": value,
        "consent": "admin",
        **extra,
    }


# -- the portal's own permissions ------------------------------------------------------------


def test_the_portals_read_permissions_have_no_revoke_button_and_are_refused(
    alice_client, portal, queued
):
    page = text(
        alice_client.get(
            reverse("tenants:application", args=[portal.tenant.tenant_id, portal.app_id])
        )
    )

    assert page.count("The portal never revokes its own read permissions") == len(READ_PERMISSIONS)
    assert page.count('class="revoke-form"') == len(WRITE_PERMISSIONS)

    response = alice_client.post(revoke_url(portal), fields("Directory.Read.All"), **HTMX)

    assert "never revokes its own Directory.Read.All" in text(response)
    assert not RevokeRequest.objects.exists() and queued == []


def test_its_write_permission_takes_the_typed_name_and_the_page_says_undo_is_manual(
    alice_client, portal, queued
):
    asked = alice_client.post(revoke_url(portal), fields(WRITE), **HTMX)

    shown = text(asked)
    assert f"Type <code>{WRITE}</code> to confirm" in shown
    assert "undo will then be manual" in shown
    assert "runs after every other revoke or restore" in shown
    assert not RevokeRequest.objects.exists()

    # Without JavaScript, the same question as a page of its own.
    page = text(alice_client.post(revoke_url(portal), fields(WRITE)))
    assert f'<h1 class="title">Revoke the portal\'s own {WRITE}?</h1>' in html.unescape(page)
    assert 'name="acknowledge"' in page

    # A near miss is not a confirmation.
    wrong = alice_client.post(revoke_url(portal), fields(WRITE, acknowledge=WRITE.lower()), **HTMX)
    assert "type its name exactly" in text(wrong)
    assert not RevokeRequest.objects.exists()

    done = alice_client.post(revoke_url(portal), fields(WRITE, acknowledge=f" {WRITE} "), **HTMX)

    revoke = RevokeRequest.objects.get()
    assert (revoke.value, revoke.status) == (WRITE, RevokeRequest.Status.QUEUED)
    assert f'id="revoke-request-{revoke.pk}"' in text(done)


def test_a_reader_cannot_ask_for_the_portals_write_permission(bob_client, portal):
    response = bob_client.post(
        revoke_url(portal), fields(WRITE, acknowledge=WRITE, reason="Too strong."), **HTMX
    )

    assert f"Only an admin can revoke the portal's own {WRITE}" in html.unescape(text(response))
    assert not RevokeRequest.objects.exists()


# -- bulk pages ------------------------------------------------------------------------------


@pytest.fixture
def apps(contoso, portal) -> dict[str, ServicePrincipal]:
    """An ordinary app, a Microsoft app and a managed identity, each with one unexplained
    grant (no manifest explains them)."""
    made = {
        "vendor": ServicePrincipalFactory(tenant=contoso, display_name="Vendor app"),
        "microsoft": ServicePrincipalFactory(
            tenant=contoso, display_name="Microsoft Teams Services", app_owner_tenant_id=MICROSOFT
        ),
        "identity": ServicePrincipalFactory(
            tenant=contoso, display_name="func-sync", service_principal_type="ManagedIdentity"
        ),
    }
    for sp in made.values():
        GrantFactory(client=sp, value="Sites.Read.All", first_seen_run=contoso.last_good_sync)
    return made


def tokens(response) -> list[str]:
    return [
        html.unescape(token)
        for token in re.findall(
            r'<input type="checkbox" name="grant" value="([^"]+)" checked', text(response)
        )
    ]


def test_the_bulk_page_leaves_out_the_portal_microsofts_apps_and_managed_identities(
    alice_client, apps
):
    page = alice_client.get(
        reverse("tenants:revoke-unused", args=[apps["vendor"].tenant.tenant_id])
    )
    shown = text(page)

    assert len(tokens(page)) == 1 and str(apps["vendor"].object_id) in tokens(page)[0]
    assert "Microsoft Teams Services</a>: a Microsoft first-party app, 1 unneeded grant" in shown
    assert "func-sync</a>: a managed identity, 1 unneeded grant" in shown
    # No manifest explains the portal's app here: all four of its grants are unexplained.
    held = len(READ_PERMISSIONS) + len(WRITE_PERMISSIONS)
    assert f"Portal</a>: the portal itself, {held} unneeded grants" in shown
    assert "tokens already issued stay valid up to their lifetime" in shown


def test_the_bulk_post_carries_exactly_the_list_shown(alice_client, apps, queued):
    tenant = apps["vendor"].tenant
    address = reverse("tenants:revoke-unused", args=[tenant.tenant_id])
    shown = tokens(alice_client.get(address))
    # After the page was shown: a new unneeded grant, and the shown one is gone.
    GrantFactory(
        client=apps["vendor"], value="Files.Read.All", first_seen_run=tenant.last_good_sync
    )
    later = SyncRunFactory(tenant=tenant, status=SyncRun.Status.SUCCEEDED)
    apps["vendor"].grants.filter(value="Sites.Read.All").update(removed_in_run=later)
    # And a forged field naming the managed identity's grant.
    forged = shown[0].replace(str(apps["vendor"].object_id), str(apps["identity"].object_id))

    response = alice_client.post(address, {"grant": [*shown, forged]})

    assert response.status_code == 302
    assert not RevokeRequest.objects.exists()  # neither the new grant nor the forged one
    warnings = [str(m) for m in get_messages(response.wsgi_request) if m.level_tag == "warning"]
    assert warnings == [
        "Sites.Read.All (application) of Vendor app is no longer a revoke candidate: left as it is.",
        "Sites.Read.All (application) of func-sync is no longer a revoke candidate: left as it is.",
    ]


def test_a_bulk_post_revokes_the_grants_shown(alice_client, apps, queued):
    tenant = apps["vendor"].tenant
    address = reverse("tenants:revoke-unused", args=[tenant.tenant_id])

    alice_client.post(address, {"grant": tokens(alice_client.get(address))})

    revoke = RevokeRequest.objects.get()
    assert (revoke.client, revoke.value) == (apps["vendor"], "Sites.Read.All")


def test_a_bulk_post_with_junk_is_refused(alice_client, apps):
    address = reverse("tenants:revoke-unused", args=[apps["vendor"].tenant.tenant_id])

    assert alice_client.post(address, {"grant": ["not json"]}).status_code == 400
    assert alice_client.post(address, {"grant": ['["a", "b"]']}).status_code == 400
    assert not RevokeRequest.objects.exists()
