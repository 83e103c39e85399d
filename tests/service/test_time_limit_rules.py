"""Which time limit a job runs under: declared, the team's default, the team's maximum (no hub needed)."""

from __future__ import annotations

import pytest
from traitlets import TraitError

from hub_ext.service.errors import ApiError
from hub_ext.service.time_limits import TimeLimits

LIMITS = TimeLimits(team_default_s={"vision": 3600, "*": 600}, team_maximum_s={"vision": 86400, "bio": 7200, "tiny": 300})

CASES = [
    # (case, team, declared, kind, limit or the error's words)
    ("declared, within the maximum", "vision", 7200.0, "job", 7200.0),
    ("none declared: the team's default", "vision", None, "job", 3600.0),
    ("a team without its own default: the '*' default", "nlp", None, "job", 600.0),
    ("the '*' default within the team's maximum", "bio", None, "job", 600.0),
    ("a default above the team's maximum: the maximum", "tiny", None, "job", 300.0),
    ("declared above the team's maximum: refused", "vision", 2 * 86400.0, "job", "above team vision's maximum of 24 h"),
    ("sessions get no job limit", "vision", None, "session", None),
]


@pytest.mark.parametrize("case,team,declared,kind,expected", CASES, ids=[c[0] for c in CASES])
def test_limit_for(case, team, declared, kind, expected):
    spec = {"kind": kind, "time_limit_s": declared}
    if isinstance(expected, str):
        with pytest.raises(ApiError) as e:
            LIMITS.limit_for(spec, team)
        assert e.value.status == 400 and expected in str(e.value)
    else:
        assert LIMITS.limit_for(spec, team) == expected


def test_a_maximum_without_default_caps_undeclared_jobs():
    assert TimeLimits(team_maximum_s={"bio": 7200}).limit_for({"kind": "job", "time_limit_s": None}, "bio") == 7200


@pytest.mark.parametrize("bad", [0, -5, float("nan"), float("inf"), 400 * 86400, "1h", True])
def test_nonsense_configuration_is_refused_at_start(bad):
    with pytest.raises(TraitError):
        TimeLimits(team_default_s={"vision": bad})
