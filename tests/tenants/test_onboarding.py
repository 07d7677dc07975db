"""Connecting a tenant by admin consent, against the emulator's consent page, and the
tenant health page. nina is a Global Administrator of Northwind (not onboarded), ivan a
user there."""

from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.conf import settings
from django.test import Client
from django.urls import reverse

from emulator import Emulator
from tenants.models import AuditEvent, SyncRun, Tenant
from tenants.onboarding import (
    admin_consent_complete,
    admin_consent_state_ok,
    admin_consent_url,
    tenant_health,
)
from tests.factories import SyncRunFactory, UserFactory
from tests.helpers import signed_in, sync
from tests.ids import CONTOSO, FABRIKAM, NORTHWIND

pytestmark = pytest.mark.django_db

# A registered redirect URI's host (emulator/scenarios/demo.yaml), on another port: like
# Entra, the emulator ignores the port of a loopback URI.
PORTAL_HOST = "127.0.0.1:8123"
EXPIRED_SECRET = (
    f"Entra refused a token for tenant {CONTOSO}: AADSTS7000222: The provided client "
    "secret keys for app '0d3c2b1a-9f8e-4d7c-8b6a-5f4e3d2c1b0a' are expired."
)


def northwind_user() -> Client:
    """Someone of Northwind, signed in on the host Entra sends them back to."""
    return signed_in(UserFactory(entra_tenant_id=NORTHWIND), HTTP_HOST=PORTAL_HOST)


@pytest.fixture
def nina(db) -> Client:
    return northwind_user()


def user_id(emu: Emulator, tenant_id: str, upn: str) -> str:
    return next(u["id"] for u in emu.state(tenant_id)["users"] if u["userPrincipalName"] == upn)


def consent_at_entra(emu: Emulator, url: str, form: dict[str, str]) -> str:
    """Shows the emulator's consent page, answers it, and returns where Entra sends the
    browser back to (a path and query on the portal)."""
    session = requests.Session()
    session.verify, session.trust_env = str(emu.ca_path), False
    page = session.get(url, timeout=10)
    assert page.status_code == 200
    assert "Permission Portal" in page.text
    answer = session.post(url, data=form, allow_redirects=False, timeout=10)
    assert answer.status_code in (302, 303)
    back = urlsplit(answer.headers["Location"])
    assert (
        f"{back.scheme}://{back.netloc}{back.path}"
        == f"http://{PORTAL_HOST}/tenants/connect/callback/"
    )
    return f"{back.path}?{back.query}"


def start(client: Client, emu: Emulator) -> str:
    response = client.get(reverse("tenants:connect-start"))
    assert response.status_code == 302
    return response["Location"]


def portal_apps_in(emu: Emulator, tenant_id: str) -> list[dict[str, str]]:
    return [
        sp
        for sp in emu.state(tenant_id)["servicePrincipals"]
        if sp["appId"] == settings.PORTAL_CLIENT_ID
    ]


def test_the_consent_url_asks_entra_for_the_portals_own_app(emu):
    user = UserFactory()

    url = admin_consent_url(tenant_hint=None, redirect_uri="http://x/cb/", user=user)

    parts = urlsplit(url)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    assert f"{parts.scheme}://{parts.netloc}" == emu.url
    assert parts.path == "/organizations/v2.0/adminconsent"
    assert query["client_id"] == settings.PORTAL_CLIENT_ID
    assert query["scope"] == "https://graph.microsoft.com/.default"
    assert query["redirect_uri"] == "http://x/cb/"
    assert admin_consent_state_ok(state=query["state"], user=user, tenant_id=NORTHWIND)
    assert not admin_consent_state_ok(state=query["state"], user=UserFactory(), tenant_id=None)


