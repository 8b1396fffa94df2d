"""The operator roles, declared once: their names, what each is for, and how their grants are
gathered (R-AUD-2, R-AUD-3: least privilege per role).

Each app grants its own permissions to these roles in `<app>/roles.py`
(ROLE_PERMISSIONS = {role: ["app.codename", ...]}), next to the models that declare them;
`manage.py sync_roles` turns the union into one auth Group per role. A grant to a role not
declared here is refused (UnknownRole) instead of failing somewhere later. What each role may do
per admin model is smsplatform.admin_matrix; docs/operations.md prints both (tests check it).

Unmasked recipient numbers (`delivery.view_full_number`) and the senior steps (publishing terms,
releasing legal holds, evidence) are per-user grants, never a role's.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module

from django.apps import apps


class UnknownRole(ValueError):
    """A role name that is not declared in ROLES."""


@dataclass(frozen=True)
class Role:
    name: str
    does: str  # one line: the roles table of docs/operations.md
    doc: str  # why the role exists and where its limits are


ROLES: dict[str, Role] = {
    role.name: role
    for role in (
        Role(
            "operator",
            "onboards tenants, keys, suspends/reactivates, channels, routes, maintenance, banned-content "
            "rules and the block list, enforcement, complaints, erasure requests",
            "Runs the platform day to day: tenants and their keys, the delivery configuration, the "
            "compliance rules (banned content, block list, country rules; R-CMP-3) and enforcement. "
            "Sees filings but does not decide them, and exports nothing.",
        ),
        Role(
            "reviewer",
            "signature and template review, held messages; reads banned-content rules",
            "Decides filings (R-CMP-1, R-CMP-2) and held messages (R-CMP-8); reads the rules it "
            "applies but does not edit them (operators do).",
        ),
        Role(
            "finance",
            "top-ups, refunds, invoices, disputes, dormancy cases, prices",
            "Runs money (R-BIL-*): the ledger's writes, prices and plans, disputes and incident "
            "compensation; renews service terms after payment (R-TEN-5).",
        ),
        Role(
            "auditor",
            "reads records, writes nothing but export requests: messages (Delivery → Messages), "
            "send-log and trail exports, the operation trail, tenants, billing records, compliance "
            "records and rules; **not** the delivery configuration (channels, routes, prefixes, "
            "maintenance, callbacks, receipts)",
            "Answers lawful requests (R-AUD-2) and checks the trail (R-AUD-3): reads and exports, "
            "changes nothing. Numbers stay masked unless the person also holds view_full_number.",
        ),
    )
}


def role(name: str) -> Role:
    """The declared role called `name`; UnknownRole (a ValueError) names the known ones."""
    try:
        return ROLES[name]
    except KeyError:
        raise UnknownRole(f"Unknown role {name!r}: one of {', '.join(ROLES)}.") from None


def collect_role_permissions() -> dict[str, set[str]]:
    """Every app's grants per role ("app.codename"); a grant to an undeclared role is refused."""
    grants: dict[str, set[str]] = {name: set() for name in ROLES}
    for config in apps.get_app_configs():
        module_name = f"{config.name}.roles"
        if module_name == __name__:
            continue  # this module declares the roles; it grants nothing
        try:
            module = import_module(module_name)
        except ModuleNotFoundError:
            continue
        for name, perms in module.ROLE_PERMISSIONS.items():
            if name not in ROLES:
                raise UnknownRole(
                    f"Unknown role {name!r} in {module_name}.ROLE_PERMISSIONS: one of {', '.join(ROLES)}."
                )
            grants[name].update(perms)
    return grants
