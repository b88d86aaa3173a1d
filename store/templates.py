"""Workload templates in MongoDB, each change a new version.

The current state of a template is one document in ``templates``; every earlier state is
in ``template_versions`` under ``<id>:<version>``. An update first copies the current state
there (an upsert, so doing it twice is harmless), then moves the current document on with
a compare-and-set on its version: a crash between the two leaves nothing half-done, and of
two concurrent updates one gets a 409 instead of silently undoing the other.

A template's spec is kept as JSON text, as the catalog keeps its entries: a spec's keys
(dotted ``spec_fields`` paths, anything a user names) are not all valid MongoDB field names,
and not every MongoDB-wire server stores nested objects of an update faithfully.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from jobyard.store.errors import Conflict, NotFound, StaleState
from jobyard.store.guard import guarded
from jobyard.store.paging import Page, count, fetch_page
from jobyard.store.timeutil import utcnow

Doc = dict[str, Any]
GLOBAL_OWNER = "*"  # the owner of a global template: no org is named "*"


class DuplicateTemplate(Conflict):
    def __init__(self, name: str, existing_id: str) -> None:
        super().__init__(f"a template named {name!r} already exists in this scope: {existing_id}")
        self.existing_id = existing_id


def body_of(doc: Mapping[str, Any]) -> Doc:
    """A stored template's spec and master section, decoded."""
    return {
        "spec": json.loads(doc.get("spec_json") or "{}"),
        "master": json.loads(doc["master_json"]) if doc.get("master_json") else None,
        "masterSpecSameAsWorker": doc.get("master_same"),
    }


@guarded
class Templates:
    def __init__(self, db: Database[Doc]) -> None:
        self._coll = db["templates"]
        self._versions = db["template_versions"]

    def _visible(self, org: str) -> Doc:
        return {"owner": {"$in": [org, GLOBAL_OWNER]}}

    def create(
        self, org: str, user: str, kind: str, meta: Mapping[str, Any], body: Mapping[str, Any]
    ) -> Doc:
        now = utcnow()
        doc: Doc = {
            "_id": str(uuid.uuid4()),
            "owner": GLOBAL_OWNER if meta.get("scope") == "global" else org,
            "org": org,  # the org that created it; only its admins change a global one
            "scope": meta.get("scope", "org"),
            "workload_type": kind,
            "created_by": user,
            "created_on": now,
            "version": 1,
            **self._fields(meta, body, user, now),
        }
        try:
            self._coll.insert_one(doc)
        except DuplicateKeyError:
            raise self._duplicate(doc) from None
        return doc

    def _fields(
        self, meta: Mapping[str, Any], body: Mapping[str, Any], user: str, now: float
    ) -> Doc:
        spec = dict(body.get("spec") or {})
        return {
            "name": meta["name"],
            "description": meta.get("description", ""),
            "spec_json": json.dumps(spec, sort_keys=True),
            "master_json": json.dumps(body["master"]) if body.get("master") else None,
            "master_same": body.get("masterSpecSameAsWorker"),
            # copies lists filter on
            "network_arch": spec.get("network_arch"),
            "action": spec.get("action"),
            "updated_by": user,
            "last_modified": now,
        }

    def _duplicate(self, doc: Mapping[str, Any]) -> DuplicateTemplate:
        clash = self._coll.find_one(
            {"owner": doc["owner"], "name": doc["name"], "_id": {"$ne": doc["_id"]}}, {"_id": 1}
        )
        return DuplicateTemplate(doc["name"], clash["_id"] if clash else "?")

    def get(self, org: str, template_id: str, kind: str | None = None) -> Doc:
        query: Doc = {"_id": template_id, **self._visible(org)}
        if kind:
            query["workload_type"] = kind
        doc = self._coll.find_one(query)
        if doc is None:
            raise NotFound("template", template_id)
        return doc

    def version(self, org: str, template_id: str, number: int) -> Doc:
        current = self.get(org, template_id)
        if number == current["version"]:
            return current
        old = self._versions.find_one({"_id": f"{template_id}:{number}"})
        if old is None or number > current["version"]:
            raise NotFound("template version", f"{template_id} v{number}")
        return {k: v for k, v in old.items() if k != "template_id"} | {"_id": template_id}

    def update(
        self,
        current: Mapping[str, Any],
        meta: Mapping[str, Any],
        body: Mapping[str, Any],
        user: str,
    ) -> Doc:
        """The new state of ``current`` (as read): version + 1, the old one kept."""
        snapshot = {**current, "_id": f"{current['_id']}:{current['version']}"}
        snapshot["template_id"] = current["_id"]
        try:  # a version's state never changes: one written before is this one
            self._versions.insert_one(snapshot)
        except DuplicateKeyError:
            pass
        fields = self._fields(meta, body, user, utcnow())
        try:
            result = self._coll.update_one(
                {"_id": current["_id"], "version": current["version"]},
                {"$set": {**fields, "version": current["version"] + 1}},
            )
        except DuplicateKeyError:
            raise self._duplicate({**current, **fields}) from None
        if result.matched_count != 1:
            now = self._coll.find_one({"_id": current["_id"]}, {"version": 1})
            if now is None:
                raise NotFound("template", current["_id"])
            raise StaleState("template", current["_id"], current["version"], now["version"])
        return {**current, **fields, "version": current["version"] + 1}

    def delete(self, current: Mapping[str, Any]) -> None:
        self._coll.delete_one({"_id": current["_id"]})
        self._versions.delete_many({"template_id": current["_id"]})

    def list_page(self, org: str, page: Page, kind: str | None = None) -> tuple[list[Doc], Any]:
        return fetch_page(self._coll, self._scope(org, kind), page)

    def count(self, org: str, page: Page, kind: str | None = None) -> int:
        return count(self._coll, page.query(self._scope(org, kind)))

    def _scope(self, org: str, kind: str | None) -> Doc:
        scope = self._visible(org)
        return {**scope, "workload_type": kind} if kind else scope
