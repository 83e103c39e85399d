"""Files shipped with the simulator: a small Philly sample and example cluster files.

Commands accept these by short name (``--trace philly-sample``,
``--cluster seed-dgx``) so the examples work in any clone or install.
"""

from __future__ import annotations

import os

HERE = os.path.dirname(os.path.abspath(__file__))
TRACES = {"philly-sample": "philly_sample_2017-09-29_2017-10-01.csv"}
CLUSTERS = {
    "seed-dgx": "seed-dgx.yaml",
    "seed-dgx-philly": "seed-dgx-philly.yaml",
    "case-study-dgx": "case-study-dgx.yaml",
}


def resolve(name_or_path: str, shipped: dict[str, str]) -> str:
    """A path as given when it exists; else the shipped file of that short name; else the path unchanged."""
    if os.path.exists(name_or_path) or name_or_path not in shipped:
        return name_or_path
    return os.path.join(HERE, shipped[name_or_path])
