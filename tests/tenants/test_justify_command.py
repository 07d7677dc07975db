"""The ``justify`` command of DESIGN.md: an admin's reason for keeping a grant, or
``--remove``; each bad input exits non-zero with one line."""

import datetime as dt
import io
import json
import uuid

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from permissions.models import PermissionKind
from tenants.models import AuditEvent, Justification, ServicePrincipal, SyncRun, Tenant
from tests.factories import (
    GrantFactory,
    ServicePrincipalFactory,
    SyncRunFactory,
    TenantFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

TENANT = "1e1a0801-7f55-46e2-9fb2-3b09766f2844"
APP = "8708fc71-9f71-4ad5-8445-a0746692feeb"
INTUNE = "c161e42e-d4df-4a3d-9b42-e7a3c31f59d4"


@pytest.fixture
def connect(db) -> ServicePrincipal:
    """247connect in Contoso: Sites.Read.All (application, Graph and a same-named role of
    Intune), and delegated User.Read by admin consent and one user's."""
    tenant = TenantFactory(name="Contoso", tenant_id=uuid.UUID(TENANT))
    run = SyncRunFactory(tenant=tenant, status=SyncRun.Status.SUCCEEDED)
    Tenant.objects.filter(pk=tenant.pk).update(last_good_sync=run)
    sp = ServicePrincipalFactory(tenant=tenant, app_id=uuid.UUID(APP), display_name="247connect")
    GrantFactory(client=sp, value="Sites.Read.All", first_seen_run=run)
    GrantFactory(client=sp, value="Sites.Read.All", resource_app_id=INTUNE, first_seen_run=run)
    for principal in (None, uuid.uuid4()):
        GrantFactory(
            client=sp,
            kind=PermissionKind.DELEGATED,
            value="User.Read",
            permission_id=None,
            consent="user" if principal else "admin",
            principal_id=principal,
            first_seen_run=run,
        )
    return sp


def justify(*args: str) -> str:
    out = io.StringIO()
    call_command("justify", *args, stdout=out)
    return out.getvalue()


def sites(*extra: str) -> list[str]:
    return [TENANT, "--app", APP, "--permission", "Sites.Read.All", "--type", "application", *extra]


def in_days(days: int) -> str:
    return (timezone.localdate() + dt.timedelta(days=days)).isoformat()


def test_it_justifies_a_grant_until_the_given_day(connect):
    out = justify(*sites("--reason", "Search indexes every site.", "--expires", in_days(30)))

    justification = Justification.objects.get()
    assert (justification.value, str(justification.resource_app_id)) == (
        "Sites.Read.All",
        "00000003-0000-0000-c000-000000000000",
    )
    assert justification.expires == timezone.localdate() + dt.timedelta(days=30)
    assert out == (
        "justified: Sites.Read.All (application, admin consent) of 247connect in Contoso, "
        f"until {in_days(30)}, by the command line\n"
    )


def test_the_report_then_calls_it_needed_with_the_justification(connect):
    justify(*sites("--reason", "Search indexes every site.", "--by", "Oscar (ops)"))

    out = io.StringIO()
    call_command("report", TENANT, "--format", "json", stdout=out)
    grants = json.loads(out.getvalue())["applications"][0]["grants"]
    graph = next(
        g
        for g in grants
        if g["permission"] == "Sites.Read.All" and g["resource_app_id"].startswith("00000003")
    )
    assert graph["verdict"] == "needed"
    assert graph["justification"] == {
        "reason": "Search indexes every site.",
        "by": "Oscar (ops)",
        "expires": in_days(365),
    }
    intune = next(g for g in grants if g["resource_app_id"] == INTUNE)
    assert (intune["verdict"], intune["justification"]) == ("unexplained", None)


def test_a_delegated_permission_is_justified_for_each_consent_type(connect):
    out = justify(
        TENANT, "--app", APP, "--permission", "user.read", "--type", "delegated",
        "--reason", "Sign-in.",
    )  # fmt: skip

    assert sorted(Justification.objects.values_list("consent", flat=True)) == ["admin", "user"]
    assert out.count("justified: User.Read (delegated, ") == 2


def test_another_resource_is_named_by_its_app_id(connect):
    justify(*sites("--resource", INTUNE, "--reason", "Device reports."))

    assert str(Justification.objects.get().resource_app_id) == INTUNE


def test_a_reviewer_is_named_by_user_name_or_e_mail(connect):
    bob = UserFactory(
        username="bob", email="Bob@Contoso.example", entra_tenant_id=TENANT,
        entra_roles=["Portal.Reader"],
    )  # fmt: skip

    justify(*sites("--reason", "Search.", "--reviewer", "bob@contoso.example"))

    assert Justification.objects.get().reviewer == bob


def test_remove_takes_the_justification_away_and_audits_it(connect):
    justify(*sites("--reason", "Search."))

    out = justify(*sites("--remove"))

    assert out == "removed the justification of Sites.Read.All (application, admin consent)\n"
    assert not Justification.objects.exists()
    assert AuditEvent.objects.filter(action=AuditEvent.Action.JUSTIFICATION_REMOVED).count() == 1


def test_remove_works_after_the_application_is_gone(connect):
    justify(*sites("--reason", "Search."))
    ServicePrincipal.objects.update(removed_at=timezone.now())

    justify(*sites("--remove"))

    assert not Justification.objects.exists()


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (
            sites("--reason", "Search.", "--expires", "2020-01-01"),
            f"the expiry 2020-01-01 is in the past (today is {timezone.localdate()})",
        ),
        (
            sites("--reason", "Search.", "--expires", in_days(366)),
            f"the expiry {in_days(366)} is more than 365 days away (JUSTIFICATION_MAX_DAYS); "
            f"the latest is {in_days(365)}",
        ),
        (sites("--reason", "   "), "a reason is required: say why the grant is kept"),
        (
            [TENANT, "--app", APP, "--permission", "Files.Read.All", "--type", "application"]
            + ["--reason", "Search."],
            "247connect does not hold Files.Read.All (application) in Contoso",
        ),
        (
            [TENANT, "--app", APP, "--permission", "Sites.Read.All", "--type", "delegated"]
            + ["--reason", "Search."],
            "247connect does not hold Sites.Read.All (delegated) in Contoso",
        ),
        (
            sites("--reason", "Search.", "--expires", "next year"),
            "--expires 'next year' is not a date (YYYY-MM-DD)",
        ),
        (
            sites("--reason", "Search.", "--expires", "never"),
            "a justification must expire within 365 days (JUSTIFICATION_MAX_DAYS); pick a date",
        ),
        (
            sites("--reason", "Search.", "--reviewer", "mallory"),
            "no user 'mallory' of Contoso (user name or e-mail)",
        ),
        (
            sites("--remove"),
            f"Sites.Read.All (application) of {APP} has no justification in Contoso",
        ),
        (sites("--remove", "--expires", in_days(3)), "--remove takes no --expires or --reviewer"),
        (
            [str(uuid.UUID(int=7)), *sites("--reason", "Search.")[1:]],
            f"tenant {uuid.UUID(int=7)} is not onboarded (add it with add_tenant)",
        ),
        (
            [TENANT, "--app", str(uuid.UUID(int=8)), "--permission", "Sites.Read.All"]
            + ["--type", "application", "--reason", "Search."],
            f"application {uuid.UUID(int=8)} has no service principal in Contoso",
        ),
        (sites("--reason", "Search.", "--resource", "graph"), "resource id 'graph' is not a GUID"),
    ],
    ids=[
        "past",
        "beyond-maximum",
        "empty-reason",
        "unknown-grant",
        "wrong-type",
        "not-a-date",
        "never-with-a-maximum",
        "unknown-reviewer",
        "nothing-to-remove",
        "remove-with-expiry",
        "unknown-tenant",
        "unknown-application",
        "bad-resource",
    ],
)
def test_bad_input_exits_with_one_line_and_changes_nothing(connect, args, error):
    with pytest.raises(CommandError) as raised:
        justify(*args)

    assert str(raised.value) == error
    assert "\n" not in str(raised.value)
    assert not Justification.objects.exists()


def test_a_reason_or_remove_is_required():
    with pytest.raises(CommandError, match="one of the arguments --reason --remove is required"):
        justify(*sites())


def test_never_is_accepted_where_there_is_no_maximum(connect, settings):
    settings.JUSTIFICATION_MAX_DAYS = 0

    out = justify(*sites("--reason", "Search.", "--expires", "never"))

    assert Justification.objects.get().expires is None
    assert "until never" in out
