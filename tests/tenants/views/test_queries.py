"""The heavy pages ask the database a fixed number of queries, whatever the tenant's size:
the same for 20 applications holding 200 grants as for 200 holding 6,000, and no more
than the bound (benchmarks/pages.py measures the benchmark size on PostgreSQL). The lists
read the findings stored when the tenant was built, as a sync stores them."""

from collections.abc import Callable

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from benchmarks.pages import large_tenant_create
from tenants.models import Grant, ServicePrincipal, Tenant
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

SMALL = {"applications": 20, "grants_per_application": 10}
LARGE = {"applications": 200, "grants_per_application": 30}


def tenant_page(tenant: Tenant, sp: ServicePrincipal) -> str:
    return reverse("tenants:tenant-detail", args=[tenant.tenant_id])


def filtered_tenant_page(tenant: Tenant, sp: ServicePrincipal) -> str:
    return tenant_page(tenant, sp) + "?verdict=unexplained&party=third&q=app&sort=risk"


def application_page(tenant: Tenant, sp: ServicePrincipal) -> str:
    return reverse("tenants:application", args=[tenant.tenant_id, sp.app_id])


def feature_preview(tenant: Tenant, sp: ServicePrincipal) -> str:
    url = reverse("tenants:features-preview", args=[tenant.tenant_id, sp.app_id])
    return url + "?enabled=extras"


def dashboard(tenant: Tenant, sp: ServicePrincipal) -> str:
    return reverse("tenants:dashboard")


def matrix(tenant: Tenant, sp: ServicePrincipal) -> str:
    return reverse("tenants:matrix")


def matrix_by_risk(tenant: Tenant, sp: ServicePrincipal) -> str:
    return matrix(tenant, sp) + "?sort=risk"


def csv_export(tenant: Tenant, sp: ServicePrincipal) -> str:
    return reverse("tenants:report-csv", args=[tenant.tenant_id])


# The page, whether htmx asks for it (the preview: as a switch flips), and its bound; each
# counts the session and the signed-in user (2) and the header's look-up of the user's
# tenant (1), and the justifications that may change verdicts (1). The tenant page counts
# the revoke requests waiting for approval (1) and looks for a sync held for review (1);
# the application page reads its revoke requests and whether the portal may write (2), what
# granting its missing permissions takes (the resources' service principals and its admin
# consent grants, 2), and for an admin the tenant's users, who may be picked to review a
# justification (1); the
# report behind the CSV export reads which revoked grants came back (1) and, for each
# chunk of applications it streams (one here), their credentials (1).
PAGES = [
    (tenant_page, False, 15),
    (filtered_tenant_page, False, 15),
    # + the application's credentials (tenants.facts), its consenting users' names (1), the
    # events that gave its grants and its consent history (tenants.provenance; its count only
    # past the 50 listed), its missing permissions' requests (2)
    (application_page, False, 24),
    (feature_preview, True, 11),
    (dashboard, False, 12),
    (matrix, False, 13),
    (matrix_by_risk, False, 13),
    (csv_export, False, 14),
]


def queries(tenant: Tenant, url_of: Callable[[Tenant, ServicePrincipal], str], htmx: bool) -> int:
    client = Client()
    client.force_login(
        UserFactory(entra_tenant_id=str(tenant.tenant_id), entra_roles=["Portal.Admin"])
    )
    # A manifest-backed application (benchmarks.pages gives every tenth one a manifest).
    sp = ServicePrincipal.objects.filter(tenant=tenant).order_by("display_name").first()
    url = url_of(tenant, sp)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, headers={"HX-Request": "true"} if htmx else {})
        # An export's queries run as it is sent.
        if response.streaming:
            response.getvalue()
    assert response.status_code == 200, url
    return len(captured)


@pytest.fixture
def tenants() -> tuple[Tenant, Tenant]:
    small = large_tenant_create(**SMALL, seed=1, name="Small")
    large = large_tenant_create(**LARGE, seed=2, name="Large")
    assert Grant.objects.filter(tenant=large).count() == 6000
    return small, large


@pytest.mark.parametrize(
    ("url_of", "htmx", "bound"), PAGES, ids=[page.__name__ for page, _, _ in PAGES]
)
def test_the_page_asks_a_fixed_number_of_queries_whatever_the_size(tenants, url_of, htmx, bound):
    small, large = tenants

    counts = [queries(small, url_of, htmx), queries(large, url_of, htmx)]

    assert counts[0] == counts[1] <= bound, counts
