"""An operator drafts a manifest for an application nobody explains, sends it round (here:
uploads it as it is) and sees its grants explained; a broken file is refused inline."""

import pytest

from permissions.models import Application
from tests.browser.helpers import screenshot, sign_in

pytestmark = pytest.mark.django_db(transaction=True)

LEGACY = "b1c2d3e4-f5a6-4b7c-8d9e-0f1a2b3c4d5e"
LEGACY_NAME = "Legacy Reporting Tool"


def test_an_operator_drafts_a_manifest_and_uploads_it(page, live_server, demo, tmp_path):
    sign_in(page, live_server, "oscar@contoso.onmicrosoft.com")
    page.goto(f"{live_server.url}/tenants/{demo.tenant_id}/applications/{LEGACY}/")
    page.get_by_role("heading", name="Risk:").wait_for()
    assert page.locator(".risk-unknown").inner_text().startswith("Unknown until the portal")
    screenshot(page, "application-risk")

    with page.expect_download() as download:
        page.get_by_role("link", name="Draft a manifest (YAML)").click()
    draft = tmp_path / download.value.suggested_filename
    download.value.save_as(draft)
    assert draft.name == "legacy-reporting-tool-manifest-draft.yaml"
    assert "TODO: why does the application need" in draft.read_text()

    broken = tmp_path / "broken.yaml"
    broken.write_text(draft.read_text().replace("type: application", "type: app", 1))
    page.goto(f"{live_server.url}/applications/")
    page.get_by_label("Upload a manifest (YAML)").set_input_files(str(broken))
    page.get_by_role("button", name="Upload and import").click()
    error = page.locator("#manifest-file-errors")
    error.wait_for()
    assert error.inner_text().startswith("broken.yaml:")
    assert "'app' is not one of application, delegated" in error.inner_text()
    assert not Application.objects.filter(app_id=LEGACY, manifest_imported_at__isnull=False)
    screenshot(page, "manifest-upload-error")

    page.get_by_label("Upload a manifest (YAML)").set_input_files(str(draft))
    page.get_by_role("button", name="Upload and import").click()
    page.get_by_text(f"{draft.name}: {LEGACY_NAME} created").wait_for()

    page.goto(f"{live_server.url}/tenants/{demo.tenant_id}/applications/{LEGACY}/")
    summary = page.locator(".verdict-summary").inner_text()
    assert "Unexplained\n0" in summary, summary
