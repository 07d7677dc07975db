"""portal.htmx: a page for browsers, boosted links and history restores; a fragment when
htmx swaps part of the page in; and Vary: HX-Request on every answer of a URL that does both."""

from typing import cast

import pytest
from django.test import RequestFactory
from django.urls import reverse
from django_htmx.middleware import HtmxDetails

from portal.htmx import wants_fragment
from portal.http import HtmxHttpRequest
from tests.factories import PermissionFactory, TenantFactory, UserFactory

BROWSER: dict[str, str] = {}
HTMX = {"HX-Request": "true"}
BOOSTED = {"HX-Request": "true", "HX-Boosted": "true"}
HISTORY_RESTORE = {"HX-Request": "true", "HX-History-Restore-Request": "true"}


def request_with(headers: dict[str, str]) -> HtmxHttpRequest:
    request = cast(HtmxHttpRequest, RequestFactory().get("/", headers=headers))
    request.htmx = HtmxDetails(request)  # as django_htmx's middleware sets it
    return request


@pytest.mark.parametrize(
    ("headers", "expected"),
    [(BROWSER, False), (HTMX, True), (BOOSTED, False), (HISTORY_RESTORE, False)],
    ids=["browser", "htmx", "boosted", "history-restore"],
)
def test_only_htmx_swapping_part_of_the_page_wants_a_fragment(headers, expected):
    assert wants_fragment(request_with(headers)) is expected


@pytest.fixture
def catalog(client, db) -> str:
    # The catalog needs a portal role (tests/permissions/test_catalog_visibility.py).
    tenant = TenantFactory()
    client.force_login(
        UserFactory(entra_tenant_id=str(tenant.tenant_id), entra_roles=["Portal.Reader"])
    )
    PermissionFactory(value="Mail.Send")
    return reverse("permissions:catalog")


@pytest.mark.parametrize(
    ("headers", "page"),
    [(BROWSER, True), (HTMX, False), (BOOSTED, True), (HISTORY_RESTORE, True)],
    ids=["browser", "htmx", "boosted", "history-restore"],
)
def test_a_page_or_its_fragment_says_it_varies_on_hx_request(client, catalog, headers, page):
    response = client.get(catalog, {"q": "mail"}, headers=headers)

    html = response.content.decode()
    assert response.status_code == 200
    assert ("<html" in html) is page
    assert "Mail.Send" in html
    assert "HX-Request" in response["Vary"]
