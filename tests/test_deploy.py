"""The production files match the project: docker-compose.yml's services and commands,
the Dockerfile's, .env.example against the settings, and `check --deploy`. (No container
engine runs here: these read the files.)"""

import os
import re
import secrets
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
SETTINGS_TEXT = (ROOT / "portal" / "settings.py").read_text()
ENV_EXAMPLE = (ROOT / ".env.example").read_text()
GUNICORN = ["gunicorn", "portal.wsgi:application", "--bind", "0.0.0.0:8000"]

# Every NAME that settings.py reads through env_str/env_bool/env_int/env_list.
SETTINGS_ENV = set(
    re.findall(r"\benv_(?:str|bool|int|list)\(\s*\"([A-Z][A-Z0-9_]*)\"", SETTINGS_TEXT)
)
# Every NAME that .env.example sets or shows (commented) with its default.
EXAMPLE_ENV = set(re.findall(r"^#?([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE, re.M))
# Read by compose itself (interpolation), not by the portal.
COMPOSE_ONLY = {"POSTGRES_PASSWORD", "PORTAL_PORT", "PORTAL_BIND"}


def command(service: str) -> list[str]:
    return SERVICES[service]["command"]


def test_compose_starts_the_portal_and_its_servers():
    assert {"web", "worker", "beat", "db", "redis"} <= set(SERVICES)
    assert SERVICES["db"]["image"].startswith("postgres:16")
    assert SERVICES["redis"]["image"].startswith("redis:7")


def test_web_worker_and_beat_share_one_image_and_environment():
    for name in ("web", "worker", "beat", "migrate"):
        service = SERVICES[name]
        assert service["build"] == "." and service["env_file"] == ".env", name
        assert service["environment"]["CELERY_BROKER_URL"].startswith("redis://redis:"), name
        assert "@db:5432/" in service["environment"]["DATABASE_URL"], name


def test_the_commands_name_real_things(settings):
    from portal.celery import app

    # As the tests' environment has it (tests/environment.py): pytest-django turns DEBUG off
    # for each test, and without DEBUG the web server refuses the tests' per-process cache.
    settings.DEBUG = True
    from portal.wsgi import application

    assert application is not None and app.main == "portal"
    assert command("web")[:4] == GUNICORN
    assert command("worker")[:4] == ["celery", "-A", "portal", "worker"]
    assert command("beat")[:4] == ["celery", "-A", "portal", "beat"]
    assert command("migrate") == ["python", "manage.py", "migrate", "--no-input"]


def test_the_dockerfile_runs_the_same_web_command_as_non_root():
    dockerfile = (ROOT / "Dockerfile").read_text()
    cmd = re.search(r"^CMD (\[.*\])$", dockerfile, re.M)

    assert yaml.safe_load(cmd.group(1)) == command("web")
    assert re.search(r"^FROM python:3\.11-slim$", dockerfile, re.M)
    assert re.search(r"^USER (?!root)\w+$", dockerfile, re.M)
    assert "requirements.lock" in dockerfile and "collectstatic" in dockerfile


def test_servers_are_health_checked_and_the_portal_waits_for_them():
    for name in ("web", "db", "redis"):
        assert SERVICES[name]["healthcheck"]["test"], name
    assert "pg_isready" in str(SERVICES["db"]["healthcheck"]["test"])
    assert "/healthz" in str(SERVICES["web"]["healthcheck"]["test"])
    assert SERVICES["migrate"]["depends_on"] == {
        "db": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }
    for name in ("web", "worker", "beat"):
        assert SERVICES[name]["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"}
        }, name


def test_compose_publishes_gunicorn_on_loopback_unless_told_otherwise():
    # gunicorn belongs behind the TLS proxy; reached directly, it would be plain http.
    assert SERVICES["web"]["ports"] == ["${PORTAL_BIND:-127.0.0.1}:${PORTAL_PORT:-8000}:8000"]
    for name in ("worker", "beat", "migrate", "db", "redis"):
        assert "ports" not in SERVICES[name], name


def test_database_and_broker_data_live_in_volumes():
    assert set(COMPOSE["volumes"]) == {"postgres-data", "redis-data"}
    assert "postgres-data:/var/lib/postgresql/data" in SERVICES["db"]["volumes"]


def test_env_example_lists_every_setting_the_portal_reads():
    assert SETTINGS_ENV >= {"SECRET_KEY", "DATABASE_URL", "PORTAL_CLIENT_ID"}
    assert SETTINGS_ENV - EXAMPLE_ENV == set()


def test_env_example_and_compose_name_no_variable_the_portal_ignores():
    in_compose = {
        name for name in SERVICES["web"]["environment"] if not name.startswith("POSTGRES_")
    }
    # PORTAL_CLIENT_CERTIFICATE_FILE and the like: the _FILE form of a setting.
    example = {re.sub(r"_FILE$", "", name) for name in EXAMPLE_ENV}

    assert example - SETTINGS_ENV - COMPOSE_ONLY == set()
    assert in_compose - SETTINGS_ENV == set()


def test_env_example_holds_no_real_secret():
    values = dict(re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", ENV_EXAMPLE, re.M))

    assert values["SECRET_KEY"].startswith("change-me")
    assert values["PORTAL_CLIENT_SECRET"] == "" and values["EMAIL_HOST_PASSWORD"] == ""


def test_production_settings_pass_the_deployment_checks():
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "portal.example.com",
    }
    # The browser tests set it for Playwright's event loop; no deployment has it.
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)

    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr


