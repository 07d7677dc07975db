"""The review e-mail, with time travel: a justification made on 1 December 2026 for a year
is mailed about a week before it expires, once, to its reviewer (or the tenant's admins),
with a "keep another term" and a "revoke" link that land on a confirmation; expired, the
grant is unexplained again; kept another term, it is mailed about again a year on."""

import datetime as dt
from smtplib import SMTPRecipientsRefused
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.utils import timezone

from digests.reviews import (
    justification_review_send,
    justification_reviews_due,
    justification_reviews_queue,
)
from digests.tasks import send_justification_reviews
from tenants.justifications import justification_extend, justifications_set
from tenants.models import AuditEvent, Justification, ServicePrincipal, SyncRun, Tenant
from tenants.report import tenant_report
from tenants.slots import GrantSlot
from tests.factories import (
    GrantFactory,
    ServicePrincipalFactory,
    SyncRunFactory,
    TenantFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

GRAPH = "00000003-0000-0000-c000-000000000000"
SITES = GrantSlot(GRAPH, "application", "Sites.Read.All", "admin")
FILES = GrantSlot(GRAPH, "application", "Files.Read.All", "admin")
MADE = dt.date(2026, 12, 1)
EXPIRES = dt.date(2027, 12, 1)


def at(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(6, 30), tzinfo=dt.UTC)


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
def search(contoso) -> ServicePrincipal:
    sp = ServicePrincipalFactory(tenant=contoso, display_name="Intranet search")
    for value in ("Sites.Read.All", "Files.Read.All"):
        GrantFactory(client=sp, value=value, first_seen_run=contoso.last_good_sync)
    return sp


def keep(sp: ServicePrincipal, *slots: GrantSlot, **fields) -> list[Justification]:
    return justifications_set(
        tenant=sp.tenant,
        client=sp,
        slots=list(slots or [SITES]),
        reason="Search indexes every site.",
        actor=fields.pop("actor", None),
        today=MADE,
        **fields,
    )


def send_due(day: dt.date) -> list[str]:
    return [
        justification_review_send(justification_ids=ids, now=at(day))
        for ids in justification_reviews_due(today=day)
    ]


def test_the_reviewer_is_asked_a_week_before_it_expires_and_once(search, alice, bob, mailoutbox):
    [justification] = keep(search, actor=alice, reviewer=bob)

    assert send_due(EXPIRES - dt.timedelta(days=8)) == []
    assert send_due(EXPIRES - dt.timedelta(days=7)) == ["sent"]
    assert send_due(EXPIRES - dt.timedelta(days=6)) == []
    assert send_due(EXPIRES + dt.timedelta(days=30)) == []

    [mail] = mailoutbox
    assert mail.to == ["bob@contoso.example"]
    assert mail.subject == (
        "[Permission Portal] Contoso: keep Sites.Read.All of Intranet search, or revoke it?"
    )
    assert mail.extra_headers["Auto-Submitted"] == "auto-generated"
    page = f"{settings.PORTAL_URL}/tenants/{search.tenant.tenant_id}/applications/{search.app_id}/"
    assert f"Keep it another term: {page}?review={justification.pk}&do=keep#review" in mail.body
    assert f"Revoke it: {page}?review={justification.pk}&do=revoke#review" in mail.body
    assert "Kept because: Search indexes every site." in mail.body
    assert "expires 2027-12-01" in mail.body
    assert "you were named the reviewer" in mail.body
    html = mail.alternatives[0][0]
    assert f'href="{page}?review={justification.pk}&amp;do=keep#review"' in html
    justification.refresh_from_db()
    assert justification.reminded_at == at(EXPIRES - dt.timedelta(days=7))
    event = AuditEvent.objects.get(action=AuditEvent.Action.JUSTIFICATION_REVIEW)
    assert event.actor is None and event.details["asked"] == "reviewer"


def test_once_expired_the_grant_is_unexplained_and_a_late_mail_says_it_expired(
    search, alice, mailoutbox
):
    keep(search, actor=alice)

    def verdict(day: dt.date) -> str:
        report = tenant_report(tenant=search.tenant, app_id=search.app_id, today=day)
        return next(g.verdict for g in report.applications[0].grants if g.permission == SITES.value)

    assert verdict(EXPIRES) == "needed"
    assert verdict(EXPIRES + dt.timedelta(days=1)) == "unexplained"
    # Beat was down all week: the first run after the expiry still asks.
    assert send_due(EXPIRES + dt.timedelta(days=3)) == ["sent"]
    assert "expired 2027-12-01" in mailoutbox[0].body


def test_kept_another_term_it_is_mailed_about_again_at_its_new_expiry(
    search, alice, bob, mailoutbox
):
    [justification] = keep(search, actor=alice, reviewer=bob)
    send_due(EXPIRES - dt.timedelta(days=7))
    justification.refresh_from_db()

    extended = justification_extend(justification=justification, actor=bob, today=EXPIRES)

    assert extended.expires == dt.date(2028, 11, 30) and extended.reminded_at is None
    assert send_due(EXPIRES + dt.timedelta(days=1)) == []
    assert send_due(dt.date(2028, 11, 23)) == ["sent"]
    assert len(mailoutbox) == 2


def test_a_duplicated_task_sends_nothing_twice(search, alice, bob, mailoutbox):
    keep(search, actor=alice, reviewer=bob)
    [ids] = justification_reviews_due(today=EXPIRES)

    first = justification_review_send(justification_ids=ids, now=at(EXPIRES))
    second = justification_review_send(justification_ids=ids, now=at(EXPIRES))

    assert (first, second) == ("sent", "already sent")
    assert len(mailoutbox) == 1


def test_without_a_reviewer_the_tenants_admins_are_asked(search, alice, bob, mailoutbox):
    UserFactory(
        username="dora",
        email="dora@contoso.example",
        entra_tenant_id=str(search.tenant.tenant_id),
        entra_roles=["Portal.Admin"],
    )
    keep(search, actor=alice)

    send_due(EXPIRES)

    [mail] = mailoutbox
    assert sorted(mail.to) == ["alice@contoso.example", "dora@contoso.example"]
    assert "you are an admin of Contoso" in mail.body


def test_a_reviewer_who_lost_their_role_is_replaced_by_the_admins(search, alice, bob, mailoutbox):
    keep(search, actor=alice, reviewer=bob)
    bob.entra_roles = []
    bob.save()

    send_due(EXPIRES)

    assert mailoutbox[0].to == ["alice@contoso.example"]


def test_several_justifications_of_one_application_make_one_e_mail(search, alice, bob, mailoutbox):
    keep(search, SITES, FILES, actor=alice, reviewer=bob)

    assert send_due(EXPIRES) == ["sent"]

    [mail] = mailoutbox
    assert mail.subject == (
        "[Permission Portal] Contoso: keep 2 permissions of Intranet search, or revoke them?"
    )
    assert mail.body.count("Keep it another term: ") == 2


def test_each_application_and_reviewer_gets_its_own_e_mail(contoso, search, alice, bob, mailoutbox):
    keep(search, SITES, actor=alice, reviewer=bob)
    keep(search, FILES, actor=alice)
    other = ServicePrincipalFactory(tenant=contoso, display_name="Backup")
    GrantFactory(client=other, value="Sites.Read.All", first_seen_run=contoso.last_good_sync)
    keep(other, SITES, actor=alice, reviewer=bob)

    assert send_due(EXPIRES) == ["sent", "sent", "sent"]
    assert sorted(m.to[0] for m in mailoutbox) == [
        "alice@contoso.example",
        "bob@contoso.example",
        "bob@contoso.example",
    ]


def test_a_grant_revoked_meanwhile_is_not_reviewed(contoso, search, alice, mailoutbox):
    keep(search, actor=alice)
    gone = SyncRunFactory(tenant=contoso, status=SyncRun.Status.SUCCEEDED)
    search.grants.filter(value=SITES.value).update(removed_in_run=gone)

    assert send_due(EXPIRES) == []
    assert mailoutbox == []


def test_nobody_to_ask_leaves_it_for_tomorrow(search, mailoutbox):
    [justification] = keep(search)

    assert send_due(EXPIRES) == ["no recipient"]

    justification.refresh_from_db()
    assert justification.reminded_at is None and mailoutbox == []


def test_a_refused_e_mail_is_claimed_again_by_the_retry(search, alice, monkeypatch, mailoutbox):
    [justification] = keep(search, actor=alice)
    [ids] = justification_reviews_due(today=EXPIRES)

    def refuse(message: EmailMultiAlternatives, fail_silently: bool = False) -> int:
        raise SMTPRecipientsRefused({"alice@contoso.example": (450, b"mailbox busy")})

    with monkeypatch.context() as patch:
        patch.setattr(EmailMultiAlternatives, "send", refuse)
        with pytest.raises(SMTPRecipientsRefused):
            justification_review_send(justification_ids=ids, now=at(EXPIRES))

    justification.refresh_from_db()
    assert justification.reminded_at is None
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.JUSTIFICATION_REVIEW).exists()
    assert justification_review_send(justification_ids=ids, now=at(EXPIRES)) == "sent"
    assert len(mailoutbox) == 1


