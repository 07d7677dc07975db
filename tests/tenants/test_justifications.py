"""Justifications: an admin's reason for keeping a grant makes it needed until it expires;
each change is audited; bad input gets a one-line error. alice is an admin and bob a
reader of Contoso, charlie an admin of Fabrikam."""

import datetime as dt
import uuid

import pytest
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction

from permissions.models import PermissionKind
from tenants.findings import findings_refresh
from tenants.justifications import (
    JustificationError,
    justification_extend,
    justifications_remove,
    justifications_set,
    tenant_users,
)
from tenants.models import (
    ApplicationFinding,
    AuditEvent,
    Justification,
    ServicePrincipal,
    SyncRun,
    Tenant,
)
from tenants.report import tenant_report
from tenants.revokes import revoke_bulk_candidates
from tenants.selectors import features_preview
from tenants.slots import GrantSlot
from tests.factories import (
    ApplicationFactory,
    FeatureFactory,
    GrantFactory,
    RequirementFactory,
    ServicePrincipalFactory,
    SyncRunFactory,
    TenantFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

GRAPH = "00000003-0000-0000-c000-000000000000"
TODAY = dt.date(2026, 12, 1)
SITES = GrantSlot(GRAPH, "application", "Sites.Read.All", "admin")
MAIL = GrantSlot(GRAPH, "application", "Mail.Send", "admin")
DEVICES = GrantSlot(GRAPH, "application", "Device.Read.All", "admin")
USER_READ_ADMIN = GrantSlot(GRAPH, "delegated", "User.Read", "admin")
USER_READ_USERS = GrantSlot(GRAPH, "delegated", "User.Read", "user")
# Sites.Read.All's entry in the report, as verdicts() keys it.
SITES_KEY = ("Sites.Read.All", "application", "admin")


@pytest.fixture
def contoso() -> Tenant:
    tenant = TenantFactory(name="Contoso")
    run = SyncRunFactory(tenant=tenant, status=SyncRun.Status.SUCCEEDED)
    Tenant.objects.filter(pk=tenant.pk).update(last_good_sync=run)
    tenant.refresh_from_db()
    return tenant


@pytest.fixture
def alice(contoso):
    return UserFactory(
        username="alice",
        first_name="Alice",
        email="alice@contoso.example",
        entra_tenant_id=str(contoso.tenant_id),
        entra_roles=["Portal.Admin"],
    )


@pytest.fixture
def bob(contoso):
    return UserFactory(
        username="bob",
        email="bob@contoso.example",
        entra_tenant_id=str(contoso.tenant_id),
        entra_roles=["Portal.Reader"],
    )


@pytest.fixture
def charlie():
    return UserFactory(
        username="charlie", entra_tenant_id=str(uuid.uuid4()), entra_roles=["Portal.Admin"]
    )


@pytest.fixture
def connect(contoso) -> ServicePrincipal:
    """247connect: Device.Read.All needed (devices, on), Mail.Send unused (mail, off),
    Sites.Read.All unexplained, delegated User.Read by admin consent and by two users."""
    application = ApplicationFactory(name="247connect")
    devices = FeatureFactory(application=application, key="devices", default_enabled=True)
    mail = FeatureFactory(application=application, key="mail", default_enabled=False)
    RequirementFactory(feature=devices, permission_value="Device.Read.All")
    RequirementFactory(feature=mail, permission_value="Mail.Send")
    sp = ServicePrincipalFactory(
        tenant=contoso, app_id=application.app_id, display_name="247connect"
    )
    run = contoso.last_good_sync
    for value in ("Device.Read.All", "Mail.Send", "Sites.Read.All"):
        GrantFactory(client=sp, value=value, first_seen_run=run)
    for principal in (None, uuid.uuid4(), uuid.uuid4()):
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


def keep(sp: ServicePrincipal, *slots: GrantSlot, **fields) -> list[Justification]:
    fields.setdefault("reason", "The intranet search indexes every site.")
    fields.setdefault("today", TODAY)
    return justifications_set(tenant=sp.tenant, client=sp, slots=list(slots), **fields)


def verdicts(sp: ServicePrincipal, today: dt.date = TODAY) -> dict[tuple[str, str, str], tuple]:
    report = tenant_report(tenant=sp.tenant, app_id=sp.app_id, today=today)
    return {
        (g.permission, g.kind, g.consent): (g.verdict.value, g.justification)
        for app in report.applications
        for g in app.grants
    }


# --- the verdict ---------------------------------------------------------------------------


def test_a_justified_unexplained_grant_is_needed_with_its_reason(connect, alice):
    keep(connect, SITES, actor=alice, expires=dt.date(2027, 6, 30))

    verdict, justification = verdicts(connect)[("Sites.Read.All", "application", "admin")]
    assert verdict == "needed"
    assert justification.reason == "The intranet search indexes every site."
    assert justification.by == "Alice (alice)"
    assert justification.expires == dt.date(2027, 6, 30)


def test_a_justified_unused_grant_is_needed_and_names_no_switched_off_feature(connect, alice):
    keep(connect, MAIL, actor=alice)

    report = tenant_report(tenant=connect.tenant, app_id=connect.app_id, today=TODAY)
    mail = next(g for g in report.applications[0].grants if g.permission == "Mail.Send")
    assert (mail.verdict.value, mail.features, mail.is_revoke_candidate) == ("needed", (), False)


def test_once_expired_the_grant_is_unexplained_again_and_the_report_carries_no_justification(
    connect, alice
):
    keep(connect, SITES, actor=alice, expires=dt.date(2027, 1, 31))

    assert verdicts(connect, today=dt.date(2027, 1, 31))[SITES_KEY][0] == "needed"
    assert verdicts(connect, today=dt.date(2027, 2, 1))[SITES_KEY] == ("unexplained", None)


def test_a_justification_names_one_consent_type(connect, alice):
    keep(connect, USER_READ_ADMIN, actor=alice)

    found = verdicts(connect)
    assert found[("User.Read", "delegated", "admin")][0] == "needed"
    assert found[("User.Read", "delegated", "user")] == ("unexplained", None)


def test_a_justification_outlives_its_service_principal_being_created_again(
    contoso, connect, alice
):
    keep(connect, SITES, actor=alice)
    ServicePrincipal.objects.filter(pk=connect.pk).update(removed_at=dt.datetime.now(dt.UTC))
    again = ServicePrincipalFactory(
        tenant=contoso, app_id=connect.app_id, display_name="247connect"
    )
    GrantFactory(client=again, value="Sites.Read.All", first_seen_run=contoso.last_good_sync)

    report = tenant_report(tenant=contoso, app_id=connect.app_id, today=TODAY)
    by_client = {app.service_principal_id: app for app in report.applications}
    assert by_client[again.object_id].grants[0].verdict.value == "needed"


def test_a_justification_counts_only_in_its_own_tenant(connect, alice):
    keep(connect, SITES, actor=alice)
    fabrikam = TenantFactory(name="Fabrikam")
    run = SyncRunFactory(tenant=fabrikam, status=SyncRun.Status.SUCCEEDED)
    elsewhere = ServicePrincipalFactory(tenant=fabrikam, app_id=connect.app_id)
    GrantFactory(client=elsewhere, value="Sites.Read.All", first_seen_run=run)

    report = tenant_report(tenant=fabrikam, today=TODAY)
    assert report.applications[0].grants[0].verdict.value == "unexplained"


def test_the_stored_findings_count_a_justified_grant_as_needed_once_it_is_justified(
    contoso, connect, alice
):
    findings_refresh(tenant=contoso)
    before = ApplicationFinding.objects.get(service_principal=connect)
    keep(connect, SITES, USER_READ_USERS, actor=alice, today=None)

    after = ApplicationFinding.objects.get(service_principal=connect)
    assert (before.needed, before.unexplained) == (1, 3)
    # Counted as of today, when a justification made with the default term is in force;
    # stored by the justification itself, in its transaction.
    assert (after.needed, after.unexplained) == (3, 1)
    assert contoso.finding_summary.needed == 3


def test_removing_a_justification_stores_the_grant_as_unexplained_again(contoso, connect, alice):
    keep(connect, SITES, actor=alice, today=None)

    justifications_remove(tenant=contoso, app_id=connect.app_id, slots=[SITES], actor=alice)

    assert ApplicationFinding.objects.get(service_principal=connect).unexplained == 3


def test_switching_a_feature_off_does_not_make_a_justified_grant_unused(connect, alice):
    keep(connect, DEVICES, actor=alice, today=None)

    preview = features_preview(tenant=connect.tenant, service_principal=connect, enabled=set())

    assert preview.to_unused == []


def test_a_bulk_revoke_leaves_justified_grants_alone(connect, alice):
    keep(connect, SITES, MAIL, actor=alice, today=None)

    candidates = {c.slot for c in revoke_bulk_candidates(tenant=connect.tenant, client=connect)}

    assert candidates == {USER_READ_ADMIN, USER_READ_USERS}


# --- justifying ----------------------------------------------------------------------------


def test_the_default_expiry_is_one_term_from_today(connect, alice, settings):
    settings.JUSTIFICATION_DAYS = 90

    [justification] = keep(connect, SITES, actor=alice)

    assert justification.expires == TODAY + dt.timedelta(days=90)


def test_several_grants_are_justified_at_once_with_one_reason(connect, alice):
    kept = keep(connect, SITES, MAIL, USER_READ_USERS, actor=alice)

    assert {slot for slot in (SITES, MAIL, USER_READ_USERS)} == {
        GrantSlot(str(j.resource_app_id), j.kind, j.value, j.consent) for j in kept
    }
    assert AuditEvent.objects.filter(action=AuditEvent.Action.JUSTIFIED).count() == 3


def test_several_grants_are_all_or_nothing(connect, alice):
    unknown = GrantSlot(GRAPH, "application", "Files.Read.All", "admin")

    with pytest.raises(JustificationError):
        keep(connect, SITES, unknown, actor=alice)

    assert not Justification.objects.exists()


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        (
            {"expires": dt.date(2026, 11, 30)},
            "the expiry 2026-11-30 is in the past (today is 2026-12-01)",
        ),
        (
            {"expires": dt.date(2027, 12, 2)},
            "the expiry 2027-12-02 is more than 365 days away (JUSTIFICATION_MAX_DAYS); "
            "the latest is 2027-12-01",
        ),
        ({"reason": "  \n\t "}, "a reason is required: say why the grant is kept"),
        ({"reason": "x" * 1001}, "the reason has 1001 characters; at most 1000 are kept"),
        (
            {"never": True},
            "a justification must expire within 365 days (JUSTIFICATION_MAX_DAYS); pick a date",
        ),
    ],
    ids=["past", "beyond-maximum", "empty-reason", "long-reason", "never-with-a-maximum"],
)
def test_bad_input_gets_a_one_line_error_and_changes_nothing(connect, alice, fields, error):
    with pytest.raises(JustificationError) as raised:
        keep(connect, SITES, actor=alice, **fields)

    assert str(raised.value) == error
    assert not Justification.objects.exists() and not AuditEvent.objects.exists()


