"""R-CMP-3: the banned-content scanner. Pure: no database access here.

Keywords are matched with one Aho-Corasick automaton (pyahocorasick) over a normalised text:
NFKC (full-width → half-width, compatibility forms), casefolded, with every character that is not a
letter or a digit removed, so "博 彩", "博-彩", "ＢＯＯＫ" and "b.o.o.k" all hit. Regex rules run on
the NFKC + casefolded text (spacing kept) as one combined pattern. The scanner reports the first
matching rule, rejecting rules first.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import ahocorasick


class _StripTable(dict):
    """str.translate table built lazily: letters (L*) and digits (N*) are kept, everything else
    (spaces, punctuation, symbols, zero-width and control characters: what spammers insert to
    split words) is deleted. Each distinct character is classified once per process."""

    def __missing__(self, codepoint: int) -> int | None:
        keep = unicodedata.category(chr(codepoint))[0] in ("L", "N")
        value = codepoint if keep else None
        self[codepoint] = value
        return value


_STRIP = _StripTable()
# Cyrillic and Greek letters that look like Latin ones ("саsinо" with Cyrillic а, о): folded to the
# Latin letter on both sides (rules and messages), so a keyword cannot be dodged with look-alikes.
_STRIP.update({ord(k): ord(v) for k, v in zip("аеорсхуіјѕкмтвнαορτυνικ", "aeopcxyijskmtbhaoptuvik", strict=True)})


def fold(text: str) -> str:
    """NFKC + casefold: what regex rules see."""
    return unicodedata.normalize("NFKC", text).casefold()


def normalise(text: str) -> str:
    """What keyword rules see: fold() and keep only letters and digits."""
    folded = fold(text)
    if folded.isalnum():
        return folded
    return folded.translate(_STRIP)


@dataclass(frozen=True)
class Rule:
    id: int
    kind: str  # keyword | regex
    pattern: str
    category: str
    action: str  # reject | hold


@dataclass(frozen=True)
class Match:
    rule: Rule
    matched: str

    @property
    def detail(self) -> str:
        return f"rule #{self.rule.id} ({self.rule.category}, {self.rule.kind} {self.rule.pattern!r}) matched {self.matched!r}"


@dataclass(frozen=True)
class ScanResult:
    reject: Match | None = None
    hold: Match | None = None

    @property
    def clean(self) -> bool:
        return self.reject is None and self.hold is None


CLEAN = ScanResult()


class Scanner:
    """Compiled from a rule list once per process (see services.get_scanner) and reused."""

    def __init__(self, rules: list[Rule], version: int = 0):
        self.version = version
        self.rule_count = len(rules)
        self._automaton = ahocorasick.Automaton()
        keywords: dict[str, list[Rule]] = {}
        regexes: list[Rule] = []
        for rule in rules:
            if rule.kind == "regex":
                regexes.append(rule)
                continue
            key = normalise(rule.pattern)
            if key:
                keywords.setdefault(key, []).append(rule)
        for key, key_rules in keywords.items():
            # Rejecting rules first, then the lowest id: the report is stable.
            key_rules.sort(key=lambda r: (r.action != "reject", r.id))
            self._automaton.add_word(key, (key, tuple(key_rules)))
        self._has_keywords = bool(keywords)
        if self._has_keywords:
            self._automaton.make_automaton()
        self._regex_rules = regexes
        self._combined = None
        if regexes:
            parts = []
            valid = []
            for rule in regexes:
                try:
                    re.compile(rule.pattern)
                except re.error:
                    continue  # validated at save time; a bad row must not stop sending
                parts.append(f"(?:{rule.pattern})")
                valid.append(rule)
            self._regex_rules = valid
            if parts:
                self._combined = re.compile("|".join(parts))
                self._compiled = [re.compile(rule.pattern) for rule in valid]

    def scan(self, text: str) -> ScanResult:
        reject: Match | None = None
        hold: Match | None = None
        if self._has_keywords:
            for _end, (key, rules) in self._automaton.iter(normalise(text)):
                rule = rules[0]
                if rule.action == "reject":
                    if reject is None or rule.id < reject.rule.id:
                        reject = Match(rule, key)
                elif hold is None:
                    hold = Match(rule, key)
        if self._combined is not None and reject is None:
            folded = fold(text)
            if self._combined.search(folded):  # one pass to know if any regex hits; then which
                for rule, compiled in zip(self._regex_rules, self._compiled, strict=True):
                    found = compiled.search(folded)
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


def validate_pattern(*, kind: str, pattern: str) -> str | None:
    """Why a rule pattern is unusable, or None."""
    if not pattern.strip():
        return "The pattern is empty."
    if kind == "regex":
        try:
            re.compile(pattern)
        except re.error as exc:
            return f"Invalid regular expression: {exc}"
    elif not normalise(pattern):
        return "The keyword has no letters or digits after normalisation."
    return None
