"""R-CMP-3 scanner throughput with 10,000 rules on one core (goal: >= 50,000 messages/s), and the
whole send gate check_message on batches of 1000 recipients (needs DATABASE_URL; --no-db skips it).

The scanner part is pure (no database): checking that the cached scanner is current is one
primary-key read per check_message call, not per message.

    .venv/bin/python bench/bench_scanner.py [--rules 10000] [--regexes 20] [--messages 200000] [--no-db]
"""

import argparse
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smsplatform.settings")

from _setup import print_table  # noqa: E402

from compliance.scanner import Rule, Scanner  # noqa: E402  (pure module: no django.setup needed)

CATEGORIES = ["gambling", "pornography", "bank_fraud", "third_party_ads", "financial_marketing", "unsolicited_ads"]
COMMON = "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年就那要下以生会自之着去之过家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长"
TEMPLATES = [
    "【{brand}】您的验证码是{code}，5分钟内有效，请勿泄露给他人。",
    "【{brand}】尊敬的会员，您的订单{code}已发货，预计明天送达，如有疑问请致电客服。",
    "【{brand}】Your verification code is {code}. It expires in 5 minutes.",
    "【{brand}】亲爱的{name}，双十一大促全场五折起，详情进入小程序查看，回T退订。",
    "【{brand}】您尾号{code}的账户于今日完成还款，感谢您的使用。",
]


def make_rules(count: int, regexes: int, rng: random.Random) -> list[Rule]:
    rules, seen = [], set()
    while len(rules) < count - regexes:
        word = "".join(rng.choice(COMMON) for _ in range(rng.randint(3, 5)))
        if word in seen:
            continue
        seen.add(word)
        rules.append(Rule(len(rules) + 1, "keyword", word, rng.choice(CATEGORIES), rng.choice(["reject", "hold"])))
    for n in range(regexes):
        rules.append(Rule(len(rules) + 1, "regex", rf"加\s*微\s*信\s*[a-z]{{2}}{n:03d}", "third_party_ads", "hold"))
    return rules


def make_messages(count: int, rules: list[Rule], rng: random.Random) -> list[str]:
    messages = []
    for n in range(count):
        text = rng.choice(TEMPLATES).format(brand="示例商城", code=rng.randint(1000, 99999999), name="张三")
        if n % 100 == 0:  # 1% carry an obfuscated banned word
            word = rng.choice(rules).pattern
            text += " ".join(word) if len(word) < 8 else ""
        messages.append(text)
    return messages


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rules", type=int, default=10_000)
    parser.add_argument("--regexes", type=int, default=20)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--batches", type=int, default=20, help="check_message calls per variant")
    parser.add_argument("--no-db", action="store_true", help="scanner only")
    args = parser.parse_args()
    rng = random.Random(42)
    rules = make_rules(args.rules, args.regexes, rng)
    messages = make_messages(args.messages, rules, rng)

    started = time.perf_counter()
    scanner = Scanner(rules)
    build = time.perf_counter() - started

    scanner.scan(messages[0])
    started = time.perf_counter()
    hits = 0
    for message in messages:
        if not scanner.scan(message).clean:
            hits += 1
    elapsed = time.perf_counter() - started
    rate = len(messages) / elapsed

    print_table(
        f"Banned-content scanner, {args.rules} rules, one core",
        [
            ("rules (keywords + regexes)", f"{args.rules} ({args.rules - args.regexes} + {args.regexes})", "rules", ""),
            ("scanner build time", f"{build * 1000:.0f}", "ms", ""),
            ("messages scanned", f"{len(messages)}", "messages", ""),
            ("messages with a match", f"{hits}", "messages", ""),
            ("throughput (one core)", f"{rate:,.0f}", "messages/s", ">= 50,000"),
            ("latency per message", f"{elapsed / len(messages) * 1e6:.1f}", "µs", ""),
        ],
    )
    bench_corpus()
    if not args.no_db:
        bench_check_message(batches=args.batches)