def test_a_grant_the_application_does_not_hold_cannot_be_justified(connect, alice):
    unknown = GrantSlot(GRAPH, "application", "Files.Read.All", "admin")

    with pytest.raises(JustificationError) as raised:
        keep(connect, unknown, actor=alice)

    assert str(raised.value) == (
        "247connect does not hold Files.Read.All (application, admin consent) in Contoso"
    )


def test_a_grant_removed_by_the_last_good_sync_cannot_be_justified(connect, alice):
    removed = SyncRunFactory(tenant=connect.tenant, status=SyncRun.Status.SUCCEEDED)
    connect.grants.filter(value="Sites.Read.All").update(removed_in_run=removed)

    with pytest.raises(JustificationError, match="does not hold Sites.Read.All"):
        keep(connect, SITES, actor=alice)


def test_today_and_the_last_allowed_day_are_accepted(connect, alice):
    [today] = keep(connect, SITES, actor=alice, expires=TODAY)
    [latest] = keep(connect, MAIL, actor=alice, expires=TODAY + dt.timedelta(days=365))

    assert (today.expires, latest.expires) == (TODAY, dt.date(2027, 12, 1))


def test_without_a_maximum_a_justification_may_never_expire(connect, alice, settings):
    settings.JUSTIFICATION_MAX_DAYS = 0

    [forever] = keep(connect, SITES, actor=alice, never=True)
    [far] = keep(connect, MAIL, actor=alice, expires=dt.date(2040, 1, 1))

    assert (forever.expires, far.expires) == (None, dt.date(2040, 1, 1))
    assert verdicts(connect, today=dt.date(2100, 1, 1))[SITES_KEY][1].expires is None


