"""What the portal exports as files: the tenant report as JSON and CSV, the audit trail
as CSV, each streamed a chunk at a time.

Exports are generators of text fed from server-side cursors (``QuerySet.iterator``), so
that memory stays flat in the tenant's size and the first bytes leave at once; the
``report`` command prints the same chunks. Every CSV goes through :func:`csv_chunks`, so
that what must hold for every exported cell (DESIGN.md: a spreadsheet must not evaluate
one) is written in one place.
"""

import csv
import io
import itertools
import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db.models import QuerySet
from django.http import HttpResponse, StreamingHttpResponse

from tenants.models import AuditEvent, Tenant
from tenants.report import ApplicationReport, application_reports, report_synced_at

REPORT_COLUMNS = [
    "app_id",
    "display_name",
    "service_principal_id",
    "permission",
    "type",
    "resource_app_id",
    "consent",
    "users",
    "verdict",
    "features",
    "narrower",
    "tier",
    "justification",
    "justified_by",
    "justified_until",
    # Added after the columns above, which keep their places for scripts that read them
    # by position.
    "regranted",
    "service_principal_type",
    "first_party",
    "kind",
    "verified_publisher",
    "owners",
    "owner_names",
    "credentials",
    "credentials_soonest_expiry",
    "credentials_on_service_principal",
]
AUDIT_COLUMNS = ["at", "tenant_id", "tenant", "actor", "action", "target", "details"]
# Rows written to the buffer before it is handed on: a few hundred KiB of CSV.
CSV_CHUNK_ROWS = 1000
# Audit events fetched from the cursor at a time.
AUDIT_CHUNK = 2000

