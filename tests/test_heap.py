"""The run loop keeps full garbage collections off what the run holds for its whole length."""

from __future__ import annotations

import gc

import pytest

from pytest_llmops.heap import frozen_heap, refreeze


def test_the_objects_alive_are_frozen_inside_and_handed_back_after():
    assert gc.get_freeze_count() == 0
    with frozen_heap():
        frozen = gc.get_freeze_count()
        assert frozen > 0
        kept = [[] for _ in range(1000)]  # made after the freeze: collected as usual
        assert gc.get_freeze_count() == frozen
        refreeze()  # a batch boundary: they join the frozen ones
        assert gc.get_freeze_count() >= frozen + 1000
    assert gc.get_freeze_count() == 0 and kept


def test_an_error_inside_still_unfreezes():
    with pytest.raises(KeyError), frozen_heap():
        raise KeyError("boom")
    assert gc.get_freeze_count() == 0


def test_a_disabled_collector_or_someone_elses_freeze_is_left_alone():
    gc.disable()
    try:
        with frozen_heap():
            refreeze()
            assert gc.get_freeze_count() == 0
    finally:
        gc.enable()
    gc.freeze()
    try:
        before = gc.get_freeze_count()
        with frozen_heap():
            pass
        assert gc.get_freeze_count() == before  # not unfrozen under its owner
    finally:
        gc.unfreeze()
