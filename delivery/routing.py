"""R-DLV-2: number facts (country, carrier, province) and channel choice. Numbers come in
normalised by smsplatform.numbers.normalise_strict.

Pure-ish: `describe_numbers` reads the prefix tables once per call; `RoutingTable` is loaded once
per relay run and answers `channels_for(...)` from memory, so routing a batch costs no queries
per message.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime

import phonenumbers
from django.db.models import Q
from django.utils import timezone

from .models import CarrierPrefix, Channel, Maintenance, ProvincePrefix, Route

_CN_PREFIX = "+86"  # the calling code of CN alone (region_codes_for_country_code(86) == ("CN",))


@dataclass(frozen=True)
class NumberFacts:
    e164: str
    country: str
    carrier: str = ""
    province: str = ""


def _carrier_prefixes() -> tuple[dict[str, str], int]:
    prefixes = dict(CarrierPrefix.objects.values_list("prefix", "carrier"))
    return prefixes, max((len(p) for p in prefixes), default=0)


def describe_numbers(e164_numbers: list[str]) -> dict[str, NumberFacts]:
    """Country (phonenumbers), carrier (prefix table) and province (prefix-7 table, optional).

    Two queries whatever the number of recipients. `e164_numbers` come from normalise_strict()."""
    countries: dict[str, str] = {}
    national: dict[str, str] = {}
    for n in set(e164_numbers):
        # +86 is CN only and its E.164 form is "+86" + the national number: no second parse for
        # the bulk of the traffic (parsing was ~10% of a 1000-recipient batch request).
        if n.startswith(_CN_PREFIX) and n[3:4] not in ("", "0") and n[3:].isdigit():
            countries[n], national[n] = "CN", n[3:]
            continue
        p = phonenumbers.parse(n, None)
        countries[n] = phonenumbers.region_code_for_number(p) or ""
        if countries[n] == "CN":
            national[n] = str(p.national_number)
    # Issue 17: both tables from the per-process cache ("routing" counter, smsplatform/config_cache.py).
    from smsplatform import config_cache

    prefixes, longest = config_cache.get("routing", "carriers", _carrier_prefixes)
    provinces = (
        config_cache.get_many(
            "routing",
            [("province", nat[:7]) for nat in set(national.values())],
            lambda keys: {
                ("province", prefix): province
                for prefix, province in ProvincePrefix.objects.filter(prefix__in=[k[1] for k in keys]).values_list(
                    "prefix", "province"
                )
            },
        )
        if national
        else {}
    )
    provinces = {key[1]: value for key, value in provinces.items() if value}
    facts = {}
    for number, country in countries.items():
        carrier = province = ""
        nat = national.get(number)
        if nat:
            for size in range(min(longest, len(nat)), 0, -1):
                if nat[:size] in prefixes:
                    carrier = prefixes[nat[:size]]
                    break
            province = provinces.get(nat[:7], "")
        facts[number] = NumberFacts(e164=number, country=country, carrier=carrier, province=province)
    return facts


@dataclass
class RoutingTable:
    """Enabled routes whose channel is enabled; `unavailable` = channels down or in maintenance."""

    routes: list[Route]
    unavailable: set[int] = field(default_factory=set)
    rng: random.Random = field(default_factory=random.Random)

    @classmethod
    def load(cls, *, at: datetime | None = None) -> RoutingTable:
        at = at or timezone.now()
        routes = list(Route.objects.filter(enabled=True, channel__enabled=True).select_related("channel"))
        down = {r.channel_id for r in routes if r.channel.down_until and r.channel.down_until > at}
        # R-DLV-6: routing avoids channels under maintenance.
        maintenance = set(
            Maintenance.objects.filter(cancelled_at__isnull=True, starts_at__lte=at, ends_at__gt=at).values_list(
                "channel_id", flat=True
            )
        )
        return cls(routes=routes, unavailable=down | maintenance)

    def matching(self, *, message_type: str, country: str, carrier: str, province: str) -> list[Route]:
        return [
            r
            for r in self.routes
            if (not r.message_type or r.message_type == message_type)
            and (not r.country or r.country == country)
            and (not r.carrier or r.carrier == carrier)
            and (not r.province or r.province == province)
        ]

    def channels_for(
        self,
        *,
        message_type: str,
        country: str,
        carrier: str = "",
        province: str = "",
        exclude: frozenset[int] = frozenset(),
    ) -> tuple[list[int], bool]:
        """(available channel ids in failover order, whether any route matched at all).

        Priority ascending; within a priority a weighted random order (each channel's chance to
        come first is proportional to its weight)."""
        matched = self.matching(message_type=message_type, country=country, carrier=carrier, province=province)
        keyed = []
        for r in matched:
            if r.channel_id in self.unavailable or r.channel_id in exclude:
                continue
            keyed.append((r.priority, -(self.rng.random() ** (1.0 / r.weight)), r.channel_id))
        ordered: list[int] = []
        for _, _, channel_id in sorted(keyed):
            if channel_id not in ordered:
                ordered.append(channel_id)
        return ordered, bool(matched)


def channels_under_maintenance(*, at: datetime | None = None) -> set[int]:
    at = at or timezone.now()
    return set(
        Maintenance.objects.filter(Q(cancelled_at__isnull=True), starts_at__lte=at, ends_at__gt=at).values_list(
            "channel_id", flat=True
        )
    )


def channel_by_id(channel_id: int) -> Channel:
    return Channel.objects.get(pk=channel_id)


def channel_accounts() -> dict[int, tuple]:
    """{channel id: its SMSC account (host, port, system_id)}: channels sharing an account share
    its message ids and receipts, and nothing else does (issue 10)."""
    return {
        pk: (host.lower(), port, system_id)
        for pk, host, port, system_id in Channel.objects.values_list("pk", "host", "port", "system_id")
    }