def test_a_paused_tenant_is_not_mailed_about(contoso, search, alice, mailoutbox):
    keep(search, actor=alice)
    Tenant.objects.filter(pk=contoso.pk).update(status=Tenant.Status.PAUSED)

    assert send_due(EXPIRES) == []


def test_a_hostile_display_name_stays_on_the_subject_line(search, alice, mailoutbox):
    ServicePrincipal.objects.filter(pk=search.pk).update(display_name="Search\r\nBcc: eve@x")
    keep(search, actor=alice)

    send_due(EXPIRES)

    assert mailoutbox[0].subject.endswith("of Search Bcc: eve@x, or revoke it?")
    assert "\n" not in mailoutbox[0].subject


def test_the_link_opens_the_confirmation_for_the_reviewer(search, alice, bob, client, mailoutbox):
    [justification] = keep(search, actor=alice, reviewer=bob)
    send_due(EXPIRES)
    link = next(line for line in mailoutbox[0].body.splitlines() if "do=keep" in line)
    client.force_login(bob)

    target = urlsplit(link.split(": ", 1)[1])
    response = client.get(f"{target.path}?{target.query}")

    html = response.content.decode()
    assert response.status_code == 200 and 'id="review"' in html
    assert "Keep it another term</button>" in html and "Request the revoke</button>" in html


