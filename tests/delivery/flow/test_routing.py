"""R-DLV-2: carrier by prefix, routes by type/country/carrier/province, priority, weight, failover;
R-DLV-6: channels in maintenance are avoided."""

from collections import Counter
from datetime import timedelta

from django.utils import timezone

from delivery.models import CarrierPrefix, Maintenance, ProvincePrefix, Route
from delivery.routing import RoutingTable, describe_numbers
from smsplatform.numbers import normalise_strict


def test_numbers_without_plus_are_chinese():
    assert normalise_strict("13800138000") == "+8613800138000"
    assert normalise_strict("+14155550123") == "+14155550123"
    assert normalise_strict("12345") is None


def test_carrier_prefixes_are_seeded_R_DLV_2(db):
    assert CarrierPrefix.objects.get(prefix="198").carrier == "china_mobile"
    assert CarrierPrefix.objects.get(prefix="166").carrier == "china_unicom"
    assert CarrierPrefix.objects.get(prefix="199").carrier == "china_telecom"
    assert CarrierPrefix.objects.count() == 41


def test_describe_numbers_gives_country_carrier_province(db):
    ProvincePrefix.objects.create(prefix="1380013", province="Beijing")
    facts = describe_numbers(["+8613800138000", "+8618612345678", "+8613312345678", "+14155550123"])
    assert facts["+8613800138000"].carrier == "china_mobile"
    assert facts["+8613800138000"].province == "Beijing"
    assert facts["+8618612345678"].carrier == "china_unicom"
    assert facts["+8613312345678"].carrier == "china_telecom"
    assert facts["+14155550123"].country == "US"
    assert facts["+14155550123"].carrier == ""


def test_describe_numbers_query_count_does_not_grow(db):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    describe_numbers(["+8613900000000"])  # the prefix tables come from the per-process cache (issue 17)
    counts = []
    for size, prefix in ((5, "137"), (300, "138")):  # province prefixes not cached yet in both rounds
        with CaptureQueriesContext(connection) as ctx:
            describe_numbers([f"+86{prefix}{i:08d}" for i in range(size)])
        counts.append(len(ctx))
    assert counts[0] == counts[1] <= 4


def test_specific_route_and_priority_order(make_channel):
    a = make_channel(priority=10, route=False)
    b = make_channel(priority=20, route=False)
    Route.objects.create(name="cm", channel=a, carrier="china_mobile", priority=10)
    Route.objects.create(name="any", channel=b, priority=20)
    table = RoutingTable.load()
    assert table.channels_for(message_type="notification", country="CN", carrier="china_mobile")[0] == [a.pk, b.pk]
    assert table.channels_for(message_type="notification", country="CN", carrier="china_unicom")[0] == [b.pk]


def test_message_type_and_country_criteria(make_channel):
    a = make_channel(route=False)
    Route.objects.create(name="intl", channel=a, message_type="international", country="US")
    table = RoutingTable.load()
    assert table.channels_for(message_type="international", country="US")[0] == [a.pk]
    assert table.channels_for(message_type="marketing", country="US") == ([], False)


def test_weights_share_the_first_place(make_channel):
    heavy = make_channel(priority=5, weight=3)
    light = make_channel(priority=5, weight=1)
    table = RoutingTable.load()
    table.routes = [r for r in table.routes if r.channel_id in (heavy.pk, light.pk)]
    firsts = Counter(table.channels_for(message_type="notification", country="CN")[0][0] for _ in range(4000))
    assert 2.4 < firsts[heavy.pk] / firsts[light.pk] < 3.8
    assert set(table.channels_for(message_type="notification", country="CN")[0]) == {heavy.pk, light.pk}


def test_failover_excludes_tried_and_down_channels(make_channel):
    first = make_channel(priority=1)
    second = make_channel(priority=2)
    down = make_channel(priority=0, down_until=timezone.now() + timedelta(minutes=1))
    table = RoutingTable.load()
    table.routes = [r for r in table.routes if r.channel_id in (first.pk, second.pk, down.pk)]
    assert table.channels_for(message_type="notification", country="CN")[0] == [first.pk, second.pk]
    assert table.channels_for(message_type="notification", country="CN", exclude=frozenset({first.pk}))[0] == [
        second.pk
    ]


def test_routing_avoids_channels_under_maintenance_R_DLV_6(make_channel):
    first = make_channel(priority=1)
    second = make_channel(priority=2)
    now = timezone.now()
    Maintenance.objects.create(
        channel=first,
        starts_at=now - timedelta(minutes=5),
        ends_at=now + timedelta(hours=1),
        notice="upgrade",
        created_by="tests",
    )
    table = RoutingTable.load()
    table.routes = [r for r in table.routes if r.channel_id in (first.pk, second.pk)]
    assert table.channels_for(message_type="notification", country="CN")[0] == [second.pk]
