"""The two Optuna samplers no installed library gives us: Gaussian-process Bayesian
optimisation without PyTorch (Optuna's own ``GPSampler`` needs it, and it is gigabytes),
and differential evolution for DEHB.

Both work in the unit cube: each parameter is mapped to [0, 1] (log-scaled where its
distribution is, categorical choices by index) and back. Both fall back to random
sampling until the study has enough finished trials to learn from, and both take a seed,
so a decision taken again after a crash proposes the same point.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.samplers import BaseSampler, RandomSampler
from optuna.search_space import intersection_search_space
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

Space = dict[str, BaseDistribution]


def to_unit(dist: BaseDistribution, value: Any) -> float:
    if isinstance(dist, CategoricalDistribution):
        return dist.to_internal_repr(value) / max(len(dist.choices) - 1, 1)
    assert isinstance(dist, FloatDistribution | IntDistribution)
    low, high, x = float(dist.low), float(dist.high), float(value)
    if dist.log:
        low, high, x = math.log(low), math.log(high), math.log(x)
    return 0.0 if high == low else (x - low) / (high - low)


def from_unit(dist: BaseDistribution, u: float) -> Any:
    u = min(max(u, 0.0), 1.0)
    if isinstance(dist, CategoricalDistribution):
        return dist.choices[round(u * (len(dist.choices) - 1))]
    assert isinstance(dist, FloatDistribution | IntDistribution)
    low, high = float(dist.low), float(dist.high)
    x = (
        math.exp(math.log(low) + u * (math.log(high) - math.log(low)))
        if dist.log
        else low + u * (high - low)
    )
    if isinstance(dist, IntDistribution):
        return int(min(max(round(x), dist.low), dist.high))
    return float(min(max(x, low), high))


def _finished(study: Study) -> list[FrozenTrial]:
    """Trials with a value to learn from: completed, and pruned ones at their last value
    (a pruned trial tells how bad that region is)."""
    out = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        value = t.value if t.state is TrialState.COMPLETE else _last(t)
        if value is not None and math.isfinite(value):
            out.append(t)
    return out


def _last(trial: FrozenTrial) -> float | None:
    step = trial.last_step
    return None if step is None else trial.intermediate_values[step]


def _loss(study: Study, trial: FrozenTrial) -> float:
    """The trial's value as something to minimise."""
    value = trial.value if trial.state is TrialState.COMPLETE else _last(trial)
    assert value is not None
    return -value if study.direction is StudyDirection.MAXIMIZE else value


class _CubeSampler(BaseSampler):
    """Shared plumbing: the search space is what every trial so far had, parameters the
    model does not cover are sampled at random."""

    def __init__(self, seed: int, startup_trials: int) -> None:
        self._seed = seed
        self._startup = startup_trials
        self._random = RandomSampler(seed=seed)

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> Space:
        """What every finished trial had: not running ones, whose parameters may be only
        partly set (a decision killed midway), so the space is the same when it is
        taken again."""
        finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
        return {
            name: dist
            for name, dist in intersection_search_space(finished).items()
            if not dist.single()
        }

    def sample_independent(
        self, study: Study, trial: FrozenTrial, param_name: str, dist: BaseDistribution
    ) -> Any:
        return self._random.sample_independent(study, trial, param_name, dist)

    def _unit(self, space: Space, trial: FrozenTrial) -> np.ndarray:
        return np.array([to_unit(d, trial.params[n]) for n, d in space.items()])

    def _params(self, space: Space, point: Sequence[float] | np.ndarray) -> dict[str, Any]:
        return {n: from_unit(d, float(u)) for (n, d), u in zip(space.items(), point, strict=True)}


