"""Django admin sign-ins, and every failed sign-in (a password's or Entra's), are in the
audit trail and the log: who, from where, why; never a password."""

import json
import logging

import pytest
from django.urls import reverse

from tenants.models import AuditEvent
from tests.portal.helpers import ROOT_PASSWORD as PASSWORD

pytestmark = pytest.mark.django_db

WRONG = "hunter2-not-the-password"
ADDRESS = "203.0.113.50"


def sign_in(client, username: str, password: str):
    return client.post(
        reverse("admin:login"),
        {"username": username, "password": password, "next": "/admin/"},
        REMOTE_ADDR=ADDRESS,
    )


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def sign_in_lines(caplog) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "portal.signins"]


def test_a_django_admin_sign_in_is_audited_and_logged(client, root, caplog):
    caplog.set_level(logging.INFO)

    assert sign_in(client, "root", PASSWORD).status_code == 302

    (event,) = events(AuditEvent.Action.STAFF_SIGNED_IN)
    assert (event.tenant, event.actor, event.target) == (None, root, "root")
    assert event.details == {"client": ADDRESS}
    (line,) = sign_in_lines(caplog)
    assert line.levelno == logging.INFO
    assert line.getMessage() == f"Django admin sign-in: 'root' from {ADDRESS}"
    assert PASSWORD not in caplog.text


def test_a_wrong_admin_password_is_audited_and_logged_without_the_password(client, root, caplog):
    sign_in(client, "root", WRONG)

    (event,) = events(AuditEvent.Action.SIGN_IN_FAILED)
    assert (event.tenant, event.actor, event.target) == (None, None, "root")
    assert event.details == {
        "via": "Django admin",
        "client": ADDRESS,
        "reason": "wrong user name or password",
    }
    (line,) = sign_in_lines(caplog)
    assert line.levelno == logging.WARNING
    assert line.getMessage() == (
        f"Django admin sign-in failed for 'root' from {ADDRESS}: wrong user name or password"
    )
    assert WRONG not in caplog.text and WRONG not in json.dumps(event.details)


def test_a_user_name_that_could_forge_log_lines_is_quoted(client, caplog):
    sign_in(client, "root\nINFO forged line", WRONG)

    assert "\n" not in sign_in_lines(caplog)[0].getMessage()


def test_the_lock_and_the_attempts_while_locked_are_audited(client, root, settings):
    settings.ADMIN_LOCKOUT_FAILURES = 2
    for _ in range(2):
        sign_in(client, "root", WRONG)

    sign_in(client, "root", PASSWORD)

    (locked,) = events(AuditEvent.Action.SIGN_IN_LOCKED)
    assert locked.target == "root"
    assert locked.details == {"client": ADDRESS, "failures": 2, "minutes": 15}
    reasons = [event.details["reason"] for event in events(AuditEvent.Action.SIGN_IN_FAILED)]
    assert reasons == ["wrong user name or password"] * 2 + ["user name locked"]
    assert events(AuditEvent.Action.STAFF_SIGNED_IN) == []


def test_a_failed_entra_sign_in_is_audited_and_logged(client, caplog):
    client.get(reverse("microsoft_callback"), {"error": "access_denied"}, REMOTE_ADDR=ADDRESS)

    (event,) = events(AuditEvent.Action.SIGN_IN_FAILED)
    assert event.details["via"] == "Entra"
    assert event.details["client"] == ADDRESS
    assert event.details["reason"]  # allauth's error code: no state for this callback
    assert [line.getMessage() for line in sign_in_lines(caplog)] == [
        f"Entra sign-in failed from {ADDRESS}: {event.details['reason']}"
    ]


def test_superusers_find_portal_wide_sign_in_events_in_the_audit_trail(client, root):
    sign_in(client, "root", WRONG)
    sign_in(client, "root", PASSWORD)

    page = client.get(reverse("tenants:audit-all")).content.decode()

    assert "Sign-in failed" in page and "Signed in to Django admin" in page
