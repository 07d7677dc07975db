""" "Keep, because ..." on the application page: admins justify one grant or several, keep one
another term and remove one; readers see them read-only; the review e-mail's links land on
a confirmation that posts. alice is an admin and bob a reader of Contoso, charlie an admin
of Fabrikam."""

import datetime as dt
import re

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tenants.audit import actor_name
from tenants.models import AuditEvent, Justification, RevokeRequest, ServicePrincipal
from tenants.slots import GrantSlot
from tests.factories import ServicePrincipalFactory, TenantFactory, UserFactory
from tests.helpers import signed_in
from tests.tenants.views.helpers import (
    HTMX,
    app_url,
    succeeded_run,
    with_verdicts,
)

pytestmark = pytest.mark.django_db

GRAPH = "00000003-0000-0000-c000-000000000000"
SITES = GrantSlot(GRAPH, "application", "Sites.Read.All", "admin")
MAIL = GrantSlot(GRAPH, "application", "Mail.Send", "admin")
ROLES = GrantSlot(GRAPH, "application", "RoleManagement.ReadWrite.Directory", "admin")


@pytest.fixture
def connect(contoso) -> ServicePrincipal:
    """Device.Read.All needed, Mail.Send unused, Sites.Read.All and
    RoleManagement.ReadWrite.Directory unexplained."""
    return with_verdicts(contoso, succeeded_run(contoso))


def url(name: str, sp: ServicePrincipal) -> str:
    return reverse(f"tenants:{name}", args=[sp.tenant.tenant_id, sp.app_id])


def fields(slot: GrantSlot, **extra: object) -> dict[str, object]:
    return {
        "resource_app_id": slot.resource_app_id,
        "kind": slot.kind,
        "value": slot.value,
        "consent": slot.consent,
        **extra,
    }


def verdict_of(client: Client, sp: ServicePrincipal, value: str) -> str:
    detail = client.get(app_url(sp.tenant, sp)).context["detail"]
    return next(g.verdict for g in detail.grants if g.finding.permission.value == value)


def justified(
    sp: ServicePrincipal,
    slot: GrantSlot,
    *,
    reason: str = "Search indexes every site.",
    **values: object,
) -> Justification:
    values.setdefault("expires", timezone.localdate() + dt.timedelta(days=30))
    values.setdefault("by_name", "Alice (alice)")
    return Justification.objects.create(
        tenant=sp.tenant, app_id=sp.app_id, reason=reason, **slot.fields(), **values
    )


# --- the page ----------------------------------------------------------------------------


def test_an_admin_gets_keep_because_on_each_revoke_candidate_only(alice_client, connect):
    html = alice_client.get(app_url(connect.tenant, connect)).content.decode()

    # Sites, RoleManagement, Mail: each its own form, and "keep several" for all three.
    assert html.count("Keep, because&hellip;") == 3
    assert "Keep several, because&hellip;" in html
    assert html.count('name="grant" value="') == 3
    assert f'value="{SITES.token}"' in html and "Device.Read.All" not in _several(html)
    assert 'name="reviewer"' in html and 'type="date" name="expires"' in html


def _several(html: str) -> str:
    return html.split('class="box keep-several"')[1].split("</details>")[0]


def test_the_expiry_defaults_to_one_term_and_may_go_no_further_than_the_maximum(
    alice_client, connect
):
    html = alice_client.get(app_url(connect.tenant, connect)).content.decode()

    today = timezone.localdate()
    assert (
        f'value="{today + dt.timedelta(days=365)}" min="{today}" max="{today + dt.timedelta(days=365)}"'
        in html
    )


def test_the_reviewers_to_pick_are_the_tenants_users(
    alice_client, alice, connect, bob, charlie_client
):
    html = alice_client.get(app_url(connect.tenant, connect)).content.decode()

    options = re.findall(r'<option value="(\d*)"[^>]*>([^<]*)</option>', _several(html))
    assert [pk for pk, _name in options] == ["", str(alice.pk), str(bob.pk)]
    assert options[0][1] == "Nobody: the tenant's admins"


