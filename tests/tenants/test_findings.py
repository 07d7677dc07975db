"""Stored findings (tenants.findings): the verdict engine's and the risk rule's output per
application, written in the transaction of whatever changes an input, and recomputed by
the pages only where missing or out of date."""

import datetime as dt
import io
import json
import uuid
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from permissions.catalog import catalog_import_reference
from permissions.manifests import manifest_import, manifest_parse
from permissions.models import Application, Tier
from tenants.findings import (
    findings_after_sync,
    findings_current,
    findings_refresh,
    sync_inputs,
)
from tenants.justifications import justifications_set
from tenants.models import (
    ApplicationFinding,
    Credential,
    FindingSummary,
    Justification,
    ServicePrincipal,
    Tenant,
)
from tenants.report import tenant_report
from tenants.risk import application_risk
from tenants.selectors import application_in_tenant
from tenants.services import features_set
from tenants.signins import KNOWN
from tenants.slots import GrantSlot
from tests.factories import (
    ApplicationFactory,
    FeatureFactory,
    GrantFactory,
    RequirementFactory,
    ServicePrincipalFactory,
    SyncRunFactory,
)
from tests.helpers import sync
from tests.ids import ASKCODY, CONNECT_247, GRAPH
from tests.tenants.helpers import consent_and_unconsent_outside

pytestmark = pytest.mark.django_db

REFERENCE = Path(__file__).resolve().parents[1] / "fixtures" / "reference"
APP_ROLES = REFERENCE / "Classification_MsGraphAppRoles.json"


@pytest.fixture
def synced_contoso(contoso):
    run = SyncRunFactory(tenant=contoso, succeeded=True, last_good=True)
    contoso.refresh_from_db()
    return contoso, run


@pytest.fixture
def connect(synced_contoso):
    """247connect: Device.Read.All needed (devices, on), Mail.Send unused (mail, off),
    Sites.Read.All unexplained."""
    tenant, run = synced_contoso
    application = ApplicationFactory(name="247connect")
    devices = FeatureFactory(application=application, key="devices", default_enabled=True)
    mail = FeatureFactory(application=application, key="mail", default_enabled=False)
    RequirementFactory(feature=devices, permission_value="Device.Read.All")
    RequirementFactory(feature=mail, permission_value="Mail.Send")
    sp = ServicePrincipalFactory(
        tenant=tenant, app_id=application.app_id, display_name="247connect"
    )
    for value in ("Device.Read.All", "Mail.Send", "Sites.Read.All"):
        GrantFactory(client=sp, value=value, first_seen_run=run)
    findings_refresh(tenant=tenant)
    return sp


def stored(sp) -> ApplicationFinding:
    return ApplicationFinding.objects.get(service_principal=sp)


def counts(sp) -> tuple[int, int, int, int]:
    finding = stored(sp)
    return (finding.needed, finding.unused, finding.unexplained, finding.missing)


# --- written by every change ----------------------------------------------------------------


def test_a_sync_stores_what_the_report_says_of_each_application(emu, synced):
    contoso = synced.contoso
    report = tenant_report(tenant=contoso)
    rows = {f.app_id: f for f in ApplicationFinding.objects.filter(tenant=contoso)}

    assert len(rows) == len(report.applications) > 3
    for app in report.applications:
        verdicts = [grant.verdict.value for grant in app.grants]
        finding = rows[app.app_id]
        assert (finding.needed, finding.unused, finding.unexplained, finding.missing) == (
            verdicts.count("needed"),
            verdicts.count("unused"),
            verdicts.count("unexplained"),
            len(app.missing),
        ), app.display_name
    summary = FindingSummary.objects.get(tenant=contoso)
    assert summary.run_id == contoso.last_good_sync_id
    assert summary.applications == len(rows)
    assert summary.unexplained == sum(f.unexplained for f in rows.values())


def test_the_stored_risk_is_the_application_pages_risk(emu, synced):
    contoso = synced.contoso
    findings = ApplicationFinding.objects.filter(tenant=contoso).select_related("service_principal")

    assert {f.risk_level for f in findings} > {"low"}  # the demo has riskier apps than that
    for finding in findings:
        sp = finding.service_principal
        detail = application_in_tenant(tenant=contoso, service_principal=sp)
        risk = application_risk(tenant=contoso, service_principal=sp, detail=detail)
        assert (finding.risk_score, finding.risk_level) == (risk.score, risk.level.value)
        assert finding.risk_reasons == [reason.text for reason in risk.reasons]


