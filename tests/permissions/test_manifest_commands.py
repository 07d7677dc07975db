"""The import_manifest and export_manifest management commands."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from permissions.manifests import BUNDLED_MANIFESTS_DIR
from permissions.models import Application, Feature, Requirement
from tests.factories import ApplicationFactory
from tests.ids import CONNECT_247
from tests.permissions.manifest_cases import EXAMPLE_PATH, INVALID

pytestmark = pytest.mark.django_db

EXAMPLE = EXAMPLE_PATH


def run(command: str, *args: str) -> tuple[str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    call_command(command, *args, stdout=stdout, stderr=stderr)
    return stdout.getvalue(), stderr.getvalue()


def run_failing(command: str, *args: str) -> tuple[str, str, CommandError]:
    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as caught:
        call_command(command, *args, stdout=stdout, stderr=stderr)
    return stdout.getvalue(), stderr.getvalue(), caught.value


def counts() -> tuple[int, int, int]:
    return Application.objects.count(), Feature.objects.count(), Requirement.objects.count()


def test_import_prints_one_line_per_file():
    bundled = sorted(str(path) for path in BUNDLED_MANIFESTS_DIR.glob("*.yaml"))

    stdout, _ = run("import_manifest", *bundled)

    lines = stdout.splitlines()
    assert len(lines) == len(bundled)
    assert lines[0] == (
        f"{bundled[0]}: 247connect ({CONNECT_247}) created: features +2 ~0 -0, "
        "permissions +3 ~0 -0, 3 warning(s)"
    )
    assert Application.objects.count() == len(bundled)


def test_import_reports_an_unchanged_file_as_such():
    run("import_manifest", str(EXAMPLE))

    stdout, _ = run("import_manifest", str(EXAMPLE))

    assert stdout == f"{EXAMPLE}: 247connect ({CONNECT_247}) unchanged, 4 warning(s)\n"


def test_import_writes_catalog_warnings_to_stderr_naming_the_file():
    _, stderr = run("import_manifest", str(EXAMPLE))

    assert (
        f"{EXAMPLE}: warning: Device.Read.All (application) is not in the catalog yet; "
        "it is kept and will match once the catalog knows it"
    ) in stderr.splitlines()


def test_import_keeps_quiet_about_warnings_at_verbosity_zero():
    _, stderr = run("import_manifest", str(EXAMPLE), "--verbosity", "0")

    assert stderr == ""


@pytest.mark.parametrize(("old", "new", "expected"), INVALID.values(), ids=INVALID.keys())
def test_a_bad_file_prints_its_one_line_error_imports_nothing_and_fails(
    tmp_path, old, new, expected
):
    ApplicationFactory()
    before = counts()
    bad = tmp_path / "247connect.yaml"
    bad.write_text(EXAMPLE.read_text().replace(old, new, 1))

    stdout, stderr, error = run_failing("import_manifest", str(bad))

    assert stdout == ""
    assert stderr == expected.replace("247connect.yaml", str(bad), 1) + "\n"
    assert error.returncode == 1
    assert str(error) == "1 of 1 manifest file(s) not imported; 0 imported"
    assert counts() == before


def test_the_other_files_are_still_imported_after_a_bad_one(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"\x00\x01")
    missing = tmp_path / "missing.yaml"

    stdout, stderr, error = run_failing("import_manifest", str(bad), str(EXAMPLE), str(missing))

    assert stdout.splitlines() == [
        f"{EXAMPLE}: 247connect ({CONNECT_247}) created: features +3 ~0 -0, permissions +4 ~0 -0, "
        "4 warning(s)"
    ]
    errors = [line for line in stderr.splitlines() if ": warning: " not in line]
    assert errors == [
        f"{bad}:1: binary file (NUL byte), not a YAML manifest",
        f"{missing}: cannot read the file: No such file or directory",
    ]
    assert str(error) == "2 of 3 manifest file(s) not imported; 1 imported"
    assert Application.objects.filter(app_id=CONNECT_247).exists()


def test_import_requires_a_path():
    with pytest.raises(CommandError, match="the following arguments are required: PATH"):
        call_command("import_manifest")


def test_export_prints_what_import_reads(tmp_path):
    run("import_manifest", str(EXAMPLE))

    exported, _ = run("export_manifest", CONNECT_247)

    copy = tmp_path / "copy.yaml"
    copy.write_text(exported)
    assert exported.startswith("manifest: 1\napplication:\n  app_id: " + CONNECT_247)
    assert run("import_manifest", str(copy))[0] == (
        f"{copy}: 247connect ({CONNECT_247}) unchanged, 4 warning(s)\n"
    )


def test_export_accepts_an_app_id_in_upper_case():
    run("import_manifest", str(EXAMPLE))

    assert run("export_manifest", CONNECT_247.upper())[0] == run("export_manifest", CONNECT_247)[0]


@pytest.mark.parametrize(
    ("app_id", "message"),
    [
        ("247connect", "'247connect' is not an application id (a GUID)"),
        (
            "00000000-0000-0000-0000-000000000001",
            "no application with app id 00000000-0000-0000-0000-000000000001",
        ),
    ],
)
def test_export_rejects_an_unknown_or_malformed_app_id(app_id, message):
    run("import_manifest", str(EXAMPLE))

    stdout, _, error = run_failing("export_manifest", app_id)

    assert str(error) == message
    assert stdout == ""


def test_export_refuses_an_application_without_a_manifest():
    application = ApplicationFactory(name="Seen in a tenant")

    _, _, error = run_failing("export_manifest", str(application.app_id))

    assert str(error) == f"Seen in a tenant ({application.app_id}) has no manifest"
