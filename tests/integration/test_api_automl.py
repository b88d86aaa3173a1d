"""AutoML at the API: the tunables of a base experiment (seed 000's
``automl:get_param_details``) and a search request checked against its network before
anything is stored, and stored with the plan it runs (tests/integration/test_automl_search.py
runs searches)."""

from __future__ import annotations

import pytest

from jobyard.store.catalog import REFERENCE
from tests.helpers import assert_error
from tests.integration.test_api_jobs import train_body
from tests.integration.test_catalog_api import entry

pytestmark = pytest.mark.integration

SEED_000 = {
    "automl_enabled": True,
    "automl_algorithm": "bayesian",
    "automl_max_recommendations": 20,
    "automl_delete_intermediate_ckpt": True,
    "metric": "mAP",
}


def test_param_details_list_the_base_experiments_tunables(login):
    s = login()
    got = s.call("GET", f"automl:get_param_details?base_experiment_id={REFERENCE.id}").json
    assert got["base_experiment_id"] == REFERENCE.id and got["metric"] == "val_accuracy"
    assert [r["parameter"] for r in got["parameter_details"]] == [
        h["name"] for h in REFERENCE.hyperparameters
    ]
    size = next(r for r in got["parameter_details"] if r["parameter"] == "model.hidden_size")
    assert size["value_type"] == "int" and size["automl_enabled"] is True
    assert (size["default"]["valid_min"], size["default"]["valid_max"]) == (8, 512)
    assert got["algorithms"]["hyperband"] == ["automl_R", "automl_nu", "epoch_multiplier"]
    by_arch = s.call("GET", "automl:get_param_details?network_arch=classification_pyt").json
    assert by_arch["parameter_details"] == got["parameter_details"]
    one = s.call(
        "GET",
        f"automl:get_param_details?base_experiment_id={REFERENCE.id}"
        "&parameters=train.momentum,model.hidden_size",
    ).json["parameter_details"]
    assert [r["parameter"] for r in one] == ["train.momentum", "model.hidden_size"]


def test_param_details_refuse_what_they_cannot_answer(login, client):
    s = login()
    assert_error(s.call("GET", "automl:get_param_details"), 400)
    assert_error(s.call("GET", "automl:get_param_details?base_experiment_id=nope"), 404)
    unknown = assert_error(
        s.call(
            "GET",
            f"automl:get_param_details?base_experiment_id={REFERENCE.id}&parameters=train.lr",
        ),
        400,
    )
    assert "train.lr" in unknown["error_desc"] and "train.momentum" in unknown["error_desc"]
    assert_error(client.get("/api/v2/orgs/acme/automl:get_param_details?network_arch=x"), 401)
    admin = login("acme", admin=True)
    own = admin.call("POST", "base_experiments", json=entry()).json["id"]
    mine = admin.call("GET", f"automl:get_param_details?base_experiment_id={own}").json
    assert [r["parameter"] for r in mine["parameter_details"]] == ["train.lr"]
    other = login("globex")
    assert_error(other.call("GET", f"automl:get_param_details?base_experiment_id={own}"), 404)


def test_seed_000s_search_names_the_networks_metrics_and_creates_nothing(login):
    s = login()
    body = assert_error(s.call("POST", "jobs", json=train_body(automl_settings=SEED_000)), 400)
    assert "mAP is not a metric" in body["error_desc"]
    assert "val_accuracy" in body["error_desc"] and "val_loss" in body["error_desc"]
    assert list(body["errors"]["automl_settings"]) == ["metric"]
    assert s.call("GET", "jobs").json["jobs"] == []


@pytest.mark.parametrize(
    ("automl", "named"),
    [
        ({"automl_algorithm": "bayesian", "automl_R": 9}, "automl_R is not a setting of bayesian"),
        ({"automl_algorithm": "hyperband", "automl_nu": 1}, "automl_nu"),
        ({"automl_algorithm": "gridsearch"}, "automl_algorithm"),
        ({"automl_algorithm": "asha", "automl_add_hyperparameters": ["x"]}, "tunable: train."),
        ({"automl_algorithm": "pbt", "automl_colour": 1}, "automl_colour"),
    ],
)
def test_a_bad_setting_is_a_400_that_names_it(login, automl, named):
    s = login()
    body = train_body(automl_settings={"automl_enabled": True, **automl})
    assert named in str(assert_error(s.call("POST", "jobs", json=body), 400))


def test_a_valid_search_is_stored_with_the_plan_it_runs(login, store):
    s = login()
    settings = {
        **SEED_000,
        "metric": "val_loss",
        "automl_remove_hyperparameters": "[train.momentum]",
    }
    created = s.call("POST", "jobs", json=train_body(automl_settings=settings))
    assert created.status_code == 201, created.json
    plan = store.jobs.find(created.json["id"])["automl_plan"]
    assert plan["automl_hyperparameters"] == [
        "train.learning_rate",
        "train.batch_size",
        "model.hidden_size",
    ]
    assert (plan["metric"], plan["direction"], plan["seed"]) == ("val_loss", "minimize", 42)
    assert "automl_plan" not in created.json  # the engine's, not the client's
    del settings["metric"]
    default = s.call("POST", "jobs", json=train_body(name="u", automl_settings=settings))
    plan = store.jobs.find(default.json["id"])["automl_plan"]
    assert (plan["metric"], plan["direction"]) == ("val_accuracy", "maximize")
    pbt = {"automl_enabled": True, "automl_algorithm": "pbt", "automl_eval_interval": 2}
    created = s.call("POST", "jobs", json=train_body(name="p", automl_settings=pbt))
    plan = store.jobs.find(created.json["id"])["automl_plan"]
    assert (plan["pbt_epochs"], plan["automl_population_size"]) == (3, 10)  # the spec's epochs
    off = train_body(automl_settings={"automl_enabled": False})
    assert s.call("POST", "jobs", json=off).status_code == 201
