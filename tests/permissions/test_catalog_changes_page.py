"""The catalog's "what changed" page: new, removed, renamed and re-tiered permissions."""

import json
import re
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from permissions.catalog import catalog_import_run
from permissions.models import MICROSOFT_GRAPH_APP_ID, CatalogChange, CatalogImport
from tests.factories import PermissionFactory, TenantFactory, UserFactory

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "reference"
APP_ROLES = FIXTURES / "Classification_MsGraphAppRoles.json"
SCOPES = FIXTURES / "Classification_MsGraphScopes.json"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _signed_in(client):
    tenant = TenantFactory()
    client.force_login(
        UserFactory(
            username="visitor", entra_tenant_id=str(tenant.tenant_id), entra_roles=["Portal.Reader"]
        )
    )


def changes_url() -> str:
    return reverse("permissions:catalog-changes")


def import_version(version: str, app_roles: Path = APP_ROLES) -> CatalogImport:
    suffix = "-v2" if version == "v2" else ""
    run = catalog_import_run(
        trigger=CatalogImport.Trigger.COMMAND,
        permissions=str(FIXTURES / f"permissions{suffix}.json"),
        descriptions=str(FIXTURES / f"permissions-descriptions{suffix}.json"),
        classifications=[str(app_roles), str(SCOPES)],
    )
    assert run is not None and run.status == "succeeded", run and run.error
    return run


@pytest.fixture
def history(tmp_path) -> tuple[CatalogImport, CatalogImport]:
    """v1, then v2 (a rename, a removal, a new permission) with Group.Read.All re-tiered."""
    first = import_version("v1")
    roles = json.loads(APP_ROLES.read_text())
    for role in roles:
        if role["AppRoleDisplayName"] == "Group.Read.All":
            role["EAMTierLevelName"] = "ControlPlane"
    retiered = tmp_path / "Classification_MsGraphAppRoles.json"
    retiered.write_text(json.dumps(roles))
    return first, import_version("v2", app_roles=retiered)


def rows(html: str) -> list[tuple[str, str]]:
    """(permission, change tags) per row of the changes table."""
    table = html.split('class="table is-fullwidth is-hoverable is-stacked-mobile catalog-changes"')[
        1
    ]
    found = []
    for row in re.findall(r"<tr>(.*?)</tr>", table, flags=re.S)[1:]:
        value = re.search(r"<code>([^<]+)</code>", row)[1]
        tags = re.findall(r'class="tag change-[a-z]+">([^<]+)<', row)
        found.append((value, " ".join(tags)))
    return found


def test_it_lists_what_the_latest_import_changed_first(client, history):
    html = client.get(changes_url()).content.decode()

    listed = rows(html)
    # v2's changes, then v1's ten new permissions.
    assert sorted(listed[:4]) == [
        ("Calls.JoinGroupCallAsGuest.All", "Renamed"),
        ("Device.Read.All", "Removed"),
        ("Group.Read.All", "Re-tiered"),
        ("GroupMember.Read.All", "New"),
    ]
    assert [tags for _, tags in listed[4:]] == ["New"] * 10
    assert (
        "<code>Calls.JoinGroupCallasGuest.All</code> → <code>Calls.JoinGroupCallAsGuest.All</code>"
        in html
    )
    assert "User access → Control plane" in html


def test_a_change_of_texts_or_flags_only_is_not_listed(client, history):
    permission = PermissionFactory(value="Mail.Send")
    CatalogChange.objects.create(
        permission=permission,
        resource_app_id=MICROSOFT_GRAPH_APP_ID,
        kind=permission.kind,
        value=permission.value,
        action="changed",
        details={
            "description": ["Old text.", "New text."],
            "admin_consent_required": [False, True],
        },
        source="graph",
    )

    html = client.get(changes_url()).content.decode()

    assert len(rows(html)) == 14
    assert "Mail.Send" not in html


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("new", 11),
        ("removed", 1),
        ("renamed", 1),
        ("retiered", 1),
    ],
)
def test_it_filters_by_kind_of_change(client, history, change, expected):
    html = client.get(changes_url(), {"change": change}).content.decode()

    assert len(rows(html)) == expected
    assert f'<option value="{change}" selected>' in html


def test_it_shows_one_imports_changes_from_the_imports_table(client, history):
    first, second = history
    html = client.get(changes_url()).content.decode()
    assert f'href="?run={second.pk}"' in html

    html = client.get(changes_url(), {"run": second.pk}).content.decode()

    assert len(rows(html)) == 4
    assert "Only the changes of the command of" in html


def test_an_unknown_filter_is_dropped_rather_than_an_error(client, history):
    response = client.get(changes_url(), {"change": "colour", "run": "999"})

    assert response.status_code == 200
    assert len(rows(response.content.decode())) == 14


def test_a_failed_refresh_is_shown_with_its_reason(client):
    CatalogImport.objects.create(
        source="reference",
        trigger="schedule",
        status="failed",
        started_at=timezone.now(),
        finished_at=timezone.now(),
        error="https://raw.githubusercontent.com/x/permissions.json: cannot connect (ConnectionError)",
    )

    changes = client.get(changes_url()).content.decode()
    catalog = client.get(reverse("permissions:catalog")).content.decode()

    for html in (changes, catalog):
        assert "cannot connect (ConnectionError)" in html
        assert '<span class="tag run-status run-red">Failed</span>' in html
    assert "Weekly refresh" in changes
    assert "the catalog stayed as it was" in catalog


def test_the_catalog_page_links_here(client):
    html = client.get(reverse("permissions:catalog")).content.decode()

    assert f'href="{changes_url()}"' in html


def test_htmx_gets_only_the_results_and_the_pages_link_for_it(client):
    run = CatalogImport.objects.create(
        source="reference", trigger="schedule", status="succeeded", started_at=timezone.now()
    )
    for permission in PermissionFactory.create_batch(60):
        CatalogChange.objects.create(
            permission=permission,
            resource_app_id=MICROSOFT_GRAPH_APP_ID,
            kind=permission.kind,
            value=permission.value,
            action="added",
            source="reference",
            catalog_import=run,
        )

    response = client.get(changes_url(), {"page": 2}, HTTP_HX_REQUEST="true")

    html = response.content.decode()
    assert "<html" not in html and "<form" not in html
    assert "60 changes, 51–60 shown" in html
    assert 'hx-target="#change-results"' in html
    assert "HX-Request" in response["Vary"]


def test_the_queries_do_not_grow_with_the_page(client, django_assert_max_num_queries):
    run = CatalogImport.objects.create(
        source="reference", trigger="schedule", status="succeeded", started_at=timezone.now()
    )
    for permission in PermissionFactory.create_batch(50):
        CatalogChange.objects.create(
            permission=permission,
            resource_app_id=MICROSOFT_GRAPH_APP_ID,
            kind=permission.kind,
            value=permission.value,
            action="changed",
            details={"tier": ["UserAccess", "ControlPlane"]},
            source="reference",
            catalog_import=run,
        )

    # The session and the user, the role check, the user's tenant in the header; the
    # filter's import, the imports, the count, the page.
    with django_assert_max_num_queries(8):
        client.get(changes_url(), {"run": run.pk})
