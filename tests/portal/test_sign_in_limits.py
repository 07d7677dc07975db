"""Sign-in limits that hold: per client address behind trusted proxies only, counted in the
shared cache, and a lock on a Django admin user name after repeated failed passwords."""

import uuid

import pytest
from django.core.cache import caches
from django.test import RequestFactory
from django.urls import reverse

from portal.middleware import client_ip
from tests.portal.helpers import ROOT_PASSWORD as PASSWORD

pytestmark = pytest.mark.django_db

ADMIN_LOGIN = "admin:login"
PROXY = "10.0.0.1"
ATTACKER = "203.0.113.50"


def sign_in(client, username: str, password: str, address: str = ATTACKER, **headers):
    return client.post(
        reverse(ADMIN_LOGIN),
        {"username": username, "password": password, "next": "/admin/"},
        REMOTE_ADDR=address,
        **headers,
    )


# --- the rate limit per client address --------------------------------------------------


def test_forty_admin_sign_ins_with_forged_forwarded_addresses_are_limited(client, settings):
    settings.LOGIN_RATE_LIMIT = 10
    settings.TRUSTED_PROXIES = [PROXY]

    statuses = [
        sign_in(client, f"user{n}", "guess", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").status_code
        for n in range(40)
    ]

    # Attempt 10 still passes, attempt 11 is refused: the limit is not off by one.
    assert statuses[:10] == [200] * 10
    assert statuses[10:] == [429] * 30


def test_behind_a_trusted_proxy_each_forwarded_address_has_its_own_allowance(client, settings):
    settings.LOGIN_RATE_LIMIT = 10
    settings.TRUSTED_PROXIES = [PROXY]

    others = [
        sign_in(client, "u", "guess", PROXY, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").status_code
        for n in range(40)
    ]
    # One client behind the proxy, whatever it puts in front of the address the proxy saw.
    one = [
        sign_in(
            client, "u", "guess", PROXY, HTTP_X_FORWARDED_FOR=f"192.0.2.{n}, 203.0.113.7"
        ).status_code
        for n in range(11)
    ]

    assert others == [200] * 40
    assert one == [200] * 10 + [429]


@pytest.mark.parametrize(
    ("remote", "forwarded", "client_address"),
    [
        (ATTACKER, "198.51.100.1", ATTACKER),  # not from a proxy: the header is ignored
        (PROXY, "198.51.100.1", "198.51.100.1"),
        (PROXY, "", PROXY),
        # The rightmost address that is not a trusted proxy; left of it is the client's say.
        ("10.0.0.2", "6.6.6.6, 198.51.100.1, 10.0.0.3", "198.51.100.1"),
        ("10.0.0.2", "10.0.0.4, 10.0.0.3", "10.0.0.4"),  # proxies all the way: the leftmost
        ("::ffff:10.0.0.2", "2001:db8::1", "2001:db8::1"),  # IPv4 seen through an IPv6 socket
        ("fd00::1", "198.51.100.1", "198.51.100.1"),
        (PROXY, "not-an-address", "not-an-address"),
    ],
)
def test_the_client_is_the_rightmost_address_no_trusted_proxy_wrote(
    settings, remote, forwarded, client_address
):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8", "fd00::/8"]
    headers = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded else {}

    request = RequestFactory().get("/", REMOTE_ADDR=remote, **headers)

    assert client_ip(request) == client_address


def test_the_limit_counts_in_redis_where_every_worker_sees_it(client, settings):
    redis = pytest.importorskip("redis")
    url = "redis://127.0.0.1:6379/5"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    prefix = f"test-{uuid.uuid4().hex}"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": prefix,
        }
    }
    settings.LOGIN_RATE_LIMIT = 10
    try:
        first = [sign_in(client, "u", "guess").status_code for _ in range(5)]
        # Another gunicorn worker: its own connection to the same Redis.
        caches.close_all()
        del caches["default"]
        rest = [sign_in(client, "u", "guess").status_code for _ in range(6)]
    finally:
        stored = redis.Redis.from_url(url)
        keys = stored.keys(f"{prefix}:*")
        if keys:
            stored.delete(*keys)

    assert first + rest == [200] * 10 + [429]
    assert keys


# --- locking a user name ------------------------------------------------------------------


def test_after_the_lockout_threshold_the_right_password_fails(client, settings, root):
    settings.ADMIN_LOCKOUT_FAILURES = 5
    # From many addresses, so that the rate limit per address is not what stops it.
    for n in range(5):
        assert sign_in(client, "root", "guess", f"198.51.100.{n}").status_code == 200

    response = sign_in(client, "root", PASSWORD, "192.0.2.1")

    assert response.status_code == 200  # the form again, not the redirect into admin
    assert "_auth_user_id" not in client.session
    assert "Please enter the correct username and password" in response.content.decode()
    assert "locked" in response.content.decode()


def test_one_failure_fewer_than_the_threshold_leaves_the_right_password_working(
    client, settings, root
):
    settings.ADMIN_LOCKOUT_FAILURES = 5
    for n in range(4):
        sign_in(client, "root", "guess", f"198.51.100.{n}")

    response = sign_in(client, "root", PASSWORD, "192.0.2.1")

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(root.pk)


def test_the_lock_expires(client, settings, root, monkeypatch):
    settings.ADMIN_LOCKOUT_FAILURES = 3
    settings.ADMIN_LOCKOUT_MINUTES = 15
    for n in range(3):
        sign_in(client, "root", "guess", f"198.51.100.{n}")
    assert sign_in(client, "root", PASSWORD, "192.0.2.1").status_code == 200

    import portal.signins

    later = portal.signins.now() + 15 * 60 + 1
    monkeypatch.setattr(portal.signins, "now", lambda: later)

    assert sign_in(client, "root", PASSWORD, "192.0.2.2").status_code == 302


def test_any_spelling_of_a_user_name_counts_toward_its_lock(client, settings, root):
    settings.ADMIN_LOCKOUT_FAILURES = 3
    for n, name in enumerate(["root", "ROOT", " Root"]):
        sign_in(client, name, "guess", f"198.51.100.{n}")

    assert sign_in(client, "root", PASSWORD, "192.0.2.1").status_code == 200


def test_an_unknown_user_name_is_locked_alike_so_locks_tell_nobody_who_exists(client, settings):
    settings.ADMIN_LOCKOUT_FAILURES = 2
    for n in range(3):
        response = sign_in(client, "nobody", "guess", f"198.51.100.{n}")

    assert "locked" in response.content.decode()


def test_the_lock_is_per_user_name(client, settings, root):
    settings.ADMIN_LOCKOUT_FAILURES = 2
    for n in range(2):
        sign_in(client, "somebody-else", "guess", f"198.51.100.{n}")

    assert sign_in(client, "root", PASSWORD, "192.0.2.1").status_code == 302
