"""The admin permission matrix (R-AUD-2, R-AUD-3, R-CMP-3): every role, every registered admin,
every URL and action, compared with smsplatform.admin_matrix.MATRIX.

A new admin without a MATRIX entry fails here: declare what each role may do with it."""

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, RequestFactory
from django.urls import NoReverseMatch, reverse

from smsplatform.admin_matrix import MATRIX, ROLES
from smsplatform.admin_site import GuardedModelAdmin

STANDARD_SUFFIXES = (
    "changelist",
    "add",
    "change",
    "delete",
    "history",
    "import",
    "export",
    "process_import",
    "export_action",
)


def role_user(role: str) -> User:
    user = User.objects.create_user(f"{role}-matrix", password="pw-matrix-1", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return User.objects.get(pk=user.pk)


def _url(name: str, *args) -> str | None:
    try:
        return reverse(f"admin:{name}", args=args)
    except NoReverseMatch:
        return None


def effective(user: User) -> dict[str, set[str]]:
    """What `user` may do, per model label, found by requesting every admin URL and asking each
    admin for its actions."""
    client = Client()
    client.force_login(user)
    request = RequestFactory().get("/admin/")
    request.user = user
    found: dict[str, set[str]] = {}
    for model, model_admin in admin.site._registry.items():
        info = f"{model._meta.app_label}_{model._meta.model_name}"
        ops: set[str] = set()
        for op, name in (("view", "changelist"), ("add", "add"), ("import", "import"), ("export", "export")):
            url = _url(f"{info}_{name}")
            if url is None:
                continue
            response = client.get(url, follow=True)  # a changelist may redirect to its default filter
            status = response.status_code
            assert status in (200, 403), f"{user.username} GET {url}: {status}"
            if status == 200 and "/login/" not in response.request["PATH_INFO"]:
                ops.add(op)
        if model_admin.has_change_permission(request):
            ops.add("change")
        if model_admin.has_delete_permission(request):
            ops.add("delete")
        ops.update(model_admin.get_actions(request))
        found[model._meta.label_lower] = ops
    return found


@pytest.mark.parametrize("role", ROLES)
def test_every_admin_url_and_action_matches_the_matrix_for_each_role(db, role):
    """R-AUD-2/R-CMP-3: no role may do more (or less) in the admin than the declared matrix says."""
    actual = effective(role_user(role))
    missing = sorted(set(actual) - set(MATRIX))
    assert not missing, f"admin-registered models without a MATRIX entry: {missing}"
    differences = {
        label: {
            "allowed_but_not_declared": sorted(ops - _declared(label, role)),
            "declared_but_refused": sorted(_declared(label, role) - ops),
        }
        for label, ops in actual.items()
        if ops != _declared(label, role)
    }
    assert not differences, differences


def _declared(label: str, role: str) -> set[str]:
    return set(MATRIX.get(label, {}).get(role, "").split())


@pytest.mark.parametrize("role", ROLES)
def test_custom_admin_urls_refuse_roles_without_view(db, role):
    """Every other URL an admin adds (review, decide, statement…) is closed to a role that may
    not even view the model, and none answers with a 500."""
    user = role_user(role)
    client = Client()
    client.force_login(user)
    for model, model_admin in admin.site._registry.items():
        label = model._meta.label_lower
        may_view = "view" in _declared(label, role)
        for pattern in model_admin.get_urls():
            name = getattr(pattern, "name", None)
            if not name or name.endswith(STANDARD_SUFFIXES):
                continue
            n_args = str(pattern.pattern).count("<")
            url = _url(name, *([999999999] * n_args))
            if url is None:
                continue
            status = client.get(url).status_code
            assert status < 500, f"{role} GET {url}: {status}"
            if not may_view:
                assert status in (302, 403, 404), f"{role} may not view {label} but GET {url} answered {status}"


def test_every_registered_admin_is_guarded():
    """The admin site mixes the guard into every admin, including ones added later (R-AUD-3)."""
    for model, model_admin in admin.site._registry.items():
        assert isinstance(model_admin, GuardedModelAdmin), model
        assert type(model_admin).save_model is GuardedModelAdmin.save_model, model
        assert type(model_admin).delete_model is GuardedModelAdmin.delete_model, model


def print_matrix() -> str:
    """Helper for maintainers: the effective matrix as Python (paste into admin_matrix.MATRIX);
    call it from a test of your own while changing roles (it needs the test database)."""
    table: dict[str, dict[str, str]] = {}
    for role in ROLES:
        for label, ops in effective(role_user(role)).items():
            if ops:
                table.setdefault(label, {})[role] = " ".join(sorted(ops, key=_op_order))
    return "\n".join(f"    {label!r}: {roles!r}," for label, roles in sorted(table.items()))


def _op_order(op: str) -> tuple[int, str]:
    order = ["view", "add", "change", "delete", "import", "export"]
    return (order.index(op), op) if op in order else (len(order), op)


@pytest.mark.parametrize(
    ("role", "url_name"),
    [
        ("finance", "compliance_bannedrule_import"),
        ("auditor", "compliance_bannedrule_import"),
        ("auditor", "compliance_globalblock_import"),
        ("reviewer", "delivery_publicholiday_import"),
        ("reviewer", "compliance_countryrule_import"),
        ("finance", "compliance_globalblock_export"),
    ],
)
def test_roles_without_write_permission_cannot_import_or_export_rules(db, role, url_name):
    """R-CMP-3: import/export of platform-wide rules is refused (403) to roles the matrix does not
    name, for the form and for a posted file alike; nothing is written."""
    from compliance.models import BannedRule

    client = Client()
    client.force_login(role_user(role))
    url = reverse(f"admin:{url_name}")
    rules = BannedRule.objects.count()
    assert client.get(url).status_code == 403
    upload = SimpleUploadedFile("rules.csv", b"id,pattern,enabled\n1,x,0\n", content_type="text/csv")
    assert client.post(url, {"format": "0", "import_file": upload, "export_items": "1"}).status_code == 403
    assert BannedRule.objects.count() == rules


@pytest.mark.parametrize(
    ("model", "action"),
    [("delivery_maintenance", "cancel_selected"), ("delivery_callbackdelivery", "retry_selected")],
)
def test_auditor_cannot_run_write_actions(db, model, action):
    """R-AUD-2: auditors only read; an action without declared permissions needs change."""
    client = Client()
    client.force_login(role_user("auditor"))
    url = reverse(f"admin:{model}_changelist")
    response = client.post(url, {"action": action, "_selected_action": ["1"], "index": "0"})
    # Django answers an action the user may not run like an unknown one: nothing runs.
    assert response.status_code in (200, 302, 403)
    from tenants.models import OperationRecord

    assert not OperationRecord.objects.filter(
        action__in=["delivery.cancel_maintenance", "delivery.retry_callback"]
    ).exists()
    request = RequestFactory().get(url)
    request.user = User.objects.get(username="auditor-matrix")
    model_admin = next(
        ma for m, ma in admin.site._registry.items() if f"{m._meta.app_label}_{m._meta.model_name}" == model
    )
    assert action not in model_admin.get_actions(request)


def test_operations_guide_prints_the_declared_matrix():
    """docs/operations.md's matrix table is MATRIX, row for row (R-AUD-2): no drift."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    documented: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == len(ROLES) + 1 and cells[0].startswith("`") and "." in cells[0]:
            documented[cells[0].strip("`")] = {r: c for r, c in zip(ROLES, cells[1:], strict=True) if c != "–"}
    assert documented == MATRIX


@pytest.mark.parametrize(
    "perm",
    ["tenants.publish_terms", "tenants.release_legal_hold", "tenants.compile_evidence", "tenants.hand_over_evidence"],
)
def test_senior_steps_belong_to_no_role(db, perm):
    """R-TEN-7, R-AUD-5: publishing terms, releasing holds and evidence are per-user grants, so
    no role (and no one holding only a role) can take them."""
    app_label, codename = perm.split(".")
    assert not Group.objects.filter(
        permissions__codename=codename, permissions__content_type__app_label=app_label
    ).exists()
    for role in ROLES:
        assert not role_user(role).has_perm(perm)
