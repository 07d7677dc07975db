"""The report is read a chunk of applications at a time from a server-side cursor: the
same report whatever the chunk size, a fixed number of queries per chunk, and an export
that yields its first bytes before the last application has been read."""

import json

import pytest
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext

from benchmarks.pages import large_tenant_create
from tenants import exports
from tenants.report import application_reports, tenant_report

pytestmark = pytest.mark.django_db


@pytest.fixture
def tenant():
    return large_tenant_create(applications=12, grants_per_application=8)


def queries_of(tenant, chunk_size: int) -> int:
    with CaptureQueriesContext(connection) as captured:
        list(application_reports(tenant=tenant, chunk_size=chunk_size))
    return len(captured)


def test_the_report_is_the_same_whatever_the_chunk_size(tenant):
    whole = list(application_reports(tenant=tenant, chunk_size=100))
    assert len(whole) == 12
    for chunk_size in (1, 5, 12):
        assert list(application_reports(tenant=tenant, chunk_size=chunk_size)) == whole


def test_each_chunk_costs_a_fixed_number_of_queries(tenant):
    one, two, four = (queries_of(tenant, size) for size in (12, 6, 3))
    per_chunk = two - one
    assert per_chunk > 0 and four - two == 2 * per_chunk
    # Grants, manifests, switches and features, API calls (2), tiers, justifications,
    # credentials.
    assert per_chunk <= 9


def test_the_json_export_starts_before_the_applications_are_read(tenant):
    chunks = exports.tenant_report_json(tenant=tenant)
    with CaptureQueriesContext(connection) as captured:
        first = next(chunks)
    assert first == "{\n" and not captured.captured_queries
    body = first + "".join(chunks)
    assert body == json.dumps(tenant_report(tenant=tenant).as_json(), indent=2)


def test_the_csv_export_has_a_row_per_grant_of_every_chunk(tenant):
    text = "".join(exports.tenant_report_csv(tenant=tenant))
    report = tenant_report(tenant=tenant)
    rows = sum(len(app.grants) + len(app.missing) for app in report.applications)
    assert len(text.splitlines()) == 1 + rows


def test_a_download_that_fails_before_its_first_byte_fails_in_the_view():
    # There the portal's error page answers; once bytes are sent, a failure can only cut
    # the download off, which the client sees as failed (never as a complete file).
    def chunks():
        raise OperationalError("the database system is shutting down")
        yield "never"

    with pytest.raises(OperationalError):
        exports.streamed_attachment(chunks(), content_type="text/csv", filename="report.csv")


def test_a_download_sends_every_chunk_the_first_included():
    response = exports.streamed_attachment(
        iter(["a,b\r\n", "1,2\r\n"]), content_type="text/csv", filename="report.csv"
    )
    assert response.getvalue() == b"a,b\r\n1,2\r\n"
    assert response["Content-Disposition"] == 'attachment; filename="report.csv"'
