"""Every switch of the scheduler core is a SchedulingLoop traitlet with help text, documented in
docs/service.md, that reaches the core's SchedulerConfig; bad values are refused with a clear error."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from traitlets import TraitError

from hub_ext.scheduler.model import SchedulerConfig
from hub_ext.service.loop import SchedulingLoop

DOCS = Path(__file__).resolve().parents[2] / "docs" / "service.md"

# SchedulerConfig field -> (the traitlet that sets it, a value other than its default, what the core then holds)
KNOBS = {
    "preemption": ("preemption", False, False),
    "borrowing": ("borrowing", False, False),
    "ordering": ("ordering", "fifo", "fifo"),
    "reservation_after_s": ("reservation_after_s", 600.0, 600.0),
    "max_reservations": ("max_reservations", None, None),
    "elastic": ("elastic", False, False),
    "aging_gpus_per_hour": ("aging_gpus_per_hour", 0.5, 0.5),
    "aging_max_gpus": ("aging_max_gpus", 2.0, 2.0),
    "time_backfill": ("time_backfill", False, False),
    "backfill_on_estimates": ("backfill_on_estimates", True, True),
    "las_thresholds_gpu_s": ("las_thresholds_gpu_hours", [2.0, 16.0], (7200.0, 57600.0)),
    "elastic_growth_order": ("elastic_growth_order", "started", "started"),
    "las_preempt_elastic": ("las_preempt_elastic", True, True),
    "new_work_shrinks_elastic": ("new_work_shrinks_elastic", False, False),
    "new_work_shrink_floor": ("new_work_shrink_floor", 0.25, 0.25),
    "las_top_in_submit_order": ("las_top_in_submit_order", False, False),
    "las_top_floor_until": ("las_top_floor_until", 0.0, 0.0),
    "las_on_estimates": ("las_on_estimates", True, True),
    "elastic_spread_start": ("elastic_spread_start", True, True),
    "las_estimates_take_back": ("las_estimates_take_back", True, True),
    "las_suspend_elastic": ("las_suspend_elastic", True, True),
    "las_suspend_ratio": ("las_suspend_ratio", 1.5, 1.5),
    "las_suspend_min_run_s": ("las_suspend_min_run_s", 120.0, 120.0),
    "las_suspend_wait_factor": ("las_suspend_wait_factor", 0.0, 0.0),
    "las_suspend_top_in_order": ("las_suspend_top_in_order", True, True),
}


def test_every_switch_of_the_core_is_a_documented_traitlet():
    fields = {f.name for f in dataclasses.fields(SchedulerConfig)}
    assert fields == set(KNOBS), f"SchedulerConfig fields without a SchedulingLoop traitlet here: {fields ^ set(KNOBS)}"
    traits = SchedulingLoop.class_traits(config=True)
    docs = DOCS.read_text()
    for field, (trait, _, _) in KNOBS.items():
        assert trait in traits and traits[trait].help, trait
        assert f"SchedulingLoop.{trait}`" in docs or f"`.{trait}`" in docs, f"docs/service.md has no row for SchedulingLoop.{trait}"


@pytest.mark.parametrize("field", sorted(KNOBS))
def test_each_traitlet_reaches_the_core(field):
    trait, value, held = KNOBS[field]
    assert getattr(SchedulingLoop(None, None).scheduler_config, field) != held  # (the value differs from the default)
    loop = SchedulingLoop(None, None, **{trait: value})
    assert getattr(loop.scheduler_config, field) == held


@pytest.mark.parametrize("trait,value,words", [
    ("max_reservations", 0, "at least 1"),
    ("new_work_shrink_floor", 1.5, "between 0 and 1"),
    ("las_top_floor_until", -1.0, "0 or more"),
    ("las_suspend_ratio", 1.0, "more than 1"),
    ("las_suspend_min_run_s", -60.0, "0 or more"),
    ("las_suspend_wait_factor", -1.0, "0 \\(no bound\\) or more"),
    ("elastic_growth_order", "random", "elastic_growth_order"),
])
def test_a_bad_value_is_refused_with_a_clear_error(trait, value, words):
    with pytest.raises(TraitError, match=words):
        SchedulingLoop(None, None, **{trait: value})
