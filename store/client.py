"""Connection, indexes and the ``Store`` facade holding one repository per
collection. Indexes are created at start-up; every index is idempotent."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, MongoClient
from pymongo.database import Database

from jobyard.store.accounts import Accounts
from jobyard.store.backups import Backups
from jobyard.store.catalog import Catalog
from jobyard.store.crypto import Cipher
from jobyard.store.datasets import Datasets
from jobyard.store.events import Events
from jobyard.store.guard import guarded
from jobyard.store.jobs import Jobs
from jobyard.store.logs import Logs
from jobyard.store.operations import Operations
from jobyard.store.uploads import Uploads
from jobyard.store.workspaces import Workspaces

INDEXES: dict[str, list[IndexModel]] = {
    "users": [IndexModel([("org", ASCENDING), ("name", ASCENDING)], unique=True)],
    "api_keys": [IndexModel([("org", ASCENDING), ("user_id", ASCENDING)])],
    "workspaces": [
        IndexModel([("org", ASCENDING), ("fingerprint", ASCENDING)], unique=True),
        IndexModel([("org", ASCENDING), ("created_on", DESCENDING)]),
        IndexModel([("org", ASCENDING), ("name", ASCENDING)]),
    ],
    "datasets": [
        IndexModel([("org", ASCENDING), ("fingerprint", ASCENDING)], unique=True),
        IndexModel([("org", ASCENDING), ("created_on", DESCENDING)]),
        IndexModel([("org", ASCENDING), ("name", ASCENDING)]),
    ],
    "catalog": [
        IndexModel(
            [("scope", ASCENDING), ("network_arch", ASCENDING), ("name", ASCENDING)], unique=True
        ),
        IndexModel([("scope", ASCENDING), ("created_on", DESCENDING)]),
    ],
    "job_uploads": [IndexModel([("job_id", ASCENDING)])],
    "jobs": [
        IndexModel([("org", ASCENDING), ("fingerprint", ASCENDING)], unique=True),
        IndexModel([("org", ASCENDING), ("created_on", DESCENDING)]),
        IndexModel([("org", ASCENDING), ("status", ASCENDING)]),
        IndexModel([("org", ASCENDING), ("parent_job_id", ASCENDING)]),
        IndexModel([("catalog_id", ASCENDING), ("status", ASCENDING)]),
        IndexModel([("active", ASCENDING), ("backend", ASCENDING)]),
        IndexModel([("active", ASCENDING), ("enqueued_at", ASCENDING)]),
    ],
    "job_events": [
        IndexModel(
            [("org", ASCENDING), ("job_id", ASCENDING), ("run", ASCENDING), ("seq", ASCENDING)]
        ),
    ],
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
        self.workspaces = Workspaces(db, cipher)
        self.datasets = Datasets(db, cipher)
        self.operations = Operations(db)
        self.jobs = Jobs(db)
        self.events = Events(db)
        self.logs = Logs(db)
        self.uploads = Uploads(db)
        self.backups = Backups(db, cipher.key_text, self.ensure_indexes)

    def ensure_indexes(self) -> None:
        for name, indexes in INDEXES.items():
            self.db[name].create_indexes(indexes)
        self.jobs.backfill_active()
        self.catalog.seed()

    def ping(self) -> None:
        self.db.client.admin.command("ping")


def connect(uri: str, db_name: str, cipher: Cipher, timeout_ms: int = 5000) -> Store:
    client: MongoClient[dict[str, Any]] = MongoClient(
        uri, serverSelectionTimeoutMS=timeout_ms, tz_aware=True, connect=False
    )
    return Store(client[db_name], cipher)
