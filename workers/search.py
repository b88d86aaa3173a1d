"""An AutoML search as an Optuna study: which sampler and pruner each of seed 000's
algorithms is, the search space from the catalog entry's tunables, and the study itself,
kept in MongoDB's journal (``store.study_journal``) under the job's id.

Each decision loads the study with a sampler seeded by the search's seed and the trial
number it proposes: a worker killed mid-decision leaves the next one to propose exactly
what it would have, so a disturbed search runs the same trials as an undisturbed one.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.pruners import (
    BasePruner,
    HyperbandPruner,
    NopPruner,
    PatientPruner,
    SuccessiveHalvingPruner,
)
from optuna.samplers import BaseSampler, RandomSampler, TPESampler
from optuna.storages import JournalStorage
from optuna.trial import FrozenTrial
from pymongo.database import Database

from jobyard.schemas import automl
from jobyard.store.study_journal import MongoJournalBackend
from jobyard.workers.samplers import DifferentialEvolutionSampler, GaussianProcessSampler

optuna.logging.set_verbosity(optuna.logging.WARNING)  # its INFO line per trial is noise here
CACHED_STUDIES = 64


def distributions(
    hyperparameters: Sequence[Mapping[str, Any]], names: Sequence[str]
) -> dict[str, BaseDistribution]:
    """The search space: each searched tunable as the catalog entry declares it."""
    by_name = {str(h["name"]): h for h in hyperparameters}
    out: dict[str, BaseDistribution] = {}
    for name in names:
        h = by_name[name]
        log = bool(h.get("log"))
        if h.get("options"):
            out[name] = CategoricalDistribution(list(h["options"]))
        elif h["type"] == "int":
            out[name] = IntDistribution(int(h["min"]), int(h["max"]), log=log)
        elif h["type"] == "bool":
            out[name] = CategoricalDistribution([False, True])
        else:
            out[name] = FloatDistribution(float(h["min"]), float(h["max"]), log=log)
    return out


def decision_seed(seed: int, number: int) -> int:
    return (seed * 1_000_003 + number) % 2**32


def sampler(plan: Mapping[str, Any], number: int) -> BaseSampler:
    """The algorithm's sampler for the decision that proposes trial ``number``."""
    algorithm = plan["automl_algorithm"]
    seed = decision_seed(int(plan["seed"]), number)
    planned = automl.planned_trials(plan)
    if algorithm in ("bayesian", "bfbo"):
        startup = max(2, min(5, planned // 3))
        return GaussianProcessSampler(seed, startup, constant_liar=algorithm == "bfbo")
    if algorithm == "bohb":
        top = float(plan["automl_top_n_percent"]) / 100
        return TPESampler(
            seed=seed,
            multivariate=True,
            n_startup_trials=int(plan["automl_min_points_in_model"]),
            n_ei_candidates=int(plan["automl_kde_samples"]),
            gamma=lambda n: max(1, min(math.ceil(top * n), 25)),
        )
    if algorithm == "dehb":
        return DifferentialEvolutionSampler(
            seed,
            population=max(4, min(10, planned // 3)),
            mutation=float(plan["automl_mutation_factor"]),
            crossover=float(plan["automl_crossover_prob"]),
        )
    return RandomSampler(seed=seed)  # hyperband, asha, hyperband_es: random configurations


def propose(
    study: optuna.Study, space: Mapping[str, BaseDistribution], number: int
) -> dict[str, Any]:
    """Trial ``number``'s hyperparameters: asked of the study if it has no such trial yet,
    completed if it has (a decision killed between creating the trial and setting its
    parameters), each as the undisturbed decision would have set it."""
    trials = study.get_trials(deepcopy=False)
    if number == len(trials) or (number < len(trials) and trials[number].state.name == "WAITING"):
        trial = study.ask()  # a new trial, or the one enqueued for it (PBT's members)
        if trial.number != number:
            raise ValueError(f"the study proposed trial {trial.number}, not {number}")
    elif number < len(trials):
        trial = optuna.trial.Trial(study, trials[number]._trial_id)
    else:
        raise ValueError(f"trial {number} cannot be proposed: the study has {len(trials)}")
    for name, dist in space.items():
        _suggest(trial, name, dist)
    return dict(trial.params)


def _suggest(trial: optuna.trial.Trial, name: str, dist: BaseDistribution) -> None:
    if isinstance(dist, FloatDistribution):
        trial.suggest_float(name, dist.low, dist.high, log=dist.log, step=dist.step)
    elif isinstance(dist, IntDistribution):
        trial.suggest_int(name, dist.low, dist.high, log=dist.log, step=dist.step)
    elif isinstance(dist, CategoricalDistribution):
        trial.suggest_categorical(name, list(dist.choices))


class AnyPruner(BasePruner):
    """Prunes when any of its pruners would (each is asked, so each records its rungs)."""

    def __init__(self, *pruners: BasePruner) -> None:
        self._pruners = pruners

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        return any([p.prune(study, trial) for p in self._pruners])


def pruner(plan: Mapping[str, Any]) -> BasePruner:
    """Where the algorithm stops a trial early: Hyperband's rungs (``automl_R`` units of
    ``epoch_multiplier`` epochs, reduction ``automl_nu``), ASHA's asynchronous halving,
    and for ``hyperband_es`` also when the metric stopped improving by the threshold."""
    algorithm = plan["automl_algorithm"]
    if algorithm not in automl.RUNG_ALGORITHMS:
        return NopPruner()
    unit, nu = int(plan["epoch_multiplier"]), int(plan["automl_nu"])
    if algorithm == "asha":
        return SuccessiveHalvingPruner(min_resource=unit, reduction_factor=nu)
    hyperband = HyperbandPruner(
        min_resource=unit, max_resource=unit * int(plan["automl_R"]), reduction_factor=nu
    )
    if algorithm == "hyperband_es":
        patience = int(plan["automl_min_early_stop_epochs"])
        plateau = PatientPruner(None, patience, float(plan["automl_early_stop_threshold"]))
        return AnyPruner(hyperband, plateau)
    return hyperband


class Studies:
    """This process's open studies, by job id: a journal storage replays its log once and
    then reads only what was appended since, so a decision costs the same at the
    thousandth trial as at the first."""

    def __init__(self, db: Database[dict[str, Any]]) -> None:
        self._db = db
        self._open: OrderedDict[str, JournalStorage] = OrderedDict()

    def storage(self, job_id: str) -> JournalStorage:
        found = self._open.pop(job_id, None)
        if found is None:
            found = JournalStorage(MongoJournalBackend(self._db, job_id))
        self._open[job_id] = found
        while len(self._open) > CACHED_STUDIES:
            self._open.popitem(last=False)
        return found

    def create(self, job_id: str, plan: Mapping[str, Any]) -> None:
        optuna.create_study(
            storage=self.storage(job_id),
            study_name=job_id,
            direction=plan["direction"],
            load_if_exists=True,
        )

    def load(self, job_id: str, plan: Mapping[str, Any], number: int) -> optuna.Study:
        return optuna.load_study(
            study_name=job_id,
            storage=self.storage(job_id),
            sampler=sampler(plan, number),
            pruner=pruner(plan),
        )

    def delete(self, job_id: str) -> None:
        self._open.pop(job_id, None)
        MongoJournalBackend(self._db, job_id).delete()
