"""docs/scheduler.md's tables of switches say the defaults SchedulerConfig has (admins set them from that page)."""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

import pytest

from hub_ext.scheduler.model import SchedulerConfig

DOC = Path(__file__).resolve().parents[3] / "docs" / "scheduler.md"
ROW = re.compile(r"^\| `(\w+)` \| `([^`]*)` \|", re.M)


def documented() -> dict[str, str]:
    fields = {f.name for f in dataclasses.fields(SchedulerConfig)}
    return {name: value for name, value in ROW.findall(DOC.read_text()) if name in fields}


def test_the_documented_defaults_are_the_configs():
    rows = documented()
    assert {"preemption", "las_thresholds_gpu_s", "new_work_shrinks_elastic"} <= set(rows)  # the tables were found
    default = SchedulerConfig()
    wrong = {}
    for name, text in rows.items():
        value = ast.literal_eval(text)
        actual = getattr(default, name)
        if isinstance(actual, (list, tuple)):
            actual, value = tuple(actual), tuple(value)
        if value != actual:
            wrong[name] = (text, actual)
    assert not wrong, f"docs/scheduler.md says (documented, actual): {wrong}"


@pytest.mark.parametrize("name", ["elastic_growth_order", "las_preempt_elastic", "new_work_shrinks_elastic", "las_top_in_submit_order"])
def test_the_elastic_switches_are_documented(name):
    assert name in documented()
