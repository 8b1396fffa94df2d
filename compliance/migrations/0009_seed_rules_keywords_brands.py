"""Seed data (R-CMP-1, R-CMP-3, R-CMP-4): the banned-content rule set, the inbound reply keywords
and the protected brands. Rules and brands come from the CSV files in compliance/data/ (the rule
file is the one operators re-import in the admin, django-import-export). No app code is imported:
the keys are computed with the same folding for these inputs (already simplified, no look-alikes):
NFKC, casefold, letters and digits only; save_* in compliance.services recomputes them on edit.
"""

import csv
import unicodedata
import uuid
from pathlib import Path

from django.db import migrations

DATA = Path(__file__).resolve().parent.parent / "data"

# Copy of compliance.replies.DEFAULT_KEYWORDS at the time of this migration: (word, action, alone_only).
KEYWORDS = [
    ("退订", "opt_out", False),
    ("退定", "opt_out", False),
    ("拒收", "opt_out", False),
    ("拒绝接收", "opt_out", False),
    ("不再接收", "opt_out", False),
    ("停止发送", "opt_out", False),
    ("别再发", "opt_out", False),
    ("不要再发", "opt_out", False),
    ("取消订阅", "opt_out", False),
    ("退出订阅", "opt_out", False),
    ("STOP", "opt_out", False),
    ("STOPALL", "opt_out", False),
    ("UNSUBSCRIBE", "opt_out", False),
    ("OPT OUT", "opt_out", False),
    ("OPTOUT", "opt_out", False),
    ("T", "opt_out", True),
    ("TD", "opt_out", True),
    ("N", "opt_out", True),
    ("R", "opt_out", True),
    ("0000", "opt_out", True),
    ("取消", "opt_out", True),
    ("退出", "opt_out", True),
    ("CANCEL", "opt_out", True),
    ("END", "opt_out", True),
    ("QUIT", "opt_out", True),
    ("REMOVE", "opt_out", True),
    ("START", "opt_in", True),
    ("UNSTOP", "opt_in", True),
    ("订阅", "opt_in", True),
    ("请", "courtesy", False),
    ("谢谢", "courtesy", False),
    ("谢了", "courtesy", False),
    ("你好", "courtesy", False),
    ("您好", "courtesy", False),
    ("我要", "courtesy", False),
    ("我", "courtesy", False),
    ("要", "courtesy", False),
    ("回复", "courtesy", False),
    ("回", "courtesy", False),
    ("了", "courtesy", False),
    ("吧", "courtesy", False),
    ("啊", "courtesy", False),
    ("哦", "courtesy", False),
    ("好", "courtesy", False),
    ("短信", "courtesy", False),
    ("信息", "courtesy", False),
    ("马上", "courtesy", False),
    ("立即", "courtesy", False),
    ("PLEASE", "courtesy", False),
    ("PLS", "courtesy", False),
    ("THANKS", "courtesy", False),
    ("THANK YOU", "courtesy", False),
    ("THX", "courtesy", False),
    ("OK", "courtesy", False),
    ("ME", "courtesy", False),
    ("NOW", "courtesy", False),
    ("HI", "courtesy", False),
    ("HELLO", "courtesy", False),
    ("SMS", "courtesy", False),
]


def _key(text):
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(c for c in folded if unicodedata.category(c)[0] in ("L", "N"))


def seed(apps, schema_editor):
    BannedRule = apps.get_model("compliance", "BannedRule")
    RuleSetVersion = apps.get_model("compliance", "RuleSetVersion")
    OptOutKeyword = apps.get_model("compliance", "OptOutKeyword")
    ProtectedBrand = apps.get_model("compliance", "ProtectedBrand")
    with open(DATA / "banned_rules.csv", encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            BannedRule.objects.get_or_create(
                kind=row["kind"],
                pattern=row["pattern"],
                defaults={
                    "category": row["category"],
                    "action": row["action"],
                    "max_gap": int(row["max_gap"] or 6),
                    "enabled": row["enabled"] in ("1", "true", "True"),
                    "note": row["note"],
                },
            )
    RuleSetVersion.objects.update_or_create(pk=1, defaults={"stamp": uuid.uuid4()})
    for word, action, alone_only in KEYWORDS:
        OptOutKeyword.objects.get_or_create(
            match_key=_key(word), defaults={"word": word, "action": action, "alone_only": alone_only, "note": "seed"}
        )
    with open(DATA / "protected_brands.csv", encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            ProtectedBrand.objects.get_or_create(
                match_key=_key(row["name"]), defaults={"name": row["name"], "kind": row["kind"], "note": "seed"}
            )


def unseed(apps, schema_editor):
    apps.get_model("compliance", "OptOutKeyword").objects.filter(note="seed").delete()
    apps.get_model("compliance", "ProtectedBrand").objects.filter(note="seed").delete()
    with open(DATA / "banned_rules.csv", encoding="utf-8", newline="") as handle:
        patterns = [(row["kind"], row["pattern"]) for row in csv.DictReader(handle)]
    BannedRule = apps.get_model("compliance", "BannedRule")
    for kind, pattern in patterns:
        BannedRule.objects.filter(kind=kind, pattern=pattern, note="seed").delete()


class Migration(migrations.Migration):
    dependencies = [("compliance", "0008_gate_normaliser_optouts_brands")]

    operations = [migrations.RunPython(seed, unseed, hints={"model_name": "bannedrule"})]
