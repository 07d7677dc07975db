"""Digest content, when one is sent, and that each is sent once."""

from datetime import UTC, datetime, timedelta
from smtplib import SMTPAuthenticationError, SMTPServerDisconnected

import pytest
from django.core.mail import EmailMultiAlternatives
from django.utils import timezone

from digests.content import digest_build
from digests.models import DigestDelivery, Subscription
from digests.services import digest_period, digest_send, subscription_set
from digests.tasks import send_digest, send_digests
from permissions.models import Feature
from tenants.models import FeatureSwitch
from tests.digests.helpers import CONTROL_PLANE, grant
from tests.factories import SyncRunFactory

pytestmark = pytest.mark.django_db


def html_of(message: EmailMultiAlternatives) -> str:
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html" and isinstance(html, str)
    return html


def test_a_digest_tells_what_changed_since_the_subscription(story, settings):
    settings.PORTAL_URL = "https://portal.example"

    digest = digest_build(
        tenant=story.tenant,
        floor=story.subscription.starts_after_run,
        up_to_run=story.failed.pk,
        previous_findings=None,
        since=story.subscription.started_at,
    )

    [app] = digest.changes
    assert app.application == "Rooms monitor"
    assert app.added == [f"{CONTROL_PLANE} (application)"]
    assert app.removed == ["Group.Read.All (application)"]
    assert (
        app.url
        == f"https://portal.example/tenants/{story.tenant.tenant_id}/applications/{story.rooms.app_id}/"
    )
    assert [item.text for item in digest.control_plane] == [f"{CONTROL_PLANE} (application)"]
    # Device.Read.All is needed by an enabled feature: not a revoke candidate.
    assert [(i.text, i.note) for i in digest.newly_revocable] == [
        (f"{CONTROL_PLANE} (application)", "unexplained")
    ]
    # Mail.Send was missing at sync 1 already, before alice subscribed: not news.
    assert digest.newly_missing == []
    assert [i.text for i in digest.regranted] == ["Files.Read.All (application)"]
    assert [i.text for i in digest.pending] == ["Sites.Read.All (application)"]
    assert digest.new_pending == 1
    assert [(i.text, i.note) for i in digest.failed_syncs] == [
        (f"Sync {story.failed.pk}", "Graph said no")
    ]
    assert digest.subject == (
        "Contoso: 1 added, 1 removed, 1 ControlPlane, 1 new revoke candidate, "
        "1 granted again, 1 to approve, 1 failed sync"
    )


def test_the_email_has_both_parts_links_and_one_click_unsubscribe(story, mailoutbox, settings):
    settings.PORTAL_URL = "https://portal.example"

    assert digest_send(subscription_id=story.subscription.pk, period="daily-1") == "sent"

    [message] = mailoutbox
    assert message.to == ["alice@contoso.onmicrosoft.com"]
    assert message.subject.startswith("[Permission Portal] Contoso: 1 added, 1 removed")
    app_url = f"https://portal.example/tenants/{story.tenant.tenant_id}/applications/{story.rooms.app_id}/"
    for body in (message.body, html_of(message)):
        assert app_url in body
        assert CONTROL_PLANE in body
        assert "Group.Read.All" in body
        assert (
            f"https://portal.example/tenants/{story.tenant.tenant_id}/runs/{story.failed.pk}/"
            in body
        )
    assert "<script" not in html_of(message) and "http://" not in html_of(message)
    unsubscribe = message.extra_headers["List-Unsubscribe"]
    assert unsubscribe.startswith("<https://portal.example/unsubscribe/")
    assert unsubscribe[1:-1] in message.body
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    delivery = DigestDelivery.objects.get()
    assert delivery.status == DigestDelivery.Status.SENT
    assert delivery.up_to_run == story.failed.pk
    assert delivery.message_id == message.extra_headers["Message-ID"]


def test_no_email_when_nothing_changed_since_the_last_one(story, mailoutbox):
    digest_send(subscription_id=story.subscription.pk, period="daily-1")

    outcome = digest_send(subscription_id=story.subscription.pk, period="daily-2")

    assert outcome == "nothing to say"
    assert len(mailoutbox) == 1
    assert not DigestDelivery.objects.filter(period="daily-2").exists()


