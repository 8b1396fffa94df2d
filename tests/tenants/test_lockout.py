"""Admin login lockout (django-axes, tenants.lockout): by the (username, IP) pair, with a per-IP
ceiling. Five bad passwords from one place lock neither the user everywhere nor the whole IP."""

import pytest
from django.contrib.auth.models import User
from django.test import Client

LOGIN = "/admin/login/"


def attempt(username: str, password: str, ip: str) -> bool:
    """True when the login succeeded."""
    client = Client(REMOTE_ADDR=ip)
    response = client.post(LOGIN, {"username": username, "password": password, "next": "/admin/"}, REMOTE_ADDR=ip)
    return response.status_code == 302 and "_auth_user_id" in client.session


@pytest.fixture
def staff(db):
    for name in ("alice", "bob"):
        User.objects.create_user(name, password=f"pw-{name}-good", is_staff=True)


def test_five_failures_lock_only_that_username_at_that_ip(staff, settings):
    settings.AXES_FAILURE_LIMIT = 5
    for _ in range(5):
        assert not attempt("alice", "wrong", "203.0.113.5")
    assert not attempt("alice", "pw-alice-good", "203.0.113.5")  # the pair is locked
    assert attempt("alice", "pw-alice-good", "198.51.100.7")  # the user, elsewhere, is not
    assert attempt("bob", "pw-bob-good", "203.0.113.5")  # nor a colleague behind the same IP


def test_one_ip_guessing_many_usernames_hits_the_ceiling(staff, settings):
    settings.AXES_FAILURE_LIMIT = 5
    settings.AXES_IP_FAILURE_LIMIT = 8
    for n in range(8):
        attempt(f"ghost{n}", "wrong", "203.0.113.9")
    assert not attempt("bob", "pw-bob-good", "203.0.113.9")
    assert attempt("bob", "pw-bob-good", "198.51.100.8")
