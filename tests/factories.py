"""factory_boy factories shared by all tests."""

import uuid
from typing import TYPE_CHECKING, Any, TypeVar

import factory
from django.utils.timezone import now

from permissions.models import (
    MICROSOFT_GRAPH_APP_ID,
    Application,
    Feature,
    Permission,
    PermissionApiCall,
    PermissionKind,
    Requirement,
    Resource,
)
from portal.models import User
from tenants.models import Grant, RevokeRequest, ServicePrincipal, SyncRun, Tenant

T = TypeVar("T")


class ModelFactory(factory.django.DjangoModelFactory[T]):
    """A factory that type checkers know makes a ``T``: ``TenantFactory()`` is a Tenant."""

    class Meta:
        abstract = True

    if TYPE_CHECKING:
        # factory_boy's metaclass makes calling the class create a model instance.
        def __new__(cls, *args: Any, **kwargs: Any) -> T: ...  # type: ignore[misc]


class ResourceFactory(ModelFactory[Resource]):
    class Meta:
        model = Resource
        django_get_or_create = ("app_id",)

    app_id = MICROSOFT_GRAPH_APP_ID
    display_name = "Microsoft Graph"


class PermissionFactory(ModelFactory[Permission]):
    class Meta:
        model = Permission

    resource = factory.SubFactory(ResourceFactory)
    kind = PermissionKind.APPLICATION
    value = factory.Sequence(lambda n: f"Example{n}.Read.All")
    graph_id = factory.LazyFunction(uuid.uuid4)
    display_name = factory.LazyAttribute(lambda p: f"Read {p.value}")
    description = "Allows the app to read example data."
    admin_consent_required = True
    privilege_level = 3
    source = Permission.Source.STARTER
    published = True


class PermissionApiCallFactory(ModelFactory[PermissionApiCall]):
    class Meta:
        model = PermissionApiCall

    permission = factory.SubFactory(PermissionFactory)
    scheme = PermissionApiCall.Scheme.APPLICATION
    method = "GET"
    path = "/examples"


class ApplicationFactory(ModelFactory[Application]):
    class Meta:
        model = Application

    app_id = factory.LazyFunction(uuid.uuid4)
    name = factory.Sequence(lambda n: f"Vendor app {n}")
    publisher = "Example vendor"


class FeatureFactory(ModelFactory[Feature]):
    class Meta:
        model = Feature

    application = factory.SubFactory(ApplicationFactory)
    key = factory.Sequence(lambda n: f"feature-{n}")
    name = factory.Sequence(lambda n: f"Feature {n}")
    description = "Does something useful."


class RequirementFactory(ModelFactory[Requirement]):
    class Meta:
        model = Requirement

    feature = factory.SubFactory(FeatureFactory)
    resource_app_id = MICROSOFT_GRAPH_APP_ID
    kind = PermissionKind.APPLICATION
    permission_value = "Device.Read.All"
    reason = "Reads devices to place them in groups."
    api_calls = factory.LazyFunction(lambda: ["GET /devices"])


class TenantFactory(ModelFactory[Tenant]):
    class Meta:
        model = "tenants.Tenant"

    tenant_id = factory.LazyFunction(uuid.uuid4)
    name = factory.Sequence(lambda n: f"Tenant {n}")


class SyncRunFactory(ModelFactory[SyncRun]):
    """A sync run, queued unless a trait says how far it got: ``running``, ``succeeded`` or
    ``failed`` (with an error). ``last_good=True`` makes a succeeded run its tenant's last
    good sync, as the sync itself does."""

    class Meta:
        model = "tenants.SyncRun"
        skip_postgeneration_save = True

    class Params:
        running = factory.Trait(status=SyncRun.Status.RUNNING, started_at=factory.LazyFunction(now))
        succeeded = factory.Trait(
            status=SyncRun.Status.SUCCEEDED,
            started_at=factory.LazyFunction(now),
            finished_at=factory.LazyAttribute(lambda run: run.started_at),
        )
        failed = factory.Trait(
            status=SyncRun.Status.FAILED,
            started_at=factory.LazyFunction(now),
            finished_at=factory.LazyAttribute(lambda run: run.started_at),
            error="Graph said no",
        )

    tenant = factory.SubFactory(TenantFactory)

    @factory.post_generation
    def last_good(run: SyncRun, create: bool, extracted: bool | None, **kwargs: Any) -> None:
        if not (create and extracted):
            return
        assert run.status == SyncRun.Status.SUCCEEDED, "only a succeeded run is a good sync"
        Tenant.objects.filter(pk=run.tenant_id).update(last_good_sync=run)
        run.tenant.last_good_sync = run


