"""The models' open-status sets and the partial unique constraints frozen from them."""

import io
from collections.abc import Sequence

import pytest
from django.core.management import call_command
from django.db.migrations.loader import MigrationLoader
from django.db.models import BaseConstraint, UniqueConstraint

from tenants.models import RevokeRequest, SyncRun

Stateful = type[SyncRun] | type[RevokeRequest]

OPEN_CONSTRAINTS = [
    (SyncRun, "sync_run_one_open_per_tenant"),
    (RevokeRequest, "revoke_request_one_open_per_grant"),
]


def open_statuses_of(constraint: UniqueConstraint) -> set[str]:
    """The statuses a partial unique constraint applies to: its ``status__in`` list."""
    assert constraint.condition is not None
    [child] = constraint.condition.children
    assert isinstance(child, tuple) and child[0] == "status__in"
    return set(child[1])


def named(constraints: Sequence[BaseConstraint], name: str) -> UniqueConstraint:
    [constraint] = [constraint for constraint in constraints if constraint.name == name]
    assert isinstance(constraint, UniqueConstraint)
    return constraint


@pytest.mark.parametrize(("model", "name"), OPEN_CONSTRAINTS)
def test_the_models_constraint_covers_exactly_the_open_statuses(model: Stateful, name: str):
    constraint = named(model._meta.constraints, name)
    assert open_statuses_of(constraint) == set(model.OPEN_STATUSES)


@pytest.mark.parametrize(("model", "name"), OPEN_CONSTRAINTS)
def test_the_migrated_constraint_covers_exactly_the_open_statuses(model: Stateful, name: str):
    state = MigrationLoader(None, ignore_no_migrations=True).project_state()
    options = state.models["tenants", model._meta.model_name].options
    assert open_statuses_of(named(options["constraints"], name)) == set(model.OPEN_STATUSES)


@pytest.mark.parametrize("model", [SyncRun, RevokeRequest])
def test_open_statuses_are_statuses_and_is_open_agrees(model: Stateful):
    assert set(model.OPEN_STATUSES) <= set(model.Status.values)
    for status in model.Status:
        assert model(status=status).is_open == (status in model.OPEN_STATUSES)


@pytest.mark.django_db
def test_the_models_need_no_new_migration():
    call_command("makemigrations", "--check", "--dry-run", stdout=io.StringIO())
