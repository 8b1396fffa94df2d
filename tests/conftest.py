"""Shared fixtures: a real PostgreSQL test database with the public tenant, two customer tenants
(each with its own schema and API key) and API clients holding those keys.

Database access patterns:
- `db` (pytest-django): each test runs in a transaction that is rolled back; schema switches and
  tenant creation inside it are rolled back too. Use this by default.
- `live_db`: no wrapping transaction, for tests whose work crosses threads or processes (workers,
  the SMPP listener). Data stays: give it unique identifiers. Never use `transactional_db`: its
  flush would truncate the session tenants below.
"""

import itertools
import secrets

import pytest
from django.core.management import call_command
from django.db import connection
from rest_framework.test import APIClient

from smsplatform.tenancy import ensure_template_schema, reset_to_public
from tenants import registration, services
from tenants.management.commands.bootstrap import ensure_public_tenant
from tenants.models import Tenant

SYSTEM = services.Actor.system("tests")
_licence_seq = itertools.count(1)


def unique_licence() -> str:
    return f"TEST{secrets.token_hex(4).upper()}{next(_licence_seq):04d}"


@pytest.fixture(scope="session")
def django_db_setup(django_test_environment, django_db_modify_db_settings, django_db_blocker, django_db_keepdb):
    """The test database, always (pytest-django sets it up only for sessions holding a `db` test,
    which a session of `live_db` tests alone would not), plus the tenant template, the public
    tenant and the role groups."""
    from django.test.utils import setup_databases, teardown_databases

    with django_db_blocker.unblock():
        config = setup_databases(verbosity=0, interactive=False, aliases={"default"}, keepdb=django_db_keepdb)
        ensure_template_schema()
        ensure_public_tenant()
        call_command("sync_roles", verbosity=0)
    yield
    if not django_db_keepdb:
        with django_db_blocker.unblock():
            connection.close()
            teardown_databases(config, verbosity=0)


@pytest.fixture(autouse=True)
def _frequency_limits_off(settings):
    """R-CMP-8 repeat limits count per recipient in Redis, across tests and runs: off unless a
    test turns them on (tests/alibaba/test_frequency.py)."""
    settings.COMPLIANCE_FREQUENCY_LIMITS = False


@pytest.fixture(autouse=True)
def _config_cache_always_checked(settings):
    """Tests change configuration and call services at once in one process: the per-process
    configuration caches re-check their version counters on every use (issue 17)."""
    settings.CONFIG_CACHE_MAX_AGE_SECONDS = 0


@pytest.fixture(autouse=True)
def _never_transactional_db(request):
    """transaction=True / transactional_db flush the database after the test: every table of the
    session (role groups, seeded rules and limits, the session tenants) would be empty for the
    tests that follow (they failed far from the cause). Use `live_db` for committed data."""
    marker = request.node.get_closest_marker("django_db")
    if "transactional_db" in request.fixturenames or (marker and marker.kwargs.get("transaction")):
        pytest.fail("use live_db, not transactional_db / django_db(transaction=True): its flush empties the session")


@pytest.fixture(autouse=True)
def _public_schema_between_tests():
    """No test inherits another test's schema (the same rule the workers follow)."""
    yield
    reset_to_public()


def create_tenant(name: str, *, activate: bool = True, schema_name: str | None = None) -> Tenant:
    return registration.register_tenant(
        name=name,
        licence_number=unique_licence(),
        contact_name="Test Contact",
        contact_phone="+8613800000000",
        contact_email="contact@example.com",
        actor=SYSTEM,
        activate=activate,
        schema_name=schema_name,
    )


class KeyedClient(APIClient):
    """An API client that authenticates every request with one tenant's key (plain mode)."""

    def __init__(self, tenant: Tenant, key_id: str, secret: str, **kwargs):
        super().__init__(**kwargs)
        self.tenant, self.key_id, self.secret = tenant, key_id, secret
        self.credentials(HTTP_X_ACCESS_KEY_ID=key_id, HTTP_X_ACCESS_KEY_SECRET=secret)


def _session_tenant(django_db_blocker, name: str, schema: str) -> tuple[Tenant, str, str]:
    with django_db_blocker.unblock():
        tenant = Tenant.objects.filter(schema_name=schema).first() or create_tenant(name, schema_name=schema)
        key, secret = services.issue_api_key(tenant=tenant, actor=SYSTEM, label="tests")
        reset_to_public()
    return tenant, key.access_key_id, secret


@pytest.fixture(scope="session")
def _tenant_a(django_db_setup, django_db_blocker):
    return _session_tenant(django_db_blocker, "Tenant A Co.", "test_a")


@pytest.fixture(scope="session")
def _tenant_b(django_db_setup, django_db_blocker):
    return _session_tenant(django_db_blocker, "Tenant B Co.", "test_b")


@pytest.fixture
def public_tenant(db) -> Tenant:
    return Tenant.objects.get(schema_name="public")


@pytest.fixture
def tenant_a(db, _tenant_a) -> Tenant:
    return Tenant.objects.get(pk=_tenant_a[0].pk)


@pytest.fixture
def tenant_b(db, _tenant_b) -> Tenant:
    return Tenant.objects.get(pk=_tenant_b[0].pk)


@pytest.fixture
def client_a(tenant_a, _tenant_a) -> KeyedClient:
    return KeyedClient(tenant_a, _tenant_a[1], _tenant_a[2])


@pytest.fixture
def client_b(tenant_b, _tenant_b) -> KeyedClient:
    return KeyedClient(tenant_b, _tenant_b[1], _tenant_b[2])


@pytest.fixture
def make_tenant(db):
    """Factory for a fresh tenant (own schema) inside the test's transaction."""
    return create_tenant


@pytest.fixture
def live_db(django_db_setup, django_db_blocker):
    """Committed database access for work across threads/processes (see module docstring)."""
    with django_db_blocker.unblock():
        yield
        reset_to_public()
        connection.close()


@pytest.fixture
def operator_user(db):
    from django.contrib.auth.models import Group, User

    user = User.objects.create_user("operator1", password="pw-operator-1", is_staff=True)
    user.groups.add(Group.objects.get(name="operator"))
    return user


@pytest.fixture
def superuser(db):
    from django.contrib.auth.models import User

    return User.objects.create_superuser("root1", "root@example.com", "pw-root-1")