class GaussianProcessSampler(_CubeSampler):
    """Bayesian optimisation: a Gaussian process (Matérn 5/2 kernel, scikit-learn) over the
    finished trials, and the point of most expected improvement among random candidates.

    With ``constant_liar`` (batch BO, ``bfbo``) the trials still running count as results
    as bad as the worst seen, so the trials of one batch spread out instead of all
    proposing the same best guess."""

    def __init__(
        self,
        seed: int,
        startup_trials: int = 4,
        candidates: int = 512,
        constant_liar: bool = False,
    ) -> None:
        super().__init__(seed, startup_trials)
        self._candidates = candidates
        self._liar = constant_liar

    def sample_relative(self, study: Study, trial: FrozenTrial, space: Space) -> dict[str, Any]:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel
        from threadpoolctl import threadpool_limits

        finished = [t for t in _finished(study) if all(n in t.params for n in space)]
        if not space or len(finished) < self._startup:
            return {}
        x = [self._unit(space, t) for t in finished]
        y = [_loss(study, t) for t in finished]
        if self._liar:
            worst = max(y)
            for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                if t.number != trial.number and all(n in t.params for n in space):
                    x.append(self._unit(space, t))
                    y.append(worst)
        # length scales within the unit cube's own: longer ones mean "flat", as 10 does
        matern = Matern([0.3] * len(space), length_scale_bounds=(1e-2, 1e1), nu=2.5)
        kernel = ConstantKernel(1.0, (1e-3, 1e3)) * matern + WhiteKernel(1e-4, (1e-8, 1e-1))
        gp = GaussianProcessRegressor(
            kernel, optimizer=_fit_kernel, normalize_y=True, random_state=self._seed
        )
        rng = np.random.default_rng(self._seed)
        candidates = rng.random((self._candidates, len(space)))
        # one BLAS thread: the matrices are tiny, and the trials training on the same
        # cores make a multi-threaded BLAS spin (a decision took 0.3 s instead of 0.03 s)
        with warnings.catch_warnings(), threadpool_limits(limits=1):
            # few points often put a hyperparameter at its bound: expected, not a fault
            warnings.simplefilter("ignore", ConvergenceWarning)
            gp.fit(np.array(x), np.array(y))
            mean, std = gp.predict(candidates, return_std=True)
        best = min(y[: len(finished)])
        point = candidates[int(np.argmax(expected_improvement(mean, std, best)))]
        return self._params(space, point)


FIT_ITERATIONS = 25


def _fit_kernel(objective: Any, theta: np.ndarray, bounds: np.ndarray) -> tuple[Any, Any]:
    """scikit-learn's own L-BFGS-B fit of the kernel's hyperparameters, in at most 25
    iterations: a decision is taken inside a reconcile pass, next to trials training on
    the same cores, and the fit converges to what matters for the next point long before
    scipy's default of 15,000."""
    from scipy.optimize import minimize

    found = minimize(
        objective,
        theta,
        method="L-BFGS-B",
        jac=True,
        bounds=bounds,
        options={"maxiter": FIT_ITERATIONS},
    )
    return found.x, found.fun


def expected_improvement(mean: np.ndarray, std: np.ndarray, best: float) -> np.ndarray:
    """How much below ``best`` each candidate is expected to land (for minimising)."""
    from scipy.stats import norm

    std = np.maximum(std, 1e-12)
    z = (best - mean) / std
    result: np.ndarray = (best - mean) * norm.cdf(z) + std * norm.pdf(z)
    return result


class DifferentialEvolutionSampler(_CubeSampler):
    """DE/rand/1/bin (Storn and Price): once ``population`` trials have finished, each new
    trial is a mutant ``a + F (b - c)`` of three of the best, crossed with a target
    member coordinate by coordinate with probability ``crossover``. DEHB runs it under
    Hyperband's rungs (the pruner), so members are judged on few epochs first."""

    def __init__(self, seed: int, population: int, mutation: float, crossover: float) -> None:
        super().__init__(seed, population)
        self._population = population
        self._mutation = mutation
        self._crossover = crossover

    def sample_relative(self, study: Study, trial: FrozenTrial, space: Space) -> dict[str, Any]:
        finished = [t for t in _finished(study) if all(n in t.params for n in space)]
        if not space or len(finished) < max(self._population, 4):
            return {}
        members = sorted(finished, key=lambda t: _loss(study, t))[: self._population]
        rng = np.random.default_rng(self._seed)
        a, b, c = (self._unit(space, members[i]) for i in rng.choice(len(members), 3, False))
        target = self._unit(space, members[trial.number % len(members)])
        mutant = np.clip(a + self._mutation * (b - c), 0.0, 1.0)
        cross = rng.random(len(space)) < self._crossover
        cross[rng.integers(len(space))] = True  # at least one coordinate from the mutant
        return self._params(space, np.where(cross, mutant, target))
