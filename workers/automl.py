"""The AutoML controller: one short, idempotent step per reconcile pass for every search
of the backend, never a task that waits.

A search is a job with an ``automl_plan``; its trials are jobs of their own
(``store.trials``) that the engine runs like any other. Each step, per search:

1. report each open trial's new metric points to the study, and stop (pause, so its
   checkpoint stays) a trial the algorithm's pruner gives up on;
2. record the outcome of each trial that ended (finished, pruned, failed, canceled);
3. start trials while fewer than ``automl_max_concurrent`` run and the plan has more;
4. end the search when every planned trial has ended: Done with the best trial's model.

Everything a step decides is in MongoDB before it acts on it: the study's journal holds a
trial before its job exists, and a trial's job is keyed by (search, number), so a worker
killed at any point of a step leaves the next step to finish it, starting no trial twice.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jobyard.backends.base import Handle
from jobyard.backends.errors import BackendError, UnsupportedOperation
from jobyard.schemas import automl
from jobyard.schemas.checkpoints import model_files
from jobyard.schemas.job import JobState
from jobyard.store.errors import Conflict, StaleState
from jobyard.store.timeutil import utcnow
from jobyard.store.trials import trial_id
from jobyard.workers import enqueue
from jobyard.workers.context import Context

logger = logging.getLogger(__name__)
PRUNED, FINISHED, FAILED, CANCELED = "pruned", "finished", "failed", "canceled"


def start(ctx: Context, job: Mapping[str, Any]) -> str:
    """A search's dispatch (its first run, or a resume): the study exists, trials paused
    with the search go on from their checkpoints, and the search is Running; the next
    reconcile step starts trials."""
    job_id, plan = str(job["_id"]), job["automl_plan"]
    ctx.studies.create(job_id, plan)
    for trial in ctx.store.trials.open([job_id]):
        if trial["status"] == JobState.PAUSED.value and trial.get("automl_pruned_at") is None:
            _resume_trial(ctx, trial)  # a pruned one stays stopped: its outcome is recorded
    if ctx.store.jobs.start_search(job_id, int(job["run"])):
        logger.info("search %s: running (%s)", job_id, plan["automl_algorithm"])
        return "searching"
    return "skipped"


def _resume_trial(ctx: Context, trial: Mapping[str, Any]) -> None:
    try:
        resumed = ctx.store.jobs.resume(str(trial["org"]), str(trial["_id"]), {})
    except (Conflict, StaleState):
        return  # it moved on meanwhile
    enqueue.dispatch(ctx.celery, ctx.redis, resumed)


def step(ctx: Context, backend: str) -> int:
    """One controller step for every running search of ``backend``: two queries for all
    of them (the searches, their open trials), then each search's own decisions."""
    searches = ctx.store.jobs.searches(backend)
    if not searches:
        return 0
    open_trials: dict[str, list[dict[str, Any]]] = {}
    for trial in ctx.store.trials.open([s["_id"] for s in searches]):
        open_trials.setdefault(trial["automl_of"], []).append(trial)
    for found in searches:
        try:
            _Step(ctx, found, open_trials.get(found["_id"], [])).run()
        except StaleState as e:
            logger.info("search %s: step skipped: %s", found["_id"], e)
    return len(searches)


