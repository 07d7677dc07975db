import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from portal.env import env_bool, env_int, env_list, env_str


def test_env_bool_reads_common_spellings(monkeypatch):
    monkeypatch.setenv("FLAG", "Yes")
    assert env_bool("FLAG", False) is True
    monkeypatch.setenv("FLAG", "0")
    assert env_bool("FLAG", True) is False


def test_env_bool_rejects_a_value_it_cannot_read(monkeypatch):
    monkeypatch.setenv("FLAG", "yes please")
    with pytest.raises(ImproperlyConfigured, match="FLAG='yes please' is not a boolean"):
        env_bool("FLAG", False)


def test_env_int_rejects_words(monkeypatch):
    monkeypatch.setenv("COUNT", "ten")
    with pytest.raises(ImproperlyConfigured, match="COUNT='ten' is not a whole number"):
        env_int("COUNT", 1)


def test_env_str_reads_a_secret_from_a_file(monkeypatch, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    monkeypatch.setenv("PORTAL_CLIENT_SECRET_FILE", str(secret))
    assert env_str("PORTAL_CLIENT_SECRET") == "s3cret"


def test_env_str_names_the_unreadable_secret_file(monkeypatch, tmp_path):
    monkeypatch.setenv("PORTAL_CLIENT_SECRET_FILE", str(tmp_path / "missing"))
    with pytest.raises(ImproperlyConfigured, match="PORTAL_CLIENT_SECRET_FILE: cannot read"):
        env_str("PORTAL_CLIENT_SECRET")


def test_env_list_splits_on_commas(monkeypatch):
    monkeypatch.setenv("HOSTS", "a.example, b.example,")
    assert env_list("HOSTS", []) == ["a.example", "b.example"]


# --- settings as a process reads them at start-up ---------------------------------------

ROOT = Path(__file__).resolve().parent.parent
GOOD_KEY = "k" + secrets.token_urlsafe(50)


def start(code: str, **env: str | None) -> subprocess.CompletedProcess[str]:
    """Runs ``code`` in a fresh interpreter with the portal's settings and ``env`` (None
    removes a variable): settings are read once, at import."""
    environ = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "PORTAL_VAR_DIR": os.environ.get("PORTAL_VAR_DIR", str(ROOT / "var")),
    }
    for name in ("DEBUG", "SECRET_KEY", "SECRET_KEY_FILE", "DJANGO_ALLOW_ASYNC_UNSAFE"):
        environ.pop(name, None)
    for name, value in env.items():
        if value is None:
            environ.pop(name, None)
        else:
            environ[name] = value
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environ, capture_output=True, text=True
    )


def reason(result: subprocess.CompletedProcess[str]) -> str:
    """The last line of a failed start: the exception and its one-line message."""
    assert result.returncode != 0, result.stdout
    return result.stderr.strip().splitlines()[-1]


PRINT_DEBUG = "from django.conf import settings; print(settings.DEBUG)"


def test_debug_is_off_unless_the_environment_turns_it_on():
    assert start(PRINT_DEBUG, SECRET_KEY=GOOD_KEY).stdout.strip() == "False"
    assert start(PRINT_DEBUG, DEBUG="1").stdout.strip() == "True"


