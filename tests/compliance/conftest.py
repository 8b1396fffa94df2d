"""Fixtures for compliance tests: reviewers, approved signatures/templates set up through services."""

import pytest
from django.contrib.auth.models import Group, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from compliance import services
from tenants.services import Actor

CUSTOMER = Actor(kind="api_key", id="0", label="key:TEST")
REVIEWER = Actor(kind="user", id="0", label="user:reviewer-fixture")


def proof(name: str = "licence.pdf") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, b"%PDF-1.4 proof", content_type="application/pdf")


def approved_signature(tenant, text: str = "AcmeBrand"):
    signature = services.file_signature(tenant=tenant, text=text, purpose="our shop", proofs=[proof()], actor=CUSTOMER)
    return services.approve_signature(signature=signature, actor=REVIEWER)


def approved_template(tenant, body: str = "Your code is ${code}.", variables=None, message_type: str = "verification"):
    variables = {"code": {"kind": "code"}} if variables is None else variables
    template = services.file_template(
        tenant=tenant, name="t", message_type=message_type, body=body, variables=variables, actor=CUSTOMER
    )
    version = template.versions.get()
    assert version.status == "pending", version.review_reason
    services.approve_template_version(version=version, actor=REVIEWER)
    template.refresh_from_db()
    return template


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _no_spike(settings):
    # Spike detection is tested on its own; elsewhere a fresh tenant's first sends must not be held.
    settings.COMPLIANCE_SPIKE_MULTIPLE = 0


def _staff(username: str, group: str | None) -> User:
    user = User.objects.create_user(username, password=f"pw-{username}-1", is_staff=True)
    if group:
        user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def reviewer_user(db):
    return _staff("reviewer1", "reviewer")


@pytest.fixture
def auditor_user(db):
    return _staff("auditor1", "auditor")


@pytest.fixture
def plain_staff(db):
    return _staff("plainstaff1", None)


@pytest.fixture
def in_public():
    connection.set_schema_to_public()
