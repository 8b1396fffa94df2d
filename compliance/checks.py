"""Pure compliance policy checks (no I/O): signature text, template variables and rendering,
unsubscribe instructions, opt-out keywords, per-country rules. R-CMP-1, R-CMP-2, R-CMP-4, R-CMP-9.
Phone numbers are normalised by smsplatform.numbers.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime, time

import phonenumbers

from . import links

# --- R-CMP-1 signatures ----------------------------------------------------------------------

SIGNATURE_MIN, SIGNATURE_MAX = 2, 20
_BRACKETS = set("【】[]()（）<>《》{}〔〕［］「」『』")
# Kept for callers that only need a quick scheme/www test; link detection is links.find_links().
URL_RE = re.compile(r"(https?://|www\.)", re.IGNORECASE)


def signature_problem(text: str) -> str | None:
    """Why a signature text is not acceptable, or None (R-CMP-1)."""
    if text != text.strip():
        return "The signature must not start or end with spaces."
    if not SIGNATURE_MIN <= len(text) <= SIGNATURE_MAX:
        return f"The signature must be {SIGNATURE_MIN} to {SIGNATURE_MAX} characters."
    if any(char in _BRACKETS for char in text):
        return "The signature is shown inside 【】: it must not contain brackets."
    if links.has_link(text):
        return "The signature must not contain a URL."
    if any(ord(char) < 32 for char in text):
        return "The signature must not contain control characters."
    return None


# --- R-CMP-2 template variables --------------------------------------------------------------

VARIABLE_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]{0,31})\}")
KINDS = ("code", "number", "date", "text", "url")
# Commercial message types: an unsubscribe instruction and the recipient's consent are required
# for each of them (R-CMP-4, R-CMP-5), not only for marketing.
COMMERCIAL_TYPES = ("marketing", "member")
# url variables are allowed only in these template types (never in verification codes).
URL_ALLOWED_TYPES = ("notification", "marketing", "member")
TEXT_MAX_LENGTH_LIMIT = 50
DEFAULT_MAX_LENGTH = {"number": 12, "date": 20, "text": 20, "url": 100}
_DATE_FORMATS = ("%Y-%m-%d", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y/%m/%d", "%Y年%m月%d日", "%m-%d", "%H:%M")
_NUMBER_RE = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_CODE_RE = re.compile(r"[0-9]{4,8}")  # ASCII only: \d would accept full-width digits
_URL_PARAM_RE = re.compile(r"https?://[A-Za-z0-9.-]+(:\d+)?(/[A-Za-z0-9._~%/?#=&+-]*)?")


class TemplateDefinitionError(ValueError):
    pass


class ParameterError(ValueError):
    def __init__(self, message: str, *, parameter: str | None = None):
        super().__init__(message)
        self.parameter = parameter


def variables_in(body: str) -> list[str]:
    seen: list[str] = []
    for name in VARIABLE_RE.findall(body):
        if name not in seen:
            seen.append(name)
    return seen


def check_definition(*, body: str, variables: dict, message_type: str) -> dict:
    """Validate a template body and its variable declarations; return them normalised.

    Every ${name} in the body is declared with a kind and every declaration is used (R-CMP-2).
    """
    if not body.strip():
        raise TemplateDefinitionError("The template body is empty.")
    if "【" in body or "】" in body:
        raise TemplateDefinitionError("The body must not contain 【】: the signature is added when sending.")
    stray = re.sub(VARIABLE_RE, "", body)
    if "${" in stray:
        raise TemplateDefinitionError("Malformed variable: use ${name} with letters, digits and _.")
    used = variables_in(body)
    if not isinstance(variables, dict):
        raise TemplateDefinitionError("variables must be an object: {name: {kind, max_length}}.")
    missing = [name for name in used if name not in variables]
    if missing:
        raise TemplateDefinitionError(f"Undeclared variables: {', '.join(missing)}.")
    unused = [name for name in variables if name not in used]
    if unused:
        raise TemplateDefinitionError(f"Declared but unused variables: {', '.join(unused)}.")
    clean: dict[str, dict] = {}
    for name in used:
        spec = variables[name]
        if isinstance(spec, str):
            spec = {"kind": spec}
        if not isinstance(spec, dict) or spec.get("kind") not in KINDS:
            raise TemplateDefinitionError(f"Variable {name}: kind must be one of {', '.join(KINDS)}.")
        kind = spec["kind"]
        if kind == "url" and message_type not in URL_ALLOWED_TYPES:
            raise TemplateDefinitionError(
                f"Variable {name}: url variables are not allowed in {message_type} templates."
            )
        entry: dict = {"kind": kind}
        if kind != "code":
            max_length = spec.get("max_length", DEFAULT_MAX_LENGTH[kind])
            if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 1:
                raise TemplateDefinitionError(f"Variable {name}: max_length must be a positive integer.")
            if kind == "text" and max_length > TEXT_MAX_LENGTH_LIMIT:
                raise TemplateDefinitionError(
                    f"Variable {name}: text variables are at most {TEXT_MAX_LENGTH_LIMIT} characters."
                )
            entry["max_length"] = max_length
        clean[name] = entry
    return clean


def _is_date(value: str) -> bool:
    for fmt in _DATE_FORMATS:
        try:
            datetime.strptime(value, fmt)  # noqa: DTZ007 - a format check, not a moment
        except ValueError:
            continue
        return True
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def check_parameter(*, name: str, spec: dict, value, link_domains: frozenset[str] | None = None) -> str:
    """The parameter as text if it fits its declared kind and length; else ParameterError.

    A text parameter carries no URL of any kind (links.find_links); a url parameter must point to
    one of `link_domains`, the tenant's registered domains (none registered: every url refused)."""
    if isinstance(value, bool) or value is None or isinstance(value, dict | list):
        raise ParameterError(f"Parameter {name} must be a string or a number.", parameter=name)
    text = str(value)
    kind = spec["kind"]
    if kind == "code":
        if not _CODE_RE.fullmatch(text):
            raise ParameterError(f"Parameter {name} must be 4 to 8 digits.", parameter=name)
        return text
    if len(text) > spec.get("max_length", DEFAULT_MAX_LENGTH[kind]):
        raise ParameterError(f"Parameter {name} is longer than {spec.get('max_length')} characters.", parameter=name)
    if not text or any(ord(char) < 32 or char in "\u2028\u2029" for char in text):
        raise ParameterError(f"Parameter {name} is empty or contains control characters.", parameter=name)
    if kind == "number" and not _NUMBER_RE.fullmatch(text):
        raise ParameterError(f"Parameter {name} must be a number.", parameter=name)
    if kind == "date" and not _is_date(text):
        raise ParameterError(f"Parameter {name} must be a date (YYYY-MM-DD[ HH:MM]).", parameter=name)
    if kind == "text":
        if links.has_link(text):  # any TLD, IPs, IDNs, full-width / look-alike dots, zero-width splits
            raise ParameterError(f"Parameter {name} must not carry a URL.", parameter=name)
        if "【" in text or "】" in text:
            raise ParameterError(f"Parameter {name} must not contain 【】.", parameter=name)
    if kind == "url":
        if not _URL_PARAM_RE.fullmatch(text):
            raise ParameterError(f"Parameter {name} must be an http(s) URL.", parameter=name)
        host = links.host_of(text)
        if host is None or not links.host_allowed(host, link_domains or frozenset()):
            raise ParameterError(
                f"Parameter {name} must link to one of the account's registered domains (link shorteners are refused).",
                parameter=name,
            )
    return text


