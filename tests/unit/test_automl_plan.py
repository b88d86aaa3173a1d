"""What a search runs, as pure functions and in-memory Optuna studies: Hyperband's
schedule, the trials each algorithm plans, trial specs, and the two samplers of our own
(GP-EI for bayesian/bfbo, differential evolution for dehb), including the proposal a
decision killed midway makes again."""

from __future__ import annotations

import statistics

import optuna
import pytest

from jobyard.schemas import automl
from jobyard.workers import pbt, search
from jobyard.workers.samplers import DifferentialEvolutionSampler, GaussianProcessSampler

SPACE = search.distributions(
    [
        {"name": "x", "type": "float", "min": -3.0, "max": 3.0},
        {"name": "y", "type": "float", "min": 1e-3, "max": 10.0, "log": True},
        {"name": "n", "type": "int", "min": 1, "max": 64, "log": True},
    ],
    ["x", "y", "n"],
)


def loss(p):
    return (p["x"] - 1.0) ** 2 + (p["y"] ** 0.5 - 1.0) ** 2 + 0.01 * abs(p["n"] - 16)


def test_hyperband_brackets_are_li_et_als_table():
    brackets = automl.hyperband_brackets(27, 3)
    assert [b["trials"] for b in brackets] == [27, 12, 6, 4]
    assert [[r["units"] for r in b["rungs"]] for b in brackets] == [
        [1, 3, 9, 27],
        [3, 9, 27],
        [9, 27],
        [27],
    ]
    assert [r["trials"] for r in brackets[0]["rungs"]] == [27, 9, 3, 1]
    assert automl.rung_units(9, 3) == [1, 3, 9]


@pytest.mark.parametrize(
    ("plan", "trials"),
    [
        ({"automl_algorithm": "bayesian", "automl_max_recommendations": 7}, 7),
        ({"automl_algorithm": "hyperband", "automl_R": 27, "automl_nu": 3}, 49),
        ({"automl_algorithm": "asha", "automl_R": 9, "automl_nu": 3, "automl_max_trials": 5}, 5),
        (
            {"automl_algorithm": "asha", "automl_R": 9, "automl_nu": 3, "automl_max_trials": None},
            17,
        ),
        (
            {
                "automl_algorithm": "pbt",
                "automl_population_size": 6,
                "pbt_epochs": 10,
                "automl_eval_interval": 4,
            },
            18,  # 6 members, 3 generations (4, 8, 10 epochs)
        ),
    ],
)
def test_planned_trials(plan, trials):
    assert automl.planned_trials(plan) == trials


def test_a_trials_specs_carry_its_values_and_the_rung_epochs():
    specs = {"train": {"num_epochs": 10, "learning_rate": 0.1}, "model": {}}
    assert automl.epochs_name(specs) == "train.num_epochs"
    out = automl.with_values(specs, {"train.learning_rate": 0.5, "model.hidden_size": 32})
    assert out == {"train": {"num_epochs": 10, "learning_rate": 0.5}, "model": {"hidden_size": 32}}
    assert specs["train"]["learning_rate"] == 0.1  # a copy
    hb = {"automl_algorithm": "hyperband", "automl_R": 9, "epoch_multiplier": 2}
    assert automl.trial_epochs(hb, 5) == 18
    assert automl.trial_epochs({"automl_algorithm": "bayesian"}, 5) is None
    assert automl.direction("val_loss", "val_accuracy", "maximize") == "minimize"
    assert automl.direction("mAP", "mAP", "maximize") == "maximize"


def _run(sampler_for, trials=20):
    study = optuna.create_study(direction="minimize")
    for n in range(trials):
        study.sampler = sampler_for(n)
        params = search.propose(study, SPACE, n)
        study.tell(n, loss(params))
    return study


def test_the_gp_sampler_finds_better_points_than_random_search():
    gp = _run(lambda n: GaussianProcessSampler(search.decision_seed(1, n), startup_trials=5))
    rnd = _run(lambda n: optuna.samplers.RandomSampler(seed=search.decision_seed(1, n)))
    assert gp.best_value < rnd.best_value
    late = [t.value for t in gp.trials[10:]]
    assert statistics.median(late) < statistics.median(t.value for t in rnd.trials[10:])


def test_the_de_sampler_stays_in_bounds_and_improves_on_its_population():
    de = _run(lambda n: DifferentialEvolutionSampler(search.decision_seed(2, n), 5, 0.5, 0.5), 24)
    for t in de.trials:
        assert -3 <= t.params["x"] <= 3 and 1e-3 <= t.params["y"] <= 10
        assert isinstance(t.params["n"], int) and 1 <= t.params["n"] <= 64
    assert min(t.value for t in de.trials[5:]) < min(t.value for t in de.trials[:5])


def test_a_decision_killed_midway_proposes_the_same_point_again():
    def sampler(n):
        return GaussianProcessSampler(search.decision_seed(3, n), startup_trials=2)

    calm = _run(sampler, trials=5)
    shaken = optuna.create_study(direction="minimize")
    for n in range(4):
        shaken.sampler = sampler(n)
        shaken.tell(n, loss(search.propose(shaken, SPACE, n)))
    shaken.sampler = sampler(4)
    half = shaken.ask()  # killed after the trial was created and one value was set
    half.suggest_float("x", -3.0, 3.0)
    assert search.propose(shaken, SPACE, 4) == calm.trials[4].params
    with pytest.raises(ValueError, match="cannot be proposed"):
        search.propose(shaken, SPACE, 7)


def test_pbt_exploits_the_worst_quarter_and_explores_its_floats():
    plan = {
        "automl_population_size": 8,
        "automl_eval_interval": 2,
        "pbt_epochs": 6,
        "direction": "maximize",
        "seed": 5,
    }
    assert [automl.trial_epochs({**plan, "automl_algorithm": "pbt"}, n) for n in (0, 8, 16)] == [
        2,
        4,
        6,
    ]
    previous = [
        pbt.Result(n, {"x": 1.0 + n / 10, "n": n + 1, "y": 0.5}, v)
        for n, v in enumerate([0.9, 0.1, 0.8, 0.7, 0.6, 0.5, None, 0.95])
    ]
    decided = [pbt.member(plan, 8 + m, previous, SPACE) for m in range(8)]
    exploiting = {m for m, d in enumerate(decided) if d.exploited}
    assert exploiting == {1, 6}  # the worst two: 0.1 and a failed trial
    for m, d in enumerate(decided):
        if m not in exploiting:
            assert (d.source, d.params) == (m, previous[m].params)
            continue
        assert d.source in (0, 7)  # the best two
        source = previous[d.source].params
        assert d.params["n"] == source["n"]  # not a float: copied with the checkpoint
        assert d.params["x"] in (
            pytest.approx(source["x"] * 0.8),
            pytest.approx(source["x"] * 1.2),
            3.0,
        )
    assert decided == [pbt.member(plan, 8 + m, previous, SPACE) for m in range(8)]  # seeded
    assert pbt.member(plan, 3, [], SPACE) == pbt.Member(None, None, False)
    with pytest.raises(ValueError, match="has 7 of 8"):
        pbt.member(plan, 8, previous[:7], SPACE)
