"""One approval queue over every tenant one sees (tenants.views.revokes.approval_queue),
and the operator admin who decides anywhere (issue 15, item 10). alice is an admin and
bob a reader of Contoso, charlie an admin of Fabrikam, oscar an operator."""

import re

import pytest
from django.urls import reverse

from tenants.models import RevokeRequest, Tenant
from tests.factories import (
    GrantFactory,
    RevokeRequestFactory,
    ServicePrincipalFactory,
    UserFactory,
)
from tests.helpers import signed_in
from tests.ids import CONTOSO
from tests.tenants.views.helpers import succeeded_run

pytestmark = pytest.mark.django_db

QUEUE = reverse("tenants:approvals")


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def waiting(tenant: Tenant, value: str, app: str) -> RevokeRequest:
    """A reader's request for an unexplained grant of ``app`` in ``tenant``."""
    run = tenant.last_good_sync or succeeded_run(tenant)
    sp = ServicePrincipalFactory(tenant=tenant, display_name=app)
    GrantFactory(client=sp, value=value, first_seen_run=run)
    return RevokeRequestFactory(
        client=sp, value=value, pending_approval=True, reason=f"{app} no longer reads it."
    )


@pytest.fixture
def queue(contoso, fabrikam) -> tuple[RevokeRequest, RevokeRequest]:
    return waiting(contoso, "Mail.Read", "Contoso mailer"), waiting(
        fabrikam, "Files.Read.All", "Fabrikam files"
    )


def approve_url(revoke: RevokeRequest) -> str:
    return reverse("tenants:revoke-approve", args=[revoke.tenant.tenant_id, revoke.pk])


def test_an_operator_reads_every_tenants_queue_but_decides_nowhere(oscar_client, queue):
    page = text(oscar_client.get(QUEUE))

    assert "Contoso mailer" in page and "Fabrikam files" in page
    assert "Contoso mailer no longer reads it." in page and "unexplained" in page.lower()
    assert ">Approve" not in page and "(or an operator admin) can decide" in page
    assert oscar_client.post(approve_url(queue[1])).status_code == 403


def test_an_operator_admin_approves_in_any_tenant(oscar, queue, sent_revokes):
    oscar.entra_roles = ["Portal.Operator", "Portal.Admin"]
    oscar.save()
    client = signed_in(oscar)

    page = text(client.get(QUEUE))
    assert page.count(">Approve</button>") == 2
    response = client.post(approve_url(queue[1]), {"next": QUEUE})

    assert response["Location"] == QUEUE
    queue[1].refresh_from_db()
    assert queue[1].status == RevokeRequest.Status.MANUAL  # Fabrikam: the portal may only read
    assert queue[1].decided_by == oscar


def test_a_tenant_admin_sees_only_their_tenants_requests(
    alice_client, charlie_client, queue, sent_revokes
):
    contoso_queue = text(alice_client.get(QUEUE))
    fabrikam_queue = text(charlie_client.get(QUEUE))

    assert "Contoso mailer" in contoso_queue and "Fabrikam files" not in contoso_queue
    assert "Fabrikam files" in fabrikam_queue and "Contoso mailer" not in fabrikam_queue
    # Another tenant's request is not found at all, let alone approved.
    assert charlie_client.post(approve_url(queue[0])).status_code == 404
    queue[0].refresh_from_db()
    assert queue[0].status == RevokeRequest.Status.PENDING_APPROVAL


def test_a_reader_cannot_approve_from_the_queue(bob_client, queue):
    page = text(bob_client.get(QUEUE))

    assert "Contoso mailer" in page and ">Approve" not in page
    assert bob_client.post(approve_url(queue[0]), {"confirm": "on"}).status_code == 403


def test_the_nav_lists_approvals_for_operators_and_admins_only(
    alice_client, oscar_client, bob_client, erin_client, contoso
):
    link = f'href="{QUEUE}"'
    assert link in text(alice_client.get(reverse("tenants:dashboard")))
    assert link in text(oscar_client.get(reverse("tenants:dashboard")))
    assert link not in text(bob_client.get(reverse("tenants:dashboard")))
    assert link not in text(erin_client.get(reverse("digests:subscriptions")))


def test_the_nav_lists_approvals_for_a_directory_role_admin_not_a_directory_role_reader(
    contoso,
):
    # A Global Administrator counts as Portal.Admin in their own tenant; a Global Reader as
    # Portal.Reader, who cannot approve.
    admin = signed_in(UserFactory(entra_tenant_id=CONTOSO, directory_roles=["Portal.Admin"]))
    reader = signed_in(UserFactory(entra_tenant_id=CONTOSO, directory_roles=["Portal.Reader"]))
    link = f'href="{QUEUE}"'
    assert link in text(admin.get(reverse("tenants:dashboard")))
    assert admin.get(QUEUE).status_code == 200
    assert link not in text(reader.get(reverse("tenants:dashboard")))


def test_the_queue_is_paginated_oldest_first(alice_client, contoso):
    first = waiting(contoso, "Mail.Read", "App 0")
    for number in range(1, 26):
        waiting(contoso, "Mail.Read", f"App {number}")

    page_one = text(alice_client.get(QUEUE))
    page_two = text(alice_client.get(QUEUE, {"page": 2}))

    assert "26 requests waiting, 1–25 shown" in page_one
    assert f'id="revoke-request-{first.pk}"' in page_one
    assert "App 25<" in page_two and "App 0<" not in page_two


def test_the_queue_needs_a_sign_in(client):
    assert client.get(QUEUE).status_code == 302
