"""One application in a tenant: every grant with its verdict and why, the missing list, and
feature switches with a preview before saving. alice is an admin and bob a reader of
Contoso."""

import datetime as dt
import uuid

import pytest
from django.urls import reverse

from permissions.models import PermissionKind, Tier
from tenants.models import FeatureSwitch, ServicePrincipal, Tenant
from tests.factories import (
    ApplicationFactory,
    FeatureFactory,
    GrantFactory,
    PermissionApiCallFactory,
    PermissionFactory,
    RequirementFactory,
    ServicePrincipalFactory,
    TenantFactory,
)
from tests.helpers import signed_in
from tests.tenants.views.helpers import HTMX, succeeded_run

pytestmark = pytest.mark.django_db

FINISHED = dt.datetime(2026, 3, 14, 9, 30, 12, tzinfo=dt.UTC)
GRANTED = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC)
DELEGATED = PermissionKind.DELEGATED


@pytest.fixture
def contoso(contoso) -> Tenant:
    """Contoso (tests/conftest.py), synced once."""
    succeeded_run(contoso)
    return contoso


@pytest.fixture
def connect(contoso) -> ServicePrincipal:
    """247connect in Contoso.

    Features: device assignment (on by default; Device.Read.All, Group.Read.All declaring
    GET /groups only), mail (off; Mail.Send, and Mail.ReadWrite, which is not granted),
    reports (on; Reports.Read.All, not granted: missing). Grants: those three, Sites.Read.All
    (no feature lists it) and delegated User.Read, by admin consent and by two users.
    """
    application = ApplicationFactory(name="247connect", manifest_imported_at=FINISHED)
    devices = FeatureFactory(
        application=application, key="device-assignment", name="Device assignment", position=0
    )
    mail = FeatureFactory(
        application=application, key="mail", name="Mail", default_enabled=False, position=1
    )
    reports = FeatureFactory(application=application, key="reports", name="Reports", position=2)
    RequirementFactory(
        feature=devices,
        permission_value="Device.Read.All",
        reason="Finds each device to place.",
        api_calls=["GET /devices"],
    )
    RequirementFactory(
        feature=devices,
        permission_value="Group.Read.All",
        reason="Lists the device groups.",
        api_calls=["GET /groups"],
    )
    RequirementFactory(feature=mail, permission_value="Mail.Send", reason="Sends reports.")
    RequirementFactory(feature=mail, permission_value="Mail.ReadWrite", reason="Files replies.")
    RequirementFactory(
        feature=reports, permission_value="Reports.Read.All", reason="Reads usage reports."
    )
    PermissionFactory(
        value="Device.Read.All",
        description="Allows the app to read devices.",
        tier=Tier.MANAGEMENT_PLANE,
        privilege_level=3,
    )
    group_read = PermissionFactory(value="Group.Read.All", privilege_level=3)
    basic = PermissionFactory(value="Group.ReadBasic.All", privilege_level=2)
    for path in ("/groups", "/groups/{id}", "/groups/{id}/members"):
        PermissionApiCallFactory(permission=group_read, path=path)
    for path in ("/groups", "/groups/{id}"):
        PermissionApiCallFactory(permission=basic, path=path)
    PermissionFactory(value="Sites.Read.All", tier=Tier.CONTROL_PLANE)

    sp = ServicePrincipalFactory(
        tenant=contoso, app_id=application.app_id, display_name="247connect"
    )
    run = contoso.last_good_sync
    for value in ("Device.Read.All", "Group.Read.All", "Mail.Send", "Sites.Read.All"):
        GrantFactory(client=sp, value=value, granted_at=GRANTED, first_seen_run=run)
    for principal in (None, uuid.uuid4(), uuid.uuid4()):
        GrantFactory(
            client=sp,
            kind=DELEGATED,
            value="User.Read",
            permission_id=None,
            consent="user" if principal else "admin",
            principal_id=principal,
            first_seen_run=run,
        )
    return sp


def page_url(sp: ServicePrincipal) -> str:
    return reverse("tenants:application", args=[sp.tenant.tenant_id, sp.app_id])


def preview_url(sp: ServicePrincipal) -> str:
    return reverse("tenants:features-preview", args=[sp.tenant.tenant_id, sp.app_id])


def save_url(sp: ServicePrincipal) -> str:
    return reverse("tenants:features-save", args=[sp.tenant.tenant_id, sp.app_id])


def grants(response) -> list[tuple[str, str, str]]:
    return [
        (g.finding.permission.value, g.consent, g.verdict)
        for g in response.context["detail"].grants
    ]


