"""Connection, indexes and the ``Store`` facade holding one repository per
collection. Indexes are created at start-up; every index is idempotent."""

from __future__ import annotations

import uuid
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, MongoClient
from pymongo.database import Database
from pymongo.errors import PyMongoError

from jobyard.store.accounts import Accounts
from jobyard.store.backups import Backups
from jobyard.store.catalog import Catalog
from jobyard.store.crypto import Cipher
from jobyard.store.curves import Curves
from jobyard.store.datasets import Datasets
from jobyard.store.events import Events
from jobyard.store.fleet import Fleet
from jobyard.store.guard import guarded
from jobyard.store.jobs import Jobs
from jobyard.store.logs import Logs
from jobyard.store.models import Models
from jobyard.store.operations import Operations
from jobyard.store.quotas import Quotas
from jobyard.store.templates import Templates
from jobyard.store.trials import Trials
from jobyard.store.uploads import Uploads
from jobyard.store.workspaces import Workspaces


def _listed(*keys: str) -> IndexModel:
    """An index for a list's filter and sort: the org, the keys, then the ``_id``
    tie-break (``schemas.listquery.sort_spec``), so the page comes off the index in order.
    All ascending: a sort's keys share one direction, which MongoDB reads either way (and
    SecantusDB misses range matches on a descending compound key before ``_id``)."""
    return IndexModel([("org", ASCENDING), *((k, ASCENDING) for k in keys), ("_id", ASCENDING)])


def _id_indexable(db: Database[dict[str, Any]]) -> bool:
    """Whether the server can hold ``_id`` in a compound index. nx-27017 creates such an
    index and then refuses every insert ("JSON path error near '_id'"), so there the
    list indexes go without their tie-break and the server sorts ties itself."""
    probe = db[f"index_probe_{uuid.uuid4().hex}"]
    try:
        probe.create_index([("a", ASCENDING), ("_id", ASCENDING)])
        probe.insert_one({"a": 1})
        return True
    except PyMongoError:
        return False
    finally:
        probe.drop()


def _fitted(index: IndexModel, keep_id: bool) -> IndexModel:
    keys = list(index.document["key"].items())
    if keep_id or len(keys) < 2 or keys[-1][0] != "_id":
        return index
    options = {k: v for k, v in index.document.items() if k not in ("key", "name")}
    return IndexModel(keys[:-1], **options)


INDEXES: dict[str, list[IndexModel]] = {
    "users": [IndexModel([("org", ASCENDING), ("name", ASCENDING)], unique=True)],
    "api_keys": [IndexModel([("org", ASCENDING), ("user_id", ASCENDING)])],
    "workspaces": [
        IndexModel([("org", ASCENDING), ("fingerprint", ASCENDING)], unique=True),
        _listed("created_on"),
        _listed("name"),
    ],
    "datasets": [
        IndexModel([("org", ASCENDING), ("fingerprint", ASCENDING)], unique=True),
        _listed("created_on"),
        _listed("name"),
    ],
    "catalog": [
        IndexModel(
            [("scope", ASCENDING), ("network_arch", ASCENDING), ("name", ASCENDING)], unique=True
        ),
        IndexModel([("scope", ASCENDING), ("created_on", DESCENDING)]),
        # the model registry (store/models.py)
        IndexModel(
            [("scope", ASCENDING), ("model_name", ASCENDING), ("model_version", DESCENDING)]
        ),
        IndexModel([("scope", ASCENDING), ("source_job", ASCENDING)]),
    ],
    "templates": [
        IndexModel([("owner", ASCENDING), ("name", ASCENDING)], unique=True),
        IndexModel([("owner", ASCENDING), ("created_on", DESCENDING)]),
        IndexModel(
            [("owner", ASCENDING), ("workload_type", ASCENDING), ("created_on", DESCENDING)]
        ),
    ],
    "template_versions": [IndexModel([("template_id", ASCENDING)])],
    "job_uploads": [IndexModel([("job_id", ASCENDING)])],
    "jobs": [
        IndexModel([("org", ASCENDING), ("fingerprint", ASCENDING)], unique=True),
        # the list grammar's common filters and sorts (README "List queries")
        _listed("created_on"),
        _listed("status", "created_on"),
        _listed("network_arch", "created_on"),
        _listed("name"),
        _listed("last_modified"),
        # quota admission: the org's waiting jobs in the order they get a slot
        IndexModel([("org", ASCENDING), ("status", ASCENDING), ("priority_rank", DESCENDING)]),
        IndexModel([("org", ASCENDING), ("parent_job_id", ASCENDING)]),
        IndexModel([("catalog_id", ASCENDING), ("status", ASCENDING)]),
        IndexModel([("active", ASCENDING), ("backend", ASCENDING)]),
        IndexModel([("active", ASCENDING), ("enqueued_at", ASCENDING)]),
        # an AutoML search's trials, and the open ones its controller reads each tick
        IndexModel([("automl_of", ASCENDING), ("automl_open", ASCENDING)]),
        IndexModel([("automl_of", ASCENDING), ("automl_experiment_number", ASCENDING)]),
    ],
    "job_events": [
        IndexModel(
            [("org", ASCENDING), ("job_id", ASCENDING), ("run", ASCENDING), ("seq", ASCENDING)]
        ),
    ],
    "workers": [IndexModel([("last_report_time", ASCENDING)])],
    "queue_samples": [IndexModel([("queue", ASCENDING), ("at", ASCENDING)])],
    "job_curves": [IndexModel([("org", ASCENDING), ("job_id", ASCENDING)])],
    "automl_journal": [IndexModel([("study", ASCENDING), ("n", ASCENDING)])],
    "job_logs": [IndexModel([("org", ASCENDING), ("job_id", ASCENDING), ("pos", ASCENDING)])],
    "maintenance_ops": [
        IndexModel([("org", ASCENDING), ("workspace", ASCENDING), ("created_on", DESCENDING)])
    ],
}


@guarded
class Store:
    def __init__(self, db: Database[dict[str, Any]], cipher: Cipher) -> None:
        self.db = db
        self.cipher = cipher
        self.accounts = Accounts(db)
        self.catalog = Catalog(db)
        self.models = Models(db, self.catalog)
        self.templates = Templates(db)
        self.workspaces = Workspaces(db, cipher)
        self.datasets = Datasets(db, cipher)
        self.operations = Operations(db)
        self.jobs = Jobs(db)
        self.trials = Trials(db)
        self.events = Events(db)
        self.curves = Curves(db)
        self.fleet = Fleet(db)
        self.quotas = Quotas(db)
        self.logs = Logs(db)
        self.uploads = Uploads(db)
        self.backups = Backups(db, cipher.key_text, self.ensure_indexes)

    def ensure_indexes(self) -> None:
        keep_id = _id_indexable(self.db)
        for name, indexes in INDEXES.items():
            self.db[name].create_indexes([_fitted(i, keep_id) for i in indexes])
        self.jobs.backfill_active()
        self.catalog.seed()

    def ping(self) -> None:
        self.db.client.admin.command("ping")


def connect(uri: str, db_name: str, cipher: Cipher, timeout_ms: int = 5000) -> Store:
    client: MongoClient[dict[str, Any]] = MongoClient(
        uri, serverSelectionTimeoutMS=timeout_ms, tz_aware=True, connect=False
    )
    return Store(client[db_name], cipher)
