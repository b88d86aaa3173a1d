"""Jobs: the lifecycle enum and the wire schemas of the unified jobs endpoint
(seed 000 "Object Detection Use Case Example with API v2"; enums and limits
from seed 001; the ``job_details`` result shape from seed 002)."""

from __future__ import annotations

import enum
import re
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from jobyard.schemas.automl import AutomlSettingsSchema, SearchDetailsSchema
from jobyard.schemas.common import (
    MAX_OFFSET,
    ListArgsSchema,
    PaginationInfoSchema,
    QueryArgsSchema,
    StrictSchema,
    Timestamp,
)
from jobyard.schemas.listquery import Field, Fields, FieldType
from jobyard.schemas.metrics import EVENT_TYPES, STATS
from jobyard.schemas.metrics import MAX_POINTS as METRIC_POINTS
from jobyard.schemas.staging import scheme_problem


class JobState(enum.StrEnum):
    """TAO's spelling. Every change is a compare-and-set from the states in TRANSITIONS."""

    PENDING = "Pending"
    RUNNING = "Running"
    DONE = "Done"
    ERROR = "Error"
    CANCELING = "Canceling"
    CANCELED = "Canceled"
    PAUSING = "Pausing"
    PAUSED = "Paused"
    RESUMING = "Resuming"

    @property
    def final(self) -> bool:
        return self in FINAL_STATES

    @property
    def active(self) -> bool:
        """A run may exist on a backend that reconcile must watch."""
        return self in ACTIVE_STATES


class Request(enum.StrEnum):
    """What a user asked of a running job, stored until reconcile carries it out."""

    CANCEL = "cancel"
    PAUSE = "pause"  # graceful: checkpoint, then stop
    PAUSE_NOW = "pause_now"


class StopReason(enum.StrEnum):
    """Why reconcile stopped a run, recorded with the first stop signal."""

    CANCEL = "cancel"
    TIMEOUT = "timeout"
    PAUSE = "pause"
    UNHEALTHY = "unhealthy"  # a model server whose health check never answered


class StopKind(enum.StrEnum):
    GRACEFUL = "graceful"  # SIGTERM: the workload checkpoints and exits
    KILL = "kill"


FINAL_STATES = frozenset({JobState.DONE, JobState.ERROR, JobState.CANCELED})
ACTIVE_STATES = frozenset(
    {JobState.PENDING, JobState.RUNNING, JobState.CANCELING, JobState.PAUSING, JobState.RESUMING}
)

# target state -> states it may be reached from
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.RUNNING: frozenset({JobState.PENDING, JobState.RESUMING}),
    JobState.DONE: frozenset(
        {JobState.PENDING, JobState.RUNNING, JobState.RESUMING, JobState.PAUSING}
    ),
    JobState.ERROR: frozenset(
        {JobState.PENDING, JobState.RUNNING, JobState.RESUMING, JobState.PAUSING}
    ),
    JobState.CANCELING: frozenset(
        {JobState.PENDING, JobState.RUNNING, JobState.PAUSING, JobState.RESUMING}
    ),
    JobState.CANCELED: frozenset({JobState.CANCELING, JobState.PAUSED}),
    JobState.PAUSING: frozenset({JobState.RUNNING}),
    JobState.PAUSED: frozenset({JobState.PAUSING, JobState.RUNNING}),
    # from Paused by :resume; from Pending/Running/Resuming when the node under a run failed
    # and jobyard resubmits it from its checkpoint (backends report a "transient:" loss)
    JobState.RESUMING: frozenset(
        {JobState.PAUSED, JobState.PENDING, JobState.RUNNING, JobState.RESUMING}
    ),
}


def sources(target: JobState) -> list[str]:
    return [s.value for s in TRANSITIONS[target]]


# --- enums from seed 001 --------------------------------------------------------------

