"""User consents by the user's name and UPN, not an object id (issue 15, item 8): the sync
looks each consenting user up once (directoryObjects/getByIds), the pages show what it read."""

import re

import pytest
from django.urls import reverse

from tenants.models import ConsentingUser, Grant
from tests.helpers import sync
from tests.ids import FABRIKAM


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


@pytest.fixture
def user_grant(synced) -> Grant:
    return (
        Grant.objects.filter(tenant=synced.fabrikam, consent=Grant.Consent.USER)
        .select_related("client")
        .order_by("pk")
        .first()
    )


def test_the_sync_reads_the_names_of_users_who_consented(synced, user_grant, emu):
    named = ConsentingUser.objects.get(tenant=synced.fabrikam, object_id=user_grant.principal_id)
    user = next(u for u in emu.state(FABRIKAM)["users"] if u["id"] == str(user_grant.principal_id))

    assert (named.display_name, named.user_principal_name) == (
        user["displayName"],
        user["userPrincipalName"],
    )


def test_the_sync_reads_the_names_once(synced, user_grant, emu, client_for):
    emu.reset_counters()
    ConsentingUser.objects.filter(object_id=user_grant.principal_id).delete()

    sync(synced.fabrikam, client_for(FABRIKAM))

    # One request for the one user not named yet; the others are not read again.
    assert emu.requests_to(r"/directoryObjects/getByIds", "POST") == 1
    assert ConsentingUser.objects.filter(object_id=user_grant.principal_id).exists()


def test_a_failed_read_of_the_names_is_noted_and_fails_nothing(emu, contoso, fabrikam, client_for):
    emu.set_faults([{"path": "/v1.0/directoryObjects/getByIds", "status": 400}])

    run = sync(fabrikam, client_for(FABRIKAM))

    assert run.status == "succeeded" and not ConsentingUser.objects.exists()
    assert any("users who consented could not be read" in note for note in run.notes)


def test_pages_name_the_consenting_user_with_the_upn(synced, user_grant, charlie_client):
    named = ConsentingUser.objects.get(object_id=user_grant.principal_id)
    tenant = synced.fabrikam

    page = text(
        charlie_client.get(
            reverse("tenants:application", args=[tenant.tenant_id, user_grant.client.app_id])
        )
    )
    run = text(
        charlie_client.get(
            reverse("tenants:run-detail", args=[tenant.tenant_id, tenant.last_good_sync_id])
        )
    )

    for html in (page, run):
        assert f'<span class="consenting-user">{named.display_name}</span>' in html
        assert f'<span class="upn">{named.user_principal_name}</span>' in html
    assert str(user_grant.principal_id) not in page


def test_hostile_names_are_shown_plain(synced, user_grant, charlie_client):
    ConsentingUser.objects.filter(object_id=user_grant.principal_id).update(
        display_name="Mallory\u202egpj.exe", user_principal_name="<b>m</b>@fabrikam.example"
    )
    tenant = synced.fabrikam

    page = charlie_client.get(
        reverse("tenants:application", args=[tenant.tenant_id, user_grant.client.app_id])
    ).content.decode()

    assert "\u202e" not in page and "<b>m</b>" not in page
    assert "&lt;b&gt;m&lt;/b&gt;@fabrikam.example" in page