def test_a_reader_sees_a_justification_and_nothing_to_change_it(bob_client, connect):
    justified(connect, SITES)

    html = bob_client.get(app_url(connect.tenant, connect)).content.decode()

    assert "Search indexes every site." in html and ">Justified</span>" in html
    assert "Keep, because" not in html and "Keep several" not in html
    assert "Remove justification" not in html and "Keep another term" not in html
    assert verdict_of(bob_client, connect, "Sites.Read.All") == "needed"


def test_an_expired_justification_says_so_and_the_grant_is_unexplained(alice_client, connect):
    justified(connect, SITES, expires=timezone.localdate() - dt.timedelta(days=1))

    html = alice_client.get(app_url(connect.tenant, connect)).content.decode()

    assert "Justification expired</span>" in html and "Keep another term" in html
    assert verdict_of(alice_client, connect, "Sites.Read.All") == "unexplained"


def test_a_justified_grant_is_revoked_without_a_features_confirmation(alice_client, connect):
    justified(connect, SITES)

    html = alice_client.get(app_url(connect.tenant, connect)).content.decode()

    article = html.split("Sites.Read.All</code>")[1].split("</article>")[0]
    assert 'name="confirm" value="on"' in article
    assert "Justified: revoking it overrides that reason." in article


# --- justifying ----------------------------------------------------------------------------


def test_an_admin_keeps_one_grant_and_it_is_needed(alice_client, alice, connect):
    expires = timezone.localdate() + dt.timedelta(days=90)

    response = alice_client.post(
        url("justify", connect), fields(SITES, reason="Search.", expires=expires.isoformat())
    )

    assert response.status_code == 302 and response["Location"] == app_url(connect.tenant, connect)
    justification = Justification.objects.get()
    assert (justification.value, justification.expires, justification.by_name) == (
        "Sites.Read.All",
        expires,
        actor_name(alice),
    )
    page = alice_client.get(response["Location"])
    assert f"Kept Sites.Read.All: until {expires}." in page.content.decode()
    assert verdict_of(alice_client, connect, "Sites.Read.All") == "needed"


def test_an_admin_keeps_several_grants_with_one_reason_and_a_reviewer(alice_client, connect, bob):
    response = alice_client.post(
        url("justify", connect),
        {"grant": [SITES.token, MAIL.token], "reason": "Both for the archive.", "reviewer": bob.pk},
    )

    assert response.status_code == 302
    assert sorted(Justification.objects.values_list("value", "reviewer")) == [
        ("Mail.Send", bob.pk),
        ("Sites.Read.All", bob.pk),
    ]
    assert AuditEvent.objects.filter(action=AuditEvent.Action.JUSTIFIED).count() == 2


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (fields(SITES, reason=" "), "a reason is required: say why the grant is kept"),
        (
            fields(SITES, reason="Search.", expires="2020-01-01"),
            "the expiry 2020-01-01 is in the past",
        ),
        (fields(SITES, reason="Search.", expires="soon"), "the expiry is not a date (YYYY-MM-DD)"),
        (
            fields(GrantSlot(GRAPH, "application", "Files.Read.All", "admin"), reason="Search."),
            "247connect does not hold Files.Read.All (application, admin consent) in Contoso",
        ),
        (
            {"grant": ["not a grant"], "reason": "Search."},
            "a ticked grant is not one this page names",
        ),
        ({"reason": "Search."}, "name at least one grant to justify"),
        (
            fields(SITES, reason="Search.", reviewer="999999"),
            "the reviewer is not a user of this tenant",
        ),
    ],
    ids=[
        "empty-reason",
        "past",
        "not-a-date",
        "unknown-grant",
        "bad-token",
        "no-grant",
        "reviewer",
    ],
)
def test_a_refused_justification_says_why_on_the_page(alice_client, connect, data, error):
    response = alice_client.post(url("justify", connect), data, follow=True)

    assert error in response.content.decode()
    assert not Justification.objects.exists()


def test_a_reviewer_from_another_tenant_cannot_be_picked(alice_client, connect, charlie_client):
    charlie = charlie_client.get(reverse("tenants:dashboard")).wsgi_request.user

    response = alice_client.post(
        url("justify", connect), fields(SITES, reason="S.", reviewer=charlie.pk), follow=True
    )

    assert "the reviewer is not a user of this tenant" in response.content.decode()