ACTIONS = (
    "dataset_convert",
    "convert",
    "convert_efficientdet_tf2",
    "kmeans",
    "augment",
    "train",
    "evaluate",
    "prune",
    "retrain",
    "export",
    "gen_trt_engine",
    "trtexec",
    "inference",
    "annotation",
    "analyze",
    "validate",
    "auto_label",
    "calibration_tensorfile",
    "distill",
    "dataset_convert_gaze",
    "validate_images",
    "batchinfer",
    "generate",
    "auto3dseg",
    "validate_annotations",
    "annotation_format_convert",
)
# An inference microservice's run (api/inference.py): a catalog action, never a job body's.
SERVE_ACTION = "serve"
NETWORK_ARCHS = (
    "character_recognition",
    "bevfusion",
    "analytics",
    "ocdnet",
    "mae",
    "image_classification",
    "rtdetr",
    "visual_changenet",
    "classification_tf2",
    "ocrnet",
    "mal",
    "classification_pyt",
    "maxine_eye_contact",
    "grounding_dino",
    "dino",
    "monai_detection",
    "pose_classification",
    "monai_automl_generated",
    "nvdinov2",
    "segformer",
    "stylegan_xl",
    "maxine_dataset",
    "monai_annotation",
    "augmentation",
    "vila",
    "ml_recog",
    "monai_vista3d",
    "re_identification",
    "monai_automl",
    "mask2former",
    "optical_inspection",
    "monai_vista2d",
    "monai_genai",
    "image",
    "deformable_detr",
    "monai_segmentation",
    "object_detection",
    "monai_custom",
    "mask_grounding_dino",
    "monai_maisi",
    "centerpose",
    "efficientdet_tf2",
    "action_recognition",
    "annotations",
    "auto_label",
    "segmentation",
    "monai_classification",
    "pointpillars",
    "vlm",
    "detectnet_v2",
    "unet",
)
KINDS = ("experiment", "dataset")
PRIORITIES = {"low": 0, "normal": 1, "high": 2}  # -> priority_rank, stored for sorting
BACKEND_TYPES = ("local", "slurm", "lepton")
ID = validate.Length(1, 36)
# Product limits for the integers a job request carries (see MAX_OFFSET in common.py for
# why every one has a maximum). The deployment's max_timeout_minutes may be lower still.
MAX_TIMEOUT_MINUTES = 366 * 24 * 60  # a year
MAX_EPOCHS = 1_000_000
MAX_RUNS = 1_000_000  # a job's runs: 1, then one more per resume
MAX_AUTOML_EXPERIMENTS = 100_000
TIMEOUT_MINUTES = validate.Range(1, MAX_TIMEOUT_MINUTES)
DATASET_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def _dataset_uri(value: str) -> None:
    if "://" not in value:
        if value.startswith("/") or DATASET_ID.fullmatch(value):
            return  # a local path as TAO accepts, or a dataset id (checked against the org's)
        raise ma.ValidationError(
            "must be a dataset id, a URI (aws://, file://, ...) or an absolute path"
        )
    problem = scheme_problem(value)
    if problem:
        raise ma.ValidationError(problem)


_URI = fields.String(validate=[validate.Length(1, 2048), _dataset_uri])


# A network_arch is any name a catalog entry may give (TAO's, above, or the user's own).
NETWORK_ARCH = [
    validate.Length(1, 64),
    validate.Regexp(
        r"^[a-z0-9][a-z0-9_]{0,63}$",
        error="must be a network name: lower-case letters, digits and _ (at most 64)",
    ),
]
CHECKPOINT_METHODS = ("latest_model", "best_model", "from_epoch_number")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")
# Names the workload contract owns (backends/contract.py): a job's variables cannot set them.
RESERVED_ENV_PREFIXES = ("JOBYARD_", "JY_")
MAX_ENV_VARS = 100
MAX_ENV_VALUE = 32 * 1024


