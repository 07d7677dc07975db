"""Finding what is risky: the tenant page sorted and filtered on the server by risk, tier,
kind and verdict from the stored findings; the dashboard's "look at these first" and its
counts linking to their lists; the matrix saying in words what its colours say.
alice is an admin of Contoso, charlie of Fabrikam, oscar an operator (conftest.py)."""

import uuid

import pytest
from django.urls import reverse

from permissions.models import PermissionKind, Tier
from tenants.findings import findings_refresh
from tenants.models import ServicePrincipal, Tenant
from tenants.views import dashboard
from tests.factories import GrantFactory, PermissionFactory, ServicePrincipalFactory
from tests.ids import MICROSOFT
from tests.tenants.views.helpers import HTMX, app_url, dashboard_url, succeeded_run, tenant_url

pytestmark = pytest.mark.django_db

# By risk: Alpha (a control-plane role: high), Charlie (third-party, management plane:
# medium), Teams (Microsoft's, management plane: low), Bravo (user access: low), Delta (a
# permission the catalog does not know: low).
BY_RISK = ["Alpha", "Charlie", "Teams", "Bravo", "Delta"]
BY_NAME = sorted(BY_RISK)


def holding(tenant: Tenant, run, name: str, value: str, **sp_fields) -> None:
    sp = ServicePrincipalFactory(tenant=tenant, display_name=name, **sp_fields)
    kind = PermissionKind.DELEGATED if value == "User.Read" else PermissionKind.APPLICATION
    GrantFactory(client=sp, value=value, kind=kind, first_seen_run=run)


@pytest.fixture
def risky(contoso) -> Tenant:
    PermissionFactory(value="RoleManagement.ReadWrite.Directory", tier=Tier.CONTROL_PLANE)
    PermissionFactory(value="Mail.Send", tier=Tier.MANAGEMENT_PLANE, privilege_level=4)
    PermissionFactory(
        value="User.Read", kind=PermissionKind.DELEGATED, tier=Tier.USER_ACCESS, privilege_level=1
    )
    run = succeeded_run(contoso)
    holding(contoso, run, "Alpha", "RoleManagement.ReadWrite.Directory")
    holding(contoso, run, "Charlie", "Mail.Send", app_owner_tenant_id=uuid.uuid4())
    holding(contoso, run, "Teams", "Mail.Send", app_owner_tenant_id=MICROSOFT)
    holding(contoso, run, "Bravo", "User.Read")
    holding(contoso, run, "Delta", "Unknown.Thing")
    return contoso


def names(response) -> list[str]:
    """The applications listed; their count, which the stored summary gives for one
    filter, agrees with them."""
    assert response.status_code == 200
    page = response.context["page_obj"]
    listed = [item.display_name for item in page]
    assert page.paginator.count == len(listed)
    return listed


# --- the tenant page ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("", BY_NAME),
        ("name", BY_NAME),
        ("-name", BY_NAME[::-1]),
        ("risk", BY_RISK),
        ("-risk", BY_RISK[::-1]),
        ("control_plane", ["Alpha", *sorted(set(BY_NAME) - {"Alpha"})]),
        ("privilege", ["Charlie", "Teams", "Alpha", "Bravo", "Delta"]),
        ("no-such-order", BY_NAME),
    ],
)
def test_the_tenant_page_sorts_on_the_server(alice_client, risky, sort, expected):
    assert names(alice_client.get(tenant_url(risky), {"sort": sort})) == expected


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"risk": "high"}, ["Alpha"]),
        ({"risk": "medium"}, ["Charlie"]),
        ({"tier": "ControlPlane"}, ["Alpha"]),
        ({"tier": "ManagementPlane", "sort": "risk"}, ["Charlie", "Teams"]),
        ({"tier": "none"}, ["Delta"]),
        ({"kind": "microsoft"}, ["Teams"]),
        ({"kind": "third_party"}, ["Charlie"]),
        ({"verdict": "needed"}, []),
        ({"risk": "low", "q": "a", "sort": "-risk"}, ["Delta", "Bravo", "Teams"]),
        ({"risk": "purple"}, BY_NAME),
        ({"party": "first"}, ["Teams"]),
        ({"party": "third"}, ["Alpha", "Bravo", "Charlie", "Delta"]),
        ({"tier": "UserAccess"}, ["Bravo"]),
        ({"verdict": "unexplained", "tier": "ManagementPlane"}, ["Charlie", "Teams"]),
    ],
)
def test_the_tenant_page_filters_by_risk_tier_and_kind(alice_client, risky, filters, expected):
    assert names(alice_client.get(tenant_url(risky), filters)) == expected


def test_the_tenant_page_shows_risk_tier_and_privilege_in_words(alice_client, risky):
    html = alice_client.get(tenant_url(risky), {"q": "alpha"}).content.decode()

    assert '<span class="tag risk-high" title="1 control-plane permission:' in html
    assert ">High</span>" in html
    assert '<span class="tag tier tier-ControlPlane">Control plane</span>' in html


def test_a_column_heading_sorts_by_it_keeping_the_filters_and_then_reverses(alice_client, risky):
    html = alice_client.get(tenant_url(risky), {"risk": "low", "page": "1"}).content.decode()
    assert (
        '<a class="sort-link" href="?risk=low&amp;sort=risk" hx-get="?risk=low&amp;sort=risk" '
        'hx-target="#application-results" hx-push-url="true">Risk</a>'
    ) in html
    assert 'aria-sort="ascending"><a class="sort-link" href="?risk=low&amp;sort=-name"' in html

    html = alice_client.get(tenant_url(risky), {"risk": "low", "sort": "risk"}).content.decode()
    assert 'aria-sort="descending"><a class="sort-link" href="?risk=low&amp;sort=-risk"' in html


