"""The report says which applications are Microsoft's and which are managed identities
(``service_principal_type``, ``first_party``, ``kind``), as Woodgrove's sync finds them."""

import io
import json

import pytest
from django.core.management import call_command

from tenants.services import sync_run_queue, tenant_add
from tenants.sync import sync_run_execute

pytestmark = pytest.mark.django_db(transaction=True)

WOODGROVE = "5a7d3e2b-9c41-4f8e-b6a0-1d2c3b4a5e6f"
FUNC_SYNC = "4c5d6e7f-8a9b-4c0d-9e1f-2a3b4c5d6e7f"  # a managed identity
TEAMS_SERVICES = "cc15fd57-2c6c-4117-a88c-83b1d56b4bbe"  # Microsoft's, with Graph roles
GRAPH_CLI = "14d82eec-204b-4c2f-b7e8-296a70dab67e"  # Microsoft's, with user consents
HR_PORTAL = "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e"  # Woodgrove's own


@pytest.fixture
def woodgrove_report(emu, client_for) -> dict[str, dict]:
    tenant = tenant_add(tenant_id=WOODGROVE, name="Woodgrove")[0]
    run = sync_run_queue(tenant=tenant)
    assert sync_run_execute(run_id=run.pk, client=client_for(WOODGROVE)).status == "succeeded"
    out = io.StringIO()
    call_command("report", WOODGROVE, "--format", "json", stdout=out)
    return {app["app_id"]: app for app in json.loads(out.getvalue())["applications"]}


def test_managed_identities_are_reported_as_such_and_not_first_party(woodgrove_report):
    identity = woodgrove_report[FUNC_SYNC]
    assert (identity["service_principal_type"], identity["first_party"]) == (
        "ManagedIdentity",
        False,
    )
    assert identity["kind"] == "managed_identity"


def test_microsofts_apps_are_first_party_whatever_they_hold(woodgrove_report):
    for app_id in (TEAMS_SERVICES, GRAPH_CLI):
        assert woodgrove_report[app_id]["first_party"] is True
        assert woodgrove_report[app_id]["service_principal_type"] == "Application"
        assert woodgrove_report[app_id]["kind"] == "microsoft"


def test_the_tenants_own_apps_are_neither(woodgrove_report):
    hr_portal = woodgrove_report[HR_PORTAL]
    assert (hr_portal["service_principal_type"], hr_portal["first_party"]) == (
        "Application",
        False,
    )
    assert hr_portal["kind"] == "own"