class ServicePrincipalFactory(ModelFactory[ServicePrincipal]):
    class Meta:
        model = "tenants.ServicePrincipal"

    tenant = factory.SubFactory(TenantFactory)
    object_id = factory.LazyFunction(uuid.uuid4)
    app_id = factory.LazyFunction(uuid.uuid4)
    display_name = factory.Sequence(lambda n: f"Client app {n}")


class GrantFactory(ModelFactory[Grant]):
    """An application permission (appRoleAssignment) on Microsoft Graph, first seen by a
    succeeded run of the client's tenant unless told otherwise."""

    class Meta:
        model = "tenants.Grant"

    client = factory.SubFactory(ServicePrincipalFactory)
    tenant = factory.SelfAttribute("client.tenant")
    resource_app_id = MICROSOFT_GRAPH_APP_ID
    resource_object_id = factory.LazyFunction(uuid.uuid4)
    kind = PermissionKind.APPLICATION
    value = factory.Sequence(lambda n: f"Example{n}.Read.All")
    permission_id = factory.LazyFunction(uuid.uuid4)
    consent = "admin"
    graph_object_id = factory.Sequence(lambda n: f"assignment-{n}")
    identity = factory.SelfAttribute("graph_object_id")
    first_seen_run = factory.SubFactory(
        SyncRunFactory, tenant=factory.SelfAttribute("..tenant"), succeeded=True
    )


def removed_assignment(request: Any) -> list[dict[str, str]]:
    """What a succeeded revoke of an application permission took away, as Graph had it:
    enough for Undo to put it back. ``request``: a RevokeRequest, or the one
    RevokeRequestFactory is building."""
    return [
        {
            "type": "appRoleAssignment",
            "id": f"assignment-of-{request.value}",
            "principalId": str(request.client.object_id),
            "resourceId": str(uuid.uuid4()),
            "appRoleId": str(uuid.uuid4()),
        }
    ]


class RevokeRequestFactory(ModelFactory[RevokeRequest]):
    """A request to revoke an application permission on Microsoft Graph (admin consent) of
    a client, queued unless a trait gives its state: ``pending_approval`` (a reader asked),
    ``running``, ``manual`` (the portal may not write there), ``succeeded`` (with what it
    removed, so it can be undone), ``failed``, ``denied``, ``cancelled``. Name the grant
    with ``client`` and ``value``."""

    class Meta:
        model = "tenants.RevokeRequest"

    class Params:
        pending_approval = factory.Trait(status=RevokeRequest.Status.PENDING_APPROVAL)
        running = factory.Trait(
            status=RevokeRequest.Status.RUNNING, started_at=factory.LazyFunction(now)
        )
        manual = factory.Trait(status=RevokeRequest.Status.MANUAL)
        succeeded = factory.Trait(
            status=RevokeRequest.Status.SUCCEEDED,
            started_at=factory.LazyFunction(now),
            finished_at=factory.LazyAttribute(lambda request: request.started_at),
            removed=factory.LazyAttribute(removed_assignment),
        )
        failed = factory.Trait(
            status=RevokeRequest.Status.FAILED,
            started_at=factory.LazyFunction(now),
            finished_at=factory.LazyAttribute(lambda request: request.started_at),
            error="Graph said no",
        )
        denied = factory.Trait(
            status=RevokeRequest.Status.DENIED, decided_at=factory.LazyFunction(now)
        )
        cancelled = factory.Trait(status=RevokeRequest.Status.CANCELLED)

    client = factory.SubFactory(ServicePrincipalFactory)
    tenant = factory.SelfAttribute("client.tenant")
    resource_app_id = MICROSOFT_GRAPH_APP_ID
    kind = PermissionKind.APPLICATION
    value = factory.Sequence(lambda n: f"Example{n}.Read.All")
    consent = "admin"
    status = RevokeRequest.Status.QUEUED


class UserFactory(ModelFactory[User]):
    """Someone signed in through Entra: their home tenant and portal roles as the id token
    gave them (``entra_tenant_id``, ``entra_roles``)."""

    class Meta:
        model = "portal.User"

    username = factory.Sequence(lambda n: f"user{n}")
    entra_tenant_id = ""
    entra_roles = factory.LazyFunction(list)
