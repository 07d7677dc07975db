"""A digest through a real SMTP server on loopback, parsed as a mail client would."""

import socket
from collections.abc import Iterator
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Sink
from aiosmtpd.smtp import SMTP, Envelope, Session

from digests.services import digest_send

pytestmark = pytest.mark.django_db


class Keep(Sink):
    """Keeps what arrives: the envelope's recipients and the raw message."""

    def __init__(self) -> None:
        self.received: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.received.append((list(envelope.rcpt_tos), envelope.original_content))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_server(settings) -> Iterator[Keep]:
    handler = Keep()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = controller.port
    settings.EMAIL_USE_TLS = False
    try:
        yield handler
    finally:
        controller.stop()


def test_a_digest_arrives_over_smtp_with_both_parts(story, smtp_server, settings):
    settings.PORTAL_URL = "https://portal.example"

    assert digest_send(subscription_id=story.subscription.pk, period="daily-1") == "sent"

    [(recipients, raw)] = smtp_server.received
    assert recipients == ["alice@contoso.onmicrosoft.com"]
    message = message_from_bytes(raw, policy=policy.default)
    assert message["Subject"].startswith("[Permission Portal] Contoso: 1 added, 1 removed")
    # Folded onto its own line (the URL is long): whitespace around it is the folding's.
    unsubscribe = str(message["List-Unsubscribe"]).strip()
    assert unsubscribe.startswith("<https://portal.example/unsubscribe/")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    for body in (text, html):
        assert "RoleManagement.ReadWrite.Directory" in body
        assert unsubscribe[1:-1] in body
    assert "<table" in html and "<table" not in text
