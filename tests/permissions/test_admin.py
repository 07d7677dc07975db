"""The Django admin of the catalog and the manifests."""

import pytest
from django.apps import apps
from django.urls import reverse

from permissions.models import (
    MICROSOFT_GRAPH_APP_ID,
    CatalogChange,
    Permission,
    PermissionKind,
    Requirement,
)
from tests.factories import PermissionApiCallFactory, PermissionFactory, RequirementFactory

pytestmark = pytest.mark.django_db

MODELS = [
    "resource",
    "permission",
    "permissionapicall",
    "catalogchange",
    "application",
    "feature",
    "requirement",
]


@pytest.fixture
def superuser(client, django_user_model):
    """Someone with Django admin's password login, signed in on ``client``."""
    user = django_user_model.objects.create_superuser("root", "root@example.com", "x")
    client.force_login(user)
    return user


@pytest.fixture
def catalog_change() -> CatalogChange:
    permission = PermissionFactory(value="Device.Read.All")
    PermissionApiCallFactory(permission=permission, path="/devices", least_privileged=True)
    RequirementFactory(permission_value="Device.Read.All")
    return CatalogChange.objects.create(
        permission=permission,
        resource_app_id=MICROSOFT_GRAPH_APP_ID,
        kind=PermissionKind.APPLICATION,
        value="Device.Read.All",
        action=CatalogChange.Action.CHANGED,
        details={"privilege_level": [2, 3]},
        source=Permission.Source.REFERENCE,
    )


@pytest.mark.parametrize("model", MODELS)
def test_each_changelist_loads_and_searches_for_a_superuser(
    client, superuser, catalog_change, model
):
    url = reverse(f"admin:permissions_{model}_changelist")

    assert client.get(url).status_code == 200
    assert client.get(url, {"q": "device"}).status_code == 200


@pytest.mark.parametrize("model", MODELS)
def test_each_change_page_loads_for_a_superuser(client, superuser, catalog_change, model):
    instance = apps.get_model("permissions", model).objects.first()

    response = client.get(reverse(f"admin:permissions_{model}_change", args=[instance.pk]))

    assert response.status_code == 200


def test_the_permission_page_shows_its_api_calls_read_only(client, superuser, catalog_change):
    url = reverse("admin:permissions_permission_change", args=[catalog_change.permission.pk])

    response = client.get(url)

    html = response.content.decode()
    assert "/devices" in html
    inline = response.context["inline_admin_formsets"][0]
    assert inline.opts.model._meta.model_name == "permissionapicall"
    assert not inline.has_add_permission
    assert not inline.has_change_permission
    assert not inline.has_delete_permission


def test_a_feature_shows_its_requirements_and_an_application_its_features(
    client, superuser, catalog_change
):
    feature = Requirement.objects.get().feature

    feature_page = client.get(reverse("admin:permissions_feature_change", args=[feature.pk]))
    app_page = client.get(
        reverse("admin:permissions_application_change", args=[feature.application.pk])
    )

    assert "Reads devices to place them in groups." in feature_page.content.decode()
    assert feature.key in app_page.content.decode()


def test_catalog_changes_cannot_be_added_changed_or_deleted(client, superuser, catalog_change):
    change_url = reverse("admin:permissions_catalogchange_change", args=[catalog_change.pk])

    assert client.get(reverse("admin:permissions_catalogchange_add")).status_code == 403
    assert client.post(change_url, {"value": "Mail.Send"}).status_code == 403
    delete_url = reverse("admin:permissions_catalogchange_delete", args=[catalog_change.pk])
    assert client.post(delete_url, {"post": "yes"}).status_code == 403
    catalog_change.refresh_from_db()
    assert catalog_change.value == "Device.Read.All"
    # Viewing stays possible, without a save button.
    assert 'name="_save"' not in client.get(change_url).content.decode()


def test_the_admin_is_closed_to_people_who_are_not_staff(bob_client):
    response = bob_client.get(reverse("admin:permissions_permission_changelist"))

    assert response.status_code == 302
