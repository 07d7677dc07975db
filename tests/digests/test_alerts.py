"""The ControlPlane alert and after-sync digests, queued by each sync that succeeds."""

from smtplib import SMTPRecipientsRefused
from types import SimpleNamespace
from typing import cast

import pytest
from django.core.mail import EmailMultiAlternatives

from digests.models import DigestDelivery, Subscription
from digests.services import alert_send, subscription_set
from digests.tasks import after_sync
from tenants.graph import GraphClient
from tenants.sync import Snapshot, apply_snapshot
from tests.digests.helpers import CONTROL_PLANE, grant
from tests.factories import SyncRunFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_a_new_controlplane_grant_alerts_every_subscriber_at_once(story, bob, eager, mailoutbox):
    subscription_set(user=bob, tenant=story.tenant, frequency="weekly", all_quiet=False)
    another_reader = UserFactory(
        email="frank@contoso.onmicrosoft.com",
        entra_tenant_id=str(story.tenant.tenant_id),
        entra_roles=["Portal.Reader"],
    )
    subscription_set(user=another_reader, tenant=story.tenant, frequency="off", all_quiet=False)

    after_sync(story.second.pk)
    after_sync(story.second.pk)  # a redelivered task

    alerts = sorted(mailoutbox, key=lambda m: m.to)
    assert [m.to for m in alerts] == [
        ["alice@contoso.onmicrosoft.com"],
        ["bob@contoso.onmicrosoft.com"],
    ]
    for alert in alerts:
        assert (
            alert.subject
            == f"[Permission Portal] Contoso: ControlPlane permission granted: {CONTROL_PLANE}"
        )
        assert f"/tenants/{story.tenant.tenant_id}/applications/{story.rooms.app_id}/" in alert.body
        assert "Rooms monitor" in alert.alternatives[0][0]
        assert alert.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_a_refused_alert_is_kept_as_failed_and_sent_by_the_retry(story, mailoutbox, monkeypatch):
    def refuse(message: EmailMultiAlternatives, fail_silently: bool = False) -> int:
        raise SMTPRecipientsRefused({"alice@contoso.onmicrosoft.com": (450, b"mailbox busy")})

    with monkeypatch.context() as patch:
        patch.setattr(EmailMultiAlternatives, "send", refuse)
        with pytest.raises(SMTPRecipientsRefused):
            alert_send(subscription_id=story.subscription.pk, run_id=story.second.pk)

    failed = DigestDelivery.objects.get(kind=DigestDelivery.Kind.ALERT)
    assert (failed.status, failed.attempts) == ("failed", 1)
    assert failed.error.startswith("SMTPRecipientsRefused: ") and "mailbox busy" in failed.error

    assert alert_send(subscription_id=story.subscription.pk, run_id=story.second.pk) == "sent"
    assert alert_send(subscription_id=story.subscription.pk, run_id=story.second.pk) == (
        "already sent"
    )
    sent = DigestDelivery.objects.get(kind=DigestDelivery.Kind.ALERT)
    assert (sent.pk, sent.status, sent.attempts) == (failed.pk, "sent", 2)
    assert len(mailoutbox) == 1


def test_a_sync_without_controlplane_additions_alerts_nobody(story, eager, mailoutbox):
    quiet = SyncRunFactory(tenant=story.tenant, succeeded=True)
    grant(story.rooms, "Chat.Read.All", quiet)

    after_sync(quiet.pk)

    assert mailoutbox == []


def test_after_sync_subscribers_get_a_digest_of_the_sync(story, eager, mailoutbox):
    Subscription.objects.filter(pk=story.subscription.pk).update(frequency="after_sync")
    third = SyncRunFactory(tenant=story.tenant, succeeded=True)
    grant(story.rooms, "Chat.Read.All", third)

    after_sync(third.pk)
    after_sync(third.pk)

    [digest] = mailoutbox
    assert "Chat.Read.All" in digest.body
    assert digest.subject.startswith("[Permission Portal] Contoso: 2 added")


def test_a_sync_that_succeeds_queues_them_once_committed(
    story, monkeypatch, django_capture_on_commit_callbacks
):
    queued: list[int] = []
    monkeypatch.setattr(after_sync, "delay", queued.append)
    run = SyncRunFactory(tenant=story.tenant, running=True)
    client = SimpleNamespace(
        stats=SimpleNamespace(requests=0, throttled_waits=0, throttled_seconds=0.0)
    )

    with django_capture_on_commit_callbacks(execute=True):
        apply_snapshot(run=run, snapshot=Snapshot(), client=cast(GraphClient, client))
        assert queued == []

    assert queued == [run.pk]
