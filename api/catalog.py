"""The workload catalog over REST: every user lists and reads base experiments, an org's
admins add, replace and remove the org's own. Global entries (the built-in ones and those
an operator imports with ``jobyard admin workloads import``) are read-only here: an org's
admin must not change what every other org runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import marshmallow as ma
from flask.views import MethodView

from jobyard.api.auth import admin_required
from jobyard.api.errors import BadRequest, Missing, Refused
from jobyard.api.listing import count_route, requested_page
from jobyard.api.parser import Blueprint
from jobyard.api.services import services
from jobyard.schemas.catalog import (
    GLOBAL,
    BaseExperiment,
    EntrySchema,
    InvalidEntry,
    NoWorkload,
    load_entry,
)
from jobyard.schemas.common import Timestamp
from jobyard.schemas.job import (
    BASE_EXPERIMENT_FIELDS,
    BaseExperimentFilterArgsSchema,
    BaseExperimentListArgsSchema,
    BaseExperimentListSchema,
)
from jobyard.store.paging import Page, empty_page

blp = Blueprint(
    "catalog",
    __name__,
    url_prefix="/api/v2/orgs/<string:org_name>/base_experiments",
    description="The workload catalog: base experiments, what each job runs",
)


class EntryViewSchema(EntrySchema):
    """An entry as stored, with what jobyard keeps beside it."""

    class Meta:
        unknown = ma.INCLUDE

    id = ma.fields.String()
    scope = ma.fields.String()
    read_only = ma.fields.Boolean()
    builtin = ma.fields.Boolean()
    version = ma.fields.Integer()
    created_on = Timestamp()
    last_modified = Timestamp()


class EntryBodySchema(ma.Schema):
    """A catalog entry (README.md, "The workload catalog"); checked as a whole by
    ``schemas.catalog.entry_problems``, whose messages name each field."""

    class Meta:
        unknown = ma.INCLUDE


def view(entry: BaseExperiment, doc: dict[str, Any]) -> dict[str, Any]:
    return {
        **entry.data,
        "id": entry.id,
        "ngc_path": entry.ngc_path,
        "scope": entry.scope,
        "read_only": entry.scope == GLOBAL,
        "builtin": bool(doc.get("builtin")),
        "version": doc.get("version", 1),
        "created_on": doc.get("created_on"),
        "last_modified": doc.get("last_modified"),
    }


def catalog_entry(org: str, args: Mapping[str, Any]) -> BaseExperiment:
    """The entry a query names by ``base_experiment_id`` or ``network_arch`` (and
    ``kind``): a 404 for an id the org cannot see, a 400 for a network without one."""
    base_id = args.get("base_experiment_id")
    kind = args.get("kind") or "experiment"
    query = {
        "org": org,
        "kind": kind,
        "base_experiment_ids": [base_id] if base_id else [],
        # TAO's default network when a script names none (seed 000 always names one)
        "network_arch": args.get("network_arch")
        or ("classification_pyt" if kind == "experiment" and not base_id else ""),
    }
    try:
        return services().store.catalog.for_job(query)
    except NoWorkload as e:
        if base_id:
            raise Missing(f"base experiment {base_id} not found") from e
        raise BadRequest(str(e)) from e


def catalog_page(org: str, args: dict[str, Any]) -> dict[str, Any]:
    """A page of the entries ``org`` sees (``jobs:list_base_experiments`` too)."""
    page = requested_page(args, BASE_EXPERIMENT_FIELDS)
    if args.get("type") == "medical":  # seed 001's filter: no jobyard entry is medical
        return {"base_experiments": [], "pagination_info": empty_page(page.size)}
    entries, info = services().store.catalog.list_page(org, page, args.get("read_only"))
    return {"base_experiments": [e.to_doc() for e in entries], "pagination_info": info}


def _loaded(body: dict[str, Any], org: str) -> BaseExperiment:
    try:
        return load_entry(body, org)
    except InvalidEntry as e:
        raise BadRequest(str(e), {"entry": e.problems}) from e


def _writable(org: str, entry_id: str) -> BaseExperiment:
    entry = services().store.catalog.get(org, entry_id)
    if entry.pretrained is not None:
        raise Refused(
            f"base experiment {entry_id} is a published model: remove it with "
            "POST jobs/<its source job>:remove_published_model (see GET models/<id>)"
        )
    if entry.scope == GLOBAL:
        raise Refused(
            f"base experiment {entry_id} is a global entry: read-only through the API "
            "(operators change global entries with `jobyard admin workloads import`)"
        )
    return entry


@blp.route("")
class Entries(MethodView):
    @blp.arguments(BaseExperimentListArgsSchema, location="query")
    @blp.response(200, BaseExperimentListSchema)
    def get(self, args: dict[str, Any], org_name: str) -> dict[str, Any]:
        """List the catalog: global entries and the org's own"""
        return catalog_page(org_name, args)

    @admin_required
    @blp.arguments(EntryBodySchema)
    @blp.response(201, EntryViewSchema)
    def post(self, body: dict[str, Any], org_name: str) -> dict[str, Any]:
        """Add an entry to the org's catalog (admins only)

        The entry format is README.md's "The workload catalog"; every problem
        is named by its field. network_arch + name are unique in the org.
        """
        entry = _loaded(body, org_name)
        doc = services().store.catalog.create(entry)
        return view(entry, doc)


def _count(org: str, page: Page, args: Mapping[str, Any]) -> int:
    if args.get("type") == "medical":  # as in catalog_page
        return 0
    return services().store.catalog.count(org, page, args.get("read_only"))


count_route(
    blp,
    "/count",
    BaseExperimentFilterArgsSchema,
    BASE_EXPERIMENT_FIELDS,
    "base experiments",
    _count,
)


@blp.route("/<id:entry_id>")
class Entry(MethodView):
    @blp.response(200, EntryViewSchema)
    def get(self, org_name: str, entry_id: str) -> dict[str, Any]:
        """One entry, whole: actions with their commands, specs and schemas"""
        catalog = services().store.catalog
        entry = catalog.get(org_name, entry_id)
        return view(entry, catalog.document(org_name, entry_id))

    @admin_required
    @blp.arguments(EntryBodySchema)
    @blp.response(200, EntryViewSchema)
    def put(self, body: dict[str, Any], org_name: str, entry_id: str) -> dict[str, Any]:
        """Replace one of the org's entries (admins only); its id stays

        Jobs already created keep running what they were created with only
        as long as the new entry still offers their action.
        """
        current = _writable(org_name, entry_id)
        entry = _loaded(body, org_name)
        doc = services().store.catalog.replace(current, entry)
        return view(services().store.catalog.get(org_name, entry_id), doc)

    @admin_required
    @blp.response(200, EntryViewSchema)
    def delete(self, org_name: str, entry_id: str) -> dict[str, Any]:
        """Remove one of the org's entries (admins only); refused while a job that has
        not finished runs it"""
        entry = _writable(org_name, entry_id)
        doc = services().store.catalog.delete(entry)
        return view(entry, doc)
