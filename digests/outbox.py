"""The Outbox page's data: the e-mails that failed to go out (rows, whatever the backend:
digests and alerts, and revoke decisions to their requesters),
and those Django's file-based backend kept in EMAIL_FILE_PATH (`make run`'s outbox).

The backend appends each message to a ``<timestamp>-<id>.log`` file, followed by a line
of 79 dashes; one connection writes one file, so a file may hold several messages.
"""

import re
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from pathlib import Path

from django.conf import settings
from django.db.models import QuerySet

from digests.models import DigestDelivery
from tenants.models import RevokeRequest

SEPARATOR = b"\n" + b"-" * 79 + b"\n"
# "<file name without .log>_<position in the file>": also what stops a key from naming
# anything outside the outbox folder.
KEY = re.compile(r"^(?P<stem>[0-9]{8}-[0-9]{6}-[0-9]+)_(?P<position>[0-9]+)$")


@dataclass(frozen=True)
class OutboxMessage:
    key: str
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"] or "")

    @property
    def to(self) -> str:
        return str(self.message["To"] or "")

    @property
    def date(self) -> datetime | None:
        raw = self.message["Date"]
        return parsedate_to_datetime(str(raw)) if raw else None

    @property
    def text(self) -> str | None:
        return self._body("plain")

    @property
    def html(self) -> str | None:
        return self._body("html")

    def _body(self, subtype: str) -> str | None:
        """The message's ``text/<subtype>`` body, decoded; None when it has none."""
        body = self.message.get_body(preferencelist=(subtype,))
        return body.get_content() if body is not None else None


# The outbox is not an archive: the newest failures are the ones to act on.
FAILED_SHOWN = 100


def failed_deliveries() -> QuerySet[DigestDelivery]:
    """The e-mails whose last attempt failed, newest first, with whom they were for."""
    failed = DigestDelivery.objects.filter(status=DigestDelivery.Status.FAILED)
    return failed.select_related("subscription__user", "subscription__tenant").order_by(
        "-claimed_at"
    )[:FAILED_SHOWN]


def failed_decision_mails() -> QuerySet[RevokeRequest]:
    """The revoke requests whose decision e-mail to their requester failed and is not sent
    yet (tenants.notifications keeps the failure on the request), newest first."""
    failed = RevokeRequest.objects.exclude(decision_mail_error="").filter(
        decision_mailed_at__isnull=True
    )
    return failed.select_related("tenant", "client", "requested_by").order_by("-decided_at")[
        :FAILED_SHOWN
    ]


def outbox_enabled() -> bool:
    return settings.EMAIL_BACKEND == "django.core.mail.backends.filebased.EmailBackend"


def outbox_messages() -> list[OutboxMessage]:
    """Every kept message, newest first."""
    folder = Path(settings.EMAIL_FILE_PATH)
    messages = [
        message
        for path in folder.glob("*.log")
        if KEY.match(f"{path.stem}_0")
        for message in _read(path)
    ]
    return sorted(messages, key=lambda m: (m.date is not None, m.date, m.key), reverse=True)


def outbox_message(key: str) -> OutboxMessage | None:
    match = KEY.match(key)
    if match is None:
        return None
    path = Path(settings.EMAIL_FILE_PATH) / f"{match['stem']}.log"
    if not path.is_file():
        return None
    messages = _read(path)
    position = int(match["position"])
    return messages[position] if position < len(messages) else None


def _read(path: Path) -> list[OutboxMessage]:
    parser = BytesParser(policy=policy.default)
    chunks = [chunk for chunk in path.read_bytes().split(SEPARATOR) if chunk.strip()]
    return [
        OutboxMessage(key=f"{path.stem}_{position}", message=parser.parsebytes(chunk))
        for position, chunk in enumerate(chunks)
    ]