def _env_vars(value: dict[str, str]) -> None:
    if len(value) > MAX_ENV_VARS:
        raise ma.ValidationError(f"at most {MAX_ENV_VARS} variables")
    for name, text in value.items():
        if not ENV_NAME.fullmatch(name):
            raise ma.ValidationError(f"{name[:100]!r} is not an environment variable name")
        if name.startswith(RESERVED_ENV_PREFIXES):
            raise ma.ValidationError(
                f"{name} is reserved: JOBYARD_* and JY_* belong to jobyard and the workload "
                "contract"
            )
        if len(text) > MAX_ENV_VALUE:
            raise ma.ValidationError(f"{name}: a value may be at most {MAX_ENV_VALUE} characters")


class EpochNumber(fields.Field[Any]):
    """Seed 001's ``checkpoint_epoch_number``: an epoch, or TAO's object of them keyed by
    ``from_epoch_number_<parent job id>``."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        items = value.items() if isinstance(value, dict) else [("epoch", value)]
        if isinstance(value, dict) and not 1 <= len(value) <= 10:
            raise ma.ValidationError("give one epoch (or an object of at most 10)")
        out = {}
        for key, epoch in items:
            if isinstance(epoch, bool) or not isinstance(epoch, int):
                raise ma.ValidationError("an epoch is a whole number")
            if not 0 <= epoch <= MAX_EPOCHS or len(str(key)) > 100:
                raise ma.ValidationError(f"an epoch is between 0 and {MAX_EPOCHS}")
            out[str(key)] = epoch
        return value if isinstance(value, dict) else out["epoch"]


class BackendDetailsSchema(StrictSchema):
    backend_type = fields.String(required=True, validate=validate.OneOf(BACKEND_TYPES))
    partition = fields.String(validate=validate.Length(1, 255))
    cluster_name = fields.String(validate=validate.Length(1, 255))
    platform_id = fields.String(validate=validate.Length(1, 255))
    num_gpus = fields.Integer(validate=validate.Range(0, 1024))
    gpu_type = fields.String(validate=validate.Length(1, 100))


class JobCreateSchema(StrictSchema):
    kind = fields.String(validate=validate.OneOf(KINDS), metadata={"description": "Required"})
    action = fields.String(validate=validate.OneOf(ACTIONS), metadata={"description": "Required"})
    template_id = fields.String(
        validate=ID,
        metadata={"description": "Start from a workload template; the other fields override"},
    )
    priority = fields.String(
        validate=validate.OneOf(list(PRIORITIES)),
        metadata={"description": "low, normal (default), high: order of start within the org"},
    )
    name = fields.String(load_default="", validate=validate.Length(max=500))
    description = fields.String(load_default="", validate=validate.Length(max=1000))
    network_arch = fields.String(
        validate=NETWORK_ARCH,
        metadata={"description": "A network of the catalog (jobs:list_base_experiments)"},
    )
    specs = fields.Dict(keys=fields.String(), load_default=None, allow_none=True)
    workspace = fields.String(validate=ID, allow_none=True)
    train_dataset_uris = fields.List(_URI, validate=validate.Length(max=100))
    eval_dataset_uri = _URI
    inference_dataset_uri = _URI
    calibration_dataset_uri = _URI
    dataset_format = fields.String(validate=validate.Length(1, 100))
    dataset_type = fields.String(validate=validate.Length(1, 100))
    skip_dataset_validation = fields.Boolean()
    base_experiment_ids = fields.List(fields.String(validate=ID), validate=validate.Length(max=2))
    parent_job_id = fields.String(validate=validate.Length(max=36), allow_none=True)
    backend_details = fields.Nested(BackendDetailsSchema)
    timeout_minutes = fields.Integer(validate=TIMEOUT_MINUTES)
    encryption_key = fields.String(validate=validate.Length(max=100))
    automl_settings = fields.Nested(AutomlSettingsSchema)
    retain_checkpoints_for_resume = fields.Boolean(load_default=False)
    early_stop_epoch = fields.Integer(validate=validate.Range(1, MAX_EPOCHS), allow_none=True)
    force_create = fields.Boolean(load_default=False)
    # seed 001's top-level spellings of backend_details.platform_id / num_gpus
    platform_id = fields.String(validate=validate.Length(1, 255), allow_none=True)
    num_gpu = fields.Integer(validate=validate.Range(0, 1024), allow_none=True)
    docker_env_vars = fields.Dict(
        keys=fields.String(validate=validate.Length(1, 255)),
        values=fields.String(),
        validate=_env_vars,
        metadata={"description": "Environment of the workload; values are stored encrypted"},
    )
    checkpoint_choose_method = fields.String(validate=validate.OneOf(CHECKPOINT_METHODS))
    checkpoint_epoch_number = EpochNumber(
        metadata={"description": "The epoch for from_epoch_number (an integer)"}
    )

    @ma.validates_schema
    def _required(self, data: dict[str, Any], partial: Any = None, **_: Any) -> None:
        """``kind`` and ``action`` may come from the template instead."""
        if partial or data.get("template_id"):
            return
        missing = {k: ["Missing data for required field."] for k in ("kind", "action")}
        missing = {k: v for k, v in missing.items() if k not in data}
        if missing:
            raise ma.ValidationError(missing)

    @ma.validates_schema(skip_on_field_errors=True)
    def _checkpoint(self, data: dict[str, Any], **_: Any) -> None:
        method = data.get("checkpoint_choose_method")
        if method == "from_epoch_number" and data.get("checkpoint_epoch_number") is None:
            raise ma.ValidationError(
                "from_epoch_number needs checkpoint_epoch_number", "checkpoint_epoch_number"
            )
        if method and not data.get("parent_job_id"):
            raise ma.ValidationError(
                "a checkpoint is chosen from a parent job: give parent_job_id",
                "checkpoint_choose_method",
            )


BACKEND_TARGET = re.compile(r"^(process|kubernetes|slurm|lepton)(:[A-Za-z0-9_-]{1,64})?$")


class LimitsSchema(StrictSchema):
    max_running_jobs = fields.Integer(
        required=True, allow_none=True, validate=validate.Range(1, 1_000_000)
    )
    max_gpus = fields.Integer(required=True, allow_none=True, validate=validate.Range(0, 1_000_000))


class TargetQuotaSchema(LimitsSchema):
    backend = fields.String(
        required=True,
        validate=validate.Regexp(
            BACKEND_TARGET,
            error="a backend target: process, kubernetes, slurm or lepton, "
            "optionally :<workspace id> (as jobs show it in backend)",
        ),
        metadata={"description": "the backend target these limits hold for"},
    )


class QuotaSchema(LimitsSchema):
    """The org's limits, and optionally limits on one backend target: a job must fit both."""

    backends = fields.List(
        fields.Nested(TargetQuotaSchema),
        validate=validate.Length(max=100),
        metadata={"description": "per backend target; given on PUT, it replaces the list"},
    )

    @ma.validates_schema
    def _one_entry_per_target(self, data: dict[str, Any], **_: Any) -> None:
        targets = [entry["backend"] for entry in data.get("backends") or []]
        if len(targets) != len(set(targets)):
            raise ma.ValidationError("each backend target at most once", "backends")


