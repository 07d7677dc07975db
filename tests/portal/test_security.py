"""Production hardening: health check, CSP, CSRF on htmx posts, sign-in rate limits, logs."""

import io
import json
import logging
import re
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from django.conf import settings as django_settings
from django.db import OperationalError, connection
from django.test import Client
from django.urls import reverse

from portal.logging import ContextFilter, JsonFormatter, RedactSecretsFilter, redact
from tenants.tasks import sync_tenant
from tests.factories import UserFactory
from tests.helpers import signed_in, use_broker

pytestmark = pytest.mark.django_db


# --- /healthz ---------------------------------------------------------------------------


def test_the_health_check_needs_no_sign_in_and_reports_each_part(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"database": "ok", "broker": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_the_health_check_only_answers_get(client):
    assert client.post("/healthz").status_code == 405


def test_an_unreachable_broker_makes_the_health_check_fail_without_saying_where(client):
    use_broker("redis://:hunter2-password@127.0.0.1:1/0")
    try:
        response = client.get("/healthz")
    finally:
        use_broker("memory://")

    assert response.status_code == 503
    assert response.json() == {"database": "ok", "broker": "unavailable"}
    assert b"127.0.0.1" not in response.content and b"hunter2" not in response.content


def test_an_unreachable_database_makes_the_health_check_fail(client, monkeypatch):
    def refuse(*args: object, **kwargs: object) -> None:
        raise OperationalError("connection refused")

    monkeypatch.setattr(connection, "cursor", refuse)

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json() == {"database": "unavailable", "broker": "ok"}


def test_the_embedded_broker_is_healthy_while_its_folder_is_writable(client, tmp_path):
    from portal.celery import app

    app.conf.update(broker_url="filesystem://", broker_transport_options={})
    try:
        app.conf.broker_transport_options = {"data_folder_in": str(tmp_path)}
        writable = client.get("/healthz")
        app.conf.broker_transport_options = {"data_folder_in": str(tmp_path / "missing")}
        missing = client.get("/healthz")
    finally:
        use_broker("memory://")

    assert writable.status_code == 200
    assert (missing.status_code, missing.json()["broker"]) == (503, "unavailable")


# --- Content Security Policy ------------------------------------------------------------


def test_pages_carry_a_csp_without_unsafe_inline_that_lets_sign_in_reach_entra(client, settings):
    settings.ENTRA_LOGIN_URL = "https://login.example.net:8443/entra"

    policy = client.get(reverse("account_login"))["Content-Security-Policy"]

    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "script-src 'self'" in policy and "style-src 'self'" in policy
    assert "form-action 'self' https://login.example.net:8443;" in policy
    assert "frame-ancestors 'none'" in policy


def test_no_page_template_has_inline_scripts_styles_or_event_handlers():
    inline = re.compile(r"<script(?![^>]*\bsrc=)|<style|\sstyle=|\son[a-z]+=", re.I)
    root = django_settings.BASE_DIR / "templates"
    # E-mails are no web pages: mail clients ignore style sheets, so they style inline.
    templates = sorted(p for p in root.rglob("*.html") if p.relative_to(root).parts[0] != "email")

    offenders = [str(path) for path in templates if inline.search(path.read_text())]

    assert templates and offenders == []


# --- CSRF on htmx posts -------------------------------------------------------------------


@pytest.fixture
def sync_now(alice, contoso) -> tuple[Client, str]:
    """alice with CSRF checks on, as in a browser, and Contoso's Sync now address."""
    client = signed_in(alice, enforce_csrf_checks=True)
    return client, reverse("tenants:sync-now", kwargs={"tenant_id": contoso.tenant_id})


def test_an_htmx_post_without_the_csrf_token_is_refused(sync_now):
    client, url = sync_now

    response = client.post(url, HTTP_HX_REQUEST="true")

    assert response.status_code == 403


def test_htmx_posts_carry_the_token_from_the_pages_body(sync_now):
    client, url = sync_now
    page = client.get(reverse("tenants:dashboard")).content.decode()
    headers = json.loads(re.search(r"<body hx-headers='([^']+)'", page).group(1))

    response = client.post(url, HTTP_HX_REQUEST="true", HTTP_X_CSRFTOKEN=headers["X-CSRFToken"])

    assert response.status_code != 403


# --- sign-in rate limits ------------------------------------------------------------------


def test_admin_password_posts_are_limited_per_address(client, settings):
    settings.LOGIN_RATE_LIMIT = 3
    url = reverse("admin:login")
    form = {"username": "root", "password": "guess"}

    statuses = [client.post(url, form).status_code for _ in range(4)]
    elsewhere = client.post(url, form, REMOTE_ADDR="192.0.2.7")
    limited = client.post(url, form)

    assert statuses == [200, 200, 200, 429]
    assert elsewhere.status_code == 200
    assert limited["Retry-After"] == "60"
    assert b"Too many sign-in attempts" in limited.content


def test_entra_callbacks_are_limited_whatever_the_method(client, settings):
    settings.LOGIN_RATE_LIMIT = 2
    url = reverse("microsoft_callback")
    answer = {"error": "access_denied"}

    # Attempts 1 and 2 (a GET and a POST, counted together) are answered, the 3rd refused.
    allowed = [client.get(url, answer).status_code, client.post(url, answer).status_code]
    refused = client.get(url, answer)

    assert 429 not in allowed, allowed
    assert refused.status_code == 429
    assert refused["Retry-After"] == "60"


def test_sign_in_starts_by_get_only_show_a_page_and_are_not_counted(client, settings):
    settings.LOGIN_RATE_LIMIT = 1
    url = reverse("microsoft_login")

    statuses = {client.get(url).status_code for _ in range(3)}

    assert 429 not in statuses


def test_behind_a_proxy_the_limit_counts_the_address_the_proxy_saw(client, settings):
    settings.LOGIN_RATE_LIMIT = 1
    settings.TRUSTED_PROXIES = ["127.0.0.1"]  # the test client's REMOTE_ADDR
    url = reverse("admin:login")

    def attempt(client_address: str, forged: str = "") -> int:
        forwarded = f"{forged}, {client_address}" if forged else client_address
        return client.post(url, {}, HTTP_X_FORWARDED_FOR=forwarded).status_code

    assert attempt("198.51.100.1") == 200
    assert attempt("198.51.100.2") == 200
    # A client's own X-Forwarded-For entries do not give it a fresh allowance.
    assert attempt("198.51.100.1", forged="203.0.113.9") == 429


# --- logs -------------------------------------------------------------------------------


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """The JSON lines the console handler of production settings would write."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactSecretsFilter())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_tokens_and_the_client_secret_never_reach_the_log(log_lines, settings):
    settings.PORTAL_CLIENT_SECRET = "Zx8Q~portal-secret-value"
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
    log = logging.getLogger("tenants.graph")

    log.warning("Graph said no to Bearer %s", jwt)
    log.warning("token request client_secret=%s&grant_type=x", settings.PORTAL_CLIENT_SECRET)
    try:
        raise RuntimeError(f"secret in a traceback: {settings.PORTAL_CLIENT_SECRET}")
    except RuntimeError:
        log.exception("failed with %s", "{'access_token': 'abc.def'}")

    text = log_lines.getvalue()
    assert "eyJ" not in text and "Zx8Q" not in text and "abc.def" not in text
    assert [line["message"] for line in lines(log_lines)][:2] == [
        "Graph said no to Bearer [redacted]",
        "token request client_secret=[redacted]&grant_type=x",
    ]


def test_redaction_keeps_graphs_error_codes_and_hides_url_passwords():
    assert redact('{"code": "Authorization_RequestDenied"}') == (
        '{"code": "Authorization_RequestDenied"}'
    )
    assert redact("redis://:pw-1234@redis:6379/0") == "redis://:[redacted]@redis:6379/0"
    assert redact("/callback/?code=0.AVYA-secret&state=x") == "/callback/?code=[redacted]&state=x"


def test_every_log_line_of_a_request_carries_its_id(client, log_lines):
    response = client.get("/no-such-page/", HTTP_X_REQUEST_ID="req-42.abc")

    assert response["X-Request-ID"] == "req-42.abc"
    ours = lines(log_lines)
    assert {line["logger"] for line in ours} >= {"django.request", "portal.request"}
    assert {line.get("request_id") for line in ours} == {"req-42.abc"}


def test_a_request_id_that_could_forge_log_lines_is_replaced(client):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="x\ny" * 10)

    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])


def test_the_signed_in_users_id_is_on_their_requests_lines(client, log_lines):
    user = UserFactory()
    client.force_login(user)

    client.get(reverse("permissions:catalog"))

    request_line = next(line for line in lines(log_lines) if line["logger"] == "portal.request")
    assert request_line["user_id"] == user.pk


def test_a_sync_tasks_log_lines_carry_its_run_id(log_lines, monkeypatch):
    def sync(*, run_id: int) -> SimpleNamespace:
        logging.getLogger("tenants.sync").info("reading service principals")
        return SimpleNamespace(status="succeeded")

    monkeypatch.setattr("tenants.sync.sync_run_execute", sync)

    sync_tenant.apply(args=(41,))

    line = next(line for line in lines(log_lines) if line["logger"] == "tenants.sync")
    assert line["run_id"] == "sync-41"
    assert set(line) >= {"time", "level", "logger", "message"}