def test_the_reviewer_must_be_a_user_of_the_tenant(connect, alice, bob, charlie):
    [kept] = keep(connect, SITES, actor=alice, reviewer=bob)
    assert kept.reviewer == bob

    with pytest.raises(JustificationError) as raised:
        keep(connect, MAIL, actor=alice, reviewer=charlie)
    assert str(raised.value) == "charlie is not a user of Contoso, so cannot review it"


def test_the_tenants_users_are_those_with_a_portal_role_there(contoso, alice, bob, charlie):
    UserFactory(username="erin", entra_tenant_id=str(contoso.tenant_id), entra_roles=[])

    assert [user.username for user in tenant_users(contoso)] == ["alice", "bob"]


def test_control_characters_leave_the_reason_and_line_breaks_stay(connect, alice):
    [kept] = keep(connect, SITES, actor=alice, reason=" Search\x1b[31m\nindexes it\x00 ")

    assert kept.reason == "Search[31m\nindexes it"


def test_justifying_a_justified_grant_changes_it_and_asks_for_a_review_again(connect, alice, bob):
    [first] = keep(connect, SITES, actor=alice, expires=dt.date(2027, 1, 1))
    Justification.objects.filter(pk=first.pk).update(reminded_at=dt.datetime.now(dt.UTC))

    [second] = keep(connect, SITES, actor=alice, reason="Search, and the archive.", reviewer=bob)

    second.refresh_from_db()
    assert second.pk == first.pk and second.reason == "Search, and the archive."
    assert (second.reviewer, second.reminded_at) == (bob, None)
    changed = AuditEvent.objects.get(action=AuditEvent.Action.JUSTIFICATION_CHANGED)
    assert changed.details["before"] == {
        "reason": "The intranet search indexes every site.",
        "expires": "2027-01-01",
    }


