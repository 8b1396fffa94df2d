"""R-CMP-3 scanner throughput with 10,000 rules on one core (goal: >= 50,000 messages/s).

Pure scanner (no database): the per-request cost of checking the cached scanner is one primary-key
read, paid once per check_message call, not per message.

    .venv/bin/python bench/bench_scanner.py [--rules 10000] [--regexes 20] [--messages 200000]
"""

import argparse
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smsplatform.settings")

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

    rows = [
        ("rules (keywords + regexes)", f"{args.rules} ({args.rules - args.regexes} + {args.regexes})", "rules", ""),
        ("scanner build time", f"{build * 1000:.0f}", "ms", ""),
        ("messages scanned", f"{len(messages)}", "messages", ""),
        ("messages with a match", f"{hits}", "messages", ""),
        ("throughput (one core)", f"{rate:,.0f}", "messages/s", ">= 50,000"),
        ("latency per message", f"{elapsed / len(messages) * 1e6:.1f}", "µs", ""),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'figure':<{width}}  {'value':>16}  {'unit':<10}  goal")
    for figure, value, unit, goal in rows:
        print(f"{figure:<{width}}  {value:>16}  {unit:<10}  {goal}")


if __name__ == "__main__":
    main()
