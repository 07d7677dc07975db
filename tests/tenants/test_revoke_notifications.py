"""The e-mail to a tenant's admins about a reader's revoke request (issue 12, items 2 and
7): sent by a task once the request is committed, so a mail error or a hostile name never
aborts the request; to whoever is an admin when it goes out; with names made plain."""

import re
from smtplib import SMTPServerDisconnected

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend
from django.test import Client, TestCase
from django.urls import reverse

from permissions.models import MICROSOFT_GRAPH_APP_ID
from portal.models import User
from portal.text import HIDDEN_MARK
from tenants.models import RevokeRequest, ServicePrincipal
from tenants.revokes import revoke_request_approve
from tenants.tasks import notify_revoke_requests
from tests.factories import GrantFactory, ServicePrincipalFactory, SyncRunFactory
from tests.helpers import member

pytestmark = pytest.mark.django_db

HOSTILE = "Rooms\r\nBcc: evil@example.com\r\n\u202etxt.exe"


@pytest.fixture
def hostile_app(contoso) -> ServicePrincipal:
    run = SyncRunFactory(tenant=contoso, succeeded=True, last_good=True)
    sp = ServicePrincipalFactory(tenant=contoso, display_name=HOSTILE)
    GrantFactory(client=sp, value="Place.Read.All", first_seen_run=run)
    return sp


@pytest.fixture
def queued(monkeypatch) -> list[list[int]]:
    """The notification tasks sent, by their request ids (no worker runs here)."""
    sent: list[list[int]] = []
    monkeypatch.setattr("tenants.tasks.notify_revoke_requests.delay", sent.append)
    return sent


def request_revoke(user: User, sp: ServicePrincipal):
    """The reader's click, and its transaction's commit (which queues the e-mail)."""
    client = Client()
    client.force_login(user)
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(
            reverse("tenants:revoke-create", args=[sp.tenant.tenant_id, sp.app_id]),
            {
                "resource_app_id": MICROSOFT_GRAPH_APP_ID,
                "kind": "application",
                "value": "Place.Read.All",
                "consent": "admin",
                "reason": "Nothing here reads places.",
            },
            HTTP_HX_REQUEST="true",
        )


def test_a_readers_request_for_an_app_named_with_line_breaks_is_not_aborted(
    bob, alice, hostile_app, queued
):
    response = request_revoke(bob, hostile_app)

    revoke = RevokeRequest.objects.get()
    assert response.status_code == 200 and revoke.status == "pending_approval"
    # Nothing is mailed while the request is answered: a task does it once committed.
    assert mail.outbox == [] and queued == [[revoke.pk]]


def test_the_task_mails_the_admins_with_the_name_made_plain(bob, alice, hostile_app, queued):
    request_revoke(bob, hostile_app)

    assert notify_revoke_requests(list(RevokeRequest.objects.values_list("pk", flat=True))) == 1

    [message] = mail.outbox
    assert message.to == [alice.email]
    assert "\n" not in message.subject and "\u202e" not in message.subject
    assert message.subject.endswith(
        f"Place.Read.All of Rooms  Bcc: evil@example.com  {HIDDEN_MARK}txt.exe"
    )
    body = str(message.body)
    assert not re.search(r"^Bcc:", body, re.M) and "\u202e" not in body


def test_a_mail_server_error_fails_the_task_never_the_request(
    bob, alice, hostile_app, queued, monkeypatch
):
    request_revoke(bob, hostile_app)

    def refuse(self, messages):
        raise SMTPServerDisconnected("Connection unexpectedly closed")

    monkeypatch.setattr(EmailBackend, "send_messages", refuse)
    with pytest.raises(SMTPServerDisconnected):
        notify_revoke_requests(queued[0])
    assert RevokeRequest.objects.get().status == "pending_approval"


def test_admins_are_read_at_send_time(bob, alice, hostile_app, queued, contoso):
    member("carol", contoso, "Portal.Admin", email="carol@contoso.example")  # mailed instead
    request_revoke(bob, hostile_app)
    # Between the request and the e-mail, alice loses her role in Entra.
    User.objects.filter(pk=alice.pk).update(entra_roles=["Portal.Reader"])

    notify_revoke_requests(queued[0])

    assert [message.to for message in mail.outbox] == [["carol@contoso.example"]]


def test_no_mail_for_a_request_decided_before_it_went_out(bob, alice, hostile_app, queued):
    request_revoke(bob, hostile_app)
    revoke_request_approve(revoke=RevokeRequest.objects.get(), actor=alice)

    assert notify_revoke_requests(queued[0]) == 0
    assert mail.outbox == []
