"""What admins and readers do, in a real browser: sign in through Entra, read why a
grant exists, try a feature switch, save it, export the report."""

import csv
import io

import pytest

from permissions.models import Requirement
from tenants.models import FeatureSwitch
from tests.browser.helpers import open_rooms_platform, screenshot, sign_in
from tests.ids import ROOMS

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_admin_reads_why_a_grant_exists_previews_a_feature_saves_it_and_exports(
    page, live_server, demo
):
    sign_in(page, live_server, "alice@contoso.onmicrosoft.com")
    page.get_by_text("Alice Anders").first.wait_for()
    screenshot(page, "dashboard")

    open_rooms_platform(page)
    reason = Requirement.objects.get(
        feature__application__app_id=ROOMS, permission_value="Place.Read.All"
    ).reason
    assert page.get_by_text(reason).first.is_visible()
    screenshot(page, "application")

    # Smart buildings is off by default: switching it on makes its grants needed.
    page.get_by_label("Smart buildings").check()
    preview = page.locator("#feature-preview")
    preview.get_by_text("Place.Read.All").wait_for()
    assert "Calendars.ReadBasic.All" in preview.inner_text()
    assert not FeatureSwitch.objects.exists()  # a preview changes nothing
    screenshot(page, "feature-preview")

    page.get_by_role("button", name="Save switches").click()
    # The page comes back saying so; the checkbox alone was there before the save too.
    page.get_by_text("Feature switches saved").wait_for()
    switch = FeatureSwitch.objects.get(feature__key="smart-buildings")
    assert switch.enabled and switch.tenant.name == "Contoso"

    page.get_by_role("link", name="Contoso").first.click()
    screenshot(page, "tenant")
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    rows = list(csv.DictReader(io.StringIO(download.value.path().read_text())))
    place = next(r for r in rows if r["app_id"] == ROOMS and r["permission"] == "Place.Read.All")
    assert place["verdict"] == "needed" and place["features"] == "smart-buildings"


def test_a_reader_sees_the_grants_but_cannot_save_switches(page, live_server, demo):
    sign_in(page, live_server, "bob@contoso.onmicrosoft.com")
    open_rooms_platform(page)
    assert page.get_by_role("button", name="Save switches").count() == 0
    page.get_by_label("Smart buildings").check()
    page.locator("#feature-preview").get_by_text("Place.Read.All").wait_for()
    assert not FeatureSwitch.objects.exists()


def test_a_user_without_a_portal_role_is_told_how_to_get_access(page, live_server, demo):
    sign_in(page, live_server, "erin@contoso.onmicrosoft.com")
    page.get_by_text("Portal.Reader").first.wait_for()
    assert page.locator("main").get_by_role("link", name="Contoso").count() == 0
    screenshot(page, "no-access")
