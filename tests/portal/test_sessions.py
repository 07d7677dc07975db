"""Sessions last at most SESSION_MAX_HOURS (12) and end after SESSION_IDLE_MINUTES (120)
without a request: roles are read at sign-in, so a session must not outlive them for long."""

import time

import pytest
from django.urls import reverse

from portal.middleware import SESSION_SEEN_KEY, SESSION_STARTED_KEY
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

HOUR = 3600


@pytest.fixture
def signed_in(client):
    user = UserFactory()
    client.force_login(user)
    return client


def shift(client, *, started: float = 0, seen: float = 0) -> None:
    """Moves the session's sign-in and last request that many seconds into the past."""
    session = client.session
    session[SESSION_STARTED_KEY] -= started
    session[SESSION_SEEN_KEY] -= seen
    session.save()


def signed_out(client) -> bool:
    return "_auth_user_id" not in client.session


def test_sessions_last_twelve_hours_and_idle_out_after_two_by_default(settings):
    assert settings.SESSION_MAX_HOURS == 12 and settings.SESSION_COOKIE_AGE == 12 * HOUR
    assert settings.SESSION_IDLE_MINUTES == 120


def test_signing_in_starts_both_clocks(signed_in):
    session = signed_in.session

    assert time.time() - 5 < session[SESSION_STARTED_KEY] <= time.time()
    assert session[SESSION_SEEN_KEY] == session[SESSION_STARTED_KEY]


def test_a_busy_session_still_ends_twelve_hours_after_sign_in(signed_in):
    shift(signed_in, started=12 * HOUR - 60)
    assert signed_in.get(reverse("tenants:dashboard")).status_code == 200

    shift(signed_in, started=61)
    response = signed_in.get(reverse("tenants:dashboard"))

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('account_login')}?next=/"
    assert signed_out(signed_in)


def test_two_hours_without_a_request_end_the_session(signed_in):
    shift(signed_in, started=2 * HOUR, seen=2 * HOUR - 60)
    assert signed_in.get(reverse("tenants:dashboard")).status_code == 200

    shift(signed_in, started=2 * HOUR, seen=2 * HOUR + 1)
    response = signed_in.get(reverse("permissions:catalog"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
    assert signed_out(signed_in)
    assert "Your session has ended" in signed_in.get(response["Location"]).content.decode()


def test_each_request_restarts_the_idle_clock(signed_in):
    shift(signed_in, seen=HOUR)

    signed_in.get(reverse("tenants:dashboard"))

    assert time.time() - signed_in.session[SESSION_SEEN_KEY] < 5


def test_an_htmx_request_of_an_ended_session_sends_the_whole_page_to_sign_in(signed_in):
    shift(signed_in, seen=3 * HOUR)

    response = signed_in.get(
        reverse("permissions:catalog"),
        HTTP_HX_REQUEST="true",
        HTTP_HX_CURRENT_URL="http://testserver/catalog/?q=mail",
    )

    assert response["HX-Redirect"] == f"{reverse('account_login')}?next=/catalog/%3Fq%3Dmail"
    assert signed_out(signed_in)


def test_the_limits_are_settings(signed_in, settings):
    settings.SESSION_IDLE_MINUTES = 10
    shift(signed_in, seen=11 * 60)

    assert signed_in.get(reverse("tenants:dashboard")).status_code == 302
