"""Fixtures for tests that sync against the Entra + Graph emulator (`emu`, in tests/conftest.py)."""

from typing import NamedTuple

import pytest

from tenants.graph import GraphClient
from tenants.models import Tenant
from tests.helpers import demo_catalog, sync
from tests.ids import CONTOSO, FABRIKAM


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
    """Graph clients that wait for retries without sleeping: ``client_for(CONTOSO)``."""

    def make(tenant_id: str) -> GraphClient:
        return GraphClient(tenant_id=tenant_id, sleep=sleep)

    return make


class Demo(NamedTuple):
    contoso: Tenant
    fabrikam: Tenant


@pytest.fixture
def synced(emu, contoso, fabrikam, client_for) -> Demo:
    """The demo as `make run` has it: the starter catalog, the bundled manifests, and
    Contoso (revoke mode) and Fabrikam (read-only) synced from the emulator."""
    demo_catalog()
    sync(contoso, client_for(CONTOSO))
    sync(fabrikam, client_for(FABRIKAM))
    return Demo(contoso, fabrikam)


@pytest.fixture
def sent_syncs(monkeypatch) -> list[int]:
    """The run ids sent to the sync task, instead of a broker. Services send on commit:
    run the callbacks (``django_capture_on_commit_callbacks(execute=True)``) or use a
    transactional test before asserting on this."""
    run_ids: list[int] = []
    monkeypatch.setattr("tenants.tasks.sync_tenant.delay", run_ids.append)
    return run_ids


@pytest.fixture
def sent_revokes(monkeypatch) -> list[int]:
    """The revoke request ids sent to the revoke task, as ``sent_syncs``."""
    revoke_ids: list[int] = []
    monkeypatch.setattr("tenants.tasks.execute_revoke.delay", revoke_ids.append)
    return revoke_ids
