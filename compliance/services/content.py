"""R-CMP-3: banned-content rules and the per-process cached scanner."""

from __future__ import annotations

import logging
import threading
import uuid

from django.db import transaction

from tenants.services import Actor, record_operation

from ..models import (
    BannedRule,
    RuleAction,
    RuleSetVersion,
)
from ..scanner import Rule, Scanner, ScanResult, validate_pattern
from ._base import InvalidRule, _now

logger = logging.getLogger(__name__)


# --- R-CMP-3 banned-content rules and the cached scanner -------------------------------------

_scanner_lock = threading.Lock()
_scanner: Scanner | None = None
_scanner_stamp: uuid.UUID | None = None


def bump_rules_version() -> None:
    """Mark the rule set changed: every process rebuilds its scanner on its next check."""
    stamp = uuid.uuid4()
    if not RuleSetVersion.objects.filter(pk=1).update(stamp=stamp, updated_at=_now()):
        RuleSetVersion.objects.update_or_create(pk=1, defaults={"stamp": stamp})


def get_scanner() -> Scanner:
    """The compiled scanner of the enabled rules; one primary-key read to know it is current."""
    global _scanner, _scanner_stamp
    stamp = RuleSetVersion.objects.filter(pk=1).values_list("stamp", flat=True).first()
    if _scanner is not None and stamp == _scanner_stamp:
        return _scanner
    with _scanner_lock:
        rows = BannedRule.objects.filter(enabled=True).values_list(
            "id", "kind", "pattern", "category", "action", "max_gap"
        )
        scanner = Scanner([Rule(*row) for row in rows])
        _scanner, _scanner_stamp = scanner, stamp
    return scanner


def scan_text(text: str) -> ScanResult:
    return get_scanner().scan(text)


RULE_FIELDS = ("kind", "pattern", "category", "action", "max_gap", "enabled", "note")


def save_banned_rule(*, rule: BannedRule, actor: Actor) -> BannedRule:
    """Create or update a rule (admin form) and invalidate the scanners (R-CMP-3)."""
    problem = validate_pattern(kind=rule.kind, pattern=rule.pattern, max_gap=rule.max_gap)
    if problem:
        raise InvalidRule(problem)
    with transaction.atomic():
        created = rule.pk is None
        rule.save()
        bump_rules_version()
        record_operation(
            actor=actor,
            action="banned_rule.create" if created else "banned_rule.update",
            obj=rule,
            after={field: getattr(rule, field) for field in RULE_FIELDS},
        )
    return rule


def create_banned_rule(
    *,
    pattern: str,
    category: str,
    actor: Actor,
    kind: str = "keyword",
    action: str = RuleAction.REJECT,
    enabled: bool = True,
    note: str = "",
    max_gap: int = 6,
) -> BannedRule:
    return save_banned_rule(
        rule=BannedRule(
            kind=kind, pattern=pattern, category=category, action=action, enabled=enabled, note=note, max_gap=max_gap
        ),
        actor=actor,
    )


def delete_banned_rules(*, rule_ids: list[int], actor: Actor) -> int:
    with transaction.atomic():
        deleted, _ = BannedRule.objects.filter(pk__in=rule_ids).delete()
        bump_rules_version()
        record_operation(actor=actor, action="banned_rule.delete", after={"ids": list(rule_ids)})
    return deleted


def set_rules_enabled(*, rule_ids: list[int], enabled: bool, actor: Actor) -> int:
    with transaction.atomic():
        changed = BannedRule.objects.filter(pk__in=rule_ids).update(enabled=enabled, updated_at=_now())
        bump_rules_version()
        record_operation(
            actor=actor,
            action="banned_rule.enable" if enabled else "banned_rule.disable",
            after={"ids": list(rule_ids)},
        )
    return changed