@dataclass
class _Step:
    ctx: Context
    search: Mapping[str, Any]
    trials: list[dict[str, Any]]
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def plan(self) -> Mapping[str, Any]:
        plan: Mapping[str, Any] = self.search["automl_plan"]
        return plan

    @property
    def search_id(self) -> str:
        return str(self.search["_id"])

    def run(self) -> None:
        state = JobState(self.search["status"])
        study = self.ctx.studies.load(self.search_id, self.plan, 0)
        asked = {t.number: t for t in study.get_trials(deepcopy=False)}
        still_open, ended = [], []
        # the best so far, as last written, and each trial that ended since: a trial is
        # closed only after the write that counted it, so none is missed or counted twice
        best = ((self.search.get("job_details") or {}).get("automl") or {}).get("best")
        for trial in self.trials:
            number = int(trial["automl_experiment_number"])
            frozen = asked.get(number)
            if frozen is None:
                continue  # not this study's (a trial outlived a deleted search): ignore
            running = frozen.state.name == "RUNNING"
            if running and self._rungs() and trial.get("automl_pruned_at") is None:
                self._report(study, trial)
            if JobState(trial["status"]).active or (
                trial["status"] == JobState.PAUSED.value and not trial.get("automl_pruned_at")
            ):
                self.rows[str(number)] = self._row(trial, None)
                self._carry_out(state, trial)
                still_open.append(trial)
                continue
            outcome, value = self._record(study, trial, running)
            self.rows[str(number)] = self._row(trial, outcome, value)
            ended.append((str(trial["_id"]), outcome))
            if outcome == FINISHED and self._better(number, value, best):
                best = {
                    "experiment_number": number,
                    "value": value,
                    "params": dict(trial.get("automl_params") or {}),
                    "job_id": trial["_id"],
                }
        started, created = 0, self.ctx.store.trials.created(self.search_id, len(asked))
        if state is JobState.RUNNING:
            started = self._start_trials(len(still_open), created)
        active = started + sum(1 for t in still_open if JobState(t["status"]).active)
        counts = {
            "created": created + started,
            "open": len(still_open) + started,
            "active": active,
        }
        self._write(state, best, counts)
        # only once the search shows their outcome: a crash before this records them again
        for ident, outcome in ended:
            self.ctx.store.trials.close(ident, outcome)

    # --- 1. report and prune ----------------------------------------------------------

    def _rungs(self) -> bool:
        return self.plan["automl_algorithm"] in automl.RUNG_ALGORITHMS

    def _report(self, study: Any, trial: Mapping[str, Any]) -> None:
        """The trial's new points of the metric, one epoch at a time, each judged by the
        pruner at that epoch: a rung is judged on the value the trial had there. Its last
        epoch is no rung (the trial has finished; Optuna's pruners would judge it too)."""
        storage = self.ctx.studies.storage(self.search_id)
        number = int(trial["automl_experiment_number"])
        last = automl.trial_epochs(self.plan, number)
        study_id = storage.get_study_id_from_name(self.search_id)
        key = storage.get_trial_id_from_study_id_trial_number(study_id, number)
        frozen = storage.get_trial(key)
        reported = frozen.last_step if frozen.last_step is not None else 0
        for step, value in _points(trial, self.plan["metric"]):
            if step <= reported or not math.isfinite(value):
                continue
            storage.set_trial_intermediate_value(key, step, value)
            if last is not None and step >= last:
                return
            if study.pruner.prune(study, storage.get_trial(key)):
                self._prune(trial, step)
                return

    def _prune(self, trial: Mapping[str, Any], step: int) -> None:
        ident = str(trial["_id"])
        if not self.ctx.store.trials.mark_pruned(ident, step):
            return
        logger.info("search %s: trial %s pruned at epoch %s", self.search_id, ident, step)
        if trial["status"] == JobState.RUNNING.value:
            try:
                self.ctx.store.jobs.request_pause(str(trial["org"]), ident, True)
            except (Conflict, StaleState):
                pass  # it ended meanwhile: recorded as pruned when its end is seen
        else:
            self._cancel(trial)

    # --- 2. outcomes ------------------------------------------------------------------

    def _record(self, study: Any, trial: Mapping[str, Any], running: bool) -> tuple[str, Any]:
        from optuna.trial import TrialState

        number = int(trial["automl_experiment_number"])
        status = JobState(trial["status"])
        value = _value(trial, self.plan["metric"])
        if trial.get("automl_pruned_at") is not None:
            outcome, state = PRUNED, TrialState.PRUNED
        elif status is JobState.DONE and value is not None:
            outcome, state = FINISHED, TrialState.COMPLETE
        elif status is JobState.CANCELED:
            outcome, state = CANCELED, TrialState.FAIL
        else:
            outcome, state = FAILED, TrialState.FAIL
        if running:
            told = value if state is TrialState.COMPLETE else None
            study.tell(number, told, state=state, skip_if_finished=True)
        return outcome, value

    def _better(self, number: int, value: float, best: Mapping[str, Any] | None) -> bool:
        """Better than the best so far; of equal values, the earlier trial."""
        if best is None:
            return True
        sign = -1.0 if self.plan["direction"] == "minimize" else 1.0
        ours, theirs = sign * value, sign * float(best["value"])
        return ours > theirs or (ours == theirs and number < int(best["experiment_number"]))

    # --- 3. start trials --------------------------------------------------------------

    def _start_trials(self, running: int, created: int) -> int:
        from jobyard.workers.search import propose

        plan, started = self.plan, 0
        planned = automl.planned_trials(plan)
        while running + started < int(plan["automl_max_concurrent"]) and created < planned:
            number = created  # asked before a crash, a trial may be in the study already
            study = self.ctx.studies.load(self.search_id, plan, number)
            continuing: dict[str, Any] = {}
            if plan["automl_algorithm"] == "pbt":
                member = self._pbt_member(number)
                if member is None:
                    break  # its generation starts once the one before has ended
                if member.params is not None and len(study.get_trials(deepcopy=False)) == number:
                    study.enqueue_trial(member.params)  # the next proposal is this member
                continuing = self._continuing(member)
            params = propose(study, _space(plan), number)
            specs = _trial_specs(plan, number, self.search["specs"], params)
            trial, new = self.ctx.store.trials.create(
                self.search, number, params, specs, continuing
            )
            if new or not trial.get("submitted"):
                enqueue.dispatch(self.ctx.celery, self.ctx.redis, trial)
            self.rows[str(number)] = self._row(trial, None)
            created, started = created + 1, started + 1
        return started

    def _pbt_member(self, number: int) -> Any:
        """PBT's decision for trial ``number``, or None while its previous generation is
        still training (workers/pbt.py)."""
        from jobyard.workers import pbt

        size = int(self.plan["automl_population_size"])
        generation = number // size
        if generation == 0:
            return pbt.member(self.plan, number, [], _space(self.plan))
        first = (generation - 1) * size
        previous = self.ctx.store.trials.of(self.search_id, list(range(first, first + size)))
        if len(previous) < size or any(t.get("automl_open") for t in previous):
            return None
        results = [
            pbt.Result(
                int(t["automl_experiment_number"]),
                t.get("automl_params") or {},
                _value(t, self.plan["metric"]) if t.get("automl_outcome") == FINISHED else None,
            )
            for t in previous
        ]
        return pbt.member(self.plan, number, results, _space(self.plan))

    def _continuing(self, member: Any) -> dict[str, Any]:
        """The fields that make a PBT trial continue from its source trial's checkpoint,
        the one the source reported last (its own status events say which)."""
        if member.source is None:
            return {}
        source = self.ctx.store.jobs.find(trial_id(self.search_id, member.source)) or {}
        checkpoint = (source.get("job_details") or {}).get("checkpoint")
        fields: dict[str, Any] = {"automl_continues": member.source}
        if member.exploited:
            fields["automl_exploited_from"] = member.source
        if checkpoint:
            fields.update(parent_job_id=source["_id"], parent_checkpoint=checkpoint)
        return fields

    # --- 4. carrying out the search's state, and ending it ----------------------------

    def _carry_out(self, state: JobState, trial: Mapping[str, Any]) -> None:
        """A pause or cancel of the search reaches each of its trials."""
        status = JobState(trial["status"])
        if state is JobState.CANCELING:
            self._cancel(trial)
        elif state is JobState.PAUSING and status is JobState.RUNNING:
            try:
                self.ctx.store.jobs.request_pause(str(trial["org"]), str(trial["_id"]), True)
            except (Conflict, StaleState):
                pass
        elif state is JobState.RUNNING and status is JobState.PAUSED:
            _resume_trial(self.ctx, trial)  # paused with the search, which went on since

    def _cancel(self, trial: Mapping[str, Any]) -> None:
        if trial["status"] in (JobState.CANCELING.value, JobState.CANCELED.value):
            return
        try:
            self.ctx.store.jobs.request_cancel(str(trial["org"]), str(trial["_id"]))
        except (Conflict, StaleState):
            pass

    def _write(self, state: JobState, best: dict[str, Any] | None, counts: dict[str, int]) -> None:
        plan = self.plan
        planned = automl.planned_trials(plan)
        summary = {
            "algorithm": plan["automl_algorithm"],
            "metric": plan["metric"],
            "direction": plan["direction"],
            "trials_planned": planned,
            "trials_ended": counts["created"] - counts["open"],
            "trials_running": counts["active"],
            "best": best,
        }
        changes: dict[str, Any] = {"job_details.automl": summary}
        changes.update({f"automl_rows.{n}": row for n, row in self.rows.items()})
        target = self._ending(state, counts, planned, best)
        if target is None:
            if state is JobState.RUNNING:
                changes["job_details.detailed_status.message"] = _progress(summary)
            self.ctx.store.jobs.set_while(self.search_id, state.value, changes)
            return
        target_state, message = target
        if target_state is JobState.DONE and best and plan["automl_delete_intermediate_ckpt"]:
            summary["checkpoints_deleted"] = self._drop_losers(best)
            changes["job_details.automl"] = summary
        changes.update(self._final(target_state, best))
        changes["job_details.detailed_status.message"] = message
        changes["job_details.detailed_status.status"] = target_state.value
        changes["finished_on"] = utcnow()
        try:
            self.ctx.store.jobs.transition(self.search_id, target_state, changes)
        except (Conflict, StaleState) as e:
            logger.info("search %s: not moved to %s: %s", self.search_id, target_state.value, e)
            return
        logger.info("search %s: %s (%s)", self.search_id, target_state.value, message)

    def _ending(
        self,
        state: JobState,
        counts: Mapping[str, int],
        planned: int,
        best: Mapping[str, Any] | None,
    ) -> tuple[JobState, str] | None:
        ended, metric = counts["created"] - counts["open"], self.plan["metric"]
        if state is JobState.CANCELING and not counts["active"]:
            return JobState.CANCELED, f"canceled by request after {ended} trials"
        if state is JobState.PAUSING and not counts["active"]:
            return JobState.PAUSED, f"paused after {ended} of {planned} trials; resume continues"
        if state is not JobState.RUNNING or counts["open"] or counts["created"] < planned:
            return None
        if not best:
            return JobState.ERROR, f"no trial of {planned} finished with a value of {metric}"
        return JobState.DONE, (
            f"completed: {ended} trials; best {metric}={best['value']:.6g} "
            f"(trial {best['experiment_number']})"
        )

    def _drop_losers(self, best: Mapping[str, Any]) -> int | None:
        """``automl_delete_intermediate_ckpt``: every model file of every trial but the best,
        before the search is Done (a crash here deletes them again, harmlessly). None when
        the backend cannot delete results (Lepton's stay with the job's storage)."""
        backend = self.ctx.backend(str(self.search["backend"]))
        files: list[tuple[Handle, str]] = []
        try:
            for trial in self.ctx.store.trials.of(self.search_id):
                if trial["_id"] == best["job_id"] or not trial.get("handle"):
                    continue
                handle = Handle.from_doc(trial["handle"])
                names = [f.path for f in backend.list_results(handle)]
                files += [(handle, path) for path in model_files(names)]
            return backend.delete_results(files) if files else 0
        except (UnsupportedOperation, BackendError) as e:
            logger.warning("search %s: losing trials' checkpoints kept: %s", self.search_id, e)
            return None

    def _final(self, state: JobState, best: Mapping[str, Any] | None) -> dict[str, Any]:
        """The best trial's model becomes the search's: what derived jobs, downloads and
        publishing read (its handle, its results, its KPI)."""
        if state is not JobState.DONE or not best:
            return {}
        winner = self.ctx.store.jobs.find(str(best["job_id"]))
        if winner is None:
            return {}
        changes: dict[str, Any] = {"handle": winner.get("handle")}
        details = winner.get("job_details") or {}
        for key in ("kpi", "epoch", "max_epoch", "checkpoint"):
            if key in details:
                changes[f"job_details.{key}"] = details[key]
        for key in ("results", "artifacts"):
            if key in winner:
                changes[key] = winner[key]
        return changes

    def _row(
        self, trial: Mapping[str, Any], outcome: str | None, value: Any = None
    ) -> dict[str, Any]:
        details = trial.get("job_details") or {}
        if value is None:
            value = _value(trial, self.plan["metric"])
        return {
            "experiment_number": int(trial["automl_experiment_number"]),
            "job_id": trial["_id"],
            "params": dict(trial.get("automl_params") or {}),
            "status": trial["status"],
            "outcome": outcome,
            "metric_value": value,
            "epochs": details.get("epoch"),
            "pruned_at_epoch": trial.get("automl_pruned_at"),
            "exploited_from": trial.get("automl_exploited_from"),
        }


