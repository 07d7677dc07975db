"""The tenant and application pages mark the apps bulk revokes leave alone: the portal's
own app, Microsoft's first-party apps and managed identities."""

from tenants.models import MANAGED_IDENTITY
from tests.factories import GrantFactory, ServicePrincipalFactory
from tests.ids import MICROSOFT, PORTAL_APP
from tests.tenants.views.helpers import app_url, succeeded_run, tenant_url


def test_the_tenant_page_marks_the_portal_microsofts_apps_and_managed_identities(
    alice_client, contoso, settings
):
    settings.PORTAL_CLIENT_ID = PORTAL_APP
    run = succeeded_run(contoso)
    portal = ServicePrincipalFactory(tenant=contoso, app_id=PORTAL_APP, display_name="Portal")
    identity = ServicePrincipalFactory(
        tenant=contoso, display_name="func-sync", service_principal_type=MANAGED_IDENTITY
    )
    teams = ServicePrincipalFactory(
        tenant=contoso, display_name="Teams Services", app_owner_tenant_id=MICROSOFT
    )
    vendor = ServicePrincipalFactory(tenant=contoso, display_name="AskCody")
    for sp in (portal, identity, teams, vendor):
        GrantFactory(client=sp, first_seen_run=run)

    html = alice_client.get(tenant_url(contoso)).content.decode()

    rows = {
        sp.display_name: _row(html, sp.display_name) for sp in (portal, identity, teams, vendor)
    }
    assert "This portal" in rows["Portal"] and "Managed identity" not in rows["Portal"]
    assert "Managed identity" in rows["func-sync"] and "This portal" not in rows["func-sync"]
    assert 'party-first">Microsoft' in rows["Teams Services"]
    assert not any(badge in rows["AskCody"] for badge in ("This portal", "Managed identity"))


def test_the_application_page_says_it_is_a_managed_identity(alice_client, contoso):
    run = succeeded_run(contoso)
    identity = ServicePrincipalFactory(tenant=contoso, service_principal_type=MANAGED_IDENTITY)
    GrantFactory(client=identity, first_seen_run=run)

    html = alice_client.get(app_url(contoso, identity)).content.decode()

    heading = html[html.index('class="page-heading"') : html.index('class="facts"')]
    assert "Managed identity" in heading


def _row(html: str, name: str) -> str:
    start = html.index(f">{name}</a>")
    return html[start : html.index("</tr>", start)]