def test_the_demo_and_the_tests_run_with_debug_on():
    demo = dict(re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", (ROOT / "demo.env").read_text(), re.M))

    assert demo["DEBUG"] == "1"
    # tests/environment.py, loaded before pytest-django reads the settings.
    assert os.environ["DEBUG"] == "1"


def test_without_debug_the_portal_refuses_to_start_without_a_secret_key():
    assert reason(start(PRINT_DEBUG)) == (
        "django.core.exceptions.ImproperlyConfigured: SECRET_KEY must be set when DEBUG is "
        "off: 50 or more random characters"
    )


def test_without_debug_the_portal_refuses_a_short_secret_key():
    assert reason(start(PRINT_DEBUG, SECRET_KEY="x" + secrets.token_urlsafe(48)[:48])) == (
        "django.core.exceptions.ImproperlyConfigured: SECRET_KEY is 49 characters long: "
        "use 50 or more random characters when DEBUG is off"
    )


@pytest.mark.parametrize(
    "placeholder",
    [
        "change-me-to-50-random-characters",  # .env.example's
        "change-me-to-50-random-characters-change-me-to-50-random-characters",
        "insecure-development-key-only-for-debug",  # the old development key
        "insecure-development-key-only-for-debug-insecure-development-key-only",
    ],
)
def test_without_debug_the_portal_refuses_a_known_placeholder_key(placeholder):
    assert reason(start(PRINT_DEBUG, SECRET_KEY=placeholder)).startswith(
        "django.core.exceptions.ImproperlyConfigured: SECRET_KEY is a published placeholder"
    )


def test_the_env_examples_key_is_such_a_placeholder():
    example = dict(
        re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", (ROOT / ".env.example").read_text(), re.M)
    )

    result = start(PRINT_DEBUG, SECRET_KEY=example["SECRET_KEY"])

    assert "SECRET_KEY is a published placeholder" in reason(result)


def test_with_debug_a_missing_key_is_a_development_key():
    result = start("from django.conf import settings; print(settings.SECRET_KEY)", DEBUG="1")

    assert result.stdout.strip().startswith("insecure-development-key")


WEB_SERVER = "import portal.wsgi"


def test_without_debug_the_web_server_refuses_a_per_process_cache():
    assert reason(start(WEB_SERVER, SECRET_KEY=GOOD_KEY, CACHE_URL=None)) == (
        "django.core.exceptions.ImproperlyConfigured: CACHE_URL must point at Redis when "
        "DEBUG is off: in each process's own memory, sign-in limits and lockouts do not hold"
    )


def test_without_debug_the_web_server_starts_on_redis():
    result = start(WEB_SERVER, SECRET_KEY=GOOD_KEY, CACHE_URL="redis://127.0.0.1:6379/5")

    assert result.returncode == 0, result.stderr


def test_a_trusted_proxy_that_is_no_address_stops_the_start():
    assert reason(start(PRINT_DEBUG, DEBUG="1", TRUSTED_PROXIES="10.0.0.1, proxy.local")) == (
        "django.core.exceptions.ImproperlyConfigured: TRUSTED_PROXIES: 'proxy.local' is not "
        "an IP address or network"
    )


def test_the_retired_num_proxies_stops_the_start_instead_of_being_ignored():
    assert "NUM_PROXIES is replaced by TRUSTED_PROXIES" in reason(
        start(PRINT_DEBUG, DEBUG="1", NUM_PROXIES="1")
    )


def test_the_session_lifetimes_come_from_the_environment():
    code = (
        "from django.conf import settings; "
        "print(settings.SESSION_COOKIE_AGE, settings.SESSION_IDLE_MINUTES)"
    )

    result = start(code, DEBUG="1", SESSION_MAX_HOURS="8", SESSION_IDLE_MINUTES="30")

    assert result.stdout.split() == [str(8 * 3600), "30"]


@pytest.mark.parametrize(
    "name",
    [
        "SESSION_MAX_HOURS",
        "SESSION_IDLE_MINUTES",
        "ADMIN_LOCKOUT_FAILURES",
        "ADMIN_LOCKOUT_MINUTES",
    ],
)
def test_a_lifetime_or_lockout_under_one_stops_the_start(name):
    assert reason(start(PRINT_DEBUG, DEBUG="1", **{name: "0"})) == (
        f"django.core.exceptions.ImproperlyConfigured: {name}=0 must be 1 or more"
    )


@pytest.mark.parametrize(
    ("env", "error"),
    [
        ({"JUSTIFICATION_DAYS": "0"}, "JUSTIFICATION_DAYS=0 must be 1 or more"),
        ({"CREDENTIAL_WARNING_DAYS": "-1"}, "CREDENTIAL_WARNING_DAYS=-1 must be 0 or more"),
        ({"JUSTIFICATION_MAX_DAYS": "-1"}, "JUSTIFICATION_MAX_DAYS=-1 must be 0 or more"),
        (
            {"JUSTIFICATION_DAYS": "400"},
            "JUSTIFICATION_DAYS=400 is more than JUSTIFICATION_MAX_DAYS=365",
        ),
        ({"JUSTIFICATION_REVIEW_DAYS": "-2"}, "JUSTIFICATION_REVIEW_DAYS=-2 must be 0 or more"),
    ],
)
def test_bad_justification_settings_stop_the_start(env, error):
    assert reason(start(PRINT_DEBUG, DEBUG="1", **env)) == (
        f"django.core.exceptions.ImproperlyConfigured: {error}"
    )


def test_a_longer_term_needs_a_longer_maximum_or_none():
    code = "from django.conf import settings; print(settings.JUSTIFICATION_DAYS)"
    assert start(
        code, DEBUG="1", JUSTIFICATION_DAYS="400", JUSTIFICATION_MAX_DAYS="0"
    ).stdout.split() == ["400"]


def manage(*args: str) -> subprocess.CompletedProcess[str]:
    """``manage.py ARGS`` as a script outside the project runs it: no DEBUG, no key."""
    environ = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECRET_KEY")}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_contracts_commands_run_without_debug_or_a_key():
    commands = manage("help", "--commands").stdout.split()

    for command in ("import_manifest", "report", "revoke", "revokes", "justify", "sync_tenant"):
        assert command in commands


def test_the_web_server_still_refuses_to_start_without_a_key():
    result = manage("runserver", "--noreload", "127.0.0.1:0")

    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr
