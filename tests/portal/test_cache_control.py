"""Nothing a signed-in user sees, and no export, is kept by a browser or a shared cache:
`Cache-Control: no-store, private` (the back button on a shared computer, a proxy's cache)."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.http import HttpResponse
from django.test import RequestFactory
from django.urls import reverse
from django.utils.cache import patch_cache_control

from portal.middleware import CacheControlMiddleware

pytestmark = pytest.mark.django_db


def directives(response) -> set[str]:
    return {part.strip() for part in response.get("Cache-Control", "").split(",") if part.strip()}


def test_a_signed_in_page_is_never_stored(bob_client, contoso):
    response = bob_client.get(
        reverse("tenants:tenant-detail", kwargs={"tenant_id": contoso.tenant_id})
    )

    assert response.status_code == 200
    assert {"no-store", "private"} <= directives(response)


def test_an_htmx_fragment_is_never_stored(bob_client, contoso):
    response = bob_client.get(
        reverse("tenants:tenant-detail", kwargs={"tenant_id": contoso.tenant_id}),
        HTTP_HX_REQUEST="true",
    )

    assert response.status_code == 200 and b"<html" not in response.content
    assert {"no-store", "private"} <= directives(response)


@pytest.mark.parametrize(
    "export", ["tenants:report-csv", "tenants:report-json", "tenants:audit-csv"]
)
def test_an_export_is_never_stored(bob_client, contoso, export):
    response = bob_client.get(reverse(export, kwargs={"tenant_id": contoso.tenant_id}))

    assert response["Content-Disposition"].startswith("attachment")
    assert {"no-store", "private"} <= directives(response)


def test_an_attachment_is_never_stored_even_without_a_sign_in():
    def download(request):
        response = HttpResponse("a,b\n", content_type="text/csv")
        response["Content-Disposition"] = 'attachment; filename="x.csv"'
        patch_cache_control(response, public=True, max_age=3600)
        return response

    request = RequestFactory().get("/x.csv")
    request.user = AnonymousUser()

    response = CacheControlMiddleware(download)(request)

    assert {"no-store", "private"} <= directives(response)
    assert "public" not in directives(response)
