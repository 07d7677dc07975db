"""Uploading a manifest on the applications page: operators and superusers only, the
same validation and one-line errors as import_manifest, shown inline, all or nothing."""

import html
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from permissions.models import Application, Feature, Requirement
from permissions.services import MANIFEST_UPLOAD_MAX_BYTES, upload_filename
from tenants.models import AuditEvent
from tests.factories import ApplicationFactory, FeatureFactory, RequirementFactory, UserFactory

pytestmark = pytest.mark.django_db

OPERATOR_TENANT = "0e7a1c55-0000-4000-8000-00000000000f"
CONTOSO = "1e1a0801-7f55-46e2-9fb2-3b09766f2844"
APP_ID = "8708fc71-9f71-4ad5-8445-a0746692feeb"
UPLOAD_URL = "/applications/upload/"

MANIFEST = f"""\
manifest: 1
application:
  app_id: {APP_ID}
  name: 247connect
  publisher: 247connect
features:
  - key: device-assignment
    name: Device assignment
    description: Puts each device into the matching device group.
    permissions:
      - permission: Device.Read.All
        type: application
        reason: Looks up devices to place them.
        api_calls: ["GET /devices"]
      - permission: Group.Read.All
        type: application
        reason: Reads the device groups.
  - key: organisation-details
    name: Organisation details
    description: Shows the organisation's name.
    permissions:
      - permission: Organization.Read.All
        type: application
        reason: Fetches the organisation profile.
"""


@pytest.fixture(autouse=True)
def _operator_tenant(settings):
    settings.PORTAL_OPERATOR_TENANT_ID = OPERATOR_TENANT


def signed_in(tenant_id: str = "", *roles: str, **fields) -> Client:
    client = Client()
    client.force_login(UserFactory(entra_tenant_id=tenant_id, entra_roles=list(roles), **fields))
    return client


def upload(client: Client, content: str | bytes, name: str = "247connect.yaml"):
    data = content.encode() if isinstance(content, str) else content
    return client.post(UPLOAD_URL, {"manifest": SimpleUploadedFile(name, data)})


def errors_shown(response) -> list[str]:
    """The inline errors under the file input, as the page shows them (unescaped)."""
    page = response.content.decode()
    if 'id="manifest-file-errors"' not in page:
        return []
    block = page.split('id="manifest-file-errors"', 1)[1].split("</ul>", 1)[0]
    return [html.unescape(item.split("</li>", 1)[0]) for item in block.split("<li>")[1:]]


def manifest_rows() -> tuple[int, int, int]:
    return Application.objects.count(), Feature.objects.count(), Requirement.objects.count()


# --- the happy path ----------------------------------------------------------------------


def test_an_operator_uploads_a_manifest_and_is_told_what_changed(oscar_client):
    response = upload(oscar_client, MANIFEST)

    assert response.status_code == 302
    assert response["Location"] == reverse("permissions:application-detail", args=[APP_ID])
    application = Application.objects.get(app_id=APP_ID)
    assert application.has_manifest
    assert list(application.features.values_list("key", flat=True)) == [
        "device-assignment",
        "organisation-details",
    ]
    assert Requirement.objects.filter(feature__application=application).count() == 3
    page = oscar_client.get(response["Location"])
    assert "247connect.yaml: 247connect created, with 2 features and 3 permissions." in (
        page.content.decode()
    )


def test_the_upload_is_audited_as_a_portal_wide_event(oscar_client):
    upload(oscar_client, MANIFEST)

    event = AuditEvent.objects.get(action=AuditEvent.Action.MANIFEST_IMPORTED)
    assert event.tenant is None
    assert event.actor is not None and event.actor.entra_roles == ["Portal.Operator"]
    assert event.target == f"Manifest of 247connect ({APP_ID})"
    assert event.details == {
        "file": "247connect.yaml",
        "app_id": APP_ID,
        "outcome": "created",
        "features": {"added": 2, "changed": 0, "removed": 0},
        "permissions": {"added": 3, "changed": 0, "removed": 0},
    }


def test_the_same_manifest_twice_changes_nothing_and_says_so(oscar_client):
    upload(oscar_client, MANIFEST)

    response = upload(oscar_client, MANIFEST)

    page = oscar_client.get(response["Location"]).content.decode()
    assert (
        "247connect.yaml: 247connect unchanged: the portal already had exactly this manifest."
        in page
    )
    # Nothing changed, so nothing more is on record.
    assert AuditEvent.objects.filter(action=AuditEvent.Action.MANIFEST_IMPORTED).count() == 1


def test_an_update_names_what_it_added_changed_and_removed(oscar_client):
    upload(oscar_client, MANIFEST)
    changed = MANIFEST.replace("Reads the device groups.", "Reads the device groups, again.")
    changed = changed.split("  - key: organisation-details")[0]

    response = upload(oscar_client, changed, name="247connect-v2.yaml")

    page = oscar_client.get(response["Location"]).content.decode()
    assert (
        "247connect-v2.yaml: 247connect updated: features 1 removed; permissions 1 changed, "
        "1 removed." in page
    )
    event = AuditEvent.objects.filter(action=AuditEvent.Action.MANIFEST_IMPORTED).first()
    assert event is not None and event.details["outcome"] == "updated"