def bench_corpus() -> None:
    """Precision and recall of the seed rule set (compliance/data/banned_rules.csv and migration
    0002) on bench/data/compliance_corpus.csv: deny = refused or held, allow = clean."""
    import csv
    import importlib
    import re

    root = Path(__file__).resolve().parent.parent
    rules = [
        Rule(n, kind, pattern, category, action)
        for n, (kind, pattern, category, action) in enumerate(
            importlib.import_module("compliance.migrations.0002_seed_banned_rules").SEED, start=1
        )
    ]
    with (root / "compliance" / "data" / "banned_rules.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            rules.append(
                Rule(len(rules) + 1, row["kind"], row["pattern"], row["category"], row["action"], int(row["max_gap"]))
            )
    scanner = Scanner(rules)

    def decode(text: str) -> str:
        return re.sub(r"\\u([0-9a-fA-F]{4})|\\n", lambda m: chr(int(m.group(1), 16)) if m.group(1) else "\n", text)

    tp = fp = fn = tn = 0
    with (root / "bench" / "data" / "compliance_corpus.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            flagged = not scanner.scan(decode(row["text"])).clean
            deny = row["label"] == "deny"
            tp, fp = tp + (flagged and deny), fp + (flagged and not deny)
            fn, tn = fn + (not flagged and deny), tn + (not flagged and not deny)
    print_table(
        f"Seed rule set on the corpus ({len(rules)} rules, {tp + fn} deny + {fp + tn} allow examples)",
        [
            ("precision", f"{tp / max(tp + fp, 1):.3f}", "", "1.000"),
            ("recall", f"{tp / max(tp + fn, 1):.3f}", "", "1.000"),
            ("false positives / false negatives", f"{fp} / {fn}", "messages", "0 / 0"),
        ],
    )


def bench_check_message(*, batches: int) -> None:
    """check_message end to end: 1000 recipients a call, one parameter set, seed rules."""
    import secrets

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import transaction

    from compliance import services
    from smsplatform.tenancy import ensure_template_schema
    from tenants import registration
    from tenants import services as tenant_services
    from tenants.management.commands.bootstrap import ensure_public_tenant

    call_command("migrate_schemas", interactive=False, verbosity=0)
    ensure_template_schema()
    ensure_public_tenant()
    actor = tenant_services.Actor.system("bench")
    tenant = registration.register_tenant(
        name="Bench Scanner Co.",
        licence_number=f"BENCH{secrets.token_hex(6).upper()}",
        contact_name="bench",
        contact_phone="+8613800000000",
        contact_email="bench@example.com",
        actor=actor,
        activate=True,
    )
    services.update_compliance_settings(tenant=tenant, changes={"spike_multiple": 1e9}, actor=actor)
    signature = services.file_signature(
        tenant=tenant, text="BenchBrand", purpose="bench", actor=actor, proofs=[_proof()]
    )
    services.approve_signature(signature=signature, actor=actor)
    template = services.file_template(
        tenant=tenant,
        name="bench",
        message_type="notification",
        actor=actor,
        body="尊敬的${name}，您的订单${order}已发货。",
        variables={"name": {"kind": "text", "max_length": 10}, "order": {"kind": "number"}},
    )
    services.approve_template_version(version=template.versions.get(), actor=actor)
    recipients = [f"+86139{n:08d}" for n in range(1000)]
    per_recipient = [{"name": f"客户{n}", "order": str(n)} for n in range(1000)]
    timings = {}
    for label, params in (
        ("one parameter set", {"name": "张三", "order": "42"}),
        ("per-recipient parameters", per_recipient),
    ):
        started = time.perf_counter()
        for _ in range(batches):
            with transaction.atomic():
                services.check_message(
                    tenant=tenant, signature="BenchBrand", template=template.code, params=params, recipients=recipients
                )
        timings[label] = (time.perf_counter() - started) / batches
    # R-CMP-9: an international template to 1000 numbers in 4 countries with rules (the country
    # rules are one query a call; content rules checked once per country and text).
    services.update_compliance_settings(
        tenant=tenant, changes={"enabled_countries": ["US", "GB", "FR", "JP"]}, actor=actor
    )
    intl = services.file_template(
        tenant=tenant,
        name="bench-intl",
        message_type="international",
        actor=actor,
        body="Your code is ${code}. Reply STOP to opt out",
        variables={"code": {"kind": "code"}},
    )
    services.approve_template_version(version=intl.versions.get(), actor=actor)
    abroad = [f"+1202555{n:04d}" for n in range(250)] + [f"+4474001{n:05d}" for n in range(250)]
    abroad += [f"+3361234{n:04d}" for n in range(250)] + [f"+8190123{n:05d}" for n in range(250)]
    started = time.perf_counter()
    for _ in range(batches):
        with transaction.atomic():
            services.check_message(
                tenant=tenant, signature="BenchBrand", template=intl.code, params={"code": "123456"}, recipients=abroad
            )
    timings["international, 4 countries"] = (time.perf_counter() - started) / batches
    print_table(
        "check_message, 1000 recipients a call (PostgreSQL)",
        [(f"latency, {label}", f"{seconds * 1000:.1f}", "ms per call", "") for label, seconds in timings.items()]
        + [
            (f"recipients/s, {label}", f"{1000 / seconds:,.0f}", "recipients/s", "")
            for label, seconds in timings.items()
        ],
    )


def _proof():
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("bench.pdf", b"%PDF-1.4 bench", content_type="application/pdf")


if __name__ == "__main__":
    main()
