"""The subscriptions page, the signed unsubscribe link, and the staff's outbox."""

from smtplib import SMTPServerDisconnected

import pytest
from django.core.mail import EmailMultiAlternatives
from django.test import Client
from django.urls import reverse

from digests.models import DigestDelivery, Subscription
from digests.services import digest_send, unsubscribe_token
from tests.factories import UserFactory
from tests.helpers import signed_in

pytestmark = pytest.mark.django_db


def test_the_subscriptions_page_lists_only_the_users_tenants(story, alice, fabrikam):
    page = signed_in(alice).get(reverse("digests:subscriptions")).content.decode()

    assert "Contoso" in page and "Fabrikam" not in page
    assert '<option value="daily" selected>' in page


def test_a_user_chooses_their_emails_per_tenant(story, alice):
    url = reverse("digests:subscription-save", args=[story.tenant.tenant_id])

    response = signed_in(alice).post(url, {"frequency": "weekly", "all_quiet": "on"})

    assert response.status_code == 302
    story.subscription.refresh_from_db()
    assert (story.subscription.frequency, story.subscription.all_quiet) == ("weekly", True)


def test_nobody_subscribes_to_a_tenant_they_do_not_see(story, charlie):
    url = reverse("digests:subscription-save", args=[story.tenant.tenant_id])

    response = signed_in(charlie).post(url, {"frequency": "daily"})

    assert response.status_code == 404
    assert not Subscription.objects.filter(user=charlie).exists()


def test_the_unsubscribe_link_asks_then_unsubscribes_signed_out(story):
    url = reverse("digests:unsubscribe", args=[unsubscribe_token(story.subscription)])

    asked = Client().get(url)
    story.subscription.refresh_from_db()
    assert asked.status_code == 200 and story.subscription.frequency == "daily"
    assert b"Unsubscribe</button>" in asked.content

    done = Client().post(url)

    assert done.status_code == 200
    story.subscription.refresh_from_db()
    assert story.subscription.frequency == "off"


def test_a_mail_clients_one_click_post_needs_no_csrf_token(story):
    url = reverse("digests:unsubscribe", args=[unsubscribe_token(story.subscription)])

    response = Client(enforce_csrf_checks=True).post(
        url, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code == 200
    story.subscription.refresh_from_db()
    assert story.subscription.frequency == "off"


def test_a_tampered_unsubscribe_link_is_refused(story, alice, fabrikam):
    other = Subscription.objects.create(
        user=alice,
        tenant=fabrikam,
        frequency="daily",
        started_at=story.subscription.started_at,
    )
    token = unsubscribe_token(story.subscription)
    value, signature = token.rsplit(":", 1)
    # The other subscription's id with this one's signature; and a signature changed.
    forged = [
        unsubscribe_token(other).rsplit(":", 1)[0] + ":" + signature,
        value + ":" + "x" * len(signature),
    ]

    for token in forged:
        response = Client().post(reverse("digests:unsubscribe", args=[token]))
        assert response.status_code == 400

    assert set(Subscription.objects.values_list("frequency", flat=True)) == {"daily"}


@pytest.fixture
def kept(settings, story):
    """The digest, as `make run` keeps it: in the outbox folder."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    digest_send(subscription_id=story.subscription.pk, period="daily-1")


def test_the_outbox_is_for_staff_only(kept, alice):
    for client in (Client(), signed_in(alice)):
        response = client.get(reverse("digests:outbox"))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))


def test_staff_read_kept_emails_in_the_outbox(kept):
    staff = signed_in(UserFactory(is_staff=True))

    listing = staff.get(reverse("digests:outbox"))
    [message] = listing.context["outbox_messages"]
    page = staff.get(reverse("digests:outbox-message", args=[message.key]))
    html = staff.get(reverse("digests:outbox-html", args=[message.key]))

    assert "Contoso: 1 added, 1 removed" in listing.content.decode()
    assert message.to == "alice@contoso.onmicrosoft.com"
    assert "Rooms monitor" in page.content.decode()
    assert b"<iframe" in page.content and b"sandbox" in page.content
    assert html["Content-Security-Policy"].startswith("sandbox")
    assert "default-src 'none'" in html["Content-Security-Policy"]
    assert b"Rooms monitor" in html.content
    # A key names a file of the outbox folder, nothing else.
    assert staff.get("/outbox/..%2F..%2Fportal.sqlite3_0/").status_code == 404
    assert (
        staff.get(reverse("digests:outbox-message", args=["20250101-000000-1_9"])).status_code
        == 404
    )


def test_staff_see_failed_emails_with_their_error_in_the_outbox(story, monkeypatch):
    def refuse(message: EmailMultiAlternatives, fail_silently: bool = False) -> int:
        raise SMTPServerDisconnected("Connection unexpectedly closed")

    monkeypatch.setattr(EmailMultiAlternatives, "send", refuse)
    with pytest.raises(SMTPServerDisconnected):
        digest_send(subscription_id=story.subscription.pk, period="daily-1")
    staff = signed_in(UserFactory(is_staff=True))

    # Whatever the backend: the failure is a row, not a kept file.
    response = staff.get(reverse("digests:outbox"))

    [failed] = response.context["failed"]
    assert (failed.status, failed.attempts) == (DigestDelivery.Status.FAILED, 1)
    page = response.content.decode()
    assert "SMTPServerDisconnected: Connection unexpectedly closed" in page
    assert "alice@contoso.onmicrosoft.com" in page and "daily-1" in page and "Contoso" in page
