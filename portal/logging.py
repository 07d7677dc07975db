"""Log records with request and run ids, as JSON lines or text, with secrets redacted.

``portal.middleware.RequestIdMiddleware`` sets the request id and the signed-in user's id;
the sync and revoke tasks set the run id (``run_context``). ``ContextFilter`` copies them
onto every record, ``RedactSecretsFilter`` removes anything that looks like a credential
(tokens travel in Graph errors, OAuth callbacks and exception texts), and ``JsonFormatter``
writes one JSON object per line. Both filters sit on the handler, so records of every
logger, the portal's or a library's, pass through them.
"""

import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
user_id_var: ContextVar[int | None] = ContextVar("user_id", default=None)
run_id_var: ContextVar[str | None] = ContextVar("run_id", default=None)

REDACTED = "[redacted]"
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # Authorization headers.
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), rf"\1 {REDACTED}"),
    # JWTs (access, id and assertion tokens): base64url JSON headers start with eyJ.
    (re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*\.?[A-Za-z0-9_-]*"), REDACTED),
    # Form, query-string and JSON fields that carry credentials.
    (
        re.compile(
            r"(?i)\b(client_secret|client_assertion|access_token|refresh_token|id_token|"
            r"password|secret)(['\"]?\s*[=:]\s*['\"]?)([^\s&\"',]+)"
        ),
        rf"\1\2{REDACTED}",
    ),
    # OAuth authorization codes in callback URLs (not Graph's error "code", which helps).
    (re.compile(r"\b(code=)[^\s&\"']+"), rf"\1{REDACTED}"),
    # One-click unsubscribe links: the signed token in the path is the credential.
    (re.compile(r"(/unsubscribe/)[^/\s?#\"'&]+"), rf"\1{REDACTED}"),
    # Passwords in URLs (postgres://user:password@host, redis://:password@host).
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/\s@]*:)[^@\s/]+@"), rf"\1{REDACTED}@"),
    # PEM private keys.
    (
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
        REDACTED,
    ),
]
# Shorter values would redact ordinary words; real secrets are longer.
_MIN_SECRET_LENGTH = 8
_SECRET_SETTINGS = (
    "PORTAL_CLIENT_SECRET",
    "PORTAL_CLIENT_PRIVATE_KEY",
    "SECRET_KEY",
    "EMAIL_HOST_PASSWORD",
)


def redact(text: str) -> str:
    """``text`` without the configured secrets and anything shaped like a credential."""
    for secret in _configured_secrets():
        text = text.replace(secret, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


# Enough for a mail server's reply; the rest of a long traceback text is noise where kept.
FAILURE_MAX_LENGTH = 1000


def failure_text(exc: BaseException) -> str:
    """An exception as a row keeps it for people to read: its class and message, without
    credentials (a mail server may echo what it was sent)."""
    return redact(f"{exc.__class__.__name__}: {exc}")[:FAILURE_MAX_LENGTH]


def _configured_secrets() -> list[str]:
    from django.conf import settings

    if not settings.configured:
        return []
    values = (str(getattr(settings, name, "") or "") for name in _SECRET_SETTINGS)
    return [value for value in values if len(value) >= _MIN_SECRET_LENGTH]


@contextmanager
def run_context(run_id: str) -> Iterator[None]:
    """Tags every record logged inside with ``run_id`` (a sync or revoke run)."""
    token = run_id_var.set(run_id)
    try:
        yield
    finally:
        run_id_var.reset(token)


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.run_id = run_id_var.get()
        record.user_id = user_id_var.get()
        return True


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text when set: the traceback is redacted once, here.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: what log collectors parse without configuration."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("request_id", "run_id", "user_id"):
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, default=str)
