"""AutoML settings as seed 000 and TAO spell them, and what a search of one catalog entry
would tune: which settings each algorithm takes, their ranges and TAO's defaults, the
metric it ranks by and the hyperparameters it searches.

Pure functions over the request and the catalog entry's ``hyperparameters`` and
``metrics``; the API checks a job with them before anything is stored, so a search that
could not run is refused at submission with every problem named, not found out trials
later.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from jobyard.schemas.common import StrictSchema

BAYESIAN_SETTINGS = ("automl_max_recommendations",)
HYPERBAND_SETTINGS = ("automl_R", "automl_nu", "epoch_multiplier")
# the key settings of seed 000's table, per algorithm
ALGORITHMS: dict[str, tuple[str, ...]] = {
    "bayesian": BAYESIAN_SETTINGS,
    "bfbo": BAYESIAN_SETTINGS,
    "hyperband": HYPERBAND_SETTINGS,
    "bohb": (
        *HYPERBAND_SETTINGS,
        "automl_kde_samples",
        "automl_top_n_percent",
        "automl_min_points_in_model",
    ),
    "asha": (*HYPERBAND_SETTINGS, "automl_max_trials"),
    "pbt": ("automl_population_size", "automl_eval_interval"),
    "dehb": (*HYPERBAND_SETTINGS, "automl_mutation_factor", "automl_crossover_prob"),
    "hyperband_es": (
        *HYPERBAND_SETTINGS,
        "automl_early_stop_threshold",
        "automl_min_early_stop_epochs",
    ),
}
# every algorithm takes these
COMMON_SETTINGS = (
    "automl_enabled",
    "automl_algorithm",
    "automl_max_concurrent",
    "automl_delete_intermediate_ckpt",
    "automl_add_hyperparameters",
    "automl_remove_hyperparameters",
    "metric",
)
# TAO's defaults (its AlgorithmParams), for what a request leaves out
DEFAULTS: dict[str, Any] = {
    "automl_max_recommendations": 20,
    "automl_R": 27,
    "automl_nu": 3,
    "epoch_multiplier": 1,
    "automl_max_concurrent": 4,
    "automl_max_trials": None,
    "automl_population_size": 10,
    "automl_eval_interval": 10,
    "automl_mutation_factor": 0.5,
    "automl_crossover_prob": 0.5,
    "automl_early_stop_threshold": 0.1,
    "automl_min_early_stop_epochs": 3,
    "automl_kde_samples": 64,
    "automl_top_n_percent": 15.0,
    "automl_min_points_in_model": 10,
    "automl_delete_intermediate_ckpt": True,
}
MAX_TRIALS = 10_000
MAX_EPOCHS = 100_000


def _count(low: int, high: int = MAX_TRIALS) -> fields.Integer:
    return fields.Integer(validate=validate.Range(low, high), strict=True)


def _fraction(high: float = 1.0) -> fields.Float:
    return fields.Float(validate=validate.Range(0.0, high), allow_nan=False)


class HyperparameterNames(fields.Field[list[str]]):
    """A list of spec keys, or TAO v1's string form of one (``"[a, b]"`` or ``"a,b"``)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[str]:
        if isinstance(value, str):
            text = value.strip()
            try:
                value = json.loads(text) if text.startswith("[") else text.split(",")
            except ValueError:
                value = text.strip("[]").split(",")
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ma.ValidationError("must be a list of hyperparameter names")
        names = [v.strip().strip("'\"") for v in value]
        return [n for n in names if n]


