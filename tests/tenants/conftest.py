"""Fixtures for tests that sync against the Entra + Graph emulator over HTTPS."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator import Emulator, run_emulator
from tenants.graph import GraphClient, forget_tokens
from tenants.services import tenant_add

CONTOSO = "1e1a0801-7f55-46e2-9fb2-3b09766f2844"
FABRIKAM = "b60562d0-4422-42c9-a0bc-08e96ee0f689"


@pytest.fixture(scope="session")
def emulator_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("emulator")


@pytest.fixture
def emu(emulator_data_dir: Path, settings) -> Iterator[Emulator]:
    """A fresh demo emulator, with the portal's settings pointing at it."""
    with run_emulator("demo", data_dir=emulator_data_dir) as emulator:
        env = emulator.env()
        settings.GRAPH_URL = env["GRAPH_URL"]
        settings.ENTRA_LOGIN_URL = env["ENTRA_LOGIN_URL"]
        settings.GRAPH_CA_BUNDLE = env["GRAPH_CA_BUNDLE"]
        settings.PORTAL_CLIENT_ID = env["PORTAL_CLIENT_ID"]
        settings.PORTAL_CLIENT_SECRET = env["PORTAL_CLIENT_SECRET"]
        settings.PORTAL_CLIENT_CERTIFICATE = ""
        settings.PORTAL_CLIENT_PRIVATE_KEY = ""
        forget_tokens()
        yield emulator
        forget_tokens()


class RecordingSleep:
    """Stands in for time.sleep: records the waits instead of spending them."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
def client_for(sleep: RecordingSleep):
    def make(tenant_id: str) -> GraphClient:
        return GraphClient(tenant_id=tenant_id, sleep=sleep)

    return make


@pytest.fixture
def contoso(db):
    return tenant_add(tenant_id=CONTOSO, name="Contoso")[0]


@pytest.fixture
def fabrikam(db):
    return tenant_add(tenant_id=FABRIKAM, name="Fabrikam")[0]