def test_the_next_digest_tells_only_what_is_new(story, mailoutbox):
    digest_send(subscription_id=story.subscription.pk, period="daily-1")
    third = SyncRunFactory(tenant=story.tenant, succeeded=True)
    grant(story.rooms, "Chat.Read.All", third)

    digest_send(subscription_id=story.subscription.pk, period="daily-2")

    second = mailoutbox[1]
    assert second.subject == "[Permission Portal] Contoso: 1 added, 1 new revoke candidate"
    assert "Chat.Read.All" in second.body
    assert CONTROL_PLANE not in second.body.split("--")[0].replace("Contoso", "")
    assert "Sync " + str(story.failed.pk) not in second.body


def test_a_first_digest_starts_at_the_subscription_not_the_tenants_history(alice, story):
    # Subscribed after everything in the story: only what comes next is news.
    subscription_set(user=alice, tenant=story.tenant, frequency="off", all_quiet=False)
    late = subscription_set(user=alice, tenant=story.tenant, frequency="weekly", all_quiet=False)

    assert late.starts_after_run == story.failed.pk
    # The ControlPlane grant was unexplained and Mail.Send missing before: nothing is new.
    assert digest_send(subscription_id=late.pk, period="weekly-1") == "nothing to say"


def test_newly_unused_counts_only_what_became_unused_since_the_previous_digest(
    alice, story, mailoutbox
):
    # alice subscribes again after the whole story (off, then weekly: a new start).
    subscription_set(user=alice, tenant=story.tenant, frequency="off", all_quiet=False)
    late = subscription_set(user=alice, tenant=story.tenant, frequency="weekly", all_quiet=False)
    # Switching Devices off after subscribing makes Device.Read.All unused: that is news.
    devices = Feature.objects.get(application__app_id=story.rooms.app_id)
    FeatureSwitch.objects.create(tenant=story.tenant, feature=devices, enabled=False)

    assert digest_send(subscription_id=late.pk, period="weekly-1") == "sent"
    [first] = mailoutbox
    assert "1 new revoke candidate" in first.subject and "Device.Read.All" in first.body
    assert first.body.count(CONTROL_PLANE) == 0  # unexplained since sync 2: no news

    # The next sync adds an unexplained grant: the next digest names it, and only it.
    third = SyncRunFactory(tenant=story.tenant, succeeded=True)
    grant(story.rooms, "Chat.Read.All", third)
    assert digest_send(subscription_id=late.pk, period="weekly-2") == "sent"
    second = mailoutbox[1]
    assert second.subject == "[Permission Portal] Contoso: 1 added, 1 new revoke candidate"
    assert "Device.Read.All" not in second.body.split("--")[0]


@pytest.mark.parametrize("all_quiet", [True, False])
def test_a_quiet_week_is_mailed_only_to_who_asked(story, mailoutbox, all_quiet):
    subscription_set(
        user=story.subscription.user, tenant=story.tenant, frequency="weekly", all_quiet=all_quiet
    )
    digest_send(subscription_id=story.subscription.pk, period="weekly-1")

    digest_send(subscription_id=story.subscription.pk, period="weekly-2")

    quiet = [m for m in mailoutbox if "all quiet" in m.subject]
    assert len(quiet) == (1 if all_quiet else 0)
    if all_quiet:
        assert quiet[0].subject == "[Permission Portal] Contoso: all quiet"
        assert "All quiet" in quiet[0].body and "All quiet" in html_of(quiet[0])


def test_a_retried_task_sends_no_duplicate(story, mailoutbox):
    first = send_digest(story.subscription.pk, "daily-2025-06-02")
    again = send_digest(story.subscription.pk, "daily-2025-06-02")

    assert (first, again) == ("sent", "already sent")
    assert len(mailoutbox) == 1


def refuse(message: EmailMultiAlternatives, fail_silently: bool = False) -> int:
    """EmailMessage.send as it fails when the mail server hangs up."""
    raise SMTPServerDisconnected("Connection unexpectedly closed")


def test_a_failed_send_keeps_its_row_with_the_error_and_the_retry_sends_it(
    story, mailoutbox, monkeypatch
):
    with monkeypatch.context() as patch:
        patch.setattr(EmailMultiAlternatives, "send", refuse)
        with pytest.raises(SMTPServerDisconnected):
            digest_send(subscription_id=story.subscription.pk, period="daily-1")

    failed = DigestDelivery.objects.get()
    assert (failed.status, failed.attempts, failed.error) == (
        DigestDelivery.Status.FAILED,
        1,
        "SMTPServerDisconnected: Connection unexpectedly closed",
    )
    assert failed.sent_at is None and mailoutbox == []

    assert digest_send(subscription_id=story.subscription.pk, period="daily-1") == "sent"

    sent = DigestDelivery.objects.get()
    assert (sent.pk, sent.status, sent.attempts, sent.error) == (
        failed.pk,
        DigestDelivery.Status.SENT,
        2,
        "",
    )
    assert sent.sent_at is not None and sent.message_id
    assert len(mailoutbox) == 1
    # Sent is final: a duplicated or late task sends nothing again.
    assert digest_send(subscription_id=story.subscription.pk, period="daily-1") == "already sent"
    assert len(mailoutbox) == 1


