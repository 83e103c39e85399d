"""What a user may ask for: none, a fraction of a card, or 1..N whole GPUs.

``user_options`` arrive from the spawn form (strings) or from the REST API
(``POST /hub/api/users/{name}/server`` with a JSON body: numbers or strings).
Both go through ``parse_gpu_request`` so that the same request is accepted
or refused the same way, with a message a person understands.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

# Fractions offered by admins are compared with this slack ("0.5" == 0.5000001).
_SLACK = 1e-6


class GpuRequestError(ValueError):
    """The user asked for something the spawner does not offer; ``str(e)`` says what is offered."""


@dataclass(frozen=True)
class GpuRequest:
    gpus: float  # 0: no GPUs; (0, 1): a fraction of one card; 1..N: whole cards
    team: str | None = None
    gpu_model: str | None = None


def offered_choices(fractions: Iterable[float], max_whole: int) -> list[float]:
    """Every GPU count the form offers, smallest first (0 = none)."""
    choices = {0.0}
    choices.update(float(f) for f in fractions if 0 < float(f) < 1)
    choices.update(float(n) for n in range(1, max(0, int(max_whole)) + 1))
    return sorted(choices)


def _text(value: Any) -> str | None:
    if isinstance(value, (list, tuple)):  # raw form data that skipped options_from_form
        value = value[0] if value else None
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def parse_gpu_request(
    options: dict[str, Any], *, default_gpus: float, fractions: Iterable[float], max_whole: int
) -> GpuRequest:
    """``user_options`` -> a checked ``GpuRequest``; raises ``GpuRequestError``."""
    choices = offered_choices(fractions, max_whole)
    raw = _text(options.get("gpus"))
    if raw is None or raw.lower() == "none":
        gpus = float(default_gpus)
    else:
        try:
            gpus = float(raw)
        except ValueError:
            raise GpuRequestError(f"'{raw}' is not a number of GPUs; choose one of {format_choices(choices)}") from None
    match = next((c for c in choices if abs(c - gpus) < _SLACK), None)
    if match is None:
        raise GpuRequestError(f"{gpus:g} GPUs is not offered here; choose one of {format_choices(choices)}")
    team = _text(options.get("team"))
    model = _text(options.get("gpu_model"))
    if model and model.lower() in ("any", "*"):
        model = None
    return GpuRequest(gpus=match, team=team, gpu_model=model)


def format_choices(choices: Iterable[float]) -> str:
    return ", ".join(f"{c:g}" for c in choices)