def test_permissions_the_catalog_does_not_know_are_kept_with_a_warning(oscar_client):
    response = upload(oscar_client, MANIFEST)

    page = oscar_client.get(response["Location"]).content.decode()
    assert (
        "247connect.yaml: warning: Device.Read.All (application) is not in the catalog yet" in page
    )


def test_a_superuser_may_upload_too():
    superuser = signed_in(is_superuser=True, is_staff=True)

    assert upload(superuser, MANIFEST).status_code == 302
    assert Application.objects.filter(app_id=APP_ID).exists()


def test_the_form_is_shown_to_operators_only(oscar_client):
    admin = signed_in(CONTOSO, "Portal.Admin")

    assert 'action="/applications/upload/"' in oscar_client.get("/applications/").content.decode()
    assert 'enctype="multipart/form-data"' in oscar_client.get("/applications/").content.decode()
    assert 'action="/applications/upload/"' not in admin.get("/applications/").content.decode()


# --- errors, inline, one line each, nothing imported --------------------------------------


def bad(old: str, new: str) -> str:
    assert old in MANIFEST
    return MANIFEST.replace(old, new, 1)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(
            bad(f"app_id: {APP_ID}", "app_id: 8708fc71-not-a-guid"),
            "247connect.yaml:3: application.app_id: '8708fc71-not-a-guid' is not a GUID "
            "(like 00000003-0000-0000-c000-000000000000)",
            id="bad-guid",
        ),
        pytest.param(
            bad("  publisher: 247connect", "  publisher: 247connect\n  homepage: https://x"),
            "247connect.yaml:6: application.homepage: unknown key; expected one of app_id, "
            "name, publisher, docs_url",
            id="unknown-key",
        ),
        pytest.param(
            bad("key: organisation-details", "key: Device-Assignment"),
            "247connect.yaml:18: features[1].key: duplicate feature key 'Device-Assignment' "
            "(first at line 7)",
            id="duplicate-feature",
        ),
        pytest.param(
            bad("type: application", "type: app"),
            "247connect.yaml:12: features[0].permissions[0].type: 'app' is not one of "
            "application, delegated",
            id="unknown-type",
        ),
        pytest.param(
            "manifest: 1\napplication: [unclosed\n",
            "247connect.yaml:3: not valid YAML: while parsing a flow sequence, expected ',' "
            "or ']', but got '<stream end>'",
            id="not-yaml",
        ),
        pytest.param(
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
            "247connect.yaml:3: binary file (NUL byte), not a YAML manifest",
            id="binary",
        ),
        pytest.param(
            b"name: caf\xe9\n", "247connect.yaml:1: not UTF-8 text (byte 0xe9)", id="not-utf8"
        ),
        pytest.param(b"", "247connect.yaml:1: empty file, expected a manifest", id="empty"),
        pytest.param(
            "# only a comment\n", "247connect.yaml:1: empty file, expected a manifest", id="blank"
        ),
        pytest.param(
            b"#" * (MANIFEST_UPLOAD_MAX_BYTES + 1),
            "247connect.yaml: larger than 256 KB; a manifest is a few KB of YAML",
            id="too-big",
        ),
    ],
)
def test_each_error_is_shown_inline_on_one_line_and_imports_nothing(
    oscar_client, content, expected
):
    before = manifest_rows()

    response = upload(oscar_client, content)

    assert response.status_code == 400
    assert errors_shown(response) == [expected]
    assert manifest_rows() == before
    assert not AuditEvent.objects.exists()


def test_errors_are_those_of_import_manifest(oscar_client, tmp_path, capsys):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    path = tmp_path / "247connect.yaml"
    path.write_text(bad("type: application", "type: app"))
    with pytest.raises(CommandError):
        call_command("import_manifest", str(path))
    command_error = capsys.readouterr().err.strip()

    response = upload(oscar_client, path.read_bytes())

    shown = errors_shown(response)[0]
    assert command_error == shown.replace("247connect.yaml", str(path), 1)


def test_an_upload_far_past_the_limit_is_refused_without_keeping_it(oscar_client, monkeypatch):
    kept: list[int] = []
    original = __import__("permissions.services", fromlist=["manifest_upload"]).manifest_upload

    def spy(*, data: bytes, **kwargs):
        kept.append(len(data))
        return original(data=data, **kwargs)

    monkeypatch.setattr("permissions.views.manifest_upload", spy)

    response = upload(oscar_client, b"a: b\n" * (2 * 1024 * 1024))  # 10 MB

    assert response.status_code == 400
    assert errors_shown(response) == [
        "247connect.yaml: larger than 256 KB; a manifest is a few KB of YAML"
    ]
    # One byte past the limit is all the portal held of it.
    assert kept == [MANIFEST_UPLOAD_MAX_BYTES + 1]