# --- the page ----------------------------------------------------------------------------


def test_every_grant_has_its_verdict_revoke_candidates_first(alice_client, connect):
    response = alice_client.get(page_url(connect))

    assert grants(response) == [
        ("Sites.Read.All", "admin", "unexplained"),
        ("User.Read", "admin", "unexplained"),
        ("User.Read", "user", "unexplained"),
        ("Mail.Send", "admin", "unused"),
        ("Device.Read.All", "admin", "needed"),
        ("Group.Read.All", "admin", "needed"),
    ]
    counts = response.context["detail"].counts
    assert counts.by_verdict == [("needed", 2), ("unused", 1), ("unexplained", 3), ("missing", 1)]
    assert counts.control_plane == 1
    html = response.content.decode()
    assert html.count('<span class="tag verdict-unexplained">Unexplained</span>') == 3


def test_a_grant_shows_what_the_catalog_says_and_when_it_was_granted(alice_client, connect):
    html = alice_client.get(page_url(connect)).content.decode()

    assert "Allows the app to read devices." in html
    assert 'class="tag tier tier-ManagementPlane">Management plane</span>' in html
    assert "Privilege level 3" in html and "Admin consent</span>" in html
    assert "6 May 2024, 07:08:09" in html  # granted
    assert "14 Mar 2026, 09:30:12" in html  # first seen: the run's end
    assert "Admin consent for all users" in html
    assert "User consent by 2 users" in html
    assert "Admin consent (application permission)" in html


def test_a_needed_grant_shows_its_features_reasons_calls_and_a_narrower_permission(
    alice_client, connect
):
    response = alice_client.get(page_url(connect))

    group = next(
        g
        for g in response.context["detail"].grants
        if g.finding.permission.value == "Group.Read.All"
    )
    assert group.narrower.value == "Group.ReadBasic.All"
    html = response.content.decode()
    assert "Lists the device groups." in html and "<li><code>GET /groups</code></li>" in html
    narrower_url = reverse("permissions:permission-detail", args=[group.narrower.pk])
    assert f'<a href="{narrower_url}"><code>Group.ReadBasic.All</code></a>' in html


def test_the_missing_list_names_the_feature_that_needs_it(alice_client, connect):
    response = alice_client.get(page_url(connect))

    (missing,) = response.context["detail"].missing
    assert missing.finding.permission.value == "Reports.Read.All"
    html = response.content.decode()
    assert "<strong>Reports</strong>: Reads usage reports." in html
    assert "Mail.ReadWrite" not in html.split('id="missing-heading"')[1]  # its feature is off


def test_an_application_without_a_manifest_holds_only_unexplained_grants(alice_client, contoso):
    sp = ServicePrincipalFactory(tenant=contoso, display_name="Unknown app")
    GrantFactory(client=sp, value="Files.Read.All", first_seen_run=contoso.last_good_sync)

    response = alice_client.get(page_url(sp))

    assert grants(response) == [("Files.Read.All", "admin", "unexplained")]
    html = response.content.decode()
    assert "No manifest explains this application's permissions." in html
    assert "feature-switches" not in html
    assert "Nothing is missing" in html


def test_an_application_not_in_the_tenant_is_not_found(alice_client, contoso):
    elsewhere = ServicePrincipalFactory(tenant=TenantFactory())
    url = reverse("tenants:application", args=[contoso.tenant_id, elsewhere.app_id])

    assert alice_client.get(url).status_code == 404


def test_the_application_page_links_to_its_manifest(alice_client, connect):
    html = alice_client.get(page_url(connect)).content.decode()

    manifest_url = reverse("permissions:application-detail", args=[connect.app_id])
    assert f'<a href="{manifest_url}">247connect</a>' in html


# --- feature switches --------------------------------------------------------------------


def test_an_admin_gets_a_switch_per_feature_that_posts_and_previews_as_it_changes(
    alice_client, connect
):
    html = alice_client.get(page_url(connect)).content.decode()

    assert f'method="post" action="{save_url(connect)}"' in html
    assert f'hx-get="{preview_url(connect)}" hx-trigger="change"' in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert 'value="device-assignment" id="switch-device-assignment" checked' in html
    assert 'value="mail" id="switch-mail" aria-describedby' in html
    assert '<label class="checkbox" for="switch-mail">' in html
    assert 'name="action" value="preview">Preview</button>' in html
    assert 'name="action" value="save">Save switches</button>' in html


