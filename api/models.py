"""The org's model registry over REST: seed 000's ``jobs/{id}:publish_model`` and
``:remove_published_model``, and ``models`` to list and read what is published (each
also a base experiment: ``jobs:list_base_experiments`` lists it, a train job names it in
``base_experiment_ids``)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from jobyard.api import publish
from jobyard.api.listing import requested_page
from jobyard.api.parser import Blueprint
from jobyard.api.services import principal, services
from jobyard.schemas.models import (
    MODEL_FIELDS,
    ModelListArgsSchema,
    ModelListSchema,
    ModelSchema,
    PublishedSchema,
    PublishSchema,
    RemovedSchema,
    RemoveSchema,
    view,
)

blp = Blueprint(
    "models",
    __name__,
    url_prefix="/api/v2/orgs/<string:org_name>",
    description="Published models: the org's registry, which its catalog lists",
)


@blp.route("/jobs/<id:job_id>:publish_model")
class PublishModel(MethodView):
    @blp.arguments(PublishSchema, required=False)
    @blp.response(201, PublishedSchema)
    def post(self, body: dict[str, Any] | None, org_name: str, job_id: str) -> dict[str, Any]:
        """Publish a Done job's model into the org's registry

        Copies the chosen checkpoint (``checkpoint_choose_method``, default best_model)
        and the specs to ``models/<org>/<name>/<version>/`` in the workspace's storage;
        the name comes from ``display_name``, the version counts up per name.
        """
        body = body or PublishSchema().load({})
        return publish.publish(org_name, job_id, body, principal().user_id)


@blp.route("/jobs/<id:job_id>:remove_published_model")
class RemovePublishedModel(MethodView):
    @blp.arguments(RemoveSchema, required=False)
    @blp.response(200, RemovedSchema)
    def post(self, body: dict[str, Any] | None, org_name: str, job_id: str) -> dict[str, Any]:
        """Remove the job's published models (a team's, or one version) and their files"""
        return publish.remove(org_name, job_id, body or {})


@blp.route("/models")
class Models(MethodView):
    @blp.arguments(ModelListArgsSchema, location="query")
    @blp.response(200, ModelListSchema)
    def get(self, args: dict[str, Any], org_name: str) -> dict[str, Any]:
        """List the org's published models (filters: name, network_arch, team)"""
        page = requested_page(args, MODEL_FIELDS)
        docs, info = services().store.models.list_page(org_name, page)
        return {"models": [view(d) for d in docs], "pagination_info": info}


@blp.route("/models/<id:model_id>")
class Model(MethodView):
    @blp.response(200, ModelSchema)
    def get(self, org_name: str, model_id: str) -> dict[str, Any]:
        """One published model: its files, checksum, source job and metrics"""
        return view(services().store.models.get(org_name, model_id))
