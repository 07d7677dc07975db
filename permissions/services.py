"""Writes behind the applications pages: a manifest uploaded by an operator."""

from django.db import transaction

from permissions.manifests import (
    ImportOutcome,
    ManifestError,
    ManifestImportResult,
    manifest_import,
    manifest_parse,
    one_line,
)
from portal.models import User
from tenants.audit import audit_record
from tenants.models import AuditEvent

# A manifest is a few KB (the bundled ones are under 10 KB); anything near this is not one.
MANIFEST_UPLOAD_MAX_BYTES = 256 * 1024
# Uploaded file names are the uploader's words: shown in errors and kept in the audit trail.
_MAX_FILENAME = 100
_DEFAULT_FILENAME = "upload.yaml"


def upload_filename(name: str | None) -> str:
    """The uploaded file's name as errors and the audit trail show it: one line of
    printable text (a browser sends whatever the file was called), at most 100 characters."""
    text = one_line(name or "")
    if len(text) > _MAX_FILENAME:
        text = text[: _MAX_FILENAME - 3] + "..."
    return text or _DEFAULT_FILENAME


def manifest_upload(*, data: bytes, filename: str, actor: User) -> ManifestImportResult:
    """Validate an uploaded manifest as ``import_manifest`` does and import it: all or
    nothing, in one transaction with its audit event. Raises ManifestError (one line,
    naming ``filename``, the line and the key) and then changes nothing.

    ``data`` may be cut short one byte past the limit by the upload handler: longer than
    the limit is all this needs to know.
    """
    if len(data) > MANIFEST_UPLOAD_MAX_BYTES:
        raise ManifestError(
            filename,
            None,
            f"larger than {MANIFEST_UPLOAD_MAX_BYTES // 1024} KB; a manifest is a few KB of YAML",
        )
    spec = manifest_parse(data=data, source=filename)
    with transaction.atomic():
        result = manifest_import(spec=spec)
        # An unchanged import changed nothing, so there is nothing to put on record.
        if result.outcome != ImportOutcome.UNCHANGED:
            audit_record(
                action=AuditEvent.Action.MANIFEST_IMPORTED,
                actor=actor,
                target=f"Manifest of {result.name} ({result.app_id})",
                details={
                    "file": filename,
                    "app_id": str(result.app_id),
                    "outcome": result.outcome.value,
                    "features": _changes(
                        result.features_created, result.features_updated, result.features_deleted
                    ),
                    "permissions": _changes(
                        result.requirements_created,
                        result.requirements_updated,
                        result.requirements_deleted,
                    ),
                },
            )
    return result


def _changes(created: int, updated: int, deleted: int) -> dict[str, int]:
    return {"added": created, "changed": updated, "removed": deleted}


def manifest_upload_summary(result: ManifestImportResult, filename: str) -> str:
    """What an upload changed, in one sentence for the page."""
    name = f"{filename}: {result.name}"
    if result.outcome == ImportOutcome.UNCHANGED:
        return f"{name} unchanged: the portal already had exactly this manifest."
    if result.outcome == ImportOutcome.CREATED:
        return (
            f"{name} created, with {_count(result.features_created, 'feature')} and "
            f"{_count(result.requirements_created, 'permission')}."
        )
    parts = [
        part
        for part in (
            _parts(
                "features",
                result.features_created,
                result.features_updated,
                result.features_deleted,
            ),
            _parts(
                "permissions",
                result.requirements_created,
                result.requirements_updated,
                result.requirements_deleted,
            ),
        )
        if part
    ]
    # An application first seen in a tenant's grants gets its first manifest.
    changes = "; ".join(parts) or "the application's details"
    return f"{name} updated: {changes}."


def _parts(noun: str, created: int, updated: int, deleted: int) -> str:
    counts = [(created, "added"), (updated, "changed"), (deleted, "removed")]
    said = ", ".join(f"{number} {verb}" for number, verb in counts if number)
    return f"{noun} {said}" if said else ""


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