class AutomlSettingsSchema(StrictSchema):
    automl_enabled = fields.Boolean(load_default=False)
    automl_algorithm = fields.String(validate=validate.OneOf(list(ALGORITHMS)))
    metric = fields.String(validate=validate.Length(1, 100))
    automl_max_recommendations = _count(1)
    automl_max_concurrent = _count(1, 1024)
    automl_max_trials = _count(1)
    automl_R = _count(2, MAX_EPOCHS)
    automl_nu = _count(2, 100)
    epoch_multiplier = _count(1, 1000)
    automl_kde_samples = _count(1)
    automl_top_n_percent = fields.Float(
        validate=validate.Range(0.0, 100.0, min_inclusive=False), allow_nan=False
    )
    automl_min_points_in_model = _count(1)
    automl_population_size = _count(2, 1000)
    automl_eval_interval = _count(1, MAX_EPOCHS)
    automl_mutation_factor = _fraction(2.0)
    automl_crossover_prob = _fraction()
    automl_early_stop_threshold = _fraction()
    automl_min_early_stop_epochs = _count(1, MAX_EPOCHS)
    automl_delete_intermediate_ckpt = fields.Boolean()
    automl_add_hyperparameters = HyperparameterNames()
    automl_remove_hyperparameters = HyperparameterNames()

    @ma.validates_schema
    def _belongs_to_the_algorithm(self, data: dict[str, Any], **_: Any) -> None:
        if not data.get("automl_enabled"):
            return
        algorithm = data.get("automl_algorithm")
        if algorithm is None:
            raise ma.ValidationError(
                f"an AutoML search needs one of: {', '.join(ALGORITHMS)}", "automl_algorithm"
            )
        takes = {*COMMON_SETTINGS, *ALGORITHMS[algorithm]}
        for name in sorted(set(data) - takes):
            owners = [a for a, settings in ALGORITHMS.items() if name in settings]
            raise ma.ValidationError(
                f"{name} is not a setting of {algorithm} (it belongs to {', '.join(owners)}); "
                f"{algorithm} takes {', '.join(ALGORITHMS[algorithm])}",
                name,
            )


def problems(
    settings: Mapping[str, Any],
    hyperparameters: Sequence[Mapping[str, Any]],
    metrics: Sequence[str],
) -> dict[str, str]:
    """What in loaded settings does not fit the catalog entry, by field: a metric the
    network does not report, a hyperparameter it does not declare, nothing left to search."""
    found: dict[str, str] = {}
    metric = settings.get("metric")
    if metric is not None and metrics and metric not in metrics:
        found["metric"] = (
            f"{metric} is not a metric this network reports; choose one of: {', '.join(metrics)}"
        )
    for field in ("automl_add_hyperparameters", "automl_remove_hyperparameters"):
        unknown = undeclared(settings.get(field) or (), hyperparameters)
        if unknown:
            found[field] = unknown
    if "automl_add_hyperparameters" not in found and not searched(settings, hyperparameters):
        found["automl_remove_hyperparameters"] = "no hyperparameter is left to search"
    return found


def undeclared(names: Sequence[str], hyperparameters: Sequence[Mapping[str, Any]]) -> str | None:
    """What is wrong with names that are not the network's tunables, or None."""
    declared = [str(h["name"]) for h in hyperparameters]
    unknown = [n for n in names if n not in declared]
    if not unknown:
        return None
    return (
        f"not a tunable hyperparameter of this network: {', '.join(unknown)}; "
        f"tunable: {', '.join(declared) or 'none'}"
    )


