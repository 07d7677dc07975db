"""Contoso changed between two syncs, and alice (its admin) subscribed to it in between."""

from dataclasses import dataclass

import pytest

from digests.models import Subscription
from digests.services import subscription_set
from permissions.models import Tier
from portal.celery import app as celery_app
from tenants.models import Grant, ServicePrincipal, SyncRun, Tenant
from tests.digests.helpers import CONTROL_PLANE, grant
from tests.factories import (
    ApplicationFactory,
    FeatureFactory,
    PermissionFactory,
    RequirementFactory,
    RevokeRequestFactory,
    ServicePrincipalFactory,
    SyncRunFactory,
)


@dataclass(frozen=True)
class Story:
    tenant: Tenant
    rooms: ServicePrincipal
    first: SyncRun
    second: SyncRun
    failed: SyncRun
    subscription: Subscription


@pytest.fixture
def story(alice, contoso) -> Story:
    """Sync 1 sees Device.Read.All and Group.Read.All; alice subscribes; sync 2 removes
    Group.Read.All and adds a ControlPlane permission; sync 3 fails. Meanwhile a reader
    asks for a revoke and an earlier revoke is granted again."""
    PermissionFactory(value=CONTROL_PLANE, tier=Tier.CONTROL_PLANE)
    rooms = ServicePrincipalFactory(tenant=contoso, display_name="Rooms monitor")
    feature = FeatureFactory(application=ApplicationFactory(app_id=rooms.app_id), name="Devices")
    RequirementFactory(feature=feature, permission_value="Device.Read.All")
    RequirementFactory(feature=feature, permission_value="Mail.Send")
    first = SyncRunFactory(tenant=contoso, succeeded=True)
    grant(rooms, "Device.Read.All", first)
    gone = grant(rooms, "Group.Read.All", first)
    subscription = subscription_set(
        user=alice, tenant=contoso, frequency=Subscription.Frequency.DAILY, all_quiet=False
    )
    second = SyncRunFactory(tenant=contoso, succeeded=True)
    Grant.objects.filter(pk=gone.pk).update(removed_in_run=second)
    grant(rooms, CONTROL_PLANE, second)
    failed = SyncRunFactory(tenant=contoso, failed=True)
    RevokeRequestFactory(client=rooms, value="Sites.Read.All", pending_approval=True)
    RevokeRequestFactory(
        client=rooms, value="Files.Read.All", succeeded=True, regranted_in_run=second
    )
    return Story(contoso, rooms, first, second, failed, subscription)


@pytest.fixture
def eager():
    """Tasks queued with .delay() run at once, in the test."""
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False
