"""Tenant isolation, on every URL the portal serves.

Walks the whole URLconf (but the Django admin and allauth's accounts/ pages) and requests
each URL, with its arguments filled from tenant A (Contoso): the tenant id, a run, an
application, a catalog permission. A URL with an argument this test cannot fill fails
here, so a new page is covered the day it is added.

- Signed out: every URL sends the visitor to sign in.
- Outsiders (charlie, an admin of Fabrikam; erin, of Contoso but with no portal role):
  each of A's tenant-scoped URLs answers exactly as for a tenant that does not exist
  (404; 405 for a method the view never accepts), and no answer of any URL shows A's data.
  charlie gets 404 too for A's runs and applications under his own tenant's id.
- A reader of A (bob): every GET of A's pages is 200; every POST the portal accepts is 403,
  but asking for a revoke, which only makes a request that waits for an admin's approval.
- An admin of A (alice): those POSTs are accepted, but uploading a manifest, which is
  portal-wide and for operators (403).
"""

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.conf import settings
from django.contrib.messages import get_messages
from django.shortcuts import resolve_url
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from digests.models import Subscription
from permissions.models import MICROSOFT_GRAPH_APP_ID, Permission
from tenants.audit import audit_record
from tenants.models import (
    AuditEvent,
    HeldSnapshot,
    Justification,
    RevokeRequest,
    ServicePrincipal,
    SyncRun,
    Tenant,
)
from tenants.snapshot import Snapshot, snapshot_dump
from tests.factories import (
    FeatureFactory,
    GrantFactory,
    PermissionFactory,
    RequirementFactory,
    RevokeRequestFactory,
    ServicePrincipalFactory,
    SyncRunFactory,
)

pytestmark = pytest.mark.django_db

# Not the portal's own pages: Django admin (staff only, its own rules), allauth's
# sign-in flow (before anyone is signed in) and the health check (public by design, shows
# no tenant's data: tests/portal/test_security.py).
SKIPPED: tuple[str, ...] = ("admin/", "accounts/", "healthz")
# The outbox is staff only, as Django admin; the unsubscribe link is opened signed out from
# an e-mail, its signature the credential (both: tests/digests/test_views.py).
SKIPPED += ("outbox/", "unsubscribe/")
# The URLs that change state: the only ones that accept a POST.
WRITES = {
    "tenants:sync-now",
    "tenants:features-save",
    "tenants:revoke-create",
    "tenants:grant-create",
    "tenants:revoke-approve",
    "tenants:revoke-deny",
    "tenants:revoke-cancel",
    "tenants:revoke-undo",
    "tenants:revoke-undo-all",
    "tenants:revoke-unused",
    "tenants:revoke-unused-application",
    "tenants:run-apply",
    "tenants:run-discard",
    "tenants:justify",
    "tenants:justify-extend",
    "tenants:justify-remove",
    "digests:subscription-save",
    "permissions:manifest-upload",
}
# Of those, what only operators and superusers may do: a manifest is portal-wide.
OPERATOR_WRITES = {"permissions:manifest-upload"}
# Of those, what a reader may do too: ask for a revoke, or for a missing permission's grant,
# which then waits for an admin.
READER_WRITES = {"tenants:revoke-create", "tenants:grant-create"}
# Writes that change only the user's own settings, which readers may do too.
PERSONAL_WRITES = {"digests:subscription-save"}
# The revoke request each URL acts on: Undo needs a succeeded revoke, the rest a request
# that waits for approval (whose status page still polls: 200).
SUCCEEDED_REVOKE_FOR = {"tenants:revoke-undo"}
# The run each URL acts on: Apply and Discard need a held run, the rest the open one.
HELD_RUN_FOR = {"tenants:run-apply", "tenants:run-discard"}
# Where Entra sends an administrator back after admin consent: a request without the
# state the portal signed for this user is refused (400), whoever asks.
NEEDS_SIGNED_STATE = {"tenants:connect-callback"}
# Shown only to those who may see tenant A.
MARKERS = ("Payroll Robot 7F3A", "contoso-marker.onmicrosoft.com", "Graph marker error")


@dataclass(frozen=True)
class Route:
    name: str
    route: str
    params: frozenset[str]

    @property
    def tenant_scoped(self) -> bool:
        return "tenant_id" in self.params


def routes() -> Iterator[Route]:
    yield from _walk(get_resolver(), prefix="", namespace="", params=frozenset())


def _walk(
    resolver: URLResolver, *, prefix: str, namespace: str, params: frozenset[str]
) -> Iterator[Route]:
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if route.startswith(SKIPPED):
            continue
        here = params | _params(entry)
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _walk(entry, prefix=route, namespace=inner, params=here)
        else:
            assert isinstance(entry, URLPattern)
            assert entry.name, f"{route}: give it a name, so that it can be reversed and tested"
            yield Route(f"{namespace}{entry.name}", route, here)


