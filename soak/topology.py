"""The production topology on loopback: its own Redis and PostgreSQL, the emulator, gunicorn
(2 workers), two Celery workers and beat, each child in a process group of its own so that
it and whatever it forks are killed at the end, whatever happened before.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
# The soak's own ports (loopback only): web, emulator, Redis, PostgreSQL.
WEB_PORT = 9150
EMULATOR_PORT = 9152
REDIS_PORT = 9160
POSTGRES_PORT = 9161
START_TIMEOUT = 120
STOP_TIMEOUT = 10


def _postgres_bin() -> Path:
    """The newest PostgreSQL server installed (Debian keeps each under its version)."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: p.parts)
    if not versions:
        raise RuntimeError("no PostgreSQL server under /usr/lib/postgresql")
    return versions[-1].parent


@dataclass
class Child:
    name: str
    command: list[str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class Topology:
    """Every part of the run; ``env`` is what the portal's processes read."""

    folder: Path
    env: dict[str, str] = field(default_factory=dict)
    children: dict[str, Child] = field(default_factory=dict)

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{WEB_PORT}"

    @property
    def emulator_url(self) -> str:
        return self.env["GRAPH_URL"]

    # -- children ---------------------------------------------------------------------------

    def start(self, name: str, command: list[str]) -> Child:
        log = self.folder / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        child = self.children.get(name) or Child(name, command, log)
        with log.open("ab") as out:
            child.process = subprocess.Popen(
                command,
                cwd=REPO,
                env=self.env or None,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: killed with all it forks
            )
        self.children[name] = child
        return child

    def restart(self, name: str) -> Child:
        child = self.children[name]
        self.stop(name)
        return self.start(name, child.command)

    def kill9(self, name: str) -> None:
        """SIGKILL to the child's whole group, as an OOM kill or a crashed host does."""
        child = self.children[name]
        if child.alive():
            os.killpg(child.pid, signal.SIGKILL)
            assert child.process is not None
            child.process.wait(timeout=STOP_TIMEOUT)

    def stop(self, name: str) -> None:
        child = self.children.get(name)
        if child is None or child.process is None:
            return
        if child.alive():
            try:
                os.killpg(child.pid, signal.SIGTERM)
                child.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.process.wait(timeout=STOP_TIMEOUT)
            except ProcessLookupError:
                pass
        # Whatever the group left behind (gunicorn's workers, a pool's children).
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def stop_all(self) -> None:
        for name in reversed(list(self.children)):
            self.stop(name)
        self.postgres_stop()

    # -- Redis and PostgreSQL of the soak's own ----------------------------------------------

    def redis_start(self) -> None:
        self.start(
            "redis",
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(REDIS_PORT),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
        )
        _wait_for(lambda: _redis_ping(), "Redis")

    def postgres_init(self) -> None:
        data = self.folder / "postgres"
        data.mkdir()
        self._as_postgres_owner(data)
        self._postgres(["initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-N"])
        self.postgres_start()

    def postgres_start(self) -> None:
        data = self.folder / "postgres"
        options = (
            f"-p {POSTGRES_PORT} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=200"
        )
        log = self.folder / "logs" / "postgres.log"
        self._postgres(["pg_ctl", "-D", str(data), "-o", options, "-l", str(log), "-w", "start"])

    def postgres_stop(self) -> None:
        data = self.folder / "postgres"
        if (data / "postmaster.pid").exists():
            self._postgres(["pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop"], check=False)

    def postgres_restart(self) -> None:
        self.postgres_stop()
        self.postgres_start()

    def _postgres(self, command: list[str], *, check: bool = True) -> None:
        program = [str(_postgres_bin() / command[0]), *command[1:]]
        # PostgreSQL refuses to run as root: as root, the server runs as its own user.
        if os.geteuid() == 0:
            program = ["runuser", "-u", "postgres", "--", *program]
        subprocess.run(program, check=check, capture_output=True, cwd="/tmp")

    def _as_postgres_owner(self, path: Path) -> None:
        if os.geteuid() == 0:
            for part in (self.folder, self.folder / "logs", path):
                part.mkdir(exist_ok=True)
                shutil.chown(part, "postgres")

    # -- the emulator ------------------------------------------------------------------------

    def emulator_start(self, scenario: Path) -> None:
        data_dir = self.folder / "emulator"
        command = [sys.executable, "-m", "emulator", "serve", "--port", str(EMULATOR_PORT)]
        command += ["--scenario", str(scenario), "--data-dir", str(data_dir)]
        child = self.start("emulator", command)
        printed: dict[str, str] = {}
        deadline = time.monotonic() + START_TIMEOUT
        while "PORTAL_CLIENT_SECRET" not in printed:
            if time.monotonic() > deadline or not child.alive():
                raise RuntimeError(f"the emulator did not start (see {child.log})")
            time.sleep(0.5)
            for line in child.log.read_text(errors="replace").splitlines():
                if line.startswith("export "):
                    name, _, value = line.removeprefix("export ").strip().partition("=")
                    printed[name] = value.strip("'")
        for name in ("GRAPH_URL", "ENTRA_LOGIN_URL", "GRAPH_CA_BUNDLE"):
            self.env[name] = printed[name]
        self.env["PORTAL_CLIENT_ID"] = printed["PORTAL_CLIENT_ID"]
        self.env["PORTAL_CLIENT_SECRET"] = printed["PORTAL_CLIENT_SECRET"]

    def emulator_session(self) -> requests.Session:
        http = requests.Session()
        http.verify = self.env["GRAPH_CA_BUNDLE"]
        http.trust_env = False  # or REQUESTS_CA_BUNDLE would override verify
        return http

    # -- the portal --------------------------------------------------------------------------

    def portal_env(
        self, *, task_time_limit: int, task_soft_time_limit: int, revoke_time_limit: int
    ) -> None:
        """Production settings (README, Production), on loopback, with the sweeps' clocks
        short enough for a dead worker's work to be taken over within the run."""
        self.env.update(
            DJANGO_SETTINGS_MODULE="portal.settings",
            DEBUG="0",
            SECRET_KEY=secrets.token_urlsafe(50),
            ALLOWED_HOSTS="127.0.0.1",
            # Plain http on loopback: no TLS proxy in front of it here.
            SECURE_SSL_REDIRECT="0",
            DATABASE_URL=f"postgres://postgres@127.0.0.1:{POSTGRES_PORT}/portal_soak",
            CELERY_BROKER_URL=f"redis://127.0.0.1:{REDIS_PORT}/0",
            CACHE_URL=f"redis://127.0.0.1:{REDIS_PORT}/1",
            PORTAL_VAR_DIR=str(self.folder / "var"),
            PORTAL_URL=self.web_url,
            LOG_FORMAT="json",
            CELERY_TASK_TIME_LIMIT=str(task_time_limit),
            CELERY_TASK_SOFT_TIME_LIMIT=str(task_soft_time_limit),
            REVOKE_TASK_TIME_LIMIT=str(revoke_time_limit),
            REVOKE_TASK_SOFT_TIME_LIMIT=str(revoke_time_limit - 10),
            REVOKE_VERIFY_SECONDS="10",
            REVOKE_LAG_SECONDS="5",
        )
        for name in ("PORTAL_CLIENT_CERTIFICATE", "PORTAL_CLIENT_PRIVATE_KEY"):
            self.env.pop(name, None)
            self.env.pop(f"{name}_FILE", None)

    def manage(self, *args: str) -> None:
        subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=self.env, check=True)

    def web_start(self) -> None:
        self.start(
            "web",
            [
                str(VENV_BIN / "gunicorn"),
                "portal.wsgi:application",
                "--bind",
                f"127.0.0.1:{WEB_PORT}",
                "--workers",
                "2",
                "--timeout",
                "60",
            ],
        )
        _wait_for(lambda: _answers(f"{self.web_url}/healthz"), "gunicorn")

    def worker_start(self, number: int) -> Child:
        return self.start(
            f"worker{number}",
            [
                str(VENV_BIN / "celery"),
                "-A",
                "portal",
                "worker",
                # As in production (docker-compose.yml): prefork, whose pool enforces the
                # tasks' time limits; one process each, so two workers run two tasks.
                "--pool",
                "prefork",
                "--concurrency",
                "1",
                "--hostname",
                f"soak{number}@%h",
                "--loglevel",
                "INFO",
            ],
        )

    def beat_start(self) -> None:
        self.start(
            "beat",
            [
                str(VENV_BIN / "celery"),
                "-A",
                "portal",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(self.folder / "celerybeat-schedule"),
            ],
        )


def _redis_ping() -> bool:
    done = subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "-p", str(REDIS_PORT), "ping"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() == "PONG"


def _answers(url: str) -> bool:
    try:
        requests.get(url, timeout=2)
    except requests.RequestException:
        return False
    return True


def _wait_for(ready: object, what: str, timeout: float = START_TIMEOUT) -> None:
    assert callable(ready)
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not come up within {timeout:.0f} s")
        time.sleep(0.3)


@contextmanager
def topology(folder: Path) -> Iterator[Topology]:
    """A topology whose children are all stopped on the way out, error or not."""
    parts = Topology(folder)
    try:
        yield parts
    finally:
        parts.stop_all()
