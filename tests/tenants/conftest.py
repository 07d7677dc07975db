"""Fixtures for tests that sync against the Entra + Graph emulator (`emu`, in tests/conftest.py)."""

import pytest

from tenants.graph import GraphClient
from tenants.services import tenant_add

CONTOSO = "1e1a0801-7f55-46e2-9fb2-3b09766f2844"
FABRIKAM = "b60562d0-4422-42c9-a0bc-08e96ee0f689"


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