class PauseSchema(StrictSchema):
    graceful = fields.Boolean(
        load_default=True,
        metadata={"description": "true: checkpoint, then stop; false: stop at once"},
    )


class ResumeSchema(StrictSchema):
    """Seed 000's resume body; ``parent_job_id`` is accepted as TAO sends it ("")."""

    parent_job_id = fields.String(validate=validate.Length(max=36), allow_none=True)
    specs = fields.Dict(keys=fields.String(), allow_none=True)
    timeout_minutes = fields.Integer(validate=TIMEOUT_MINUTES)


class BulkCancelSchema(StrictSchema):
    """Which jobs to cancel: listed ids, every job of a workspace, or every job
    derived from an experiment (a parent train job)."""

    job_ids = fields.List(fields.String(validate=ID), validate=validate.Length(1, 1000))
    workspace = fields.String(validate=ID)
    parent_job_id = fields.String(validate=ID)

    @ma.validates_schema
    def _one_selector(self, data: dict[str, Any], **_: Any) -> None:
        if len(data) != 1:
            raise ma.ValidationError("give exactly one of job_ids, workspace, parent_job_id")


class EpochNumbersSchema(ma.Schema):
    epoch_numbers = fields.List(fields.Integer())
    data = fields.List(
        fields.Integer(), metadata={"description": "The same epochs, where seed 001 has them"}
    )