def test_htmx_gets_the_grants_section_and_the_counts_out_of_band(alice_client, connect):
    response = alice_client.post(url("justify", connect), fields(SITES, reason="Search."), **HTMX)

    html = response.content.decode()
    assert response.status_code == 200 and "HX-Request" in response["Vary"]
    assert html.lstrip().startswith('<section class="block" id="grants-section"')
    assert 'id="verdict-summary" aria-label="Grants by verdict" hx-swap-oob="true"' in html
    assert "Kept Sites.Read.All: until" in html and ">Justified</span>" in html
    assert "<html" not in html


def test_htmx_shows_a_refusal_in_the_section(alice_client, connect):
    response = alice_client.post(url("justify", connect), fields(SITES, reason=""), **HTMX)

    assert (
        'role="alert">a reason is required: say why the grant is kept</div>'
        in response.content.decode()
    )


def test_an_admin_removes_a_justification_and_a_second_click_finds_none(alice_client, connect):
    justified(connect, SITES)

    first = alice_client.post(url("justify-remove", connect), fields(SITES), follow=True)
    second = alice_client.post(url("justify-remove", connect), fields(SITES), follow=True)

    assert "Removed the justification of Sites.Read.All." in first.content.decode()
    assert "Sites.Read.All has no justification now." in second.content.decode()
    assert not Justification.objects.exists()
    assert verdict_of(alice_client, connect, "Sites.Read.All") == "unexplained"


def test_an_admin_keeps_one_another_term(alice_client, connect):
    old = justified(connect, SITES, expires=timezone.localdate() - dt.timedelta(days=2))

    alice_client.post(url("justify-extend", connect), fields(SITES))

    old.refresh_from_db()
    assert old.expires == timezone.localdate() + dt.timedelta(days=365)
    assert AuditEvent.objects.filter(action=AuditEvent.Action.JUSTIFICATION_EXTENDED).exists()


# --- who may ---------------------------------------------------------------------------------


def test_a_reader_may_not_justify_remove_or_keep_another_term(bob_client, connect):
    justified(connect, SITES)

    for name in ("justify", "justify-remove", "justify-extend"):
        assert (
            bob_client.post(url(name, connect), fields(SITES, reason="Mine.")).status_code == 403
        ), name
    assert Justification.objects.get().reason == "Search indexes every site."
    assert not AuditEvent.objects.exists()


def test_the_reviewer_may_keep_it_another_term_though_a_reader(connect, bob):
    justification = justified(connect, SITES, reviewer=bob, expires=timezone.localdate())
    client = signed_in(bob)

    assert "Keep another term" in client.get(app_url(connect.tenant, connect)).content.decode()
    assert client.post(url("justify-extend", connect), fields(SITES)).status_code == 302
    justification.refresh_from_db()
    assert justification.expires == timezone.localdate() + dt.timedelta(days=365)
    # Still a reader for everything else.
    assert client.post(url("justify-remove", connect), fields(SITES)).status_code == 403


def test_an_outsider_finds_no_application_to_justify(charlie_client, connect):
    assert (
        charlie_client.post(url("justify", connect), fields(SITES, reason="x")).status_code == 404
    )
    assert not Justification.objects.exists()


def test_justifying_needs_the_csrf_token(alice, connect):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)

    for name in ("justify", "justify-remove", "justify-extend"):
        assert client.post(url(name, connect), fields(SITES, reason="x")).status_code == 403, name
    assert not Justification.objects.exists()


def test_the_keep_forms_carry_the_csrf_token(alice_client, connect):
    justified(connect, MAIL, expires=timezone.localdate() - dt.timedelta(days=1))
    html = alice_client.get(app_url(connect.tenant, connect)).content.decode()

    forms = re.findall(r'<form[^>]*action="[^"]*/justify/[^"]*"[^>]*>(.*?)</form>', html, re.S)
    assert len(forms) >= 4
    assert all('name="csrfmiddlewaretoken"' in form for form in forms)


def test_justifying_refuses_a_get(alice_client, connect):
    for name in ("justify", "justify-remove", "justify-extend"):
        assert alice_client.get(url(name, connect)).status_code == 405


# --- the review e-mail's landing --------------------------------------------------------------


