"""What people and the portal's processes meet while a part the portal needs is down."""

import pytest
from django.contrib.sessions.backends.base import UpdateError
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.db import OperationalError, connection
from django.test import RequestFactory
from django.views.defaults import server_error

from portal.middleware import SESSION_SEEN_KEY


def test_the_server_error_page_is_the_portals_own_and_needs_no_database(monkeypatch):
    def refused(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(connection, "cursor", refused)
    response = server_error(RequestFactory().get("/"))
    assert response.status_code == 500
    page = response.content.decode()
    assert "Permission Portal" in page and "unavailable for a moment" in page


@pytest.mark.django_db
def test_a_session_the_database_cannot_save_gets_the_unavailable_page_not_a_bad_request(
    alice_client, monkeypatch
):
    # A minute since the last request: this one writes the session down again.
    session = alice_client.session
    session[SESSION_SEEN_KEY] -= 120
    session.save()

    def refused(*args, **kwargs):
        raise OperationalError("the database system is shutting down")

    monkeypatch.setattr(Session, "save", refused)
    response = alice_client.get("/")

    assert response.status_code == 503
    assert "unavailable for a moment" in response.content.decode()


@pytest.mark.django_db
def test_a_session_deleted_by_a_concurrent_sign_out_is_still_a_bad_request(
    alice_client, monkeypatch
):
    session = alice_client.session
    session[SESSION_SEEN_KEY] -= 120
    session.save()

    def gone(self, must_create=False):
        # What Django's 400 is for: the row went while the request ran (a sign-out elsewhere).
        raise UpdateError

    monkeypatch.setattr(SessionStore, "save", gone)
    assert alice_client.get("/").status_code == 400
