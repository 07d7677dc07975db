"""Names with hidden characters on pages (issue 12, item 7): shown with the characters
made visible and a warning badge, so ``Microsoft Graph\\u202e txt.exe`` cannot pass for
Microsoft Graph."""

import pytest
from django.test import Client
from django.urls import reverse

from tenants.services import sync_run_queue, tenant_add
from tenants.sync import sync_run_execute
from tests.factories import GrantFactory, ServicePrincipalFactory
from tests.helpers import member, signed_in
from tests.ids import WOODGROVE
from tests.tenants.views.helpers import succeeded_run

BADGE = "name contains hidden characters"
DISGUISED = "Microsoft Graph\u202e txt.exe"
WOODGROVE_BOT = "0c1d2e3f-4a5b-4c6d-9e7f-809102132435"  # control characters in its name


@pytest.fixture
def disguised(contoso):
    run = succeeded_run(contoso)
    sp = ServicePrincipalFactory(tenant=contoso, display_name=DISGUISED)
    GrantFactory(client=sp, value="Mail.Read", first_seen_run=run)
    return sp


def page(client: Client, name: str, *args: object) -> str:
    response = client.get(reverse(name, args=args))
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.django_db
def test_the_tenant_and_application_pages_flag_a_disguised_name(alice_client, contoso, disguised):
    for shown in (
        page(alice_client, "tenants:tenant-detail", contoso.tenant_id),
        page(alice_client, "tenants:application", contoso.tenant_id, disguised.app_id),
    ):
        assert BADGE in shown
        assert "\u202e" not in shown
        assert "Microsoft Graph\ufffd txt.exe" in shown


@pytest.mark.django_db
def test_a_plain_name_has_no_badge(alice_client, contoso, disguised):
    disguised.display_name = "Microsoft Graph"
    disguised.save()

    assert BADGE not in page(alice_client, "tenants:tenant-detail", contoso.tenant_id)


@pytest.mark.django_db(transaction=True)
def test_woodgroves_app_with_control_characters_is_flagged(emu, client_for):
    tenant = tenant_add(tenant_id=WOODGROVE, name="Woodgrove")[0]
    run = sync_run_queue(tenant=tenant)
    assert sync_run_execute(run_id=run.pk, client=client_for(WOODGROVE)).status == "succeeded"
    wendy = signed_in(member("wendy", tenant, "Portal.Admin"))

    shown = page(wendy, "tenants:application", WOODGROVE, WOODGROVE_BOT)

    assert BADGE in shown
    assert not any(char in shown for char in "\x00\x07\x1b\u202e")
