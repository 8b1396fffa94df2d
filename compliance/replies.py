"""R-CMP-4: what an inbound reply means, and which keyword a template's unsubscribe instruction
names. Pure (no I/O): the keyword table comes from the OptOutKeyword rows (operator-editable) or,
without a database, from DEFAULT_KEYWORDS (the same list the seed migration loads).

A reply is read through the one normaliser (compliance/normalise.py), so width, case, traditional
characters, look-alikes, zero-width characters and spaces inside a Chinese word ("退 订") change
nothing. Tokens are words: a Latin token is a whole Latin word ("stop please", "T退订"), a Chinese
one a run of characters anywhere ("我要退订"). Then:

- only opt-out tokens and courtesy words ("TD退订", "stop please", "退订谢谢", "N") → opt out;
- an opt-out token that is not `alone_only` inside other text ("请不要再发了，退订") → opt out;
- a negated token ("不退订", "don't stop"), opt-out and opt-in together, or an `alone_only` token
  inside other text ("取消订单", "T恤还有吗") → review (an operator decides; never ignored);
- an opt-in token alone (START) → opt in; inside other text it is ordinary conversation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .normalise import normalise, spaced

# (word, action, alone_only): the seed of the OptOutKeyword table (migration 0007 holds a copy).
DEFAULT_KEYWORDS: tuple[tuple[str, str, bool], ...] = (
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
)

NEGATIONS_CJK = ("不", "别", "勿", "没", "莫", "无需", "不用", "不想", "不要")
NEGATIONS_LATIN = frozenset({"not", "dont", "don", "never", "doesnt", "didnt", "cant", "wont", "no"})


@dataclass(frozen=True)
class Keyword:
    word: str
    action: str  # opt_out | opt_in | courtesy
    alone_only: bool
    pattern: re.Pattern = field(compare=False)


def _pattern(word: str) -> re.Pattern:
    """A Latin token is a whole word (words may be split by spaces: "opt out"); a token with
    Chinese in it matches anywhere."""
    text = spaced(word)
    if text.isascii():
        return re.compile(r"(?<![a-z0-9])" + r" ?".join(re.escape(part) for part in text.split()) + r"(?![a-z0-9])")
    return re.compile(re.escape(normalise(word)))


def compile_keywords(rows) -> tuple[Keyword, ...]:
    """(word, action, alone_only) rows → keywords, longest first (取消订阅 before 取消 and 订阅)."""
    keywords = [Keyword(word, action, bool(alone), _pattern(word)) for word, action, alone in rows if normalise(word)]
    return tuple(sorted(keywords, key=lambda k: -len(normalise(k.word))))


DEFAULTS = compile_keywords(DEFAULT_KEYWORDS)


@dataclass(frozen=True)
class ReplyVerdict:
    action: str | None  # opt_out | opt_in | review | None (an ordinary reply)
    tokens: tuple[str, ...] = ()
    why: str = ""


def _reading(text: str) -> str:
    """The reply as one line of normalised words; spaces between two Chinese characters dropped."""
    return re.sub(r"(?<=[^\x00-\x7f]) (?=[^\x00-\x7f])", "", spaced(text))


def _negated(before: str) -> bool:
    before = before.rstrip()
    if any(
        before.replace(" ", "")[-4:].endswith(word) or word in before.replace(" ", "")[-3:] for word in NEGATIONS_CJK
    ):
        return True
    previous = re.findall(r"[a-z0-9]+", before)[-2:]
    return any(word in NEGATIONS_LATIN for word in previous)


def classify_reply(text: str, keywords: tuple[Keyword, ...] = DEFAULTS) -> ReplyVerdict:
    """What an inbound reply asks for (module doc)."""
    reading = _reading(text)
    if not reading:
        return ReplyVerdict(None)
    found: list[Keyword] = []
    negated = False
    for keyword in keywords:  # longest first; a matched token is blanked so shorter ones don't re-match it
        while True:
            match = keyword.pattern.search(reading)
            if match is None:
                break
            if keyword.action == "opt_out" and _negated(reading[: match.start()]):
                negated = True
            if keyword.action != "courtesy":
                found.append(keyword)
            reading = reading[: match.start()] + " " + reading[match.end() :]
    opt_out = [k for k in found if k.action == "opt_out"]
    opt_in = [k for k in found if k.action == "opt_in"]
    tokens = tuple(dict.fromkeys(k.word for k in found))
    if not found:
        return ReplyVerdict(None)
    alone = not reading.strip()
    if opt_out and opt_in:
        return ReplyVerdict("review", tokens, "opt-out and opt-in words together")
    if negated:
        return ReplyVerdict("review", tokens, "an opt-out word after a negation")
    if opt_in:
        return ReplyVerdict("opt_in", tokens) if alone else ReplyVerdict(None, tokens)
    if alone or any(not k.alone_only for k in opt_out):
        return ReplyVerdict("opt_out", tokens)
    return ReplyVerdict("review", tokens, "a short opt-out word inside other text")


# --- the unsubscribe instruction of a template (R-CMP-4) ---------------------------------------

_Q = "[\"'“”‘’「」『』《》]?"
_KEY = r"([A-Za-z0-9]{1,12}|[\u4e00-\u9fff]{2,4}?)"
_INSTRUCTIONS = (
    # 回T退订, 回复TD退订, 回N拒收, 回复“0000”退订, 回复R即可退订
    re.compile(rf"回\s*复?\s*{_Q}\s*{_KEY}\s*{_Q}\s*(?:即可|可|以)?\s*(?:退订|拒收|退出|取消订阅|取消)"),
    # 退订回T, 拒收请回复N, 如需退订请回复TD
    re.compile(rf"(?:退订|拒收|退出|取消订阅)\s*[,，:：]?\s*(?:请)?\s*回\s*复?\s*{_Q}\s*{_KEY}"),
    # 回复退订 (the keyword is the word itself)
    re.compile(r"回\s*复?\s*[\"'“「]?\s*(退订|拒收)"),
    # Reply STOP to opt out, Text STOP to end, Send Q to unsubscribe
    re.compile(
        rf"\b(?:reply|text|txt|send|sms)\s+(?:with\s+)?{_Q}([A-Za-z0-9]{{1,12}}){_Q}\s+(?:to\s+)?"
        r"(?:unsubscribe|opt\s*-?\s*out|stop|end|cancel|quit)\b",
        re.IGNORECASE,
    ),
    # Reply STOP (the keyword itself says it)
    re.compile(r"\b(?:reply|text|txt|send)\s+(?:with\s+)?[\"'“]?(stop|unsubscribe|stopall)\b", re.IGNORECASE),
    # STOP to unsubscribe
    re.compile(r"\b([A-Za-z0-9]{1,12})\s+to\s+(?:unsubscribe|opt\s*-?\s*out)\b", re.IGNORECASE),
)


def unsubscribe_keywords(body: str) -> list[str]:
    """The keywords a body's unsubscribe instructions tell the recipient to reply ([] = none)."""
    import unicodedata

    text = unicodedata.normalize("NFKC", body or "")
    found: list[str] = []
    for pattern in _INSTRUCTIONS:
        for match in pattern.finditer(text):
            word = match.group(1)
            if word.casefold() in ("to", "with", "reply", "text", "send"):
                continue
            if word not in found:
                found.append(word)
    return found


def unrecognised_instruction_keywords(body: str, keywords: tuple[Keyword, ...] = DEFAULTS) -> list[str]:
    """Keywords named by the instructions that a reply of that keyword alone would NOT opt out."""
    return [word for word in unsubscribe_keywords(body) if classify_reply(word, keywords).action != "opt_out"]
