"""AutoML settings against seed 000's algorithm table and a catalog entry's tunables:
each algorithm takes its own settings and no other's, ranges are TAO's, and what a request
leaves out comes from TAO's defaults and the network's metric."""

from __future__ import annotations

import marshmallow as ma
import pytest

from jobyard.schemas import automl
from jobyard.store.catalog import REFERENCE

TUNABLES = REFERENCE.hyperparameters
METRICS = REFERENCE.metrics


def load(**settings):
    return automl.AutomlSettingsSchema().load({"automl_enabled": True, **settings})


def messages(**settings):
    with pytest.raises(ma.ValidationError) as caught:
        load(**settings)
    return caught.value.messages


def test_seed_000s_request_loads_and_resolves_with_taos_defaults():
    settings = load(
        automl_algorithm="bayesian",
        automl_max_recommendations=20,
        automl_delete_intermediate_ckpt=True,
    )
    plan = automl.resolved(settings, TUNABLES, REFERENCE.metric)
    assert plan["metric"] == "val_accuracy" and plan["automl_max_recommendations"] == 20
    assert plan["automl_max_concurrent"] == 4 and "automl_R" not in plan
    assert plan["automl_hyperparameters"] == [h["name"] for h in TUNABLES if h["searched"]]
    hyperband = automl.resolved(load(automl_algorithm="hyperband", automl_nu=2), TUNABLES, None)
    assert (hyperband["automl_R"], hyperband["automl_nu"], hyperband["epoch_multiplier"]) == (
        27,
        2,
        1,
    )


@pytest.mark.parametrize("algorithm", list(automl.ALGORITHMS))
def test_every_algorithm_takes_its_own_settings(algorithm):
    values = {"automl_top_n_percent": 20.0, "automl_mutation_factor": 0.8}
    own = {name: values.get(name, 3) for name in automl.ALGORITHMS[algorithm]}
    for name in ("automl_crossover_prob", "automl_early_stop_threshold"):
        if name in own:
            own[name] = 0.5
    plan = automl.resolved(load(automl_algorithm=algorithm, **own), TUNABLES, "val_accuracy")
    assert all(plan[name] == value for name, value in own.items())


def test_a_setting_of_another_algorithm_is_named_with_its_owners():
    got = messages(automl_algorithm="bayesian", automl_R=9)
    (text,) = got["automl_R"]
    assert "not a setting of bayesian" in text and "hyperband" in text and "dehb" in text
    assert "automl_max_recommendations" in text


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"automl_algorithm": "random"}, "automl_algorithm"),
        ({}, "automl_algorithm"),
        ({"automl_algorithm": "hyperband", "automl_nu": 1}, "automl_nu"),
        ({"automl_algorithm": "hyperband", "automl_R": 1}, "automl_R"),
        ({"automl_algorithm": "dehb", "automl_crossover_prob": 1.5}, "automl_crossover_prob"),
        ({"automl_algorithm": "bohb", "automl_top_n_percent": 0}, "automl_top_n_percent"),
        ({"automl_algorithm": "asha", "automl_max_concurrent": 0}, "automl_max_concurrent"),
        ({"automl_algorithm": "pbt", "automl_population_size": 1}, "automl_population_size"),
        (
            {"automl_algorithm": "bayesian", "automl_max_recommendations": 2.5},
            "automl_max_recommendations",
        ),
        (
            {"automl_algorithm": "bayesian", "automl_add_hyperparameters": 3},
            "automl_add_hyperparameters",
        ),
    ],
)
def test_a_value_out_of_range_names_its_field(settings, field):
    assert field in messages(**settings)


def test_a_disabled_search_ignores_the_algorithm_table():
    assert automl.AutomlSettingsSchema().load({"automl_enabled": False, "automl_R": 9}) == {
        "automl_enabled": False,
        "automl_R": 9,
    }


def test_the_metric_and_hyperparameters_must_be_the_networks():
    bad = load(automl_algorithm="bayesian", metric="mAP", automl_add_hyperparameters=["x.y"])
    found = automl.problems(bad, TUNABLES, METRICS)
    assert "mAP is not a metric" in found["metric"] and "val_accuracy" in found["metric"]
    assert "x.y" in found["automl_add_hyperparameters"]
    assert "train.learning_rate" in found["automl_add_hyperparameters"]
    every = [h["name"] for h in TUNABLES]
    empty = load(automl_algorithm="bayesian", automl_remove_hyperparameters=every)
    assert automl.problems(empty, TUNABLES, METRICS) == {
        "automl_remove_hyperparameters": "no hyperparameter is left to search"
    }
    fine = load(automl_algorithm="bayesian", metric="val_loss")
    assert automl.problems(fine, TUNABLES, METRICS) == {}


def test_taos_string_form_of_a_hyperparameter_list_loads():
    for text in ('["train.momentum", "model.hidden_size"]', "[train.momentum, model.hidden_size]"):
        got = load(automl_algorithm="bayesian", automl_remove_hyperparameters=text)
        assert got["automl_remove_hyperparameters"] == ["train.momentum", "model.hidden_size"]
    plan = automl.resolved(got, TUNABLES, None)
    assert plan["automl_hyperparameters"] == ["train.learning_rate", "train.batch_size"]


def test_param_details_are_taos_rows_from_the_entry():
    rows = automl.param_details(TUNABLES)
    assert [r["parameter"] for r in rows] == [h["name"] for h in TUNABLES]
    rate = rows[0]
    assert rate["value_type"] == "float" and rate["log_scale"] is True
    assert rate["default"]["valid_min"] == 1.0e-3 and rate["default"]["valid_max"] == 0.5
    assert rate["default"]["default_value"] == TUNABLES[0]["default"]
    assert [r["parameter"] for r in automl.param_details(TUNABLES, ["model.hidden_size"])] == [
        "model.hidden_size"
    ]
