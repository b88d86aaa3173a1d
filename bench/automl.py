"""The AutoML controller's step per reconcile pass, for a search with a short and with a
long history: it must cost the same (it reads open trials and what the study's journal
gained since the last step, never the whole history). The baseline is the same step
for the short history, measured in the same run."""

from __future__ import annotations

import statistics
import time
import uuid

import optuna

from bench.client import Api, train_body, wait_done
from bench.plan import Plan
from bench.servers import Bench
from bench.stats import Figure
from jobyard.schemas import automl as settings_of
from jobyard.schemas.job import JobState
from jobyard.store.catalog import REFERENCE
from jobyard.workers import automl
from jobyard.workers.context import Context

OPEN_TRIALS = 4


def _search(ctx: Context, history: int, target: str) -> str:
    """A running bayesian search with ``history`` ended trials and 4 training."""
    specs = REFERENCE.default_spec("train")
    settings = {
        "automl_enabled": True,
        "automl_algorithm": "bayesian",
        "automl_max_recommendations": history + 100,
        "automl_max_concurrent": OPEN_TRIALS,
    }
    fields = {
        "kind": "experiment",
        "action": "train",
        "network_arch": REFERENCE.network_arch,
        "name": f"bench-search-{history}",
        "specs": specs,
        "automl_settings": settings,
        "automl_plan": settings_of.plan(settings, REFERENCE, specs),
    }
    store = ctx.store
    search = store.jobs.create("automl-bench", "bench", fields, target, uuid.uuid4().hex)
    store.jobs.start_search(search["_id"], 1)
    plan = search["automl_plan"]
    ctx.studies.create(search["_id"], plan)
    # set up with random proposals: the GP's cost per proposal is not what is measured
    study = optuna.load_study(
        study_name=search["_id"],
        storage=ctx.studies.storage(search["_id"]),
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    space = automl._space(plan)
    for number in range(history + OPEN_TRIALS):
        trial = study.ask(space)
        doc, _ = store.trials.create(search, number, trial.params, specs)
        if number < history:
            value = 0.5 + 0.4 * ((number * 7919) % 1000) / 1000
            study.tell(number, value)
            store.jobs.transition(doc["_id"], JobState.RUNNING)
            kpi = [{"metric": "val_accuracy", "value": value}]
            store.jobs.transition(doc["_id"], JobState.DONE, {"job_details.kpi": kpi})
            store.trials.close(doc["_id"], automl.FINISHED)
        else:
            store.jobs.transition(doc["_id"], JobState.RUNNING)
    return str(search["_id"])


def controller_tick(bench: Bench, plan: Plan) -> Figure:
    """Both searches at once, each on its own backend target so a step takes one of them,
    their steps alternated: the same database, the same moment, only the history differs."""
    short, long = plan.automl_histories
    bench.store.db.jobs.delete_many({"org": "automl-bench"})
    ctx = Context(bench.settings, bench.store, bench.redis, None)
    targets = {short: "process", long: "kubernetes"}
    for history, target in targets.items():
        _search(ctx, history, target)
    ctx = Context(bench.settings, bench.store, bench.redis, None)  # a fresh process's
    first = {h: _timed(ctx, t) for h, t in targets.items()}  # opens the studies
    steps: dict[int, list[float]] = {short: [], long: []}
    for _ in range(plan.ticks * 25):
        for history, target in targets.items():
            steps[history].append(_timed(ctx, target))
    bench.store.db.jobs.delete_many({"org": "automl-bench"})  # no worker may run them
    value, baseline = statistics.median(steps[long]) * 1000, statistics.median(steps[short]) * 1000
    return Figure(
        f"AutoML controller step, {long} trials of history",
        "ms/step",
        value,
        baseline,
        f"the same step with {short} trials of history, alternated with it",
        "≤ 1.5× baseline (flat in history)",
        value <= 1.5 * baseline,
        {
            "open_trials": OPEN_TRIALS,
            "steps_each": len(steps[long]),
            "first_step_ms": {str(h): s * 1000 for h, s in first.items()},
            "p90_step_ms": {str(h): sorted(v)[int(len(v) * 0.9)] * 1000 for h, v in steps.items()},
        },
    )


def _timed(ctx: Context, target: str) -> float:
    start = time.perf_counter()
    automl.step(ctx, target)
    return time.perf_counter() - start


def _trial_timings(bench: Bench, search_id: str, concurrent: int) -> dict[str, float]:
    """Where a search's wall time goes: the search's start to its first trial, a trial's
    creation to its start, and the end of the last trial to the search's Done."""
    search = bench.store.jobs.find(search_id) or {}
    trials = bench.store.trials.of(search_id)
    started = [t["started_on"] - t["created_on"] for t in trials if t.get("started_on")]
    return {
        "search_start_to_first_trial_s": min(t["created_on"] for t in trials)
        - float(search["started_on"]),
        "trial_created_to_running_s_mean": statistics.mean(started),
        "last_trial_end_to_done_s": float(search["finished_on"])
        - max(float(t["finished_on"]) for t in trials),
        "trial_run_s_mean": statistics.mean(
            t["finished_on"] - t["started_on"] for t in trials if t.get("started_on")
        ),
        # a slot freed (the k-th trial to end) to the trial that took it created
        "slot_freed_to_next_trial_s_mean": statistics.mean(
            [
                later["created_on"] - ended
                for later, ended in zip(
                    trials[concurrent:],
                    sorted(float(t["finished_on"]) for t in trials),
                    strict=False,
                )
            ]
            or [0.0]
        ),
    }


def _search_run(api: Api, specs: dict[str, object], trials: int, concurrent: int) -> str:
    """A bayesian search from POST to Done; its id."""
    settings = {
        "automl_enabled": True,
        "automl_algorithm": "bayesian",
        "automl_max_recommendations": trials,
        "automl_max_concurrent": concurrent,
    }
    body = train_body(f"bench-search-{uuid.uuid4().hex[:6]}", specs, automl_settings=settings)
    status, search = api.call("POST", api.org_path("jobs"), body)
    if status != 201:
        raise RuntimeError(f"search refused: {status} {search}")
    wait_done(api, [search["id"]])
    return str(search["id"])


def search_vs_jobs(bench: Bench, api: Api, plan: Plan) -> Figure:
    """A bayesian search of N trials, 4 at a time, from POST to Done, against the very N
    runs (the hyperparameters the search chose) as plain jobs, 4 at a time by the org's
    quota: what the controller's decisions cost in wall time."""
    trials, concurrent = plan.automl_search_trials, 4
    specs = REFERENCE.default_spec("train")
    specs["train"]["num_epochs"] = plan.automl_search_epochs
    # unrecorded: each pool process imports optuna and scikit-learn's GP once (1.5 s under
    # load), wherever its first decision falls; enough GP decisions that both have
    _search_run(api, specs, min(12, trials), concurrent)
    start = time.perf_counter()
    search_id = _search_run(api, specs, trials, concurrent)
    searched = time.perf_counter() - start
    _, done = api.call("GET", api.org_path(f"jobs/{search_id}"))
    timings = _trial_timings(bench, search_id, concurrent)
    rows = done["job_details"]["automl"]["experiments"]
    bench.store.quotas.set(api.org, {"max_running_jobs": concurrent})
    try:
        start = time.perf_counter()
        ids = []
        for row in rows:
            body = train_body(
                f"bench-plain-{row['experiment_number']}-{uuid.uuid4().hex[:6]}",
                settings_of.with_values(specs, row["params"]),
            )
            status, job = api.call("POST", api.org_path("jobs"), body)
            if status != 201:
                raise RuntimeError(f"job refused: {status} {job}")
            ids.append(job["id"])
        wait_done(api, ids)
        plain = time.perf_counter() - start
    finally:
        bench.store.quotas.set(api.org, {"max_running_jobs": None})
    return Figure(
        f"{trials}-trial AutoML search, {concurrent} at a time",
        "s",
        searched,
        plain,
        f"the same {trials} runs as plain jobs, {concurrent} at a time (org quota)",
        "≤ 1.25× baseline",
        searched <= 1.25 * plain,
        {"epochs_per_trial": plan.automl_search_epochs, "trials": len(rows), **timings},
    )
