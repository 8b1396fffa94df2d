"""R-CMP-3: the seed rule set against the corpus (bench/data/compliance_corpus.csv): every `deny`
example is refused or held, every `allow` example (notifications sharing words with banned ones,
verification codes, bills, reminders) goes through clean. 0 false negatives, 0 false positives."""

import csv
import re
from pathlib import Path

import pytest

from compliance import services

CORPUS = Path(__file__).resolve().parents[2] / "bench" / "data" / "compliance_corpus.csv"


def load_corpus() -> list[tuple[str, str, str]]:
    """(label, category, text) rows; \\uXXXX and \\n in the file stand for those characters."""

    def decode(text: str) -> str:
        return re.sub(r"\\u([0-9a-fA-F]{4})|\\n", lambda m: chr(int(m.group(1), 16)) if m.group(1) else "\n", text)

    with CORPUS.open(encoding="utf-8", newline="") as handle:
        return [(row["label"], row["category"], decode(row["text"])) for row in csv.DictReader(handle)]


@pytest.fixture
def corpus():
    rows = load_corpus()
    assert {label for label, _, _ in rows} == {"allow", "deny"}
    return rows


def test_r_cmp_3_corpus_has_no_false_negatives(db, corpus):
    missed = [text for label, _, text in corpus if label == "deny" and services.scan_text(text).clean]
    assert missed == []


def test_r_cmp_3_corpus_has_no_false_positives(db, corpus):
    refused = [
        (text, (result.reject or result.hold).detail)
        for label, _, text in corpus
        if label == "allow" and not (result := services.scan_text(text)).clean
    ]
    assert refused == []


def test_r_cmp_3_corpus_deny_examples_hit_their_own_category(db, corpus):
    wrong = []
    for label, category, text in corpus:
        if label != "deny":
            continue
        result = services.scan_text(text)
        found = {m.category for m in (result.reject, result.hold) if m is not None}
        if category not in found:
            wrong.append((text, category, found))
    assert wrong == []
