"""Reliability suite: the live fixtures of the delivery-flow tests (real dramatiq workers, the
SMSC simulator, the receipt listener) and `figure`, which records the figures this suite proves
(messages lost, charged twice, …) for bench/bench_faults.py and docs/reliability.md."""

import json
import os

import pytest

from ..delivery.conftest import smsc_factory  # noqa: F401
from ..delivery.flow.conftest import (  # noqa: F401
    _compliance_test_settings,
    _live_tests_only_on_the_test_database,
    listener,
    worker,
)


@pytest.fixture
def figure(request):
    """figure(name, value, unit="messages", goal="0", scale="") records one proven figure.
    Written (one JSON line each) to $FAULT_FIGURES_FILE when set; always shown with -rA."""

    def record(name: str, value, *, unit: str = "messages", goal: str = "0", scale: str = "") -> None:
        row = {"test": request.node.name, "figure": name, "value": value, "unit": unit, "goal": goal, "scale": scale}
        request.node.user_properties.append(("figure", row))
        path = os.environ.get("FAULT_FIGURES_FILE")
        if path:
            with open(path, "a") as out:
                out.write(json.dumps(row) + "\n")

    return record


from ..delivery.flow.conftest import make_channel  # noqa: E402,F401
