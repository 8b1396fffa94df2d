"""Metrics tests: the delivery-flow fixtures (simulator, in-process worker, live tenants) and a
parser for the text /metrics answers."""

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ..delivery.conftest import smsc_factory  # noqa: F401
from ..delivery.flow.conftest import (  # noqa: F401
    _compliance_test_settings,
    _live_tests_only_on_the_test_database,
    make_channel,
    worker,
)


class Scrape:
    """One /metrics page: value(metric, **labels) sums the samples that carry those labels."""

    def __init__(self, text: str):
        self.text = text
        self.samples = [s for family in text_string_to_metric_families(text) for s in family.samples]

    def names(self) -> set[str]:
        return {s.name for s in self.samples}

    def value(self, metric: str, /, **labels) -> float:
        return sum(
            s.value for s in self.samples if s.name == metric and all(s.labels.get(k) == v for k, v in labels.items())
        )


@pytest.fixture
def scrape(client):
    """scrape(**extra) → Scrape of GET /metrics from loopback (the default allowed address)."""

    def get(**extra) -> Scrape:
        response = client.get("/metrics", REMOTE_ADDR="127.0.0.1", **extra)
        assert response.status_code == 200, response.content[:300]
        assert response["Content-Type"].startswith("text/plain")
        return Scrape(response.content.decode())

    return get