def test_the_daily_task_queues_one_e_mail_task_per_group(
    search, alice, monkeypatch, django_capture_on_commit_callbacks
):
    # Made today for three days: due at once.
    justifications_set(
        tenant=search.tenant,
        client=search,
        slots=[SITES, FILES],
        reason="Until the migration ends.",
        actor=alice,
        expires=timezone.localdate() + dt.timedelta(days=3),
    )
    sent: list[list[int]] = []
    monkeypatch.setattr("digests.tasks.send_justification_review.delay", sent.append)

    with django_capture_on_commit_callbacks(execute=True):
        assert send_justification_reviews() == 1

    assert sorted(sent[0]) == sorted(Justification.objects.values_list("pk", flat=True))


def test_beat_runs_the_reviews_every_morning():
    entry = settings.CELERY_BEAT_SCHEDULE["justification-reviews"]

    assert entry["task"] == "digests.tasks.send_justification_reviews"
    assert (entry["schedule"].hour, entry["schedule"].minute) == ({6}, {30})


def test_the_queue_looks_no_further_than_the_review_days(search, alice, settings):
    settings.JUSTIFICATION_REVIEW_DAYS = 0
    keep(search, actor=alice)

    assert justification_reviews_queue(today=EXPIRES - dt.timedelta(days=1)) == 0
    assert justification_reviews_due(today=EXPIRES) != []


def test_reviews_are_kept_apart_by_tenant(search, alice, mailoutbox):
    keep(search, actor=alice)
    fabrikam = TenantFactory(name="Fabrikam")
    UserFactory(
        username="charlie",
        email="charlie@fabrikam.example",
        entra_tenant_id=str(fabrikam.tenant_id),
        entra_roles=["Portal.Admin"],
    )

    send_due(EXPIRES)

    assert [m.to for m in mailoutbox] == [["alice@contoso.example"]]