class JobFilterArgsSchema(QueryArgsSchema):
    kind = fields.String(validate=validate.OneOf(KINDS))
    action = fields.String(validate=validate.OneOf(ACTIONS))
    status = fields.String(validate=validate.OneOf([s.value for s in JobState]))
    network_arch = fields.String(validate=NETWORK_ARCH)


class JobListArgsSchema(JobFilterArgsSchema, ListArgsSchema):
    pass


# sortBy=last_metrics.accuracy.val.max: a curve's summary (schemas.metrics.STATS)
LAST_METRIC = re.compile(
    r"last_metrics\.[A-Za-z0-9_-]{1,100}\.[A-Za-z0-9_-]{1,100}\.(?:" + "|".join(STATS) + ")"
)
# what filterBy, search and sortBy know of a job (schemas.listquery)
JOB_FIELDS = Fields(
    (
        Field("id", path="_id"),
        Field("name", search=True, param_op="=@"),
        Field("description", search=True, sort=False),
        Field("status", choices=tuple(s.value for s in JobState), param_op="=="),
        Field("kind", choices=KINDS, param_op="=="),
        Field("action", choices=ACTIONS, search=True, param_op="=="),
        Field("network_arch", search=True, param_op="=="),
        Field("backend"),
        Field("user_id"),
        Field("workspace"),
        Field("parent_job_id"),
        Field("template_id"),
        Field("priority", choices=tuple(PRIORITIES)),
        Field("created_on", FieldType.DATE, aliases=("createdAt",)),
        Field("last_modified", FieldType.DATE, aliases=("updatedAt",)),
        Field("started_on", FieldType.DATE),
        Field("finished_on", FieldType.DATE),
        Field("timeout_minutes", FieldType.NUMBER),
        Field("run", FieldType.NUMBER),
    ),
    patterns=((LAST_METRIC, FieldType.NUMBER, "last_metrics.<metric>.<variant>.<stat>"),),
)


class DetailedStatusSchema(ma.Schema):
    date = fields.String()
    time = fields.String()
    message = fields.String()
    status = fields.String()


class JobDetailsSchema(ma.Schema):
    """The result block of seed 002, filled from the workload's status events."""

    detailed_status = fields.Nested(DetailedStatusSchema)
    graphical = fields.List(fields.Dict())
    categorical = fields.List(fields.Dict())
    kpi = fields.List(fields.Dict())
    stats = fields.List(fields.Dict())
    epoch = fields.Integer(allow_none=True)
    cur_epoch = fields.Float(allow_none=True)
    max_epoch = fields.Integer(allow_none=True)
    time_per_epoch = fields.String(allow_none=True)
    eta = fields.String(allow_none=True)
    checkpoint = fields.String(allow_none=True)
    transfer = fields.Dict(
        allow_none=True,
        metadata={"description": "Progress of the latest copy of results to the workspace"},
    )
    automl = fields.Nested(SearchDetailsSchema, metadata={"description": "An AutoML search"})


