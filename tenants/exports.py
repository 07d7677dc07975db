"""What the portal exports as files: the tenant report as CSV, the audit trail as CSV.

Every CSV goes through :func:`csv_text`, so that what must hold for every exported cell
(DESIGN.md: a spreadsheet must not evaluate one) is written in one place.
"""

import csv
import io
import json
from collections.abc import Iterable, Sequence
from typing import Any

from django.db.models import QuerySet
from django.http import HttpResponse

from tenants.models import AuditEvent
from tenants.report import TenantReport

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
]
AUDIT_COLUMNS = ["at", "tenant_id", "tenant", "actor", "action", "target", "details"]

# A spreadsheet takes a cell that starts with one of these for a formula (OWASP's CSV
# injection list); spreadsheets that fold full-width forms to ASCII take those too.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def csv_text(
    header: Sequence[str], rows: Iterable[Sequence[object]], *, lineterminator: str = "\r\n"
) -> str:
    """``header`` and ``rows`` as CSV; ``None`` is an empty cell, and every text cell a
    spreadsheet would evaluate is neutralised (:func:`csv_cell`)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=lineterminator)
    writer.writerow([csv_cell(name) for name in header])
    writer.writerows([csv_cell(cell) for cell in row] for row in rows)
    return out.getvalue()


def csv_cell(value: object) -> object:
    """A text cell that a spreadsheet would evaluate, with a leading ``'`` that makes it
    text (DESIGN.md). Only strings: numbers (the report's ``users``) are data a
    spreadsheet should see as numbers, negative ones included, and cannot carry a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def report_csv(report: TenantReport) -> str:
    """The report with one row per grant; missing permissions are rows with verdict
    ``missing``. Lines end in a bare newline, as ``report --format csv`` prints them."""
    return csv_text(REPORT_COLUMNS, _report_rows(report), lineterminator="\n")


def _report_rows(report: TenantReport) -> Iterable[list[object]]:
    for app in report.applications:
        base = {
            "app_id": str(app.app_id),
            "display_name": app.display_name,
            "service_principal_id": str(app.service_principal_id),
        }
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


def _in_columns(row: dict[str, Any]) -> list[object]:
    return [row.get(column, "") for column in REPORT_COLUMNS]


def audit_csv(events: QuerySet[AuditEvent]) -> str:
    """One row per event; ``details`` as sorted JSON."""
    return csv_text(AUDIT_COLUMNS, (_audit_row(event) for event in events.iterator()))


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


def attachment(content: str, *, content_type: str, filename: str) -> HttpResponse:
    """``content`` as a download named ``filename``."""
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
