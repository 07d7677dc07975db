"""The grant slot: one grant as revoke requests name it, the value compared ignoring case."""

import uuid
from dataclasses import FrozenInstanceError

import pytest

from permissions.models import MICROSOFT_GRAPH_APP_ID
from permissions.verdicts import PermissionKey
from tenants.forms import GrantSlotForm
from tenants.models import RevokeRequest
from tenants.slots import GrantSlot
from tests.factories import GrantFactory

GRAPH = MICROSOFT_GRAPH_APP_ID


def test_slots_differing_only_in_the_values_case_are_equal_and_hash_alike():
    upper = GrantSlot(GRAPH, "delegated", "Mail.Read", "admin")
    lower = GrantSlot(GRAPH, "delegated", "mail.read", "admin")
    assert upper == lower
    assert hash(upper) == hash(lower)
    assert {upper: "request"}[lower] == "request"


def test_a_slot_keeps_the_value_as_it_was_spelt():
    assert GrantSlot(GRAPH, "delegated", "Mail.Read", "admin").value == "Mail.Read"
    assert str(GrantSlot(GRAPH, "delegated", "Mail.Read", "user")) == (
        "Mail.Read (delegated, user consent)"
    )


@pytest.mark.parametrize(
    "other",
    [
        GrantSlot(GRAPH, "delegated", "Mail.Read", "user"),
        GrantSlot(GRAPH, "application", "Mail.Read", "admin"),
        GrantSlot("00000002-0000-0ff1-ce00-000000000000", "delegated", "Mail.Read", "admin"),
        GrantSlot(GRAPH, "delegated", "Mail.ReadWrite", "admin"),
    ],
)
def test_slots_differing_in_anything_but_case_are_not_equal(other):
    assert GrantSlot(GRAPH, "delegated", "Mail.Read", "admin") != other


def test_a_resource_in_capitals_is_the_same_resource():
    slot = GrantSlot(GRAPH.upper(), "application", "Mail.Read", "admin")
    assert slot.resource_app_id == GRAPH
    assert slot == GrantSlot(GRAPH, "application", "Mail.Read", "admin")


def test_a_slot_is_frozen():
    slot = GrantSlot(GRAPH, "application", "Mail.Read", "admin")
    with pytest.raises(FrozenInstanceError):
        setattr(slot, "value", "Mail.Send")  # noqa: B010 - the point is that it fails


def test_a_slot_is_its_permission_and_a_consent_type():
    slot = GrantSlot.of(PermissionKey(GRAPH, "delegated", "Mail.Read"), "user")
    assert slot == GrantSlot(GRAPH, "delegated", "MAIL.READ", "user")
    assert slot.permission == PermissionKey(GRAPH, "delegated", "mail.read")
    assert slot.fields() == {
        "resource_app_id": GRAPH,
        "kind": "delegated",
        "value": "Mail.Read",
        "consent": "user",
    }


@pytest.mark.django_db
def test_a_grant_row_and_a_request_for_it_have_the_same_slot():
    grant = GrantFactory(value="Mail.Read", kind="delegated", consent="user")
    revoke = RevokeRequest(
        tenant=grant.tenant,
        client=grant.client,
        resource_app_id=uuid.UUID(GRAPH),
        kind="delegated",
        value="mail.read",
        consent="user",
    )
    assert GrantSlot.from_grant(grant) == GrantSlot(GRAPH, "delegated", "Mail.Read", "user")
    assert GrantSlot.from_request(revoke) == GrantSlot.from_grant(grant)


@pytest.mark.django_db
def test_an_app_role_the_resource_does_not_publish_is_named_by_its_id():
    grant = GrantFactory(value="")
    assert GrantSlot.from_grant(grant).value == str(grant.permission_id)


def test_the_revoke_form_names_a_slot():
    form = GrantSlotForm(
        {
            "resource_app_id": GRAPH.upper(),
            "kind": "delegated",
            "value": "Mail.Read",
            "consent": "user",
        }
    )
    assert form.is_valid(), form.errors
    slot = form.slot()
    assert slot == GrantSlot(GRAPH, "delegated", "mail.read", "user")
    assert (slot.resource_app_id, slot.value) == (GRAPH, "Mail.Read")