def test_htmx_gets_the_sorted_list_with_the_order_for_the_filters_to_send(alice_client, risky):
    response = alice_client.get(tenant_url(risky), {"sort": "risk"}, **HTMX)

    html = response.content.decode()
    assert "<h1" not in html and names(response) == BY_RISK
    assert '<input type="hidden" name="sort" value="risk" form="application-filters">' in html


# --- the dashboard --------------------------------------------------------------------------


def test_the_dashboard_lists_the_riskiest_applications_first_with_links(alice_client, risky):
    html = alice_client.get(dashboard_url()).content.decode()

    section = html[html.index("Look at these first") :]
    alpha = ServicePrincipal.objects.get(display_name="Alpha")
    assert section.index(">Alpha</a>") < section.index(">Charlie</a>")
    assert f'<a href="{app_url(risky, alpha)}">Alpha</a>' in section
    assert "1 control-plane permission: RoleManagement.ReadWrite.Directory" in section


def test_the_riskiest_list_shows_only_the_users_tenants(alice_client, risky, fabrikam):
    run = succeeded_run(fabrikam)
    holding(fabrikam, run, "Fabrikam root", "RoleManagement.ReadWrite.Directory")
    findings_refresh(tenant=fabrikam)

    riskiest = alice_client.get(dashboard_url()).context["riskiest"]

    assert [f.display_name for f in riskiest] == BY_RISK


def test_every_dashboard_count_links_to_its_filtered_list(alice_client, risky):
    html = alice_client.get(dashboard_url()).content.decode()

    url = tenant_url(risky)
    for query in (
        "?verdict=unused",
        "?verdict=unexplained",
        "?verdict=missing",
        "?verdict=needed",
        "?tier=ControlPlane",
        "?risk=critical&amp;sort=risk",
        "?risk=high&amp;sort=risk",
    ):
        assert f'href="{url}{query}"' in html, query
    assert (
        f'<a class="count-link" href="{url}?tier=ControlPlane">'
        '<span class="tag tier tier-ControlPlane">1</span></a>'
    ) in html
    assert (
        f'<a class="count-link" href="{url}?risk=high&amp;sort=risk"><span class="tag risk-high">1</span>'
        in html
    )


# --- the matrix -----------------------------------------------------------------------------


def test_the_matrix_says_in_words_what_its_colours_say(oscar_client, risky):
    html = oscar_client.get(reverse("tenants:matrix")).content.decode()

    assert '<span class="tag verdict-unexplained">1 unexplained</span>' in html
    assert '>High<span class="is-sr-only"> risk,</span></span>' in html
    assert '<span class="is-sr-only">Alpha in Contoso:</span>' in html


def test_the_matrix_sorts_by_risk(oscar_client, risky):
    rows = oscar_client.get(reverse("tenants:matrix"), {"sort": "risk"}).context["rows"]

    assert [row.display_name for row in rows] == BY_RISK
    assert rows[0].risk_score > rows[1].risk_score


def test_the_matrix_pages_through_tenants_as_columns(oscar_client, risky, fabrikam, monkeypatch):
    monkeypatch.setattr(dashboard, "MATRIX_TENANTS_PER_PAGE", 1)
    holding(fabrikam, succeeded_run(fabrikam), "Only in Fabrikam", "Mail.Send")

    first = oscar_client.get(reverse("tenants:matrix"), {"sort": "risk"})
    second = oscar_client.get(reverse("tenants:matrix"), {"sort": "risk", "tenants": "2"})

    assert first.context["tenants"] == [risky]
    assert "Only in Fabrikam" not in [row.display_name for row in first.context["rows"]]
    assert 'href="?sort=risk&amp;tenants=2"' in first.content.decode()
    assert second.context["tenants"] == [fabrikam]
    assert [row.display_name for row in second.context["rows"]] == ["Only in Fabrikam"]


def test_the_matrix_pages_through_applications_without_counting_them(
    oscar_client, risky, monkeypatch
):
    monkeypatch.setattr(dashboard, "MATRIX_ROWS_PER_PAGE", 2)

    pages = [oscar_client.get(reverse("tenants:matrix"), {"page": number}) for number in (1, 2, 3)]

    assert [[row.display_name for row in p.context["rows"]] for p in pages] == [
        ["Alpha", "Bravo"],
        ["Charlie", "Delta"],
        ["Teams"],
    ]
    first, _, last = (p.content.decode() for p in pages)
    assert 'href="?page=2"' in first and "Applications 1–2, in 1 tenant." in first
    assert 'href="?page=2"' in last and 'rel="next"' not in last
    assert "Applications 5–5" in last


def test_an_application_in_several_tenants_is_one_row_at_its_highest_risk(
    oscar_client, risky, fabrikam
):
    bravo = ServicePrincipal.objects.get(display_name="Bravo")
    run = succeeded_run(fabrikam)
    holding(fabrikam, run, "Bravo", "RoleManagement.ReadWrite.Directory", app_id=bravo.app_id)

    rows = oscar_client.get(reverse("tenants:matrix"), {"sort": "risk"}).context["rows"]

    assert [row.display_name for row in rows] == ["Alpha", "Bravo", "Charlie", "Teams", "Delta"]
    (contoso_cell, fabrikam_cell) = [finding for _, finding in rows[1].cells]
    assert (contoso_cell.risk_level, fabrikam_cell.risk_level) == ("low", "high")