def searched(
    settings: Mapping[str, Any], hyperparameters: Sequence[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    """The hyperparameters a search varies: those searched by default, plus the added,
    minus the removed, in the entry's order."""
    added = set(settings.get("automl_add_hyperparameters") or ())
    removed = set(settings.get("automl_remove_hyperparameters") or ())
    return [
        h
        for h in hyperparameters
        if (h.get("searched") or h["name"] in added) and h["name"] not in removed
    ]


def resolved(
    settings: Mapping[str, Any],
    hyperparameters: Sequence[Mapping[str, Any]],
    default_metric: str | None,
) -> dict[str, Any]:
    """The settings a search runs with: the request's, then TAO's defaults for the
    algorithm's own settings, the network's metric and the searched names."""
    algorithm = settings["automl_algorithm"]
    out: dict[str, Any] = {
        "automl_enabled": True,
        "automl_algorithm": algorithm,
        "metric": settings.get("metric") or default_metric,
    }
    for name in (
        "automl_max_concurrent",
        "automl_delete_intermediate_ckpt",
        *ALGORITHMS[algorithm],
    ):
        out[name] = settings.get(name, DEFAULTS[name])
    out["automl_hyperparameters"] = [str(h["name"]) for h in searched(settings, hyperparameters)]
    return out


def param_details(
    hyperparameters: Sequence[Mapping[str, Any]], names: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """TAO's ``parameter_details`` rows for the entry's tunables (the named ones, when
    asked), with whether a search varies each by default."""
    wanted = set(names)
    rows = []
    for h in hyperparameters:
        if wanted and h["name"] not in wanted:
            continue
        rows.append(
            {
                "parameter": h["name"],
                "value_type": h["type"],
                "automl_enabled": bool(h.get("searched")),
                "log_scale": bool(h.get("log")),
                "description": h.get("description", ""),
                "default": {
                    "default_value": h.get("default"),
                    "valid_min": h.get("min"),
                    "valid_max": h.get("max"),
                    "valid_options": list(h.get("options") or []),
                    "math_cond": None,
                    "depends_on": None,
                    "parent_param": None,
                },
                "custom": None,
            }
        )
    return rows


# --- what a search runs: pure functions over its resolved settings -------------------

# Algorithms that spend epochs in Hyperband's rungs: a trial's epochs are automl_R times
# epoch_multiplier, and a pruner stops it at a rung it does not pass.
RUNG_ALGORITHMS = frozenset({"hyperband", "bohb", "asha", "dehb", "hyperband_es"})
EPOCHS_KEY = "num_epochs"  # the spec key, under any section, that sets a trial's epochs


def hyperband_brackets(r_max: int, nu: int) -> list[dict[str, Any]]:
    """Hyperband's brackets (Li et al. 2018) for max resource ``R`` and reduction ``nu``:
    bracket ``s`` starts ``n`` trials at ``R / nu**s`` units and keeps the best
    ``1 / nu`` of them at each rung up to ``R``. The schedule a search is planned by."""
    s_max = 0
    while nu ** (s_max + 1) <= r_max:
        s_max += 1
    out = []
    for s in range(s_max, -1, -1):
        n = -(-(s_max + 1) * nu**s // (s + 1))  # ceil
        rungs = [
            {"trials": max(n // nu**i, 1), "units": r_max // nu ** (s - i)} for i in range(s + 1)
        ]
        out.append({"bracket": s, "trials": n, "rungs": rungs})
    return out


def rung_units(r_max: int, nu: int) -> list[int]:
    """Every rung's resource, smallest first: where a rung pruner judges a trial."""
    units: set[int] = set()
    for bracket in hyperband_brackets(r_max, nu):
        units.update(int(r["units"]) for r in bracket["rungs"])
    return sorted(units)


def pbt_generations(plan: Mapping[str, Any]) -> int:
    """PBT's generations: the spec's epochs in segments of ``automl_eval_interval``."""
    return max(1, -(-int(plan["pbt_epochs"]) // int(plan["automl_eval_interval"])))


def planned_trials(plan: Mapping[str, Any]) -> int:
    """How many trials a search starts in all (PBT: one per member and generation)."""
    algorithm = plan["automl_algorithm"]
    if algorithm in ("bayesian", "bfbo"):
        return int(plan["automl_max_recommendations"])
    if algorithm == "pbt":
        return int(plan["automl_population_size"]) * pbt_generations(plan)
    if algorithm == "asha" and plan.get("automl_max_trials"):
        return int(plan["automl_max_trials"])
    brackets = hyperband_brackets(int(plan["automl_R"]), int(plan["automl_nu"]))
    return sum(int(b["trials"]) for b in brackets)


def trial_epochs(plan: Mapping[str, Any], number: int) -> int | None:
    """The epochs trial ``number`` trains up to (None: the spec's own): a rung search's
    ``automl_R`` units, a PBT member's generations so far."""
    algorithm = plan["automl_algorithm"]
    if algorithm == "pbt":
        generation = number // int(plan["automl_population_size"])
        interval = int(plan["automl_eval_interval"])
        return min((generation + 1) * interval, int(plan["pbt_epochs"]))
    if algorithm not in RUNG_ALGORITHMS:
        return None
    return int(plan["automl_R"]) * int(plan["epoch_multiplier"])


def sets_epochs(plan: Mapping[str, Any]) -> bool:
    return plan["automl_algorithm"] in RUNG_ALGORITHMS or plan["automl_algorithm"] == "pbt"


def direction(metric: str, entry_metric: str | None, entry_goal: str) -> str:
    """Which way the search's metric is better: the entry's goal for its own metric,
    else by name (losses and errors go down)."""
    if metric == entry_metric:
        return entry_goal
    lowered = metric.lower()
    return "minimize" if "loss" in lowered or "error" in lowered else "maximize"


def plan(settings: Mapping[str, Any], entry: Any, specs: Mapping[str, Any]) -> dict[str, Any]:
    """What a search of ``entry`` (a ``schemas.catalog.BaseExperiment``) runs: its resolved
    settings, the direction of its metric, the searched tunables as the entry declares
    them now, the spec key of a trial's epochs and the seed of its decisions (the specs'
    own, so the same request searches the same way)."""
    out = resolved(settings, entry.hyperparameters, entry.metric)
    names = set(out["automl_hyperparameters"])
    out["direction"] = direction(out["metric"], entry.metric, entry.metric_goal)
    out["hyperparameters"] = [dict(h) for h in entry.hyperparameters if h["name"] in names]
    out["epochs_key"] = epochs_name(specs)
    out["seed"] = _seed(specs)
    if out["automl_algorithm"] == "pbt" and out["epochs_key"]:
        out["pbt_epochs"] = int(_get(specs, out["epochs_key"]))
    return out


def _get(specs: Mapping[str, Any], dotted: str) -> Any:
    node: Any = specs
    for part in dotted.split("."):
        node = node[part]
    return node


def _seed(specs: Mapping[str, Any]) -> int:
    for value in [specs, *(v for v in specs.values() if isinstance(v, Mapping))]:
        seed = value.get("seed")
        if isinstance(seed, int) and not isinstance(seed, bool):
            return seed
    return 0


def with_values(specs: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``specs`` with dotted keys (``train.learning_rate``) set."""
    out: dict[str, Any] = json.loads(json.dumps(specs))
    for dotted, value in values.items():
        node = out
        *path, last = dotted.split(".")
        for part in path:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[last] = value
    return out


def epochs_name(specs: Mapping[str, Any]) -> str | None:
    """The dotted name of the spec's epochs key (``train.num_epochs``), if it has one."""
    if EPOCHS_KEY in specs:
        return EPOCHS_KEY
    for section, value in specs.items():
        if isinstance(value, Mapping) and EPOCHS_KEY in value:
            return f"{section}.{EPOCHS_KEY}"
    return None


# --- job_details.automl: how a search shows itself ------------------------------------


class ExperimentSchema(ma.Schema):
    experiment_number = fields.Integer(metadata={"description": "the trial, from 0"})
    job_id = fields.String(metadata={"description": "the trial's own job"})
    params = fields.Dict(metadata={"description": "the hyperparameters it trains with"})
    status = fields.String()
    outcome = fields.String(
        allow_none=True,
        metadata={"description": "finished, pruned, failed, canceled; null while it runs"},
    )
    metric_value = fields.Float(allow_none=True)
    epochs = fields.Integer(allow_none=True, metadata={"description": "epochs it ran"})
    pruned_at_epoch = fields.Integer(
        allow_none=True, metadata={"description": "the rung where the pruner stopped it"}
    )
    exploited_from = fields.Integer(
        allow_none=True,
        metadata={"description": "pbt: the better trial whose checkpoint it continued from"},
    )


class BestTrialSchema(ma.Schema):
    experiment_number = fields.Integer()
    job_id = fields.String()
    value = fields.Float()
    params = fields.Dict()


class SearchDetailsSchema(ma.Schema):
    algorithm = fields.String()
    metric = fields.String()
    direction = fields.String(metadata={"description": "maximize or minimize"})
    trials_planned = fields.Integer()
    trials_ended = fields.Integer()
    trials_running = fields.Integer()
    best = fields.Nested(BestTrialSchema, allow_none=True)
    checkpoints_deleted = fields.Integer(
        allow_none=True,
        metadata={"description": "automl_delete_intermediate_ckpt: the losers' model files"},
    )
    experiments = fields.List(fields.Nested(ExperimentSchema))