# -- the locks: the image installs the runtime one, development the full one ---------------

DEV_LOCK = ROOT / "requirements.lock"
RUNTIME_LOCK = ROOT / "requirements.runtime.lock"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# What the issue names, whatever pyproject's dev extra says.
NEVER_IN_THE_IMAGE = {"pytest", "pytest-django", "playwright", "ruff", "aiosmtpd", "mypy"}


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    return normalized(re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement).group(0))


def lock_entries(path: Path) -> dict[str, tuple[str, set[str]]]:
    """Each pinned package: its version and what pulls it in (uv's ``# via`` notes)."""
    entries: dict[str, tuple[str, set[str]]] = {}
    current = ""
    for line in path.read_text().splitlines():
        pin = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", line)
        via = re.match(r"^\s+#\s+(?:via\s+)?([A-Za-z0-9][A-Za-z0-9._-]*)", line)
        if pin:
            current = normalized(pin.group(1))
            entries[current] = (pin.group(2), set())
        elif current and via and via.group(1) != "via":
            entries[current][1].add(normalized(via.group(1)))
    return entries


def runtime_closure(dev: dict[str, tuple[str, set[str]]]) -> set[str]:
    """The packages of the dev lock that the portal's own dependencies pull in."""
    needed = {requirement_name(r) for r in PYPROJECT["project"]["dependencies"]}
    changed = True
    while changed:
        more = {name for name, (_, parents) in dev.items() if parents & needed} - needed
        needed |= more
        changed = bool(more)
    return needed & dev.keys()


def test_the_image_installs_the_runtime_lock_and_nothing_for_development():
    dockerfile = (ROOT / "Dockerfile").read_text()
    installs = re.findall(r"pip install .*--requirement (\S+)", dockerfile)

    assert installs == ["requirements.runtime.lock"]
    assert NEVER_IN_THE_IMAGE & lock_entries(RUNTIME_LOCK).keys() == set()
    dev_extra = {requirement_name(r) for r in PYPROJECT["project"]["optional-dependencies"]["dev"]}
    assert dev_extra & lock_entries(RUNTIME_LOCK).keys() == set()


def test_the_runtime_lock_pins_what_the_portal_needs_as_the_dev_lock_does():
    dev = lock_entries(DEV_LOCK)
    runtime = lock_entries(RUNTIME_LOCK)

    # Exactly the runtime dependencies and theirs: nothing only a dev tool pulls in.
    assert set(runtime) == runtime_closure(dev)
    assert {name: version for name, (version, _) in runtime.items()} == {
        name: dev[name][0] for name in runtime
    }


def test_make_test_keeps_the_development_lock():
    makefile = (ROOT / "Makefile").read_text()

    assert re.search(r"pip install .*-r requirements\.lock$", makefile, re.M)
    assert "requirements.runtime.lock" not in re.search(r"^test:.*$", makefile, re.M).group(0)