def render(*, body: str, variables: dict, params: dict, link_domains: frozenset[str] | None = None) -> str:
    """Fill ${name} placeholders; unknown, missing or ill-typed parameters are refused (R-CMP-2)."""
    if not isinstance(params, dict):
        raise ParameterError("Parameters must be an object.")
    unknown = sorted(set(params) - set(variables))
    if unknown:
        raise ParameterError(f"Unknown parameters: {', '.join(unknown)}.", parameter=unknown[0])
    missing = [name for name in variables if name not in params]
    if missing:
        raise ParameterError(f"Missing parameters: {', '.join(missing)}.", parameter=missing[0])
    values = {
        name: check_parameter(name=name, spec=spec, value=params[name], link_domains=link_domains)
        for name, spec in variables.items()
    }
    return VARIABLE_RE.sub(lambda m: values[m.group(1)], body)


# --- R-CMP-4 unsubscribe instruction and keywords --------------------------------------------

UNSUBSCRIBE_PATTERNS = (
    r"回\s*(复)?\s*(T|TD|N)\s*(退订|拒收)",
    r"(退订|拒收)\s*(请)?\s*回\s*(复)?\s*(T|TD|N)",
    r"回\s*(复)?\s*退订",
    r"\breply\s+(stop|t|td|unsubscribe)\b",
    r"\b(text|send)\s+stop\b",
    r"\bstop\s+to\s+(unsubscribe|opt\s*-?\s*out|end|cancel|quit)\b",
)


def has_unsubscribe_instruction(body: str) -> bool:
    from .replies import unsubscribe_keywords

    text = unicodedata.normalize("NFKC", body or "")
    return bool(unsubscribe_keywords(text)) or any(re.search(p, text, re.IGNORECASE) for p in UNSUBSCRIBE_PATTERNS)


def inbound_keyword(text: str) -> str | None:
    """'opt_out', 'opt_in' or None for an inbound reply, with the default keyword list (the
    service uses the operator-edited list and also files ambiguous replies for review)."""
    from .replies import classify_reply

    action = classify_reply(text).action
    return action if action in ("opt_out", "opt_in") else None


# --- R-CMP-9 per-country rules ---------------------------------------------------------------

ALPHANUMERIC_SENDER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ]{0,10}$")


def is_alphanumeric_sender(text: str) -> bool:
    """An alphanumeric sender ID: 1–11 Latin letters, digits or spaces (GSM 03.40 TP-OA limit)."""
    return bool(ALPHANUMERIC_SENDER_RE.match(text)) and text == text.strip()


def in_quiet_hours(*, local: time, start: time, end: time) -> bool:
    """Is `local` inside [start, end)? A window may cross midnight (20:00–08:00)."""
    if start <= end:
        return start <= local < end
    return local >= start or local < end


def country_rule_problem(
    *, country: str, home: str, quiet_start: time | None, quiet_end: time | None, zone: str
) -> str | None:
    """Why a country rule cannot be saved, or None (R-CMP-9)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if not re.fullmatch(r"[A-Z]{2}", country or "") or country not in phonenumbers.SUPPORTED_REGIONS:
        return f"{country!r} is not an ISO 3166-1 alpha-2 country code (upper case)."
    if country == home:
        return f"{home} is the home country: its messages follow the domestic rules, not a country rule."
    if (quiet_start is None) != (quiet_end is None):
        return "Give both ends of the quiet hours, or neither."
    if quiet_start is not None and quiet_start == quiet_end:
        return "The quiet hours must not start and end at the same time."
    if zone:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            return f"{zone!r} is not an IANA time zone (e.g. Europe/Paris)."
    elif quiet_start is not None:
        return "Quiet hours need the country's time zone."
    return None
