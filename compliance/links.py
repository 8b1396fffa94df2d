"""Links in message text (R-CMP-2): which text smuggles a URL, and whether a url parameter points to
a tenant's registered domain. Pure (no database, no network at runtime).

Top-level domains come from the public suffix list bundled with `tldextract` (suffix_list_urls=(),
so it never downloads), in Unicode and punycode form; `urlextract` (its bundled IANA list) runs too
and anything either finds counts. Also found: scheme URLs, www., bare IPv4 and IPv6 addresses,
internationalised domains (例子.公司) and the look-alike dots (。 ． ｡) and zero-width characters
spammers put in a domain (evil\u200b.com, evil。com).
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from functools import lru_cache
from urllib.parse import urlsplit

# Link shorteners hide the destination: never accepted as a url parameter, even if registered.
SHORTENERS = frozenset(
    {
        "t.cn", "url.cn", "dwz.cn", "suo.im", "suo.nz", "w.url.cn", "u.nu", "bit.ly", "bitly.com", "tinyurl.com",
        "goo.gl", "ow.ly", "is.gd", "buff.ly", "rebrand.ly", "cutt.ly", "t.co", "tiny.cc", "rb.gy", "shorturl.at",
        "s.id", "v.gd", "bl.ink", "lnkd.in", "t.ly", "qr.net", "0rz.tw", "reurl.cc", "dwz.mk", "mrw.so", "m6z.cn",
        "c7.gg", "sohu.gg", "985.so", "tb.cn", "m.tb.cn", "j.mp", "db.tt", "su.pr", "x.co", "shorturl.com",
    }
)  # fmt: skip

_DOTS = str.maketrans({"。": ".", "｡": ".", "．": ".", "﹒": ".", "․": ".", "‧": "."})


def _prepare(text: str) -> str:
    """NFKC, look-alike dots → ".", format / zero-width / control characters removed."""
    text = unicodedata.normalize("NFKC", text or "").translate(_DOTS)
    return "".join(c for c in text if unicodedata.category(c) not in ("Cf", "Cc") or c in "\n\t")


@lru_cache(maxsize=1)
def _tlds() -> frozenset[str]:
    import tldextract

    extractor = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)._get_tld_extractor()
    tops = {suffix.rsplit(".", 1)[-1].casefold() for suffix in extractor.tlds(include_psl_private_domains=False)}
    for label in list(tops):
        if not label.isascii():
            try:
                tops.add(label.encode("idna").decode("ascii"))
            except UnicodeError:
                pass
    return frozenset(tops)


@lru_cache(maxsize=1)
def _extractor():
    from urlextract import URLExtract

    return URLExtract(cache_dns=False)


_SCHEME = re.compile(r"\b[a-z][a-z0-9+.-]{1,15}://\S+|\bwww\.\S+", re.IGNORECASE)
_IPV4 = re.compile(r"(?<![\d.])(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?![\d])")
_IPV6 = re.compile(r"\[?[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}\]?", re.IGNORECASE)
# name.name…name: labels of letters (any script), digits and hyphens.
_DOMAIN = re.compile(r"(?:[^\W_][\w-]*\.)+([^\W_][\w-]*)")


def _is_tld_run(run: str) -> bool:
    """Does a label run start with a top-level domain? ASCII: the whole ASCII part must be one
    (evil.ru领取 → ru); non-ASCII (中国, 公司): any prefix that is one (例子.公司网站)."""
    tlds = _tlds()
    head = re.match(r"[a-z0-9-]+", run, re.IGNORECASE)
    if head:
        return head.group(0).strip("-").casefold() in tlds
    return any(run[:size].casefold() in tlds for size in range(1, min(len(run), 12) + 1))


def find_links(text: str) -> list[str]:
    """Every URL-like thing in the text: what a phone would linkify or a reader could type."""
    prepared = _prepare(text)
    if "." not in prepared and ":" not in prepared:
        return []  # no dot and no colon: no domain, IP or scheme can be in it
    found = [m.group(0) for m in _SCHEME.finditer(prepared)]
    for match in _IPV4.finditer(prepared):
        if all(int(part) <= 255 for part in match.groups()):
            found.append(match.group(0))
    for match in _IPV6.finditer(prepared):
        candidate = match.group(0).strip("[]")
        if candidate.count(":") >= 2 and re.search(r"[0-9a-f]", candidate, re.IGNORECASE):
            try:
                ipaddress.IPv6Address(candidate)
            except ValueError:
                continue
            found.append(candidate)
    for match in _DOMAIN.finditer(prepared):
        if _is_tld_run(match.group(1)):
            found.append(match.group(0))
    found.extend(_extractor().find_urls(prepared, check_dns=False))
    return found


def has_link(text: str) -> bool:
    return bool(find_links(text))


def host_of(url: str) -> str | None:
    """The host of an http(s) URL in its comparable form (lower case, punycode), or None."""
    prepared = _prepare(url).strip()
    if any(c.isspace() for c in prepared):
        return None
    try:
        parts = urlsplit(prepared)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        return None
    return domain_key(parts.hostname)


def domain_key(domain: str) -> str | None:
    """A domain as stored and compared: lower case, IDNA (punycode), no trailing dot; None if invalid."""
    domain = _prepare(domain).strip().rstrip(".").casefold()
    if not domain or "/" in domain or ":" in domain or "@" in domain:
        return None
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    if not re.fullmatch(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}", ascii_domain):
        return None
    return ascii_domain


def is_shortener(host: str) -> bool:
    return any(host == s or host.endswith("." + s) for s in SHORTENERS)


def host_allowed(host: str, domains: frozenset[str] | set[str]) -> bool:
    """Is the host one of the registered domains or a subdomain of one (and not a shortener)?"""
    if is_shortener(host):
        return False
    return any(host == d or host.endswith("." + d) for d in domains)