# A spreadsheet takes a cell that starts with one of these for a formula (OWASP's CSV
# injection list); spreadsheets that fold full-width forms to ASCII take those too.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def csv_chunks(
    header: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    lineterminator: str = "\r\n",
    chunk_rows: int = CSV_CHUNK_ROWS,
) -> Iterator[str]:
    """``header`` and ``rows`` as CSV text, ``chunk_rows`` rows at a time; ``None`` is an
    empty cell, and every text cell a spreadsheet would evaluate is neutralised
    (:func:`csv_cell`)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=lineterminator)
    writer.writerow([csv_cell(name) for name in header])
    written = 0
    for row in rows:
        writer.writerow([csv_cell(cell) for cell in row])
        written += 1
        if written % chunk_rows == 0:
            yield _drained(out)
    if rest := _drained(out):
        yield rest


def _drained(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def csv_cell(value: object) -> object:
    """A text cell that a spreadsheet would evaluate, with a leading ``'`` that makes it
    text (DESIGN.md). Only strings: numbers (the report's ``users``) are data a
    spreadsheet should see as numbers, negative ones included, and cannot carry a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


# -- the report ------------------------------------------------------------------------


def tenant_report_json(*, tenant: Tenant, app_id: UUID | None = None) -> Iterator[str]:
    """The tenant's report as DESIGN.md's JSON, a chunk at a time."""
    return report_json_chunks(
        tenant_id=tenant.tenant_id,
        synced_at=report_synced_at(tenant),
        applications=application_reports(tenant=tenant, app_id=app_id),
    )


def tenant_report_csv(*, tenant: Tenant, app_id: UUID | None = None) -> Iterator[str]:
    """The tenant's report as CSV, a chunk at a time."""
    return report_csv_chunks(application_reports(tenant=tenant, app_id=app_id))


def report_json_chunks(
    *, tenant_id: UUID, synced_at: datetime | None, applications: Iterable[ApplicationReport]
) -> Iterator[str]:
    """The text ``json.dumps(report, indent=2)`` gives, written one application at a
    time: the envelope by hand, each application by ``json.dumps`` and indented to its
    depth (JSON text holds no raw newline inside a string, so each line can be)."""
    yield "{\n"
    yield f'  "tenant_id": {json.dumps(str(tenant_id))},\n'
    yield f'  "synced_at": {json.dumps(synced_at.isoformat() if synced_at else None)},\n'
    yield '  "applications": ['
    separator = "\n    "
    any_written = False
    for application in applications:
        text = json.dumps(application.as_json(), indent=2).replace("\n", "\n    ")
        yield separator + text
        separator, any_written = ",\n    ", True
    yield "\n  ]\n}" if any_written else "]\n}"


def report_csv_chunks(applications: Iterable[ApplicationReport]) -> Iterator[str]:
    """One row per grant; missing permissions are rows with verdict ``missing``. Lines
    end in a bare newline, as ``report --format csv`` prints them."""
    return csv_chunks(REPORT_COLUMNS, _report_rows(applications), lineterminator="\n")


def _report_rows(applications: Iterable[ApplicationReport]) -> Iterator[list[object]]:
    for app in applications:
        base = _application_cells(app)
        for grant in app.grants:
            note = grant.justification
            yield _in_columns(
                {
                    **base,
                    **grant.as_json(),
                    "features": " ".join(grant.features),
                    "narrower": grant.narrower or "",
                    "tier": grant.tier or "",
                    "justification": note.reason if note else "",
                    "justified_by": note.by if note else "",
                    "justified_until": (note.expires.isoformat() if note and note.expires else ""),
                    "regranted": _flag(grant.regranted),
                }
            )
        for missing in app.missing:
            yield _in_columns(
                {
                    **base,
                    **missing.as_json(),
                    "consent": "",
                    "users": "",
                    "verdict": "missing",
                    "features": " ".join(missing.features),
                    "narrower": "",
                    "tier": "",
                }
            )


def _application_cells(app: ApplicationReport) -> dict[str, object]:
    """The application's cells, repeated on each of its rows. Facts no sync has read yet
    are empty cells, as are absent values."""
    owners, credentials = app.owners, app.credentials
    return {
        "app_id": str(app.app_id),
        "display_name": app.display_name,
        "service_principal_id": str(app.service_principal_id),
        "service_principal_type": app.service_principal_type or "",
        "first_party": _flag(app.first_party),
        "kind": app.kind,
        "verified_publisher": _flag(app.verified_publisher),
        "owners": "" if owners is None else len(owners),
        # An owner Graph gave no name is named by its id.
        "owner_names": "; ".join(
            owner.get("name") or owner.get("upn") or owner.get("id", "") for owner in owners or ()
        ),
        "credentials": "" if credentials is None else credentials.count,
        "credentials_soonest_expiry": (credentials and credentials.soonest_expiry_text) or "",
        "credentials_on_service_principal": ""
        if credentials is None
        else _flag(credentials.on_service_principal),
    }


def _flag(value: bool | None) -> str:
    """``true``/``false`` as the JSON has them; unknown is an empty cell."""
    return "" if value is None else str(value).lower()


def _in_columns(row: dict[str, Any]) -> list[object]:
    return [row.get(column, "") for column in REPORT_COLUMNS]


# -- the audit trail -------------------------------------------------------------------


def audit_csv(events: QuerySet[AuditEvent]) -> Iterator[str]:
    """One row per event; ``details`` as sorted JSON."""
    rows = (_audit_row(event) for event in events.iterator(chunk_size=AUDIT_CHUNK))
    return csv_chunks(AUDIT_COLUMNS, rows)


def _audit_row(event: AuditEvent) -> list[object]:
    tenant = event.tenant
    return [
        event.at.isoformat(),
        tenant.tenant_id if tenant else "",
        tenant.name if tenant else "",
        event.who,
        event.action,
        event.target,
        json.dumps(event.details, sort_keys=True),
    ]


# -- responses -------------------------------------------------------------------------


def attachment(content: str, *, content_type: str, filename: str) -> HttpResponse:
    """``content`` as a download named ``filename``."""
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = _disposition(filename)
    return response


def streamed_attachment(
    chunks: Iterator[str], *, content_type: str, filename: str
) -> StreamingHttpResponse:
    """``chunks`` sent as they come, as a download named ``filename``.

    The first chunk is made here, inside the view: a failure before any byte is sent (the
    database down) gets the portal's error page rather than the web server's bare one. A
    failure after it cuts the download off, which the client sees as a failed download,
    never as a complete file."""
    first = next(chunks, "")
    response = StreamingHttpResponse(itertools.chain([first], chunks), content_type=content_type)
    response["Content-Disposition"] = _disposition(filename)
    return response


def _disposition(filename: str) -> str:
    return f'attachment; filename="{filename}"'
