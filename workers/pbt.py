"""Population-based training (Jaderberg et al. 2017) as generations of trials: member
``m`` of generation ``g`` is trial ``g * population + m``, training epochs up to
``(g + 1) * automl_eval_interval`` from the checkpoint its previous trial ended with.

Between generations, each member in the worst quarter *exploits* one of the best quarter
(it continues from that member's checkpoint) and *explores* (its float hyperparameters
are that member's times 0.8 or 1.2, within their range); the others continue as they
were. The hyperparameters that are not floats (sizes of the model and batch) are copied
with the checkpoint, so a checkpoint always fits the model it is loaded into.

Pure: the controller gives the previous generation's results and takes the decision; the
random choices are seeded by the search's seed and the trial's number.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution, FloatDistribution

PERTURBATIONS = (0.8, 1.2)


@dataclass(frozen=True)
class Member:
    params: dict[str, Any] | None  # None: a fresh configuration (the first generation)
    source: int | None  # the trial whose checkpoint it continues from
    exploited: bool  # it took a better member's checkpoint and perturbed its values


@dataclass(frozen=True)
class Result:
    number: int
    params: Mapping[str, Any]
    value: float | None  # None: the trial failed, the worst of all


def member(
    plan: Mapping[str, Any],
    number: int,
    previous: Sequence[Result],
    space: Mapping[str, BaseDistribution],
) -> Member:
    """Trial ``number``'s configuration, given its previous generation's results."""
    size = int(plan["automl_population_size"])
    generation, index = divmod(number, size)
    if generation == 0:
        return Member(None, None, False)
    if len(previous) != size:
        raise ValueError(f"generation {generation - 1} has {len(previous)} of {size} results")
    ranked = sorted(previous, key=lambda r: _rank(r, plan["direction"]))  # best first
    quarter = max(1, size // 4)
    own = previous[index]
    if own.number not in {r.number for r in ranked[-quarter:]}:
        return Member(dict(own.params), own.number, False)
    rng = np.random.default_rng([int(plan["seed"]), number])
    source = ranked[int(rng.integers(quarter))]
    params = dict(source.params)
    for name, dist in space.items():
        if isinstance(dist, FloatDistribution) and name in params:
            factor = PERTURBATIONS[int(rng.integers(len(PERTURBATIONS)))]
            params[name] = float(min(max(params[name] * factor, dist.low), dist.high))
    return Member(params, source.number, True)


def _rank(result: Result, direction: str) -> float:
    if result.value is None or not math.isfinite(result.value):
        return math.inf
    return -result.value if direction == "maximize" else result.value