def test_a_reader_may_preview_but_gets_no_save_button(bob_client, connect):
    html = bob_client.get(page_url(connect)).content.decode()

    assert f'method="get" action="{preview_url(connect)}"' in html
    assert "Save switches" not in html and "Only the tenant's admins can save" in html


def test_switching_off_a_feature_previews_the_grants_that_would_become_unused(bob_client, connect):
    # Only "mail" on: device assignment and reports off.
    preview = bob_client.get(preview_url(connect), {"enabled": ["mail"]}).context["preview"]

    assert [i.permission.value for i in preview.to_unused] == ["Device.Read.All", "Group.Read.All"]
    assert preview.to_unused[0].features == ["Device assignment"]
    assert [i.permission.value for i in preview.to_needed] == ["Mail.Send"]
    assert [i.permission.value for i in preview.newly_missing] == ["Mail.ReadWrite"]
    assert [i.permission.value for i in preview.no_longer_missing] == ["Reports.Read.All"]
    assert not FeatureSwitch.objects.exists()


def test_htmx_gets_the_preview_alone(bob_client, connect):
    response = bob_client.get(preview_url(connect), {"enabled": ["mail"]}, **HTMX)

    html = response.content.decode()
    assert html.lstrip().startswith(
        '<div class="notification is-warning is-light preview-changes">'
    )
    assert "<html" not in html and "<form" not in html
    assert (
        "<li><code>Device.Read.All</code> (application), listed only by Device assignment" in html
    )
    assert "<li><code>Mail.ReadWrite</code> (application), for Mail</li>" in html
    assert not FeatureSwitch.objects.exists()


def test_a_preview_that_changes_nothing_says_so(alice_client, connect):
    response = alice_client.get(
        preview_url(connect), {"enabled": ["device-assignment", "reports"]}, **HTMX
    )

    assert "no verdict changes" in response.content.decode()


def test_without_javascript_a_reader_previews_on_the_whole_page(bob_client, connect):
    response = bob_client.get(preview_url(connect), {"enabled": ["mail"]})

    html = response.content.decode()
    assert "<html" in html and "If you save these switches" in html
    assert 'value="mail" id="switch-mail" checked' in html
    assert 'value="device-assignment" id="switch-device-assignment" aria-describedby' in html


def test_the_preview_says_it_answers_htmx_and_browsers_differently(bob_client, connect):
    for headers in ({}, HTMX):
        response = bob_client.get(preview_url(connect), {"enabled": ["mail"]}, **headers)
        assert response.status_code == 200 and "HX-Request" in response["Vary"]


def test_without_javascript_an_admins_preview_button_saves_nothing(alice_client, connect):
    response = alice_client.post(save_url(connect), {"enabled": ["mail"], "action": "preview"})

    assert response.status_code == 200
    assert "If you save these switches" in response.content.decode()
    assert not FeatureSwitch.objects.exists()


def test_saving_switches_stores_every_feature_and_the_verdicts_follow(alice_client, connect):
    response = alice_client.post(
        save_url(connect), {"enabled": ["device-assignment", "mail"], "action": "save"}
    )

    assert response.status_code == 302 and response["Location"] == page_url(connect)
    assert dict(FeatureSwitch.objects.values_list("feature__key", "enabled")) == {
        "device-assignment": True,
        "mail": True,
        "reports": False,
    }
    page = alice_client.get(page_url(connect))
    assert ("Mail.Send", "admin", "needed") in grants(page)
    assert [m.finding.permission.value for m in page.context["detail"].missing] == [
        "Mail.ReadWrite"
    ]
    assert "Feature switches saved" in page.content.decode()


def test_a_reader_may_not_save_switches(bob_client, connect):
    assert bob_client.post(save_url(connect), {"enabled": ["mail"]}).status_code == 403
    assert bob_client.post(save_url(connect), {"action": "preview"}).status_code == 403
    assert not FeatureSwitch.objects.exists()


def test_an_unknown_feature_is_a_bad_request(alice_client, connect):
    assert alice_client.get(preview_url(connect), {"enabled": ["nope"]}).status_code == 400
    assert alice_client.post(save_url(connect), {"enabled": ["nope"]}).status_code == 400
    assert not FeatureSwitch.objects.exists()


def test_saving_needs_the_csrf_token(alice, connect):
    client = signed_in(alice, enforce_csrf_checks=True)

    assert client.post(save_url(connect), {"enabled": ["mail"]}).status_code == 403
    assert not FeatureSwitch.objects.exists()


def test_previews_and_saves_refuse_the_other_method(alice_client, connect):
    assert alice_client.post(preview_url(connect)).status_code == 405
    assert alice_client.get(save_url(connect)).status_code == 405
