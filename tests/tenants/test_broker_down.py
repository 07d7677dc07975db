"""The broker down when work is sent: what committed stands, and the work is kept for the
sweep to send again (found by the soak test, `make soak`)."""

import pytest

from tenants.access import Role
from tenants.models import AuditEvent, RevokeRequest, SyncRun
from tenants.revokes import revoke_request_create
from tenants.services import sync_run_queue
from tenants.slots import GrantSlot
from tenants.sync import sync_run_execute
from tests.helpers import demo_catalog, sync, use_broker
from tests.ids import CONTOSO, GRAPH, ROOMS

# The callbacks sent on commit run for real, as in the web server and the workers.
pytestmark = pytest.mark.django_db(transaction=True)

# Nothing listens on the discard port: every send is refused at once.
UNREACHABLE = "redis://127.0.0.1:9/0"


@pytest.fixture
def broker_down():
    use_broker(UNREACHABLE)
    yield
    use_broker("memory://")


def test_a_sync_that_cannot_send_its_digests_still_succeeds(emu, contoso, client_for, broker_down):
    demo_catalog()
    queued = sync_run_queue(tenant=contoso)

    run = sync_run_execute(run_id=queued.pk, client=client_for(CONTOSO))

    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    contoso.refresh_from_db()
    assert contoso.last_good_sync == run
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.SYNC_FAILED).exists()


def test_a_revoke_asked_for_while_the_broker_is_down_stays_queued(emu, contoso, client_for):
    demo_catalog()
    sync(contoso, client_for(CONTOSO))
    rooms = contoso.service_principals.get(app_id=ROOMS)
    use_broker(UNREACHABLE)
    try:
        revoke, created = revoke_request_create(
            tenant=contoso,
            client=rooms,
            slot=GrantSlot(GRAPH, "application", "Mail.Read", "admin"),
            actor=None,
            role=Role.ADMIN,
        )
    finally:
        use_broker("memory://")

    assert created
    revoke.refresh_from_db()
    assert revoke.status == RevokeRequest.Status.QUEUED
