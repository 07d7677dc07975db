"""A tenant that changed between two syncs, and alice (admin) subscribed to it in between."""

from dataclasses import dataclass

import pytest

from digests.models import Subscription
from digests.services import subscription_set
from permissions.models import Tier
from portal.celery import app as celery_app
from tenants.models import Grant, RevokeRequest, ServicePrincipal, SyncRun, Tenant
from tests.factories import (
    ApplicationFactory,
    FeatureFactory,
    GrantFactory,
    PermissionFactory,
    RequirementFactory,
    ServicePrincipalFactory,
    SyncRunFactory,
    TenantFactory,
    UserFactory,
)

CONTROL_PLANE = "RoleManagement.ReadWrite.Directory"


@dataclass(frozen=True)
class Story:
    tenant: Tenant
    rooms: ServicePrincipal
    first: SyncRun
    second: SyncRun
    failed: SyncRun
    subscription: Subscription


@pytest.fixture
def alice(db):
    return UserFactory(
        username="alice", email="alice@contoso.example", entra_roles=["Portal.Admin"]
    )


def grant(rooms: ServicePrincipal, value: str, run: SyncRun) -> Grant:
    return GrantFactory(client=rooms, value=value, first_seen_run=run)


@pytest.fixture
def story(alice) -> Story:
    """Sync 1 sees Device.Read.All and Group.Read.All; alice subscribes; sync 2 removes
    Group.Read.All and adds a ControlPlane permission; sync 3 fails. Meanwhile a reader
    asks for a revoke and an earlier revoke is granted again."""
    tenant = TenantFactory(name="Contoso")
    alice.entra_tenant_id = str(tenant.tenant_id)
    alice.save()
    PermissionFactory(value=CONTROL_PLANE, tier=Tier.CONTROL_PLANE)
    rooms = ServicePrincipalFactory(tenant=tenant, display_name="Rooms monitor")
    feature = FeatureFactory(application=ApplicationFactory(app_id=rooms.app_id), name="Devices")
    RequirementFactory(feature=feature, permission_value="Device.Read.All")
    RequirementFactory(feature=feature, permission_value="Mail.Send")
    first = SyncRunFactory(tenant=tenant, status=SyncRun.Status.SUCCEEDED)
    grant(rooms, "Device.Read.All", first)
    gone = grant(rooms, "Group.Read.All", first)
    subscription = subscription_set(
        user=alice, tenant=tenant, frequency=Subscription.Frequency.DAILY, all_quiet=False
    )
    second = SyncRunFactory(tenant=tenant, status=SyncRun.Status.SUCCEEDED)
    Grant.objects.filter(pk=gone.pk).update(removed_in_run=second)
    grant(rooms, CONTROL_PLANE, second)
    failed = SyncRunFactory(tenant=tenant, status=SyncRun.Status.FAILED, error="Graph said no")
    for status, regranted in (
        (RevokeRequest.Status.PENDING_APPROVAL, None),
        (RevokeRequest.Status.SUCCEEDED, second),
    ):
        RevokeRequest.objects.create(
            tenant=tenant,
            client=rooms,
            resource_app_id=gone.resource_app_id,
            kind="application",
            value="Sites.Read.All" if regranted is None else "Files.Read.All",
            consent="admin",
            status=status,
            regranted_in_run=regranted,
        )
    return Story(tenant, rooms, first, second, failed, subscription)


@pytest.fixture
def eager():
    """Tasks queued with .delay() run at once, in the test."""
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False
