"""Names from Graph in e-mails (issue 12, item 7): CR/LF in a name neither aborts a send
("Header values can't contain newlines") nor injects a line into a text body, and bidi
or zero-width characters reach no subject or text body."""

import re

import pytest

from digests.services import alert_send, digest_send
from portal.text import HIDDEN_MARK
from tenants.models import ServicePrincipal, Tenant

pytestmark = pytest.mark.django_db

INJECTED = "\r\nBcc: evil@example.com\r\n"


def hidden(text: str) -> list[str]:
    return re.findall(r"[\x00-\x08\x0b-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069]", text)


def test_a_digest_of_an_app_named_with_line_breaks_injects_no_line(story, mailoutbox):
    ServicePrincipal.objects.filter(pk=story.rooms.pk).update(
        display_name=f"Rooms monitor{INJECTED}\u202etxt.exe"
    )
    Tenant.objects.filter(pk=story.tenant.pk).update(name=f"Contoso{INJECTED}")

    assert digest_send(subscription_id=story.subscription.pk, period="daily-1") == "sent"

    [message] = mailoutbox
    assert "\n" not in message.subject and "\r" not in message.subject
    assert message.subject.startswith("[Permission Portal] Contoso  Bcc: evil@example.com")
    assert not re.search(r"^Bcc:", message.body, re.M)
    assert f"Rooms monitor  Bcc: evil@example.com  {HIDDEN_MARK}txt.exe" in message.body
    assert hidden(message.subject) == [] and hidden(message.body) == []
    assert "\u202e" not in message.alternatives[0][0]


def test_an_alert_in_a_tenant_named_with_line_breaks_still_goes_out(story, mailoutbox):
    Tenant.objects.filter(pk=story.tenant.pk).update(name=f"Contoso{INJECTED}\u200b")

    assert alert_send(subscription_id=story.subscription.pk, run_id=story.second.pk) == "sent"

    [message] = mailoutbox
    assert "\n" not in message.subject and hidden(message.subject) == []
    assert not re.search(r"^Bcc:", message.body, re.M) and hidden(message.body) == []
