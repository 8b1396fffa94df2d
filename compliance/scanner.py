"""R-CMP-3: the banned-content scanner. Pure: no database access here.

Every rule kind sees the same text: `normalise()` (compliance/normalise.py: NFKC, traditional →
simplified, TR39 confusables, casefold, everything but letters and digits removed), so a space, a
newline, a zero-width character, a full-width or Cyrillic letter or a traditional character dodges
no rule. Kinds:

- keyword: the normalised pattern anywhere in the normalised text (one Aho-Corasick automaton
  for all keywords);
- near: parts in order ("代开 … 发票"), at most `max_gap` characters between consecutive parts
  (catches a word inserted inside a phrase: 代开正规发票). The first part rides the same automaton;
  the rest is checked where it hit;
- regex: a Python regular expression searched in the normalised text (so write it without
  spaces or punctuation; traditional characters in it are simplified, case is ignored).

The scanner reports the first matching rule, rejecting rules first. Refusals shown to the
sender name the category only (`Match.public_detail`); `Match.detail` (the rule) is for operators.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import ahocorasick

from .normalise import normalise, to_simplified

__all__ = ["CLEAN", "Match", "Rule", "ScanResult", "Scanner", "near_parts", "normalise", "validate_pattern"]

NEAR_SEPARATOR = re.compile(r"\s*(?:\.\.\.|…+)\s*")
DEFAULT_MAX_GAP = 6


def near_parts(pattern: str) -> list[str]:
    """The normalised parts of a near-phrase pattern ("A … B" or "A ... B")."""
    return [normalise(part) for part in NEAR_SEPARATOR.split(pattern) if normalise(part)]


@dataclass(frozen=True)
class Rule:
    id: int
    kind: str  # keyword | near | regex
    pattern: str
    category: str
    action: str  # reject | hold
    max_gap: int = DEFAULT_MAX_GAP


@dataclass(frozen=True)
class Match:
    rule: Rule
    matched: str

    @property
    def category(self) -> str:
        return self.rule.category

    @property
    def detail(self) -> str:
        """For operators only: which rule and what it matched."""
        return f"rule #{self.rule.id} ({self.rule.category}, {self.rule.kind} {self.rule.pattern!r}) matched {self.matched!r}"

    @property
    def public_detail(self) -> str:
        """For the sender (API, customer-facing texts): the category, never the rule, so the rule
        list cannot be mapped by probing (R-CMP-3)."""
        return f"Banned content (category: {self.rule.category}) (R-CMP-3)."


@dataclass(frozen=True)
class ScanResult:
    reject: Match | None = None
    hold: Match | None = None

    @property
    def clean(self) -> bool:
        return self.reject is None and self.hold is None


CLEAN = ScanResult()


def _better(current: Match | None, rule: Rule) -> bool:
    return current is None or rule.id < current.rule.id


class Scanner:
    """Compiled from a rule list once per process (see services.get_scanner) and reused."""

    def __init__(self, rules: list[Rule], version: int = 0):
        self.version = version
        self.rule_count = len(rules)
        self._automaton = ahocorasick.Automaton()
        entries: dict[str, tuple[list[Rule], list[tuple[Rule, re.Pattern]]]] = {}
        regexes: list[tuple[Rule, re.Pattern]] = []
        for rule in rules:
            if rule.kind == "regex":
                try:
                    regexes.append((rule, re.compile(to_simplified(rule.pattern), re.IGNORECASE)))
                except re.error:
                    continue  # validated at save time; a bad row must not stop sending
                continue
            if rule.kind == "near":
                parts = near_parts(rule.pattern)
                if not parts:
                    continue
                gap = max(0, int(rule.max_gap))
                rest = "".join(f".{{0,{gap}}}?{re.escape(part)}" for part in parts[1:])
                entries.setdefault(parts[0], ([], []))[1].append((rule, re.compile(rest, re.DOTALL)))
                continue
            key = normalise(rule.pattern)
            if key:
                entries.setdefault(key, ([], []))[0].append(rule)
        for key, (keyword_rules, near_rules) in entries.items():
            # Rejecting rules first, then the lowest id: the report is stable.
            keyword_rules.sort(key=lambda r: (r.action != "reject", r.id))
            near_rules.sort(key=lambda pair: (pair[0].action != "reject", pair[0].id))
            self._automaton.add_word(key, (key, tuple(keyword_rules), tuple(near_rules)))
        self._has_entries = bool(entries)
        if self._has_entries:
            self._automaton.make_automaton()
        self._regex_rules = [rule for rule, _ in regexes]
        self._compiled = [compiled for _, compiled in regexes]
        self._combined = (
            re.compile("|".join(f"(?:{c.pattern})" for c in self._compiled), re.IGNORECASE) if regexes else None
        )

    def scan(self, text: str) -> ScanResult:
        reject: Match | None = None
        hold: Match | None = None
        normal = normalise(text)
        if self._has_entries:
            for end, (key, keyword_rules, near_rules) in self._automaton.iter(normal):
                if keyword_rules:
                    rule = keyword_rules[0]
                    if rule.action == "reject":
                        if _better(reject, rule):
                            reject = Match(rule, key)
                    elif hold is None:
                        hold = Match(rule, key)
                for rule, rest in near_rules:
                    if rule.action == "reject" and not _better(reject, rule):
                        continue
                    if rule.action == "hold" and hold is not None:
                        continue
                    found = rest.match(normal, end + 1)
                    if found is None:
                        continue
                    match = Match(rule, key + found.group(0))
                    if rule.action == "reject":
                        reject = match
                    else:
                        hold = match
        if self._combined is not None and reject is None and self._combined.search(normal):
            # One pass to know whether any regex hits; then which one.
            for rule, compiled in zip(self._regex_rules, self._compiled, strict=True):
                found = compiled.search(normal)
                if found is None:
                    continue
                if rule.action == "reject":
                    reject = Match(rule, found.group(0))
                    break
                if hold is None:
                    hold = Match(rule, found.group(0))
        if reject is None and hold is None:
            return CLEAN
        return ScanResult(reject=reject, hold=hold)


def validate_pattern(*, kind: str, pattern: str, max_gap: int = DEFAULT_MAX_GAP) -> str | None:
    """Why a rule pattern is unusable, or None."""
    if not pattern.strip():
        return "The pattern is empty."
    if kind == "regex":
        try:
            compiled = re.compile(to_simplified(pattern), re.IGNORECASE)
        except re.error as exc:
            return f"Invalid regular expression: {exc}"
        if compiled.search(""):
            return "The regular expression matches the empty text: it would refuse every message."
    elif kind == "near":
        if len(near_parts(pattern)) < 2:
            return "A near-phrase rule needs at least two parts separated by … or ... (e.g. 代开 … 发票)."
        if max_gap is None or not 0 <= int(max_gap) <= 50:
            return "The gap of a near-phrase rule must be between 0 and 50 characters."
    elif kind == "keyword":
        if not normalise(pattern):
            return "The keyword has no letters or digits after normalisation."
    else:
        return f"Unknown rule kind {kind!r}."
    return None