class JobSchema(ma.Schema):
    id = fields.String()
    user_id = fields.String()
    kind = fields.String()
    action = fields.String()
    name = fields.String()
    description = fields.String()
    network_arch = fields.String()
    status = fields.String()
    specs = fields.Dict()
    workspace = fields.String(allow_none=True)
    train_dataset_uris = fields.List(fields.String())
    eval_dataset_uri = fields.String()
    inference_dataset_uri = fields.String()
    calibration_dataset_uri = fields.String()
    base_experiment_ids = fields.List(fields.String())
    parent_job_id = fields.String(allow_none=True)
    backend_details = fields.Dict()
    timeout_minutes = fields.Integer()
    retain_checkpoints_for_resume = fields.Boolean()
    early_stop_epoch = fields.Integer(allow_none=True)
    run = fields.Integer(metadata={"description": "Current run: 1, then +1 per resume"})
    created_on = Timestamp()
    last_modified = Timestamp()
    started_on = Timestamp(metadata={"description": "When the current run began running"})
    finished_on = Timestamp()
    job_details = fields.Nested(JobDetailsSchema)
    artifacts = fields.Dict(
        allow_none=True, metadata={"description": "Where the job's results were copied"}
    )
    dataset_type = fields.String()
    dataset_format = fields.String()
    docker_env_vars = fields.Dict(metadata={"description": "Names only: values are masked"})
    checkpoint_choose_method = fields.String()
    checkpoint_epoch_number = fields.Raw()
    parent_checkpoint = fields.String(
        allow_none=True,
        metadata={"description": "The parent's checkpoint this job starts from"},
    )
    output_dataset_id = fields.String(
        allow_none=True,
        metadata={"description": "The dataset version a dataset job's results became"},
    )
    last_metrics = fields.Dict(
        metadata={
            "description": "metric -> variant -> first, last, min, max, mean, count, "
            "min_iteration, max_iteration of its scalar curve, kept at ingest"
        }
    )
    priority = fields.String()
    template_id = fields.String(metadata={"description": "The template it was created from"})
    template_version = fields.Integer(metadata={"description": "That template's version"})
    automl_settings = fields.Dict(metadata={"description": "The search it runs, as asked"})
    automl_of = fields.String(metadata={"description": "A trial's search"})
    automl_experiment_number = fields.Integer(metadata={"description": "A trial's number"})
    automl_params = fields.Dict(metadata={"description": "A trial's hyperparameters"})


class JobListSchema(ma.Schema):
    jobs = fields.List(fields.Nested(JobSchema))
    pagination_info = fields.Nested(PaginationInfoSchema)


class LogArgsSchema(StrictSchema):
    offset = fields.Integer(validate=validate.Range(0, MAX_OFFSET))
    tail = fields.Integer(validate=validate.Range(1, 100_000))
    limit = fields.Integer(load_default=1_000_000, validate=validate.Range(1, 10_000_000))
    automl_experiment_index = fields.Integer(
        validate=validate.Range(0, MAX_AUTOML_EXPERIMENTS),
        metadata={"description": "An AutoML search: this trial's log"},
    )


class EventArgsSchema(StrictSchema):
    automl_experiment_number = fields.Integer(validate=validate.Range(0, MAX_AUTOML_EXPERIMENTS))
    run = fields.Integer(validate=validate.Range(1, MAX_RUNS))
    after_seq = fields.Integer(validate=validate.Range(0, MAX_OFFSET))
    detailed = fields.Boolean(load_default=False)


class MetricArgsSchema(StrictSchema):
    type = fields.String(load_default="scalar", validate=validate.OneOf(EVENT_TYPES))
    metric = fields.String(validate=validate.Length(1, 200))
    variant = fields.String(validate=validate.Length(1, 200))
    times = fields.Boolean(
        load_default=False, metadata={"description": "also each point's time (t)"}
    )
    max_points = fields.Integer(
        load_default=2000,
        validate=validate.Range(2, METRIC_POINTS),
        metadata={
            "description": "points per curve at most; longer ones keep each bucket's min and max"
        },
    )


class MetricsSchema(ma.Schema):
    job_id = fields.String()
    type = fields.String()
    metrics = fields.Dict(metadata={"description": "scalar: metric -> variant -> {x, y, t, run}"})
    events = fields.List(fields.Dict(), metadata={"description": "plot and vector events"})


class CompareArgsSchema(StrictSchema):
    job_ids = fields.String(
        required=True,
        validate=validate.Length(1, 20 * 37),
        metadata={"description": "comma-separated, at most 20"},
    )
    metric = fields.String(required=True, validate=validate.Length(1, 200))
    variant = fields.String(validate=validate.Length(1, 200))
    max_points = fields.Integer(load_default=2000, validate=validate.Range(2, METRIC_POINTS))


