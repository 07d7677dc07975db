"""factory_boy factories shared by all tests."""

import uuid

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


class ResourceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Resource
        django_get_or_create = ("app_id",)

    app_id = MICROSOFT_GRAPH_APP_ID
    display_name = "Microsoft Graph"


class PermissionFactory(factory.django.DjangoModelFactory):
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


class PermissionApiCallFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PermissionApiCall

    permission = factory.SubFactory(PermissionFactory)
    scheme = PermissionApiCall.Scheme.APPLICATION
    method = "GET"
    path = "/examples"


class ApplicationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Application

    app_id = factory.LazyFunction(uuid.uuid4)
    name = factory.Sequence(lambda n: f"Vendor app {n}")
    publisher = "Example vendor"


class FeatureFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Feature

    application = factory.SubFactory(ApplicationFactory)
    key = factory.Sequence(lambda n: f"feature-{n}")
    name = factory.Sequence(lambda n: f"Feature {n}")
    description = "Does something useful."


class RequirementFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Requirement

    feature = factory.SubFactory(FeatureFactory)
    resource_app_id = MICROSOFT_GRAPH_APP_ID
    kind = PermissionKind.APPLICATION
    permission_value = "Device.Read.All"
    reason = "Reads devices to place them in groups."
    api_calls = factory.LazyFunction(lambda: ["GET /devices"])


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "tenants.Tenant"

    tenant_id = factory.LazyFunction(uuid.uuid4)
    name = factory.Sequence(lambda n: f"Tenant {n}")


class SyncRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "tenants.SyncRun"

    tenant = factory.SubFactory(TenantFactory)


class ServicePrincipalFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "tenants.ServicePrincipal"

    tenant = factory.SubFactory(TenantFactory)
    object_id = factory.LazyFunction(uuid.uuid4)
    app_id = factory.LazyFunction(uuid.uuid4)
    display_name = factory.Sequence(lambda n: f"Client app {n}")


class GrantFactory(factory.django.DjangoModelFactory):
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


class UserFactory(factory.django.DjangoModelFactory):
    """Someone signed in through Entra: their home tenant and portal roles as the id token
    gave them (``entra_tenant_id``, ``entra_roles``)."""

    class Meta:
        model = "portal.User"

    username = factory.Sequence(lambda n: f"user{n}")
    entra_tenant_id = ""
    entra_roles = factory.LazyFunction(list)