def test_the_tasks_retries_claim_the_failed_row_until_the_email_goes_out(
    story, mailoutbox, monkeypatch
):
    send = EmailMultiAlternatives.send
    tries: list[EmailMultiAlternatives] = []

    def flaky(message: EmailMultiAlternatives, fail_silently: bool = False) -> int:
        tries.append(message)
        if len(tries) < 3:
            refuse(message)
        return send(message, fail_silently)

    monkeypatch.setattr(EmailMultiAlternatives, "send", flaky)

    # apply() runs the task and its retries at once, without their backoff.
    assert send_digest.apply((story.subscription.pk, "daily-1")).get() == "sent"

    delivery = DigestDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.error) == ("sent", 3, "")
    assert len(tries) == 3 and len(mailoutbox) == 1


def test_an_email_that_keeps_failing_is_given_up_after_its_attempts(story, mailoutbox, monkeypatch):
    with monkeypatch.context() as patch:
        patch.setattr(EmailMultiAlternatives, "send", refuse)
        result = send_digest.apply((story.subscription.pk, "daily-1"))

    assert isinstance(result.result, SMTPServerDisconnected)
    delivery = DigestDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", DigestDelivery.MAX_ATTEMPTS)
    # Even a later task does not try it again.
    result = digest_send(subscription_id=story.subscription.pk, period="daily-1")
    assert result == "failed too often"
    assert mailoutbox == []
    assert DigestDelivery.objects.get().attempts == DigestDelivery.MAX_ATTEMPTS


def test_the_error_kept_says_what_failed_without_secrets(story, settings, monkeypatch):
    settings.EMAIL_HOST_PASSWORD = "correct-horse-battery-staple"

    def refuse_login(message: EmailMultiAlternatives, fail_silently: bool = False) -> int:
        raise SMTPAuthenticationError(535, b"5.7.8 correct-horse-battery-staple: not accepted")

    monkeypatch.setattr(EmailMultiAlternatives, "send", refuse_login)
    with pytest.raises(SMTPAuthenticationError):
        digest_send(subscription_id=story.subscription.pk, period="daily-1")

    error = DigestDelivery.objects.get().error
    assert error.startswith("SMTPAuthenticationError: (535, ")
    assert "not accepted" in error and "correct-horse" not in error


def test_a_claim_of_a_worker_that_died_is_taken_over(story, mailoutbox, settings):
    DigestDelivery.objects.create(
        subscription=story.subscription,
        kind="digest",
        period="daily-1",
        claimed_at=timezone.now(),
    )
    assert digest_send(subscription_id=story.subscription.pk, period="daily-1") == "already sent"

    DigestDelivery.objects.update(
        claimed_at=timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 1)
    )

    assert digest_send(subscription_id=story.subscription.pk, period="daily-1") == "sent"
    assert len(mailoutbox) == 1


def test_beat_sends_the_digests_of_its_frequency(story, alice, eager, mailoutbox):
    subscription_set(user=alice, tenant=story.tenant, frequency="daily", all_quiet=False)

    assert send_digests("weekly") == 0
    assert send_digests("daily") == 1
    send_digests("daily")  # beat fired twice, or the task was retried

    assert len(mailoutbox) == 1
    assert DigestDelivery.objects.get().period == digest_period("daily")


def test_no_email_to_who_unsubscribed_or_lost_their_role(story, mailoutbox):
    alice = story.subscription.user
    alice.entra_roles = []
    alice.save()
    assert digest_send(subscription_id=story.subscription.pk, period="daily-1") == "no recipient"
    Subscription.objects.update(frequency="off")
    alice.entra_roles = ["Portal.Reader"]
    alice.save()
    assert digest_send(subscription_id=story.subscription.pk, period="daily-1") == "no recipient"
    assert mailoutbox == []


def test_periods_are_days_and_iso_weeks():
    monday = datetime(2025, 6, 2, 7, tzinfo=UTC)
    assert digest_period("daily", monday) == "daily-2025-06-02"
    assert digest_period("weekly", monday) == "weekly-2025-W23"