def test_one_justification_per_grant_whatever_the_case_of_its_value(connect, alice):
    [kept] = keep(connect, SITES, actor=alice)

    with pytest.raises(IntegrityError), transaction.atomic():
        Justification.objects.create(
            tenant=kept.tenant,
            app_id=kept.app_id,
            resource_app_id=kept.resource_app_id,
            kind=kept.kind,
            value="sites.read.all",
            consent=kept.consent,
            reason="again",
            by_name="alice",
        )


def test_the_command_line_says_who_it_was(connect):
    [anonymous] = keep(connect, SITES)
    [named] = keep(connect, MAIL, by_name="Oscar (ops)")

    assert (anonymous.by_name, named.by_name) == ("the command line", "Oscar (ops)")


# --- another term, removing, the audit trail ------------------------------------------------


def test_an_admin_keeps_a_justification_another_term(connect, alice, bob):
    [kept] = keep(connect, SITES, expires=dt.date(2027, 1, 1))
    Justification.objects.filter(pk=kept.pk).update(reminded_at=dt.datetime.now(dt.UTC))
    kept.refresh_from_db()

    extended = justification_extend(justification=kept, actor=alice, today=dt.date(2027, 1, 5))

    assert extended.expires == dt.date(2028, 1, 5)
    assert (extended.by, extended.by_name, extended.reminded_at) == (alice, "Alice (alice)", None)
    event = AuditEvent.objects.get(action=AuditEvent.Action.JUSTIFICATION_EXTENDED)
    assert event.actor == alice
    assert event.details["before"] == {"expires": "2027-01-01", "by": "the command line"}
    assert event.details["expires"] == "2028-01-05"


def test_its_reviewer_may_keep_it_another_term_though_only_a_reader(connect, alice, bob):
    [kept] = keep(connect, SITES, actor=alice, reviewer=bob)

    assert justification_extend(justification=kept, actor=bob, today=TODAY).by == bob


def test_another_reader_may_not_keep_it(connect, alice, bob):
    [kept] = keep(connect, SITES, actor=alice)

    with pytest.raises(PermissionDenied):
        justification_extend(justification=kept, actor=bob, today=TODAY)


def test_a_justification_that_never_expires_needs_no_other_term(connect, alice, settings):
    settings.JUSTIFICATION_MAX_DAYS = 0
    [kept] = keep(connect, SITES, actor=alice, never=True)

    with pytest.raises(JustificationError, match="never expires"):
        justification_extend(justification=kept, actor=alice)


def test_removing_a_justification_makes_the_grant_unexplained_again(connect, alice):
    keep(connect, SITES, actor=alice)

    removed = justifications_remove(
        tenant=connect.tenant, app_id=connect.app_id, slots=[SITES], actor=alice
    )
    again = justifications_remove(
        tenant=connect.tenant, app_id=connect.app_id, slots=[SITES], actor=alice
    )

    assert [j.value for j in removed] == ["Sites.Read.All"] and again == []
    assert verdicts(connect)[SITES_KEY] == ("unexplained", None)
    event = AuditEvent.objects.get(action=AuditEvent.Action.JUSTIFICATION_REMOVED)
    assert (event.actor, event.target) == (alice, "Sites.Read.All (application) of 247connect")


def test_each_justification_is_an_audit_event_that_says_it_all(connect, alice, bob):
    keep(connect, USER_READ_USERS, actor=alice, reviewer=bob, expires=dt.date(2027, 3, 1))

    event = AuditEvent.objects.get(action=AuditEvent.Action.JUSTIFIED)
    assert (event.tenant, event.actor, event.actor_name) == (connect.tenant, alice, "Alice (alice)")
    assert event.target == "User.Read (delegated, user consents) of 247connect"
    assert event.details == {
        "app_id": str(connect.app_id),
        "resource_app_id": GRAPH,
        "permission": "User.Read",
        "type": "delegated",
        "consent": "user",
        "reason": "The intranet search indexes every site.",
        "by": "Alice (alice)",
        "expires": "2027-03-01",
        "reviewer": "bob",
    }


# --- settings -------------------------------------------------------------------------------