class CompareSchema(ma.Schema):
    metric = fields.String()
    jobs = fields.List(fields.Dict())


class EventsSchema(ma.Schema):
    events = fields.List(fields.Raw())


class SchemaArgsSchema(StrictSchema):
    action = fields.String(required=True, validate=validate.OneOf(ACTIONS))
    base_experiment_id = fields.String(validate=ID)
    network_arch = fields.String(validate=NETWORK_ARCH)
    kind = fields.String(validate=validate.OneOf(KINDS))


class SpecSchemaSchema(ma.Schema):
    default = fields.Dict()
    schema = fields.Dict()


class BaseExperimentSchema(ma.Schema):
    id = fields.String()
    name = fields.String()
    network_arch = fields.String()
    ngc_path = fields.String()
    description = fields.String()
    kind = fields.String()
    actions = fields.List(fields.String())
    is_base_experiment = fields.Boolean()
    scope = fields.String(metadata={"description": "global, or the org the entry belongs to"})
    read_only = fields.Boolean(metadata={"description": "a global entry: the org cannot edit"})
    status_protocol = fields.String()
    image = fields.String()
    metric = fields.String(allow_none=True)
    dataset_types = fields.List(fields.String())
    dataset_formats = fields.List(fields.String())
    published_model = fields.Boolean(
        metadata={"description": "a model published in the org's registry (GET models/{id})"}
    )


class BaseExperimentListSchema(ma.Schema):
    base_experiments = fields.List(fields.Nested(BaseExperimentSchema))
    pagination_info = fields.Nested(PaginationInfoSchema)


class BaseExperimentFilterArgsSchema(QueryArgsSchema):
    """Seed 001's filters of the experiments list, and the catalog's own."""

    network_arch = fields.String(validate=NETWORK_ARCH)
    kind = fields.String(validate=validate.OneOf(KINDS))
    type = fields.String(
        validate=validate.OneOf(["vision", "medical"]),
        metadata={"description": "seed 001's filter; every jobyard entry is vision"},
    )
    read_only = fields.Boolean()


class BaseExperimentListArgsSchema(BaseExperimentFilterArgsSchema, ListArgsSchema):
    pass


BASE_EXPERIMENT_FIELDS = Fields(
    (
        Field("id", path="_id"),
        Field("name", search=True, param_op="=@"),
        Field("network_arch", search=True, param_op="=="),
        Field("kind", choices=KINDS, param_op="=="),
        Field("scope"),
        Field("builtin", FieldType.BOOL),
        Field("version", FieldType.NUMBER),
        Field("created_on", FieldType.DATE, aliases=("createdAt",)),
        Field("last_modified", FieldType.DATE, aliases=("updatedAt",)),
    )
)


class JobIdsSchema(StrictSchema):
    job_ids = fields.List(
        fields.String(validate=ID), required=True, validate=validate.Length(1, 1000)
    )


class AcceleratorSchema(ma.Schema):
    name = fields.String(
        metadata={
            "description": "what backend_details.gpu_type names (a100, h100-sxm); cpu where "
            "there is no GPU, gpu where the backend does not tell the type"
        }
    )
    count = fields.Integer(metadata={"description": "how many one run can get there"})
    where = fields.String(metadata={"description": "the node, partition or node group"})
    nodes = fields.Integer(metadata={"description": "how many nodes there have them"})


class BackendAcceleratorsSchema(ma.Schema):
    backend = fields.String(metadata={"description": "the backend target: process, slurm:<id>"})
    accelerators = fields.List(fields.Nested(AcceleratorSchema))
    error = fields.String(metadata={"description": "why this backend could not be asked"})


class GpuTypesSchema(ma.Schema):
    gpu_types = fields.List(fields.String())
    backends = fields.List(fields.Nested(BackendAcceleratorsSchema))
