"""What people and the portal's processes meet while a part the portal needs is down."""

from django.db import OperationalError, connection
from django.test import RequestFactory
from django.views.defaults import server_error


def test_the_server_error_page_is_the_portals_own_and_needs_no_database(monkeypatch):
    def refused(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(connection, "cursor", refused)
    response = server_error(RequestFactory().get("/"))
    assert response.status_code == 500
    page = response.content.decode()
    assert "Permission Portal" in page and "unavailable for a moment" in page
