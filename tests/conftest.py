"""Fixtures for every test: the cast, their tenants, and `emu`, the Entra + Graph emulator.

The cast, each with one meaning everywhere (the demo scenario's people, who sign in
through the emulator too; ids in tests/ids.py):

- alice: Alice Anders, an admin of Contoso (``Portal.Admin``)
- bob: Bob Berg, a reader of Contoso (``Portal.Reader``)
- charlie: Charlie Chen, an admin of another tenant, Fabrikam
- erin: Erin Eklund, of Contoso with no portal role
- oscar: Oscar Ortiz, an operator (``Portal.Operator`` in the operator tenant, Contoso):
  reads every tenant

Each has a signed-in test client too: ``alice_client``, ``bob_client``, ... The tenants
``contoso`` and ``fabrikam`` are onboarded and not synced yet (``synced``, in
tests/tenants/conftest.py, syncs both from the emulator).
"""

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from emulator import Emulator, run_emulator
from portal.models import User
from tenants.graph import forget_tokens
from tenants.models import Tenant
from tests.factories import TenantFactory, UserFactory
from tests.helpers import signed_in, use_broker
from tests.ids import CONTOSO, FABRIKAM


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


# -- the cast's tenants ---------------------------------------------------------------------


def onboarded(tenant_id: str, name: str) -> Tenant:
    """A tenant as connecting it leaves it: named, its first sync due at once."""
    domain = f"{name.lower()}.onmicrosoft.com"
    # A UUID, as a tenant read from the database has it (code compares it with UUIDs).
    return TenantFactory(
        tenant_id=uuid.UUID(tenant_id),
        name=name,
        default_domain=domain,
        next_sync_at=timezone.now(),
    )


@pytest.fixture
def contoso(db) -> Tenant:
    return onboarded(CONTOSO, "Contoso")


@pytest.fixture
def fabrikam(db) -> Tenant:
    return onboarded(FABRIKAM, "Fabrikam")


# -- the cast -------------------------------------------------------------------------------


def cast_member(upn: str, name: str, tenant: Tenant, *roles: str) -> User:
    """Someone of the demo scenario, as signing in through Entra left them."""
    first_name, last_name = name.split()
    return UserFactory(
        username=upn,
        email=upn,
        first_name=first_name,
        last_name=last_name,
        entra_tenant_id=str(tenant.tenant_id),
        entra_roles=list(roles),
    )


@pytest.fixture
def alice(contoso) -> User:
    """An admin of Contoso."""
    return cast_member("alice@contoso.onmicrosoft.com", "Alice Anders", contoso, "Portal.Admin")


@pytest.fixture
def bob(contoso) -> User:
    """A reader of Contoso."""
    return cast_member("bob@contoso.onmicrosoft.com", "Bob Berg", contoso, "Portal.Reader")


@pytest.fixture
def charlie(fabrikam) -> User:
    """An admin of Fabrikam: an outsider to Contoso."""
    return cast_member("charlie@fabrikam.onmicrosoft.com", "Charlie Chen", fabrikam, "Portal.Admin")


@pytest.fixture
def erin(contoso) -> User:
    """Of Contoso, with no portal role: sees no tenant."""
    return cast_member("erin@contoso.onmicrosoft.com", "Erin Eklund", contoso)


@pytest.fixture
def oscar(contoso, settings) -> User:
    """An operator: Portal.Operator in the operator tenant (Contoso, as in the demo)."""
    settings.PORTAL_OPERATOR_TENANT_ID = CONTOSO
    return cast_member("oscar@contoso.onmicrosoft.com", "Oscar Ortiz", contoso, "Portal.Operator")


@pytest.fixture
def alice_client(alice) -> Client:
    return signed_in(alice)


@pytest.fixture
def bob_client(bob) -> Client:
    return signed_in(bob)


@pytest.fixture
def charlie_client(charlie) -> Client:
    return signed_in(charlie)


@pytest.fixture
def erin_client(erin) -> Client:
    return signed_in(erin)


@pytest.fixture
def oscar_client(oscar) -> Client:
    return signed_in(oscar)
