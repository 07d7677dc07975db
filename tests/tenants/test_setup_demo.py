"""`make run`'s setup: the demo tenants onboarded and synced, Woodgrove among them."""

import io

import pytest
from django.core.management import call_command

from tenants.models import ServicePrincipal, SyncRun, Tenant

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_demo_onboards_and_syncs_contoso_fabrikam_and_woodgrove(emu):
    out = io.StringIO()
    call_command("setup_demo", "--wait", "5", stdout=out)

    tenants = {t.name: t for t in Tenant.objects.select_related("last_good_sync")}
    assert set(tenants) == {"Contoso", "Fabrikam", "Woodgrove"}
    for tenant in tenants.values():
        assert tenant.last_good_sync.status == SyncRun.Status.SUCCEEDED
    woodgrove = tenants["Woodgrove"]
    kinds = set(
        ServicePrincipal.objects.filter(tenant=woodgrove).values_list(
            "service_principal_type", flat=True
        )
    )
    assert {"Application", "ManagedIdentity"} <= kinds
    # Its odd principals are noted, not fatal.
    assert woodgrove.last_good_sync.notes
    assert "sync" in out.getvalue() and "Woodgrove" in out.getvalue()
