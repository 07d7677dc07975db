"""Helpers for tests anywhere in the tree (fixtures are in conftest.py, ids in ids.py)."""

from typing import Any

from django.test import Client

from permissions.catalog import catalog_import_starter
from permissions.manifests import BUNDLED_MANIFESTS_DIR, manifest_import, manifest_read
from portal.celery import app as celery_app
from portal.models import User
from tenants.graph import GraphClient
from tenants.models import SyncRun, Tenant
from tenants.services import sync_run_queue
from tenants.sync import sync_run_execute


def signed_in(user: User, **client_defaults: Any) -> Client:
    """A test client with ``user`` signed in (``HTTP_HOST=...`` and the like as defaults)."""
    client = Client(**client_defaults)
    client.force_login(user)
    return client


def member(username: str, tenant: Tenant, *roles: str, **fields: Any) -> User:
    """Someone outside the cast (conftest.py) who signed in from ``tenant`` with ``roles``."""
    from tests.factories import UserFactory

    return UserFactory(
        username=username, entra_tenant_id=str(tenant.tenant_id), entra_roles=list(roles), **fields
    )


def use_broker(url: str) -> None:
    """Points the Celery app at a broker, dropping connections made to the previous one."""
    celery_app.conf.update(broker_url=url, broker_transport_options={})
    celery_app.close()
    # close() forgets the connection pool but not the producer pool built on it; a task
    # sent afterwards would still go to the previous broker.
    celery_app.amqp._producer_pool = None


def demo_catalog() -> None:
    """What `make demo-data` loads: the starter catalog and the bundled manifests."""
    catalog_import_starter()
    for path in sorted(BUNDLED_MANIFESTS_DIR.glob("*.yaml")):
        manifest_import(spec=manifest_read(path=path))


def sync(tenant: Tenant, client: GraphClient | None = None) -> SyncRun:
    """Syncs ``tenant`` here and now, as a worker would, and returns the succeeded run
    (``tenant`` refreshed); a failed sync raises its GraphError."""
    queued = sync_run_queue(tenant=tenant)
    assert queued is not None, f"{tenant} has an open run already"
    run = sync_run_execute(run_id=queued.pk, client=client)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    tenant.refresh_from_db()
    return run