def finding_rows(tenant) -> dict:
    """The tenant's stored findings by appId, every column but the key."""
    rows = ApplicationFinding.objects.filter(tenant=tenant).values()
    return {row["app_id"]: {k: v for k, v in row.items() if k != "id"} for row in rows}


def finding_pks(tenant) -> dict:
    return dict(ApplicationFinding.objects.filter(tenant=tenant).values_list("app_id", "pk"))


def writes_to_findings(queries) -> list[str]:
    table = ApplicationFinding._meta.db_table
    return [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith(("INSERT", "DELETE", "UPDATE")) and f'"{table}"' in q["sql"]
    ]


def test_an_unchanged_resync_writes_no_finding_rows(emu, synced, client_for):
    contoso = synced.contoso
    before = finding_rows(contoso)
    pks = finding_pks(contoso)

    with CaptureQueriesContext(connection) as queries:
        run = sync(contoso, client_for(str(contoso.tenant_id)))

    assert run.read_mode == "delta" and (run.grants_added, run.grants_removed) == (0, 0)
    assert writes_to_findings(queries) == []
    assert finding_pks(contoso) == pks and finding_rows(contoso) == before
    # The summary now speaks for the new snapshot, so the pages do not recompute it.
    assert FindingSummary.objects.get(tenant=contoso).run == run


def test_a_resync_refreshes_the_clients_it_changed_as_a_full_refresh_would(emu, synced, client_for):
    contoso = synced.contoso
    tenant_id = str(contoso.tenant_id)
    graph = client_for(tenant_id)
    consent_and_unconsent_outside(emu, graph, tenant_id)
    pks = finding_pks(contoso)

    run = sync(contoso, client_for(tenant_id))

    assert run.read_mode == "delta" and run.grants_added and run.grants_removed
    refreshed = finding_pks(contoso)
    rewritten = {app_id for app_id, pk in refreshed.items() if pks.get(app_id) != pk}
    assert rewritten == {uuid.UUID(CONNECT_247), uuid.UUID(ASKCODY)}
    restricted = finding_rows(contoso)
    summary = FindingSummary.objects.get(tenant=contoso)
    findings_refresh(tenant=contoso)
    assert restricted == finding_rows(contoso)
    full = FindingSummary.objects.get(tenant=contoso)
    assert (summary.facets, summary.unexplained, summary.applications) == (
        full.facets,
        full.unexplained,
        full.applications,
    )


def test_a_resync_replaces_the_findings_of_a_client_whose_facts_changed(connect):
    tenant = Tenant.objects.get(pk=connect.tenant_id)
    other = ServicePrincipalFactory(tenant=tenant, display_name="Other")
    GrantFactory(client=other, value="User.Read.All", first_seen_run=tenant.last_good_sync)
    Tenant.objects.filter(pk=tenant.pk).update(sign_in_status=KNOWN)
    tenant.refresh_from_db()
    findings_refresh(tenant=tenant)
    pks = finding_pks(tenant)
    assert stored(connect).inactive is True
    before = sync_inputs(tenant)
    ServicePrincipal.objects.filter(pk=connect.pk).update(owners=[], last_sign_in_at=timezone.now())

    findings_after_sync(tenant=tenant, run=SyncRunFactory(tenant=tenant), before=before)

    assert finding_pks(tenant)[other.app_id] == pks[other.app_id]
    assert finding_pks(tenant)[connect.app_id] != pks[connect.app_id]
    assert stored(connect).inactive is False  # it had never signed in
    restricted = finding_rows(tenant)
    findings_refresh(tenant=tenant)
    assert restricted == finding_rows(tenant)


