"""factory_boy factories shared by all tests."""

import uuid
from typing import TYPE_CHECKING, Any, TypeVar

import factory

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
from tenants.models import Grant, ServicePrincipal, SyncRun, Tenant

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
    class Meta:
        model = "tenants.SyncRun"

    tenant = factory.SubFactory(TenantFactory)


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
        SyncRunFactory, tenant=factory.SelfAttribute("..tenant"), status="succeeded"
    )


class UserFactory(ModelFactory[User]):
    """Someone signed in through Entra: their home tenant and portal roles as the id token
    gave them (``entra_tenant_id``, ``entra_roles``)."""

    class Meta:
        model = "portal.User"

    username = factory.Sequence(lambda n: f"user{n}")
    entra_tenant_id = ""
    entra_roles = factory.LazyFunction(list)
