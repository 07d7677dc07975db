"""The models' open-status sets and the partial unique constraints frozen from them."""

import io

import pytest
from django.core.management import call_command
from django.db.migrations.loader import MigrationLoader
from django.db.models import Model, UniqueConstraint

from tenants.models import RevokeRequest, SyncRun

OPEN_CONSTRAINTS = [
    (SyncRun, "sync_run_one_open_per_tenant"),
    (RevokeRequest, "revoke_request_one_open_per_grant"),
]


def open_statuses_of(constraint: UniqueConstraint) -> set[str]:
    """The statuses a partial unique constraint applies to: its ``status__in`` list."""
    [(lookup, statuses)] = constraint.condition.children
    assert lookup == "status__in"
    return set(statuses)


def named(constraints: list, name: str) -> UniqueConstraint:
    return next(constraint for constraint in constraints if constraint.name == name)


@pytest.mark.parametrize(("model", "name"), OPEN_CONSTRAINTS)
def test_the_models_constraint_covers_exactly_the_open_statuses(model: type[Model], name: str):
    constraint = named(model._meta.constraints, name)
    assert open_statuses_of(constraint) == set(model.OPEN_STATUSES)


@pytest.mark.parametrize(("model", "name"), OPEN_CONSTRAINTS)
def test_the_migrated_constraint_covers_exactly_the_open_statuses(model: type[Model], name: str):
    state = MigrationLoader(None, ignore_no_migrations=True).project_state()
    options = state.models["tenants", model._meta.model_name].options
    assert open_statuses_of(named(options["constraints"], name)) == set(model.OPEN_STATUSES)


@pytest.mark.parametrize("model", [SyncRun, RevokeRequest])
def test_open_statuses_are_statuses_and_is_open_agrees(model: type[Model]):
    assert set(model.OPEN_STATUSES) <= set(model.Status.values)
    for status in model.Status:
        assert model(status=status).is_open == (status in model.OPEN_STATUSES)


@pytest.mark.django_db
def test_the_models_need_no_new_migration():
    call_command("makemigrations", "--check", "--dry-run", stdout=io.StringIO())