def test_a_resync_replaces_the_findings_of_a_client_whose_credentials_moved(connect):
    tenant = Tenant.objects.get(pk=connect.tenant_id)
    ServicePrincipal.objects.filter(pk=connect.pk).update(owners=[])
    findings_refresh(tenant=tenant)
    pk = stored(connect).pk
    before = sync_inputs(tenant)
    Credential.objects.create(
        tenant=tenant,
        service_principal=connect,
        kind=Credential.Kind.SECRET,
        key_id=uuid.uuid4(),
        on_application=False,
    )

    findings_after_sync(tenant=tenant, run=SyncRunFactory(tenant=tenant), before=before)

    assert stored(connect).pk != pk
    restricted = finding_rows(tenant)
    findings_refresh(tenant=tenant)
    assert restricted == finding_rows(tenant)


@pytest.mark.parametrize(
    "change",
    ["held", "sign_ins_known", "older_findings", "lapsed"],
)
def test_a_tenant_wide_change_refreshes_every_client(connect, change):
    tenant = Tenant.objects.get(pk=connect.tenant_id)
    pk = stored(connect).pk
    if change == "older_findings":
        FindingSummary.objects.filter(tenant=tenant).update(run=None)
    if change == "lapsed":
        FindingSummary.objects.filter(tenant=tenant).update(stale_after=timezone.localdate())
    before = sync_inputs(tenant)
    if change == "sign_ins_known":
        Tenant.objects.filter(pk=tenant.pk).update(sign_in_status=KNOWN)

    findings_after_sync(
        tenant=tenant, run=SyncRunFactory(tenant=tenant), before=before, full=change == "held"
    )

    assert stored(connect).pk != pk


def test_the_findings_go_stale_the_day_after_an_active_client_turns_inactive(connect, settings):
    tenant = Tenant.objects.get(pk=connect.tenant_id)
    signed_in = timezone.now() - dt.timedelta(days=settings.INACTIVE_DAYS - 3)
    ServicePrincipal.objects.filter(pk=connect.pk).update(last_sign_in_at=signed_in)
    Tenant.objects.filter(pk=tenant.pk).update(sign_in_status=KNOWN)

    summary = findings_refresh(tenant=tenant)

    assert stored(connect).inactive is False
    crossing = timezone.localdate(signed_in + dt.timedelta(days=settings.INACTIVE_DAYS))
    assert summary.stale_after == crossing + dt.timedelta(days=1)
    # Until that day a sync changes only what it changed; from it, every client.
    assert sync_inputs(Tenant.objects.get(pk=tenant.pk)).stored_current
    FindingSummary.objects.filter(tenant=tenant).update(stale_after=timezone.localdate())
    assert not sync_inputs(Tenant.objects.get(pk=tenant.pk)).stored_current


def test_switching_a_feature_on_stores_its_grant_as_needed(connect, alice):
    application = Application.objects.get(app_id=connect.app_id)

    features_set(
        tenant=connect.tenant, application=application, enable=["mail"], disable=[], actor=alice
    )

    assert counts(connect) == (2, 0, 1, 0)
    assert FindingSummary.objects.get(tenant=connect.tenant).needed == 2


def test_a_manifest_import_stores_the_verdicts_it_gives_in_every_tenant(connect, fabrikam):
    run = SyncRunFactory(tenant=fabrikam, succeeded=True, last_good=True)
    fabrikam.refresh_from_db()
    elsewhere = ServicePrincipalFactory(tenant=fabrikam, display_name="AskCody")
    GrantFactory(client=elsewhere, value="Calendars.Read", first_seen_run=run)
    findings_refresh(tenant=fabrikam)
    assert counts(elsewhere) == (0, 0, 1, 0)
    spec = manifest_parse(
        data=f"""
manifest: 1
application:
  app_id: {elsewhere.app_id}
  name: AskCody
features:
  - key: rooms
    name: Rooms
    description: Books rooms.
    permissions:
      - permission: Calendars.Read
        type: application
        reason: Reads room calendars.
      - permission: Place.Read.All
        type: application
        reason: Lists the rooms.
""".encode(),
        source="askcody.yaml",
    )

    manifest_import(spec=spec)

    assert counts(elsewhere) == (1, 0, 0, 1)
    assert FindingSummary.objects.get(tenant=fabrikam).missing == 1
    assert counts(connect) == (1, 1, 1, 0)  # another application: untouched


