"""R-DLV-1: one transition function; a final state never goes backwards."""

import pytest
from django_tenants.utils import tenant_context

from delivery.errors import InvalidStatusTransition
from delivery.models import FINAL_STATES, TRANSITIONS, MessageStatus
from delivery.statuses import transition

from .conftest import add_message

S = MessageStatus


def test_final_states_have_no_way_out():
    assert {S.DELIVERED, S.UNDELIVERED, S.EXPIRED, S.REJECTED, S.FAILED, S.CANCELLED} == set(FINAL_STATES)
    for state in FINAL_STATES:
        assert TRANSITIONS[state] == frozenset()


@pytest.mark.parametrize("final", sorted(FINAL_STATES))
def test_a_final_state_never_goes_backwards_R_DLV_1(tenant_a, final):
    msg = add_message(tenant_a, status=final)
    with tenant_context(tenant_a):
        for target in (S.QUEUED, S.SUBMITTED, S.ACCEPTED, *(s for s in FINAL_STATES if s != final)):
            with pytest.raises(InvalidStatusTransition):
                transition(message=msg, to_status=target)
        msg.refresh_from_db()
        assert msg.status == final


def test_the_same_final_state_again_is_a_no_op(tenant_a):
    msg = add_message(tenant_a, status=S.DELIVERED)
    with tenant_context(tenant_a):
        assert transition(message=msg, to_status=S.DELIVERED) is None
        assert msg.events.count() == 1


def test_transition_records_history(tenant_a):
    msg = add_message(tenant_a, status=S.ACCEPTED)
    with tenant_context(tenant_a):
        transition(message=msg, to_status=S.QUEUED, channel_id=7)
        transition(message=msg, to_status=S.SUBMITTING)
        msg.refresh_from_db()
        assert msg.channel_id == 7
        assert [(e.from_status, e.to_status) for e in msg.events.all()] == [
            ("", S.ACCEPTED),
            (S.ACCEPTED, S.QUEUED),
            (S.QUEUED, S.SUBMITTING),
        ]


def test_unknown_accepts_a_late_receipt(tenant_a):
    msg = add_message(tenant_a, status=S.UNKNOWN)
    with tenant_context(tenant_a):
        transition(message=msg, to_status=S.DELIVERED)
        assert msg.status == S.DELIVERED