def test_the_keep_link_shows_the_justification_and_a_button_that_posts(alice_client, connect):
    justification = justified(connect, SITES, expires=timezone.localdate() - dt.timedelta(days=1))

    html = alice_client.get(
        app_url(connect.tenant, connect), {"review": justification.pk, "do": "keep"}
    ).content.decode()

    panel = html.split('id="review"')[1].split("</div>\n</div>")[0]
    assert "Review: keep <code>Sites.Read.All</code>" in panel and "expired" in panel
    extend = url("justify-extend", connect)
    assert f'<form method="post" action="{extend}">' in panel
    assert 'class="button is-link" type="submit">Keep it another term' in panel
    assert f'action="{url("revoke-create", connect)}"' in panel
    assert 'is-danger is-outlined" type="submit">Revoke it' in panel
    # The GET changed nothing.
    justification.refresh_from_db()
    assert justification.expires < timezone.localdate()


def test_the_revoke_link_stresses_revoking_and_revoking_goes_at_once(
    alice_client, connect, monkeypatch
):
    monkeypatch.setattr("tenants.tasks.execute_revoke.delay", lambda revoke_id: None)
    justification = justified(connect, SITES)

    html = alice_client.get(
        app_url(connect.tenant, connect), {"review": justification.pk, "do": "revoke"}
    ).content.decode()
    assert 'class="button is-danger" type="submit">Revoke it' in html
    response = alice_client.post(url("revoke-create", connect), fields(SITES, confirm="on"))

    assert response.status_code == 302
    assert RevokeRequest.objects.get().value == "Sites.Read.All"


def test_a_reader_who_is_not_the_reviewer_may_only_request_the_revoke(bob_client, connect):
    justification = justified(connect, SITES)

    html = bob_client.get(
        app_url(connect.tenant, connect), {"review": justification.pk}
    ).content.decode()

    assert "Only the tenant's admins or its reviewer can keep it." in html
    assert "Request the revoke" in html


def test_a_review_link_of_another_tenant_or_application_shows_no_panel(alice_client, connect):
    other_tenant = TenantFactory()
    elsewhere = ServicePrincipalFactory(tenant=other_tenant, app_id=connect.app_id)
    theirs = justified(elsewhere, SITES)
    other_app = ServicePrincipalFactory(tenant=connect.tenant)
    mine_elsewhere = justified(other_app, SITES)

    for pk in (theirs.pk, mine_elsewhere.pk, "x"):
        html = alice_client.get(app_url(connect.tenant, connect), {"review": pk}).content.decode()
        assert 'id="review"' not in html, pk


def test_a_review_of_a_grant_no_longer_held_has_nothing_to_decide(alice_client, connect):
    justification = justified(connect, GrantSlot(GRAPH, "application", "Files.Read.All", "admin"))

    html = alice_client.get(
        app_url(connect.tenant, connect), {"review": justification.pk}
    ).content.decode()

    assert "no longer holds it: there is nothing to decide." in html


def test_an_operator_sees_the_tenants_users_nowhere(oscar_client, connect):
    # Operators read every tenant but are no admins of it: no forms, no reviewer list.
    html = oscar_client.get(app_url(connect.tenant, connect)).content.decode()

    assert "Keep, because" not in html and 'name="reviewer"' not in html


def test_users_of_another_tenant_are_not_offered_as_reviewers(alice_client, connect, fabrikam):
    UserFactory(
        username="frank", entra_tenant_id=str(fabrikam.tenant_id), entra_roles=["Portal.Admin"]
    )

    html = alice_client.get(app_url(connect.tenant, connect)).content.decode()

    assert "frank" not in html


def test_another_term_is_offered_from_the_review_days_before_the_expiry(
    alice_client, connect, settings
):
    settings.JUSTIFICATION_REVIEW_DAYS = 7
    justification = justified(connect, SITES, expires=timezone.localdate() + dt.timedelta(days=8))
    assert (
        "Keep another term"
        not in alice_client.get(app_url(connect.tenant, connect)).content.decode()
    )

    Justification.objects.filter(pk=justification.pk).update(
        expires=timezone.localdate() + dt.timedelta(days=7)
    )

    assert (
        "Keep another term" in alice_client.get(app_url(connect.tenant, connect)).content.decode()
    )
