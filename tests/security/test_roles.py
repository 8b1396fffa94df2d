"""The operator roles are declared once (smsplatform.roles) and every grant names one of them
(R-AUD-2, R-AUD-3: least privilege per role; the guide says who does what)."""

import types
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from smsplatform import roles
from smsplatform.admin_matrix import ROLES as MATRIX_ROLES


def test_an_unknown_role_in_an_apps_grants_is_a_clear_error_R_AUD_2(monkeypatch):
    stray = types.SimpleNamespace(ROLE_PERMISSIONS={"auditors": ["delivery.view_message"]})
    monkeypatch.setattr(roles, "import_module", lambda name: stray if name == "delivery.roles" else roles_absent())
    with pytest.raises(roles.UnknownRole, match=r"'auditors'.*delivery\.roles.*operator, reviewer, finance, auditor"):
        roles.collect_role_permissions()


def roles_absent():
    raise ModuleNotFoundError


def test_sync_roles_reports_an_unknown_role_as_a_command_error_R_AUD_2(db, monkeypatch):
    def broken():
        raise roles.UnknownRole("Unknown role 'auditors' in delivery.roles")

    monkeypatch.setattr(roles, "collect_role_permissions", broken)
    with pytest.raises(CommandError, match="Unknown role 'auditors'"):
        call_command("sync_roles", verbosity=0)


def test_role_lookup_names_the_known_roles():
    assert roles.role("auditor").name == "auditor"
    with pytest.raises(roles.UnknownRole, match="one of operator, reviewer, finance, auditor"):
        roles.role("admin")


def test_the_matrix_and_the_staff_command_use_the_declared_roles():
    from tenants import staff

    assert MATRIX_ROLES == tuple(staff.ROLES) == tuple(roles.ROLES)


def test_operations_guide_describes_each_declared_role_R_AUD_2():
    """docs/operations.md's roles table is smsplatform.roles, role for role: who edits banned
    rules (operators, compliance/roles.py) is said once."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    section = text.split("## Roles", 1)[1].split("\n\n", 2)[2]
    documented = {}
    for line in section.splitlines():
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] not in ("group", "---"):
            documented[cells[0]] = cells[1]
    assert documented == {name: role.does for name, role in roles.ROLES.items()}


def test_banned_rules_are_edited_by_operators_not_reviewers_R_AUD_2():
    grants = roles.collect_role_permissions()
    assert "compliance.change_bannedrule" in grants["operator"]
    assert "compliance.change_bannedrule" not in grants["reviewer"]
    assert "banned-content rules" in roles.ROLES["operator"].does
    assert "reads banned-content rules" in roles.ROLES["reviewer"].does
