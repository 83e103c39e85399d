"""The idle policy's settings, and how a team's overrides apply to them.

Plain data: the service fills these from its traitlets
(``hub_ext.service.reclaim``), the simulator from its own options.

What counts as idle (``IdleDefinition``) is pool-wide: the pool page, the
metrics and the policy all show one idle time per GPU. What happens to an
idle session (``IdlePolicy``) may differ per team.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

MODES = ("immediate", "when_waiting")
ACTIONS = ("stop", "restart_without_gpus")


class PolicyError(ValueError):
    """Settings that cannot be applied; the message names the bad setting."""


@dataclass(frozen=True)
class IdleDefinition:
    # A GPU is idle while its utilisation is below this (percent).
    threshold_percent: float = 5.0
    # A GPU not read for this long has no data: neither idle nor busy. A gap
    # this long between two readings restarts an idle streak.
    stale_after_s: float = 120.0

    def __post_init__(self):
        if not 0 < self.threshold_percent <= 100:
            raise PolicyError(f"the idle threshold must be a percentage in (0, 100], got {self.threshold_percent!r}")
        if self.stale_after_s <= 0:
            raise PolicyError(f"stale_after_s must be > 0 seconds, got {self.stale_after_s!r}")


@dataclass(frozen=True)
class IdlePolicy:
    enabled: bool = True
    # A session idle on every one of its GPUs for this long is warned ...
    idle_limit_s: float = 3600.0
    # ... and reclaimed this long after the warning if it stays idle.
    grace_s: float = 900.0
    # "immediate": reclaim once the grace period is over;
    # "when_waiting": only while someone is waiting for GPUs.
    mode: str = "immediate"
    # "stop": stop the session's server (files untouched);
    # "restart_without_gpus": restart it with no GPUs.
    action: str = "stop"
    # A batch job idle this long is flagged to admins (never reclaimed).
    job_flag_after_s: float = 6 * 3600.0

    def __post_init__(self):
        if self.mode not in MODES:
            raise PolicyError(f"idle reclaim mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.action not in ACTIONS:
            raise PolicyError(f"idle reclaim action must be one of {', '.join(ACTIONS)}, got {self.action!r}")
        for name in ("idle_limit_s", "grace_s", "job_flag_after_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise PolicyError(f"{name} must be a number of seconds >= 0, got {value!r}")


POLICY_FIELDS = tuple(f.name for f in dataclasses.fields(IdlePolicy))


@dataclass(frozen=True)
class PolicySettings:
    """What idle is (pool-wide), the pool-wide policy, and per-team overrides (team -> {field: value})."""

    default: IdlePolicy = field(default_factory=IdlePolicy)
    idle: IdleDefinition = field(default_factory=IdleDefinition)
    teams: Mapping[str, Mapping[str, object]] = field(default_factory=dict)

    def __post_init__(self):
        pool_wide = {f.name for f in dataclasses.fields(IdleDefinition)}
        for team, overrides in self.teams.items():
            if not isinstance(overrides, Mapping):
                raise PolicyError(f"team {team!r}: overrides must be a mapping of setting -> value, got {overrides!r}")
            shared = set(overrides) & pool_wide
            if shared:
                raise PolicyError(f"team {team!r}: {sorted(shared)} are pool-wide (one idle time per GPU) and cannot differ per team")
            unknown = set(overrides) - set(POLICY_FIELDS)
            if unknown:
                raise PolicyError(f"team {team!r}: unknown idle policy settings {sorted(unknown)}; known: {', '.join(POLICY_FIELDS)}")
            try:
                self.for_team(team)  # fail now, not on the first tick, on a bad value
            except PolicyError as e:
                raise PolicyError(f"team {team!r}: {e}") from None

    def for_team(self, team: str) -> IdlePolicy:
        overrides = self.teams.get(team)
        return dataclasses.replace(self.default, **overrides) if overrides else self.default
