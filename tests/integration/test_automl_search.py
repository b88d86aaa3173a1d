"""AutoML searches run for real: a real worker, Redis, the MongoDB-wire server and the
process backend training the reference workload, one trial per job. What each algorithm
must show (issue 14): the GP search ends at least as good as its median trial and the
default spec, Hyperband's rungs follow ``automl_R``/``automl_nu``, ASHA stops bad trials
early, every algorithm completes, and pause, resume and cancel reach every trial."""

from __future__ import annotations

import statistics

import pytest

from jobyard.schemas import automl
from jobyard.store.catalog import REFERENCE
from tests.helpers import assert_error, wait_for
from tests.integration.test_engine import derived, train, until_status

pytestmark = pytest.mark.integration


def search(s, epochs=3, pace=0.0, **settings):
    """A search of the reference workload, its trials ``epochs`` long at ``pace``."""
    return train(s, epochs, pace, automl_settings={"automl_enabled": True, **settings})


def rung_search(s, algorithm, **settings):
    """R=9, nu=3: rungs at 1, 3 and 9 epochs; slow enough epochs that a pruned trial is
    stopped soon after the rung that judged it."""
    job_id = search(
        s,
        pace=0.25,
        automl_algorithm=algorithm,
        automl_R=9,
        automl_nu=3,
        automl_max_concurrent=4,
        **settings,
    )
    return job_id, experiments(until_status(s, job_id, "Done", timeout=240))


def experiments(job):
    return job["job_details"]["automl"]["experiments"]


def kpi(job):
    return {k["metric"]: k["value"] for k in job["job_details"]["kpi"]}


def test_bayesian_search_beats_its_median_and_the_default_spec(login, worker):
    s = login()
    worker()
    default = train(s, epochs=3)
    job_id = search(
        s, automl_algorithm="bayesian", automl_max_recommendations=10, automl_max_concurrent=3
    )
    done = until_status(s, job_id, "Done", timeout=180)
    summary, rows = done["job_details"]["automl"], experiments(done)
    assert [r["experiment_number"] for r in rows] == list(range(10))
    assert {r["outcome"] for r in rows} == {"finished"}
    assert len({tuple(sorted(r["params"].items())) for r in rows}) == 10
    values = [r["metric_value"] for r in rows]
    baseline = kpi(until_status(s, default, "Done"))["val_accuracy"]
    assert summary["best"]["value"] == max(values) >= statistics.median(values)
    assert summary["best"]["value"] >= baseline
    assert summary["trials_ended"] == summary["trials_planned"] == 10
    assert kpi(done)["val_accuracy"] == summary["best"]["value"]
    # each trial's events and logs, by its number; without one, all in trial order
    best = summary["best"]["experiment_number"]
    one = s.call("GET", f"jobs/{job_id}:events?detailed=true&automl_experiment_number={best}")
    assert {e["automl_experiment_number"] for e in one.json["events"]} == {best}
    every = s.call("GET", f"jobs/{job_id}:events?detailed=true").json["events"]
    numbers = [e["automl_experiment_number"] for e in every]
    assert numbers == sorted(numbers) and set(numbers) == set(range(10))
    log = s.call("GET", f"jobs/{job_id}:logs?automl_experiment_index={best}").data.decode()
    assert "epoch 3/3" in log
    all_logs = s.call("GET", f"jobs/{job_id}:logs").data.decode()
    assert all_logs.index("=== trial 0 ===") < all_logs.index("=== trial 9 ===")
    assert_error(s.call("GET", f"jobs/{job_id}:logs?automl_experiment_index=10"), 404)
    # automl_delete_intermediate_ckpt (TAO's default: true): only the best keeps models
    assert summary["checkpoints_deleted"] > 0
    for row in rows:
        names = s.call("POST", f"jobs/{row['job_id']}:list_files").json
        models = [n for n in names if n.endswith(".npz")]
        assert bool(models) == (row["experiment_number"] == best), (row, names)
    # the best trial's model is the search's: a derived job evaluates it
    evaluated = until_status(s, derived(s, "evaluate", job_id), "Done")
    assert kpi(evaluated)["accuracy"] > 0.8
    # deleting the search takes its trials and its study along
    trial_ids = [r["job_id"] for r in rows]
    assert s.call("DELETE", f"jobs/{job_id}").status_code == 200
    for trial in trial_ids[:2]:
        assert_error(s.call("GET", f"jobs/{trial}"), 404)


