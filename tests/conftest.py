"""Fixtures for every test; `emu` runs the Entra + Graph emulator over HTTPS."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.cache import cache

from emulator import Emulator, run_emulator
from portal.celery import app as celery_app
from tenants.graph import forget_tokens


def use_broker(url: str) -> None:
    """Points the Celery app at a broker, dropping connections made to the previous one."""
    celery_app.conf.update(broker_url=url, broker_transport_options={})
    celery_app.close()
    # close() forgets the connection pool but not the producer pool built on it; a task
    # sent afterwards would still go to the previous broker.
    celery_app.amqp._producer_pool = None


@pytest.fixture(autouse=True, scope="session")
def _tasks_stay_in_memory():
    # A view that queues a task must not leave messages in the developer's broker folder
    # or CI's Redis for some worker to find later; the worker tests pick their broker
    # (they read CELERY_BROKER_URL when collected). Celery lets that variable override
    # any configured broker_url, so it is set aside while the tests run.
    ci_broker = os.environ.pop("CELERY_BROKER_URL", None)
    use_broker("memory://")
    yield
    if ci_broker is not None:
        os.environ["CELERY_BROKER_URL"] = ci_broker


@pytest.fixture(autouse=True)
def _no_sign_in_attempts_counted():
    # The sign-in rate limit counts in the cache: each test starts with a fresh allowance.
    cache.clear()


@pytest.fixture(autouse=True)
def _isolated_media(settings, tmp_path):
    # Tests never write into the developer's var/ (e-mails, broker files).
    settings.EMAIL_FILE_PATH = tmp_path / "outbox"


@pytest.fixture(scope="session")
def emulator_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("emulator")


@pytest.fixture
def emu(emulator_data_dir: Path, settings) -> Iterator[Emulator]:
    """A fresh demo emulator, with the portal's settings (sync and sign-in) pointing at it."""
    with run_emulator("demo", data_dir=emulator_data_dir) as emulator:
        env = emulator.env()
        settings.GRAPH_URL = env["GRAPH_URL"]
        settings.ENTRA_LOGIN_URL = env["ENTRA_LOGIN_URL"]
        settings.GRAPH_CA_BUNDLE = env["GRAPH_CA_BUNDLE"]
        settings.PORTAL_CLIENT_ID = env["PORTAL_CLIENT_ID"]
        settings.PORTAL_CLIENT_SECRET = env["PORTAL_CLIENT_SECRET"]
        settings.PORTAL_CLIENT_CERTIFICATE = ""
        settings.PORTAL_CLIENT_PRIVATE_KEY = ""
        settings.PORTAL_OPERATOR_TENANT_ID = env["PORTAL_OPERATOR_TENANT_ID"]
        settings.SOCIALACCOUNT_PROVIDERS = {
            **settings.SOCIALACCOUNT_PROVIDERS,
            "microsoft": {
                **settings.SOCIALACCOUNT_PROVIDERS["microsoft"],
                "APPS": [
                    {
                        "client_id": env["PORTAL_CLIENT_ID"],
                        "secret": env["PORTAL_CLIENT_SECRET"],
                        "settings": {
                            "tenant": "organizations",
                            "login_url": env["ENTRA_LOGIN_URL"],
                            "graph_url": env["GRAPH_URL"],
                        },
                    }
                ],
            },
        }
        forget_tokens()
        yield emulator
        forget_tokens()
