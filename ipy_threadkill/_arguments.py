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
    kind = "zero or a positive" if allow_zero else "a positive"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgument(f"{name} must be {kind} number of seconds, not {value!r}")
    try:
        number = float(value)
    except OverflowError:                # an int too large for a float
        number = math.inf
    low_ok = number >= 0 if allow_zero else number > 0
    if not (low_ok and number <= MAX_SECONDS):       # also false for NaN
        raise InvalidArgument(f"{name} must be {kind} number of seconds, at most "
                              f"{MAX_SECONDS:g}, not {value!r}")
    return number
