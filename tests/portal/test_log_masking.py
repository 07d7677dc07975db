"""One-click unsubscribe links carry their credential in the path: request logs show the
path with the token masked (`/unsubscribe/[redacted]/`), whichever logger writes it."""

import logging

import pytest

from digests.models import Subscription
from digests.services import unsubscribe_token
from portal.logging import REDACTED, redact

pytestmark = pytest.mark.django_db


@pytest.fixture
def token() -> str:
    # Signed like a real link's (for a subscription since deleted: the page answers 400).
    return unsubscribe_token(Subscription(pk=41))


def test_the_request_lines_of_an_unsubscribe_link_hide_its_token(client, caplog, token):
    caplog.set_level(logging.INFO)

    response = client.get(f"/unsubscribe/{token}/")

    assert response.status_code == 400
    request_lines = [r.getMessage() for r in caplog.records if r.name == "portal.request"]
    assert request_lines == [f"GET /unsubscribe/{REDACTED}/ 400 " + request_lines[0].split()[-1]]
    # Django's own "Bad Request: <path>" line too.
    assert any(r.name == "django.request" for r in caplog.records)
    assert token not in caplog.text and token.split(":")[-1] not in caplog.text


def test_the_one_click_post_is_masked_too(client, caplog, token):
    caplog.set_level(logging.INFO)

    client.post(f"/unsubscribe/{token}/", {"List-Unsubscribe": "One-Click"})

    assert token not in caplog.text


def test_the_development_servers_access_lines_are_masked(token):
    # runserver (`make run`) logs every request line through django.server.
    handlers = logging.getLogger("django.server").handlers
    record = logging.LogRecord(
        "django.server",
        logging.INFO,
        __file__,
        1,
        '"%s" %s %s',
        (f"GET /unsubscribe/{token}/ HTTP/1.1", "200", "1234"),
        None,
    )

    assert handlers and all(handler.filter(record) for handler in handlers)
    assert record.getMessage() == f'"GET /unsubscribe/{REDACTED}/ HTTP/1.1" 200 1234'


def test_redaction_masks_an_unsubscribe_link_anywhere_in_a_line(token):
    line = f"sent https://portal.example.com/unsubscribe/{token}/ to alice"

    assert redact(line) == f"sent https://portal.example.com/unsubscribe/{REDACTED}/ to alice"
