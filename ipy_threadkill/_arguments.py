"""Checks of the arguments every public function shares, so that each refuses
the same values with the same words.

A timeout reaches C code (microseconds in a C long): NaN, infinity or a huge
value would be undefined behaviour there, so they are refused here first.
"""
import math

from .errors import InvalidArgument

# Seconds. Far above any kill or refresh anyone waits for; the C layer refuses
# more too.
MAX_SECONDS = 1e6


def seconds(value, name="timeout", *, allow_zero=False):
    """`value` as a float number of seconds, or InvalidArgument (a ValueError)
    saying what is wrong: not a number (a bool is not one), NaN, infinite,
    negative, zero (unless `allow_zero`), or over MAX_SECONDS."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgument(f"{name} must be a number of seconds, not {value!r}")
    try:
        number = float(value)
    except OverflowError:                # an int too large for a float
        number = math.inf
    low_ok = number >= 0 if allow_zero else number > 0
    if not (low_ok and number <= MAX_SECONDS):       # also false for NaN
        least = "zero or more" if allow_zero else "more than zero"
        raise InvalidArgument(f"{name} must be {least} and at most {MAX_SECONDS:g} "
                              f"seconds, not {value!r}")
    return number