def _params(entry: URLPattern | URLResolver) -> frozenset[str]:
    converters = getattr(entry.pattern, "converters", {})
    return frozenset(converters) | frozenset(entry.pattern.regex.groupindex)


ROUTES = list(routes())


@dataclass(frozen=True)
class World:
    contoso: Tenant
    fabrikam: Tenant
    run: SyncRun
    held: SyncRun
    client_app: ServicePrincipal
    permission: Permission
    # What the application's enabled feature lists and it does not hold: a grant's.
    missing: Permission
    feature_key: str
    pending: RevokeRequest
    succeeded: RevokeRequest

    def kwargs(self, route: Route, *, tenant_id: uuid.UUID | None = None) -> dict[str, object]:
        """``route``'s arguments from tenant A (or under another tenant's id)."""
        known = {
            "tenant_id": tenant_id or self.contoso.tenant_id,
            "run_id": (self.held if route.name in HELD_RUN_FOR else self.run).pk,
            "app_id": self.client_app.app_id,
            "pk": self.permission.pk,
            "revoke_id": (
                self.succeeded if route.name in SUCCEEDED_REVOKE_FOR else self.pending
            ).pk,
        }
        unknown = route.params - known.keys()
        assert not unknown, (
            f"{route.route}: the isolation test cannot fill {sorted(unknown)}; teach "
            "World.kwargs which of tenant A's objects to use"
        )
        return {name: known[name] for name in route.params}

    def url(self, route: Route, **kwargs: uuid.UUID | None) -> str:
        return reverse(route.name, kwargs=self.kwargs(route, **kwargs))


@pytest.fixture
def world(monkeypatch, contoso, fabrikam) -> World:
    monkeypatch.setattr("tenants.tasks.sync_tenant.delay", lambda run_id: None)
    monkeypatch.setattr("tenants.tasks.execute_revoke.delay", lambda revoke_id: None)
    Tenant.objects.filter(pk=contoso.pk).update(default_domain="contoso-marker.onmicrosoft.com")
    good = SyncRunFactory(tenant=contoso, succeeded=True, last_good=True)
    SyncRunFactory(tenant=contoso, failed=True, error="Graph marker error")
    # A sync held for review, its snapshot (empty) waiting to be applied or discarded.
    held = SyncRunFactory(
        tenant=contoso,
        status=SyncRun.Status.HELD,
        started_at=timezone.now(),
        finished_at=timezone.now(),
    )
    HeldSnapshot.objects.create(run=held, data=snapshot_dump(Snapshot()), current_grants=3)
    # An open run: its status page polls (200), and Sync now finds it (no second run).
    run = SyncRunFactory(tenant=contoso, running=True)
    feature = FeatureFactory(key="payroll-sync")
    client_app = ServicePrincipalFactory(
        tenant=contoso, app_id=feature.application.app_id, display_name="Payroll Robot 7F3A"
    )
    permission = PermissionFactory(value="Payroll.Read.All")
    missing = PermissionFactory(value="Payroll.Export.All")
    RequirementFactory(feature=feature, permission_value=missing.value)
    ServicePrincipalFactory(tenant=contoso, app_id=MICROSOFT_GRAPH_APP_ID, display_name="Graph")
    GrantFactory(client=client_app, value=permission.value, first_seen_run=good)
    # A reader asked to revoke another of its grants; a third one is revoked already.
    asked = GrantFactory(client=client_app, value="Payroll.Write.All", first_seen_run=good)
    pending = RevokeRequestFactory(client=client_app, value=asked.value, pending_approval=True)
    gone = GrantFactory(client=client_app, value="Payroll.Delete.All", first_seen_run=good)
    succeeded = RevokeRequestFactory(client=client_app, value=gone.value, succeeded=True)
    audit_record(
        tenant=contoso, action=AuditEvent.Action.REVOKE_SUCCEEDED, target="Payroll Robot 7F3A"
    )
    # An admin's reason for keeping the grant the writes name, expired yesterday (so a
    # revoke needs no confirmation): kept another term, changed, removed.
    Justification.objects.create(
        tenant=contoso,
        app_id=client_app.app_id,
        resource_app_id=MICROSOFT_GRAPH_APP_ID,
        kind="application",
        value=permission.value,
        consent="admin",
        reason="Payroll Robot 7F3A pays everyone",
        by_name="alice",
        expires=timezone.localdate() - dt.timedelta(days=1),
    )
    fabrikam_run = SyncRunFactory(tenant=fabrikam, succeeded=True)
    GrantFactory(client=ServicePrincipalFactory(tenant=fabrikam), first_seen_run=fabrikam_run)
    contoso.refresh_from_db()
    return World(
        contoso,
        fabrikam,
        run,
        held,
        client_app,
        permission,
        missing,
        feature.key,
        pending,
        succeeded,
    )


def posted_value(world: World, url: str) -> str:
    """The permission a write names: the missing one for a grant, else the held one."""
    return world.missing.value if url.endswith("/grant/") else world.permission.value