def test_a_manifest_exactly_at_the_limit_is_read(oscar_client):
    content = MANIFEST + "#" * (MANIFEST_UPLOAD_MAX_BYTES - len(MANIFEST) - 1) + "\n"
    assert len(content.encode()) == MANIFEST_UPLOAD_MAX_BYTES

    assert upload(oscar_client, content).status_code == 302


def test_an_error_late_in_the_file_leaves_an_existing_manifest_as_it_was(oscar_client):
    upload(oscar_client, MANIFEST)
    before = list(Requirement.objects.order_by("pk").values_list("pk", "reason"))
    # The first feature would change, then the second fails: nothing of it may stay.
    broken = bad("Looks up devices to place them.", "Changed.")
    broken = broken.replace("reason: Fetches the organisation profile.", "reason: ''")

    response = upload(oscar_client, broken)

    assert response.status_code == 400
    assert errors_shown(response) == [
        "247connect.yaml:24: features[1].permissions[0].reason: must not be empty"
    ]
    assert list(Requirement.objects.order_by("pk").values_list("pk", "reason")) == before


def test_a_failure_while_importing_rolls_back_the_whole_upload(oscar_client, monkeypatch):
    application = ApplicationFactory(app_id=uuid.UUID(APP_ID), name="247connect")
    RequirementFactory(feature=FeatureFactory(application=application, key="old"), reason="Kept.")
    before = manifest_rows()

    def fail(**kwargs):
        raise RuntimeError("the audit trail is down")

    monkeypatch.setattr("permissions.services.audit_record", fail)
    with pytest.raises(RuntimeError):
        upload(oscar_client, MANIFEST)

    assert manifest_rows() == before
    assert Feature.objects.get().key == "old"


def test_no_file_chosen_says_so(oscar_client):
    response = oscar_client.post(UPLOAD_URL, {})

    assert response.status_code == 400
    assert errors_shown(response) == ["Choose a manifest file (YAML) to upload."]


def test_a_hostile_file_name_is_shown_as_one_escaped_line(oscar_client):
    response = upload(oscar_client, b"", name="<img src=x onerror=alert(1)> evil.yaml")

    assert errors_shown(response) == [
        "<img src=x onerror=alert(1)> evil.yaml:1: empty file, expected a manifest"
    ]
    assert "&lt;img src=x onerror=alert(1)&gt; evil.yaml:1" in response.content.decode()
    assert "<img src=x" not in response.content.decode()


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("247connect.yaml", "247connect.yaml"),
        ("two\nlines\r\n.yaml", "two lines .yaml"),
        ("bell\x07 and\u2028separator\u202e.yaml", "bell and separator .yaml"),
        ("  \t ", "upload.yaml"),
        (None, "upload.yaml"),
        ("x" * 150 + ".yaml", "x" * 97 + "..."),
    ],
)
def test_file_names_become_one_short_printable_line(name, shown):
    assert upload_filename(name) == shown


# --- who may upload ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "roles", [("Portal.Reader",), ("Portal.Admin",), ("Portal.Admin", "Portal.Reader")]
)
def test_readers_and_admins_of_a_tenant_may_not_upload(roles):
    client = signed_in(CONTOSO, *roles)

    response = upload(client, MANIFEST)

    assert response.status_code == 403
    assert not Application.objects.exists()


def test_operator_role_outside_the_operator_tenant_is_no_operator():
    client = signed_in(CONTOSO, "Portal.Operator", "Portal.Admin")

    assert upload(client, MANIFEST).status_code == 403


def test_someone_without_any_role_may_not_upload():
    assert upload(signed_in(CONTOSO), MANIFEST).status_code == 403


def test_signed_out_visitors_are_sent_to_sign_in():
    response = upload(Client(), MANIFEST)

    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]
    assert not Application.objects.exists()


def test_an_upload_needs_the_csrf_token(oscar):
    guarded = Client(enforce_csrf_checks=True)
    guarded.force_login(oscar)

    refused = upload(guarded, MANIFEST)
    token = guarded.get("/applications/").cookies["csrftoken"].value
    accepted = guarded.post(
        UPLOAD_URL,
        {"manifest": SimpleUploadedFile("m.yaml", MANIFEST.encode()), "csrfmiddlewaretoken": token},
    )

    assert refused.status_code == 403
    assert accepted.status_code == 302
    assert Application.objects.filter(app_id=APP_ID).count() == 1


def test_the_csrf_token_is_read_even_when_the_file_is_too_big():
    guarded = Client(enforce_csrf_checks=True)
    guarded.force_login(
        UserFactory(entra_tenant_id=OPERATOR_TENANT, entra_roles=["Portal.Operator"])
    )
    token = guarded.get("/applications/").cookies["csrftoken"].value

    response = guarded.post(
        UPLOAD_URL,
        {
            "csrfmiddlewaretoken": token,
            "manifest": SimpleUploadedFile("big.yaml", b"#" * (MANIFEST_UPLOAD_MAX_BYTES * 3)),
        },
    )

    assert response.status_code == 400
    assert errors_shown(response) == [
        "big.yaml: larger than 256 KB; a manifest is a few KB of YAML"
    ]


def test_a_get_is_not_an_upload(oscar_client):
    assert oscar_client.get(UPLOAD_URL).status_code == 405
