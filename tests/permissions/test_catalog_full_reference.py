"""The full reference files from ../shared/reference: real facts, real sizes."""

import uuid
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from permissions.catalog import catalog_import_reference, catalog_import_starter
from permissions.models import CatalogChange, Permission, PermissionApiCall

REFERENCE = Path(settings.BASE_DIR).parent / "shared" / "reference"

pytestmark = [
    pytest.mark.reference,
    pytest.mark.django_db,
    pytest.mark.skipif(not REFERENCE.is_dir(), reason=f"{REFERENCE} is absent"),
]


def import_reference():
    return catalog_import_reference(
        permissions=str(REFERENCE / "msgraph-permissions" / "permissions.json"),
        descriptions=str(REFERENCE / "msgraph-permissions" / "permissions-descriptions.json"),
        classifications=[
            str(REFERENCE / "entraops-classification" / "Classification_MsGraphAppRoles.json"),
            str(REFERENCE / "entraops-classification" / "Classification_MsGraphScopes.json"),
        ],
    )


def test_the_full_reference_imports_with_real_facts_and_reruns_as_a_no_op():
    result = import_reference()

    assert result.permissions_added > 900
    assert result.api_calls_added > 30_000
    assert result.skipped > 0
    group_read = Permission.objects.get(value="Group.Read.All", kind="application")
    assert group_read.graph_id == uuid.UUID("5b567255-7703-4780-807c-7be8301ae99b")
    assert group_read.tier == "UserAccess"
    read_basic = Permission.objects.get(value="Group.ReadBasic.All", kind="application")
    groups = PermissionApiCall.objects.get(
        permission=read_basic, scheme="Application", method="GET", path="/groups"
    )
    assert groups.least_privileged is True
    assert not import_reference().changed_anything


def test_the_shipped_snapshot_is_exactly_what_the_reference_gives():
    # Regenerate after the reference moves: manage.py build_catalog_snapshot
    out = StringIO()
    call_command("build_catalog_snapshot", "--check", stdout=out)

    assert "is up to date" in out.getvalue()


def test_the_starter_facts_agree_with_the_reference():
    # The snapshot's facts and the starter file's, loaded together as `--starter` does.
    catalog_import_starter()

    import_reference()

    # Upgrading starter rows may replace our texts, never a fact we took from Microsoft.
    facts = {"graph_id", "admin_consent_required", "privilege_level", "tier"}
    disagreements = {
        (change.value, change.kind): sorted(facts & set(change.details))
        for change in CatalogChange.objects.filter(action="changed")
        if facts & set(change.details)
    }
    assert disagreements == {}
