"""An Optuna study kept in MongoDB through jobyard's journal backend, on both MongoDB-wire
servers: a study written by one storage is read whole by another (another worker, or the
same one after a crash), concurrent writers lose no log and leave no gap, studies do not
mix, and parameter names with dots and floats of 17 digits come back exactly."""

from __future__ import annotations

import threading

import optuna
import pytest
from optuna.storages import JournalStorage

from jobyard.store.study_journal import MongoJournalBackend
from tests.helpers import on_both_servers

pytestmark = [pytest.mark.integration, on_both_servers]
optuna.logging.set_verbosity(optuna.logging.WARNING)


def storage(store, study="job-1"):
    return JournalStorage(MongoJournalBackend(store.db, study))


def test_a_study_written_by_one_worker_is_read_whole_by_another(store):
    first = optuna.create_study(
        study_name="s", storage=storage(store), sampler=optuna.samplers.TPESampler(seed=1)
    )
    values = {}
    for _ in range(5):
        trial = first.ask()
        rate = trial.suggest_float("train.learning_rate", 1e-3, 0.5, log=True)
        trial.report(rate / 3, step=1)
        first.tell(trial, rate * 0.8328690807799443)
        values[trial.number] = rate * 0.8328690807799443
    again = optuna.load_study(study_name="s", storage=storage(store))
    done = again.get_trials(deepcopy=False)
    assert [t.number for t in done] == [0, 1, 2, 3, 4]
    assert {t.number: t.value for t in done} == values
    assert all(set(t.params) == {"train.learning_rate"} for t in done)
    assert done[2].intermediate_values[1] == done[2].params["train.learning_rate"] / 3
    assert again.best_trial.number == min(values, key=values.get)


def test_concurrent_writers_lose_no_log_and_leave_no_gap(store):
    optuna.create_study(study_name="s", storage=storage(store))
    errors = []

    def worker() -> None:
        try:
            study = optuna.load_study(study_name="s", storage=storage(store))
            for _ in range(5):
                trial = study.ask()
                study.tell(trial, trial.suggest_float("x", 0, 1))
        except Exception as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    numbers = [d["n"] for d in store.db["automl_journal"].find({"study": "job-1"})]
    assert sorted(numbers) == list(range(len(numbers)))
    trials = optuna.load_study(study_name="s", storage=storage(store)).trials
    assert sorted(t.number for t in trials) == list(range(20))
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)


def test_studies_do_not_mix_and_deleting_one_leaves_the_other(store):
    for name in ("job-a", "job-b"):
        study = optuna.create_study(study_name="s", storage=storage(store, name))
        study.optimize(lambda t: t.suggest_int("n", 1, 9), n_trials=2 if name == "job-a" else 3)
    MongoJournalBackend(store.db, "job-a").delete()
    assert len(optuna.load_study(study_name="s", storage=storage(store, "job-b")).trials) == 3
    with pytest.raises(KeyError):
        optuna.load_study(study_name="s", storage=storage(store, "job-a"))