def test_hyperband_prunes_at_the_rungs_of_its_schedule(login, worker):
    s = login()
    worker()
    job_id, rows = rung_search(s, "hyperband", epoch_multiplier=1)
    assert (
        len(rows)
        == automl.planned_trials({"automl_algorithm": "hyperband", "automl_R": 9, "automl_nu": 3})
        == 17
    )
    rungs = set(automl.rung_units(9, 3)) - {9}
    pruned = [r for r in rows if r["outcome"] == "pruned"]
    finished = [r for r in rows if r["outcome"] == "finished"]
    assert pruned and finished
    assert {r["pruned_at_epoch"] for r in pruned} <= rungs
    assert all(r["epochs"] >= r["pruned_at_epoch"] for r in pruned)
    assert all(r["epochs"] == 9 for r in finished)
    trial = s.call("GET", f"jobs/{rows[0]['job_id']}").json
    assert trial["specs"]["train"]["num_epochs"] == 9 and trial["automl_of"] == job_id


def test_asha_stops_a_bad_trial_early(login, worker):
    s = login()
    worker()
    _, rows = rung_search(s, "asha", automl_max_trials=8)
    early = [r for r in rows if r["outcome"] == "pruned" and r["epochs"] < 9]
    assert early, rows


def test_pbt_trials_continue_from_better_trials_checkpoints(login, worker):
    s = login()
    worker()
    job_id = search(
        s,
        epochs=6,
        automl_algorithm="pbt",
        automl_population_size=4,
        automl_eval_interval=2,
        automl_max_concurrent=4,
    )
    done = until_status(s, job_id, "Done", timeout=180)
    rows = experiments(done)
    assert [r["experiment_number"] for r in rows] == list(range(12))  # 4 members, 3 generations
    assert [r["epochs"] for r in rows] == [2] * 4 + [4] * 4 + [6] * 4
    exploited = [r for r in rows if r["exploited_from"] is not None]
    assert exploited
    for row in exploited:
        source = rows[row["exploited_from"]]
        assert row["experiment_number"] // 4 == source["experiment_number"] // 4 + 1
        trial = s.call("GET", f"jobs/{row['job_id']}").json
        assert trial["parent_job_id"] == source["job_id"]
        number = row["experiment_number"]
        events = s.call(
            "GET", f"jobs/{job_id}:events?detailed=true&automl_experiment_number={number}"
        ).json["events"]
        said = [e["message"] for e in events if "parent's checkpoint" in e.get("message", "")]
        assert said and source["job_id"] in said[0], said
        # the floats explored around the source's values, the rest copied with its checkpoint
        assert row["params"]["model.hidden_size"] == source["params"]["model.hidden_size"]
        rate, was = row["params"]["train.learning_rate"], source["params"]["train.learning_rate"]
        assert rate in (pytest.approx(was * 0.8), pytest.approx(was * 1.2), 1e-3, 0.5)


@pytest.mark.parametrize(
    "chosen",
    [
        {"automl_algorithm": "bfbo", "automl_max_recommendations": 4},
        {
            "automl_algorithm": "bohb",
            "automl_R": 3,
            "automl_nu": 3,
            "automl_min_points_in_model": 2,
        },
        {"automl_algorithm": "dehb", "automl_R": 3, "automl_nu": 3},
        {"automl_algorithm": "hyperband_es", "automl_R": 3, "automl_nu": 3},
    ],
    ids=lambda s: s["automl_algorithm"],
)
def test_each_algorithm_completes_a_small_search(login, worker, chosen):
    s = login()
    worker()
    done = until_status(s, search(s, automl_max_concurrent=3, **chosen), "Done", timeout=120)
    summary = done["job_details"]["automl"]
    assert summary["algorithm"] == chosen["automl_algorithm"]
    assert summary["trials_ended"] == summary["trials_planned"] == len(experiments(done))
    assert summary["best"]["value"] > 0.5