def post(client: Client, world: World, url: str):  # a test response
    # Every write's fields at once: feature switches, and the grant a revoke names.
    return client.post(
        url,
        {
            "enabled": [world.feature_key],
            "resource_app_id": MICROSOFT_GRAPH_APP_ID,
            "kind": "application",
            "value": posted_value(world, url),
            "consent": "admin",
            "frequency": "daily",
            "reason": "Payroll runs on it",
        },
    )


def shows_tenant_a(response) -> list[str]:
    # getvalue(): the exports are streamed, and their whole body is what counts.
    content = response.getvalue().decode(errors="replace")
    return [marker for marker in MARKERS if marker in content]


by_name = pytest.mark.parametrize("route", ROUTES, ids=[route.name for route in ROUTES])
# URLs naming one of tenant A's objects (a run, an application) besides the tenant.
WITH_OBJECTS = [r for r in ROUTES if r.tenant_scoped and r.params != {"tenant_id"}]


def test_the_walk_finds_the_portals_pages():
    names = {route.name for route in ROUTES}
    assert {
        "tenants:dashboard",
        "permissions:catalog",
        "tenants:tenant-detail",
        "tenants:application",
        *WRITES,
    } <= names
    assert {"tenants:run-detail", "tenants:application"} <= {r.name for r in WITH_OBJECTS}
    assert not any(route.route.startswith(SKIPPED) for route in ROUTES)


@by_name
def test_signed_out_visitors_are_sent_to_sign_in(world, route):
    url = world.url(route)
    login = resolve_url(settings.LOGIN_URL)
    for response in (Client().get(url), post(Client(), world, url)):
        assert response.status_code == 302, url
        assert response["Location"].startswith(f"{login}?next="), url


@by_name
@pytest.mark.parametrize("outsider", ["charlie", "erin"])
def test_outsiders_find_nothing_of_another_tenant(world, route, outsider, request):
    client = request.getfixturevalue(f"{outsider}_client")
    url = world.url(route)
    responses = {"GET": client.get(url), "POST": post(client, world, url)}
    for method, response in responses.items():
        assert response.status_code < 500, (method, url)
        assert not shows_tenant_a(response), (method, url, shows_tenant_a(response))
    if not route.tenant_scoped:
        return
    nowhere = world.url(route, tenant_id=uuid.uuid4())
    unknown = {"GET": client.get(nowhere), "POST": post(client, world, nowhere)}
    for method, response in responses.items():
        # Exactly as if tenant A did not exist: nothing tells them it does.
        assert response.status_code == unknown[method].status_code, (method, url)
        assert response.status_code in (404, 405), (method, url)
    assert 404 in {response.status_code for response in responses.values()}, url


@pytest.mark.parametrize("route", WITH_OBJECTS, ids=[route.name for route in WITH_OBJECTS])
def test_an_admin_finds_nothing_of_another_tenant_under_their_own(world, route, charlie_client):
    client = charlie_client
    url = world.url(route, tenant_id=world.fabrikam.tenant_id)

    statuses = {client.get(url).status_code, post(client, world, url).status_code}

    assert statuses <= {404, 405} and 404 in statuses, url


@by_name
def test_a_reader_reads_everything_and_changes_nothing(world, route, bob_client):
    client = bob_client
    url = world.url(route)

    read = client.get(url)
    write = post(client, world, url)

    if route.name in PERSONAL_WRITES:
        assert write.status_code == 302, url
        assert Subscription.objects.filter(tenant=world.contoso).exists(), url
        return
    if route.name in READER_WRITES:
        assert write.status_code in (200, 302), url
        asked = RevokeRequest.objects.get(value=posted_value(world, url))
        assert asked.status == RevokeRequest.Status.PENDING_APPROVAL, url
        return
    if route.name in WRITES:
        assert write.status_code == 403, url
        return
    if route.tenant_scoped:
        assert read.status_code == 200, url
    if route.name in NEEDS_SIGNED_STATE:
        assert read.status_code == 400, url
    else:
        assert read.status_code < 400, url
    assert_read_only(read, write, url)


@by_name
def test_an_admin_may_change_their_tenant(world, route, alice_client):
    client = alice_client
    url = world.url(route)

    response = post(client, world, url)

    if route.name in OPERATOR_WRITES:
        assert response.status_code == 403, url
    elif route.name in WRITES:
        assert response.status_code in (200, 302), url
        # A refused write says so in a message on the page it sends the admin back to.
        errors = [m for m in get_messages(response.wsgi_request) if m.level_tag == "error"]
        assert not errors, (url, [str(m) for m in errors])
    else:
        assert_read_only(client.get(url), response, url)


def assert_read_only(read, write, url: str) -> None:  # read, write: test responses
    """A read refuses a POST, or answers it exactly as the GET: WRITES are then every way
    to change state, and a reader's 403 on each of them covers them all."""
    if write.status_code == 405:
        return
    assert (write.status_code, write.get("Location")) == (read.status_code, read.get("Location")), (
        url
    )
