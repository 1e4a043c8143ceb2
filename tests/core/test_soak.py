"""The soak (tests/soak.py) at its quick size, on every CPython 3.9-3.13.

`make soak` runs the same cases at full size (minutes); here each takes seconds.
Each case runs in a fresh interpreter with a deadline and reports numbers; the
tests check them with tests.soak.check(), the same checks the full run makes.
"""
import pytest

from tests import soak


@pytest.fixture(scope="module")
def results():
    return {}


def quick(results, name):
    if name not in results:
        results[name] = soak.run_case(name, quick=True)
    return results[name]


def test_cycles_are_clean_and_leak_nothing(results):
    numbers = quick(results, "cycles")
    assert soak.check("cycles", numbers) == [], soak.summary("cycles", numbers)
    assert numbers["states"] >= 14


def test_crowd_every_victim_accounted_for(results):
    numbers = quick(results, "crowd")
    assert soak.check("crowd", numbers) == [], soak.summary("crowd", numbers)


def test_killers_killing_each_other(results):
    numbers = quick(results, "killers")
    assert soak.check("killers", numbers) == [], soak.summary("killers", numbers)
    assert numbers["killers_killed"] > 0, "no killer was killed mid-kill: the case tests nothing"


def test_churn_touches_no_other_thread(results):
    # Idents are recycled at once on 3.9-3.12: a kill that took a newcomer with
    # its victim's ident for the victim would raise ThreadKilled in it.
    numbers = quick(results, "churn")
    assert soak.check("churn", numbers) == [], soak.summary("churn", numbers)
    assert numbers["bystanders_started"] > numbers["kills"], "too little churn to test"