def test_pause_checkpoints_every_trial_and_resume_trains_no_epoch_twice(login, worker):
    s = login()
    worker()
    job_id = search(
        s,
        epochs=4,
        pace=0.5,
        automl_algorithm="bayesian",
        automl_max_recommendations=4,
        automl_max_concurrent=2,
    )

    def two_training():
        rows = experiments(s.call("GET", f"jobs/{job_id}").json) if _has_rows(s, job_id) else []
        return sum(1 for r in rows if (r["epochs"] or 0) >= 1 and r["outcome"] is None) >= 2

    wait_for(two_training, 60, "two trials training")
    assert s.call("POST", f"jobs/{job_id}:pause").status_code == 200
    paused = until_status(s, job_id, "Paused", timeout=60)
    rows = experiments(paused)
    for row in rows:
        trial = s.call("GET", f"jobs/{row['job_id']}").json
        assert trial["status"] in ("Paused", "Done"), trial["status"]
        if trial["status"] == "Paused":
            assert trial["job_details"]["checkpoint"]
    assert s.call("POST", f"jobs/{job_id}:resume", json={}).status_code == 200
    done = until_status(s, job_id, "Done", timeout=120)
    assert len(experiments(done)) == 4
    for row in experiments(done):
        events = s.call(
            "GET",
            f"jobs/{job_id}:events?detailed=true&automl_experiment_number={row['experiment_number']}",
        ).json["events"]
        epochs = [e["epoch"] for e in events if e.get("status") == "RUNNING" and "kpi" in e]
        assert epochs == [1, 2, 3, 4], (row, epochs)


def _has_rows(s, job_id):
    return "automl" in s.call("GET", f"jobs/{job_id}").json["job_details"]


def test_cancel_stops_every_trial(login, worker):
    s = login()
    worker()
    job_id = search(
        s,
        epochs=20,
        pace=0.5,
        automl_algorithm="bfbo",
        automl_max_recommendations=6,
        automl_max_concurrent=2,
    )
    wait_for(
        lambda: _has_rows(s, job_id) and experiments(s.call("GET", f"jobs/{job_id}").json),
        60,
        "trials",
    )
    until_status(s, experiments(s.call("GET", f"jobs/{job_id}").json)[0]["job_id"], "Running")
    assert s.call("POST", f"jobs/{job_id}:cancel").status_code == 200
    canceled = until_status(s, job_id, "Canceled", timeout=60)
    for row in experiments(canceled):
        assert s.call("GET", f"jobs/{row['job_id']}").json["status"] == "Canceled"
    assert len(experiments(canceled)) == 2  # no trial started after the cancel


def test_seed_000s_request_runs_with_the_networks_metric(login, worker):
    s = login()
    worker()
    settings = {
        "automl_enabled": True,
        "automl_algorithm": "bayesian",
        "automl_max_recommendations": 20,
        "automl_delete_intermediate_ckpt": True,
    }
    specs = REFERENCE.default_spec("train")
    body = {
        "kind": "experiment",
        "network_arch": "classification_pyt",
        "action": "train",
        "specs": specs,
        "automl_settings": settings,
    }
    job_id = s.call("POST", "jobs", json=body).json["id"]
    done = until_status(s, job_id, "Done", timeout=240)
    assert done["job_details"]["automl"]["metric"] == "val_accuracy"
    assert len(experiments(done)) == 20


def test_a_worker_killed_mid_decision_changes_no_trial(login, worker):
    """The same search twice (same seed: the specs'), one trial at a time so its history
    is the same: undisturbed, then with the worker SIGKILLed five times, 0.5 to 2.1 s
    after it is ready, whatever it was doing. Both run the same trials, each once."""
    import time

    s = login()
    w = worker()
    settings = {
        "automl_algorithm": "bayesian",
        "automl_max_recommendations": 6,
        "automl_max_concurrent": 1,
    }
    calm = experiments(until_status(s, search(s, **settings), "Done", timeout=120))
    w.stop()
    job_id = search(s, **settings)  # the same request (its name aside, which it ignores)
    kills, deadline = 0, time.monotonic() + 180
    while kills < 5 and s.call("GET", f"jobs/{job_id}").json["status"] != "Done":
        w = worker()
        log = w.log
        wait_for(lambda: b" ready." in log.read_bytes(), 30, "the worker ready")  # noqa: B023
        time.sleep(0.5 + 0.4 * kills)  # killed at a different point each time
        w.kill()
        kills += 1
    worker()
    until_status(s, job_id, "Done", timeout=max(deadline - time.monotonic(), 10))
    shaken = experiments(s.call("GET", f"jobs/{job_id}").json)
    assert kills == 5
    assert [r["params"] for r in shaken] == [r["params"] for r in calm]
    assert [r["metric_value"] for r in shaken] == [r["metric_value"] for r in calm]
    for row in shaken:
        trial = s.call("GET", f"jobs/{row['job_id']}").json
        assert trial["automl_experiment_number"] == row["experiment_number"]
