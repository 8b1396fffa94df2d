"""smsplatform.numbers: one normaliser, two named entry points (R-DLV-1, R-CMP-9, R-AUD-4)."""

import pytest

from smsplatform import numbers


def test_strict_and_lenient_agree_on_a_valid_number():
    assert numbers.normalise_strict("13800138000") == numbers.normalise_lenient("13800138000") == "+8613800138000"


def test_strict_refuses_an_unallocated_number_that_lenient_accepts_R_DLV_1():
    """+86 123… is the right length but no such segment: not sendable, yet an opt-out or an
    erasure request naming it must not be lost."""
    assert numbers.normalise_strict("+8612345678901") is None
    assert numbers.normalise_lenient("+8612345678901") == "+8612345678901"


def test_lenient_refuses_what_is_no_number_with_a_value_error():
    with pytest.raises(numbers.InvalidNumber):
        numbers.normalise_lenient("not a number")
    assert issubclass(numbers.InvalidNumber, ValueError)  # callers catching ValueError keep working