def _progress(summary: Mapping[str, Any]) -> str:
    text = (
        f"searching: {summary['trials_ended']} of {summary['trials_planned']} trials ended, "
        f"{summary['trials_running']} running"
    )
    best = summary.get("best")
    if best:
        text += (
            f"; best {summary['metric']}={best['value']:.6g} (trial {best['experiment_number']})"
        )
    return text


def _points(trial: Mapping[str, Any], metric: str) -> list[tuple[int, float]]:
    axes = (trial.get("series") or {}).get(metric) or {}
    return [(int(x), float(y)) for x, y in zip(axes.get("x", []), axes.get("y", []), strict=False)]


def _value(trial: Mapping[str, Any], metric: str) -> float | None:
    """The trial's result: its KPI at the end, else its last point of the metric."""
    for entry in (trial.get("job_details") or {}).get("kpi") or []:
        if entry.get("metric") == metric and isinstance(entry.get("value"), int | float):
            return float(entry["value"])
    points = _points(trial, metric)
    return points[-1][1] if points else None


def _space(plan: Mapping[str, Any]) -> dict[str, Any]:
    from jobyard.workers.search import distributions  # optuna: the automl extra

    return distributions(plan["hyperparameters"], plan["automl_hyperparameters"])


def _trial_specs(
    plan: Mapping[str, Any], number: int, specs: Mapping[str, Any], params: Mapping[str, Any]
) -> dict[str, Any]:
    values = dict(params)
    epochs, key = automl.trial_epochs(plan, number), plan.get("epochs_key")
    if epochs is not None and key:
        values[key] = epochs
    return automl.with_values(specs, values)