def test_a_global_admin_connects_northwind(
    emu, nina, sent_syncs, django_capture_on_commit_callbacks
):
    url = start(nina, emu)
    assert url.startswith(f"{emu.url}/{NORTHWIND}/v2.0/adminconsent?")
    assert not portal_apps_in(emu, NORTHWIND)

    back = consent_at_entra(
        emu,
        url,
        {"decision": "accept", "user": user_id(emu, NORTHWIND, "nina@northwind.onmicrosoft.com")},
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = nina.get(back)

    tenant = Tenant.objects.get(tenant_id=NORTHWIND)
    assert (tenant.name, tenant.default_domain) == ("Northwind", "northwind.onmicrosoft.com")
    run = SyncRun.objects.get(tenant=tenant)
    assert run.status == SyncRun.Status.QUEUED
    assert sent_syncs == [run.pk]
    assert len(portal_apps_in(emu, NORTHWIND)) == 1
    # nina holds no portal role yet: the access page tells her how to get one.
    assert response.status_code == 302
    assert response["Location"] == reverse("access")


def test_a_global_admin_who_connects_lands_as_its_admin_and_reads_what_comes_next(
    emu, sent_syncs, django_capture_on_commit_callbacks
):
    # Her id token's wids named Global Administrator: a portal admin of her own tenant.
    nina = signed_in(
        UserFactory(entra_tenant_id=NORTHWIND, directory_roles=["Portal.Admin"]),
        HTTP_HOST=PORTAL_HOST,
    )
    back = consent_at_entra(
        emu,
        start(nina, emu),
        {"decision": "accept", "user": user_id(emu, NORTHWIND, "nina@northwind.onmicrosoft.com")},
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = nina.get(back)

    connected = reverse("tenants:connected", args=[NORTHWIND])
    assert response.status_code == 302 and response["Location"] == connected
    page = " ".join(nina.get(connected).content.decode().split())
    assert "You are an admin of Northwind in the portal, because your Entra administrator" in page
    assert "What comes next" in page and "it is under way" in page
    assert "AppRoleAssignment.ReadWrite.All" in page  # how to reach revoke mode


def test_a_declined_consent_says_what_to_do_and_connects_nothing(
    emu, nina, sent_syncs, django_capture_on_commit_callbacks
):
    back = consent_at_entra(emu, start(nina, emu), {"decision": "decline"})

    with django_capture_on_commit_callbacks(execute=True):
        response = nina.get(back)

    assert response.status_code == 200
    assert b"Consent was declined" in response.content
    assert b"Ask a Global Administrator" in response.content
    assert b"AADSTS65004" in response.content
    assert not Tenant.objects.exists()
    assert not portal_apps_in(emu, NORTHWIND)
    assert sent_syncs == []


def test_a_user_who_is_not_an_admin_is_told_to_ask_one(emu, nina):
    ivan = user_id(emu, NORTHWIND, "ivan@northwind.onmicrosoft.com")
    back = consent_at_entra(emu, start(nina, emu), {"decision": "accept", "user": ivan})

    response = nina.get(back)

    assert b"may not grant consent for the whole organization" in response.content
    assert not Tenant.objects.exists()


@pytest.mark.parametrize("spoil", ["tampered", "expired", "another-user"])
def test_a_bad_state_is_refused_and_connects_nothing(emu, nina, monkeypatch, spoil):
    nina_id = user_id(emu, NORTHWIND, "nina@northwind.onmicrosoft.com")
    back = consent_at_entra(emu, start(nina, emu), {"decision": "accept", "user": nina_id})
    client = nina
    if spoil == "tampered":
        back = back.replace("state=", "state=x")
    elif spoil == "expired":
        monkeypatch.setattr("tenants.onboarding.STATE_MAX_AGE", -1)
    else:
        client = northwind_user()

    response = client.get(back)

    assert response.status_code == 400
    assert b"not valid any more" in response.content
    assert not Tenant.objects.exists()


def test_an_onboarded_tenants_reader_may_not_start(emu, bob_client):
    response = bob_client.get(reverse("tenants:connect-start"))

    assert response["Location"] == reverse("tenants:connect")


def granted(tenant: Tenant) -> list[str]:
    return [p.value for p in tenant_health(tenant).permissions if p.granted]


def test_fabrikam_is_read_only(emu, fabrikam, charlie_client):
    sync(fabrikam)

    response = charlie_client.get(reverse("tenants:health", args=[FABRIKAM]))

    assert response.status_code == 200
    assert b"Read-only" in response.content
    assert b"Switching on revoke mode" in response.content
    assert granted(fabrikam) == ["Application.Read.All", "Directory.Read.All"]


def test_contoso_is_in_revoke_mode(emu, contoso, bob_client):
    sync(contoso)

    response = bob_client.get(reverse("tenants:health", args=[CONTOSO]))

    assert b"Revoke mode" in response.content
    assert b"Switching on revoke mode" not in response.content
    assert granted(contoso) == [
        "Application.Read.All",
        "Directory.Read.All",
        "AppRoleAssignment.ReadWrite.All",
        "DelegatedPermissionGrant.ReadWrite.All",
    ]


def test_a_token_error_shows_its_fix(contoso, bob_client):
    SyncRunFactory(tenant=contoso, failed=True, error=EXPIRED_SECRET)

    response = bob_client.get(reverse("tenants:health", args=[CONTOSO]))

    assert b"The portal&#x27;s client secret has expired." in response.content
    assert b"Create a new client secret" in response.content


def test_a_missing_read_permission_links_to_connect_again(contoso, alice_client):
    SyncRunFactory(
        tenant=contoso,
        failed=True,
        error="GET /v1.0/servicePrincipals: access denied (Authorization_RequestDenied). "
        "The portal's app needs Application.Read.All (or Directory.Read.All) in tenant x.",
    )

    response = alice_client.get(reverse("tenants:health", args=[CONTOSO]))

    assert b"lacks a permission it needs" in response.content
    assert reverse("tenants:connect").encode() in response.content


def test_a_failure_before_the_last_good_sync_is_no_problem_any_more(contoso):
    SyncRunFactory(tenant=contoso, failed=True, error=EXPIRED_SECRET)
    SyncRunFactory(tenant=contoso, succeeded=True, last_good=True)

    assert tenant_health(contoso).problems == []


def test_connecting_a_tenant_is_recorded_in_the_audit_trail(emu, db):
    # Contoso's admin consented long ago: the portal's read there proves it.
    tenant = admin_consent_complete(
        params={"tenant": CONTOSO, "admin_consent": "True"}, state_ok=True
    )
    event = AuditEvent.objects.get(action=AuditEvent.Action.TENANT_CONNECTED)
    assert event.tenant == tenant and event.details == {"new": True}
    # Its first sync says what started it.
    assert tenant.sync_runs.get().trigger == SyncRun.Trigger.CONNECT


# -- proof of consent, a single-use state, the right to connect checked again (issue 12) --


def forged_callback(url: str, tenant_id: str) -> str:
    """The callback as an attacker writes it: the portal's own state, no consent given."""
    state = parse_qs(urlsplit(url).query)["state"][0]
    return (
        reverse("tenants:connect-callback")
        + f"?admin_consent=True&tenant={tenant_id}&state={state}"
    )


def test_a_forged_callback_without_consent_connects_nothing(emu, nina, sent_syncs):
    url = start(nina, emu)

    response = nina.get(forged_callback(url, NORTHWIND))

    assert response.status_code == 400
    assert b"did not confirm" in response.content
    assert not Tenant.objects.exists()
    assert sent_syncs == [] and not portal_apps_in(emu, NORTHWIND)


def test_a_state_is_used_once(emu, nina, sent_syncs, django_capture_on_commit_callbacks):
    nina_id = user_id(emu, NORTHWIND, "nina@northwind.onmicrosoft.com")
    back = consent_at_entra(emu, start(nina, emu), {"decision": "accept", "user": nina_id})
    with django_capture_on_commit_callbacks(execute=True):
        assert nina.get(back).status_code == 302

    replayed = nina.get(back)

    assert replayed.status_code == 400
    assert b"not valid any more" in replayed.content
    assert len(sent_syncs) == 1
    assert AuditEvent.objects.filter(action=AuditEvent.Action.TENANT_CONNECTED).count() == 1


def test_a_declined_state_cannot_be_replayed_with_consent(emu, nina, sent_syncs):
    url = start(nina, emu)
    nina.get(consent_at_entra(emu, url, {"decision": "decline"}))
    # An admin consents meanwhile; the declined callback's state is spent all the same.
    nina_id = user_id(emu, NORTHWIND, "nina@northwind.onmicrosoft.com")
    consent_at_entra(emu, start(nina, emu), {"decision": "accept", "user": nina_id})

    response = nina.get(forged_callback(url, NORTHWIND))

    assert response.status_code == 400 and b"not valid any more" in response.content
    assert not Tenant.objects.exists()


def test_who_lost_the_right_to_connect_between_start_and_callback_is_refused(
    emu, alice, sent_syncs
):
    client = Client(HTTP_HOST=PORTAL_HOST)
    client.force_login(alice)
    url = start(client, emu)
    alice_id = user_id(emu, CONTOSO, "alice@contoso.onmicrosoft.com")
    back = consent_at_entra(emu, url, {"decision": "accept", "user": alice_id})
    # Her Portal.Admin role is removed in Entra (a sync, or her next sign-in, says so).
    alice.entra_roles = []
    alice.save()

    response = client.get(back)

    assert response.status_code == 403
    assert b"may not connect" in response.content
    assert sent_syncs == []
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.TENANT_CONNECTED).exists()


def test_consent_is_proven_even_while_new_tokens_lack_the_new_roles(
    emu, nina, sent_syncs, django_capture_on_commit_callbacks, monkeypatch
):
    # Entra's tokens lag behind a consent given a moment ago (token_role_lag): the proof
    # waits for one that carries the roles, and the emulator's clock moves as it waits.
    emu.set_behaviour(token_role_lag=5)
    monkeypatch.setattr("tenants.onboarding.proof_sleep", emu.advance_clock)
    nina_id = user_id(emu, NORTHWIND, "nina@northwind.onmicrosoft.com")
    back = consent_at_entra(emu, start(nina, emu), {"decision": "accept", "user": nina_id})

    with django_capture_on_commit_callbacks(execute=True):
        response = nina.get(back)

    assert response.status_code == 302
    assert Tenant.objects.get(tenant_id=NORTHWIND).name == "Northwind"
    assert len(sent_syncs) == 1


def test_the_connected_page_sends_the_admin_to_the_most_unused_grants_first(alice_client, contoso):
    # The tenant page lists by name unless asked: the next step links the order it promises.
    tenant_page = reverse("tenants:tenant-detail", args=[CONTOSO])
    page = " ".join(
        alice_client.get(reverse("tenants:connected", args=[CONTOSO])).content.decode().split()
    )
    assert (
        f'<a href="{tenant_page}?sort=unused">those with the most unused grants first</a>' in page
    )
