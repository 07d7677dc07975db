"""Narrower suggestions on Microsoft's full permissions reference: would an expert agree?"""

from pathlib import Path

import pytest
from django.conf import settings

from permissions.catalog import catalog_import_reference
from permissions.models import MICROSOFT_GRAPH_APP_ID as GRAPH
from permissions.selectors import call_index_for
from permissions.verdicts import PermissionKey

REFERENCE = Path(settings.BASE_DIR).parent / "shared" / "reference" / "msgraph-permissions"

pytestmark = [
    pytest.mark.reference,
    pytest.mark.django_db,
    pytest.mark.skipif(
        not REFERENCE.is_dir(), reason="../shared/reference is not beside the project"
    ),
]


def app(value: str) -> PermissionKey:
    return PermissionKey(GRAPH, "application", value)


@pytest.fixture(scope="module")
def call_index(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        catalog_import_reference(
            permissions=str(REFERENCE / "permissions.json"),
            descriptions=str(REFERENCE / "permissions-descriptions.json"),
        )
        index = call_index_for(
            {app("Group.Read.All"), PermissionKey(GRAPH, "delegated", "User.Read")}
        )
        # Module-scoped data outside a test transaction: clean up for the tests after.
        from permissions.models import Resource

        Resource.objects.all().delete()
    return index


@pytest.mark.parametrize(
    ("granted", "calls", "expected"),
    [
        (app("Group.Read.All"), ["GET /groups"], app("Group.ReadBasic.All")),
        (
            app("TeamworkDevice.ReadWrite.All"),
            ["GET /teamwork/devices", "POST /teamwork/devices/{id}/restart"],
            None,
        ),
        (
            app("TeamworkDevice.ReadWrite.All"),
            ["GET /teamwork/devices/{teamworkDevice-id}/health"],
            app("TeamworkDevice.Read.All"),
        ),
        (app("Organization.Read.All"), ["GET /organization"], None),
        (app("Directory.Read.All"), ["GET /organization"], app("Organization.Read.All")),
        (app("User.Read.All"), ["GET /users"], app("User.ReadBasic.All")),
    ],
)
def test_suggestions_on_the_real_reference(call_index, granted, calls, expected):
    assert call_index.narrower_than(granted, calls) == expected
