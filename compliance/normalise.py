"""The one text normaliser of the compliance gate (R-CMP-1, R-CMP-3, R-CMP-4, R-TEN-3). Pure: no I/O.

Keyword, near-phrase and regex rules, signatures, protected brands, template bodies, licence
numbers and opt-out replies all go through `normalise()`, so a spelling that dodges one check
dodges none. Steps, always all of them (no shortcut):

1. NFKC: full-width → half-width, compatibility forms (ｃａｓｉｎｏ, ①, ㊙).
2. Traditional → simplified Chinese with OpenCC `t2s` (賭場 → 赌场, 中國銀行 → 中国银行).
3. Unicode TR39 confusables folded to their Latin skeleton (Cyrillic саsinо, Greek ϲ, В in ВigВаnk),
   from the `confusable-homoglyphs` data, not a hand list. Applied before casefolding, because
   the capital look-alike (В → B) is in the data while its lower case (в) is not.
4. casefold.
5. Every character that is not a letter or a digit is dropped: spaces, newlines, punctuation,
   symbols, zero-width, format (Cf), control and separator characters.

`words()` keeps step 5's separators as word boundaries, for opt-out replies ("stop please").
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from functools import lru_cache

import opencc

_T2S = opencc.OpenCC("t2s")


@lru_cache(maxsize=1)
def _skeleton_targets() -> dict[str, str]:
    """Non-ASCII character → the ASCII letter or digit it is confusable with (TR39 data).

    The data lists, for each character, its look-alikes in both directions; only mappings onto an
    ASCII letter or digit are kept (that is what spammers imitate), letters preferred over digits.
    ASCII itself is never remapped: "0"/"O" or "1"/"l" folding would merge ordinary numbers.
    """
    import confusable_homoglyphs

    path = os.path.join(os.path.dirname(confusable_homoglyphs.__file__), "confusables.json")
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)

    def clean(char: str) -> str:
        return char.replace("\u200e", "").replace("\u200f", "")

    candidates: dict[str, set[str]] = {}
    for key, entries in data.items():
        key = clean(key)
        looks = [clean(entry["c"]) for entry in entries]
        if len(key) == 1 and key.isascii() and key.isalnum():
            for other in looks:
                if len(other) == 1 and not other.isascii():
                    candidates.setdefault(other, set()).add(key)
        elif len(key) == 1 and not key.isascii():
            for other in looks:
                if len(other) == 1 and other.isascii() and other.isalnum():
                    candidates.setdefault(key, set()).add(other)
    targets = {}
    for char, options in candidates.items():
        # Letters before digits, then a stable order; casefolded later with the rest of the text.
        targets[char] = sorted(options, key=lambda c: (not c.isalpha(), c.lower(), c))[0]
    return targets


def _fold_char(char: str) -> str:
    """One character through every step; "" when nothing of it is a letter or digit."""
    targets = _skeleton_targets()
    decomposed = unicodedata.normalize("NFKD", char)
    # Before NFKC, unless NFKC alone gives ASCII (Ｉ is I, not the l TR39 would pick): NFKC turns
    # lunate sigma (ϲ, looks like c) into ς, which looks like nothing Latin.
    if char in targets and not decomposed.isascii():
        target = targets[char]
        # TR39's prototype of I is l; a capital look-alike (Cyrillic І) stands for an I.
        return ("i" if target == "l" and char.isupper() else target).casefold()
    out = []
    # NFKD: compatibility forms and width (the K of NFKC), and accents split off as combining
    # marks, which are dropped below like other non-letters (cäsino is casino).
    for part in decomposed:
        if unicodedata.category(part)[0] not in ("L", "N"):
            continue
        part = targets.get(part, part)
        part = _T2S.convert(part)  # OpenCC t2s, per character: the same wherever it stands
        out.extend(c for c in part.casefold() if unicodedata.category(c)[0] in ("L", "N"))
    return "".join(out)


class _FoldTable(dict):
    """str.translate table built lazily: each distinct character is folded once per process, so a
    message costs one translate() (about 3 µs), whatever steps the folding has."""

    def __missing__(self, codepoint: int) -> str | None:
        value = _fold_char(chr(codepoint)) or None
        self[codepoint] = value
        return value


class _SpaceTable(dict):
    """Like _FoldTable, but a separator or punctuation becomes a space (a word boundary).
    Format characters and combining marks are not boundaries: "st\u200bop" is "stop"."""

    def __missing__(self, codepoint: int) -> str | None:
        char = chr(codepoint)
        value = _fold_char(char) or None
        if value is None and unicodedata.category(char) not in ("Cf", "Mn", "Me"):
            value = " "
        self[codepoint] = value
        return value


_FOLD = _FoldTable()
_SPACE = _SpaceTable()


def to_simplified(text: str) -> str:
    return _T2S.convert(text)


def normalise(text: str) -> str:
    """The normal form every compliance comparison uses: letters and digits only (see module doc)."""
    return (text or "").translate(_FOLD)


def spaced(text: str) -> str:
    """normalise() with word boundaries kept as single spaces (opt-out replies, URL words)."""
    return " ".join((text or "").translate(_SPACE).split())


_ASCII_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    """ASCII words of the normalised text; a CJK character is a boundary ("T退订" → ["t"])."""
    return _ASCII_WORD.findall(spaced(text))


def licence_key(text: str) -> str:
    """A licence / registration number in its one comparable form: "9111 0000-ｍａ０１" → "91110000MA01"."""
    return normalise(text).upper()


def warm_up() -> None:
    """Load the confusables data now (process start) rather than on the first message."""
    _skeleton_targets()
