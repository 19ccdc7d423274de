"""A check leaves no reference cycles behind.

`poseir.compiler.collector_paused` turns Python's cycle collector off during a check and afterwards
moves what the check kept to the oldest generation without walking it; that is only sound while a
check frees everything it drops by reference counting. These tests hold every `.pose` file of the
repository to it: after a check, a full collection finds nothing unreachable.
"""

from __future__ import annotations

import gc
from collections import Counter
from pathlib import Path

import pytest

from poseir.compiler import check, collector_paused

ROOT = Path(__file__).resolve().parent.parent
FILES = sorted(str(path.relative_to(ROOT)) for folder in ("examples", "tests")
               for path in (ROOT / folder).rglob("*.pose") if "hostile" not in path.parts)


def _cyclic_garbage(function) -> Counter:
    """The types of the objects that `function()` left unreachable but alive (held only by cycles)."""
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        function()
        gc.collect()
        return Counter(type(found).__name__ for found in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


@pytest.fixture(scope="module", autouse=True)
def parser_built():
    """One check first, so lark's parser exists before anything is counted."""
    check(str(ROOT / "examples" / "simplebaseline.pose"))


def test_checks_leave_no_cycles():
    # One window for all files (a full collection walks the whole test process, so one per file would
    # take a minute); on a failure, each file again alone names the culprits.
    def check_all():
        for path in FILES:
            check(str(ROOT / path))

    if _cyclic_garbage(check_all):
        culprits = {path: found for path in FILES if (found := _cyclic_garbage(lambda: check(str(ROOT / path))))}
        pytest.fail(f"checks left objects held only by reference cycles: {culprits}")


def test_the_detector_sees_a_cycle():
    def make_cycle():
        cycle = []
        cycle.append(cycle)

    assert _cyclic_garbage(make_cycle) == Counter({"list": 1})


def test_the_collector_is_on_after_a_check_and_the_young_generation_is_empty():
    check(str(ROOT / "examples" / "motionbert.pose"))
    assert gc.isenabled()
    assert gc.get_count()[0] < 100  # the check's survivors were aged without a young collection


def test_a_paused_collector_stays_off_when_it_was_off():
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