def test_a_justification_stores_the_grant_as_needed_until_it_lapses(connect, alice):
    today = timezone.localdate()
    sites = GrantSlot(GRAPH, "application", "Sites.Read.All", "admin")

    justifications_set(
        tenant=connect.tenant,
        client=connect,
        slots=[sites],
        reason="The intranet search indexes every site.",
        expires=today,
        actor=alice,
    )

    assert counts(connect) == (2, 1, 0, 0)
    summary = FindingSummary.objects.get(tenant=connect.tenant)
    assert summary.stale_after == today + dt.timedelta(days=1)
    # A day later, as the page finds it: lapsed, so recomputed before it is shown.
    Justification.objects.update(expires=today - dt.timedelta(days=1))
    FindingSummary.objects.update(stale_after=today)
    findings_current([Tenant.objects.get(pk=connect.tenant_id)])
    assert counts(connect) == (1, 1, 1, 0)
    assert FindingSummary.objects.get(tenant=connect.tenant).stale_after is None


def test_a_catalog_import_that_changes_a_tier_stores_it(connect, tmp_path):
    assert (stored(connect).control_plane, stored(connect).tier) == (0, "")

    catalog_import_reference(
        permissions=str(REFERENCE / "permissions.json"),
        descriptions=str(REFERENCE / "permissions-descriptions.json"),
        classifications=[str(APP_ROLES)],
    )

    # EntraOps' fixture classifies Device.Read.All as control plane.
    finding = stored(connect)
    assert (finding.control_plane, finding.tier) == (1, Tier.CONTROL_PLANE)
    assert any("control-plane" in reason for reason in finding.risk_reasons)
    assert FindingSummary.objects.get(tenant=connect.tenant).control_plane == 1
    roles = json.loads(APP_ROLES.read_text())
    unlisted = tmp_path / "roles.json"
    unlisted.write_text(
        json.dumps([r for r in roles if r["AppRoleDisplayName"] != "Device.Read.All"])
    )

    catalog_import_reference(classifications=[str(unlisted)])

    assert (stored(connect).control_plane, stored(connect).tier) == (0, "")


# --- read by the pages ----------------------------------------------------------------------


def test_current_findings_cost_one_query(connect):
    tenant = Tenant.objects.get(pk=connect.tenant_id)

    with CaptureQueriesContext(connection) as queries:
        summaries = findings_current([tenant])

    assert len(queries) == 1 and summaries[tenant.pk].applications == 1


def test_findings_of_an_older_sync_or_none_at_all_are_computed_when_read(connect):
    tenant = Tenant.objects.get(pk=connect.tenant_id)
    newer = SyncRunFactory(tenant=tenant, succeeded=True, last_good=True)
    GrantFactory(client=connect, value="Group.Read.All", first_seen_run=newer)
    tenant.refresh_from_db()

    findings_current([tenant])

    assert counts(connect) == (1, 1, 2, 0)
    FindingSummary.objects.all().delete()
    ApplicationFinding.objects.all().delete()
    assert findings_current([tenant])[tenant.pk].unexplained == 2


def test_a_tenant_never_synced_has_no_findings(contoso):
    assert findings_current([contoso]) == {}
    assert not FindingSummary.objects.exists()


# --- the command ----------------------------------------------------------------------------


def test_recompute_findings_recomputes_each_synced_tenant(connect, fabrikam):
    ApplicationFinding.objects.all().delete()
    out = io.StringIO()

    call_command("recompute_findings", stdout=out)

    assert counts(connect) == (1, 1, 1, 0)
    lines = out.getvalue().splitlines()
    assert f"{connect.tenant.tenant_id} Contoso: 1 applications, 3 grants recomputed" in lines[0]
    assert lines[1] == f"{fabrikam.tenant_id} Fabrikam: not synced yet, nothing to do"


def test_recompute_findings_of_one_tenant_names_an_unknown_one(connect):
    with pytest.raises(CommandError, match="is not onboarded"):
        call_command("recompute_findings", "00000000-0000-0000-0000-00000000abcd")
    with pytest.raises(CommandError, match="tenant id"):
        call_command("recompute_findings", "not-a-guid")
    out = io.StringIO()
    call_command("recompute_findings", str(connect.tenant.tenant_id), stdout=out)
    assert out.getvalue().count("\n") == 1
