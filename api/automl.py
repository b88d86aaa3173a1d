"""AutoML over REST: what a search of a base experiment would tune (seed 000's
``automl:get_param_details``), from the catalog entry's declared hyperparameters."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from jobyard.api.catalog import catalog_entry
from jobyard.api.errors import BadRequest
from jobyard.api.parser import Blueprint
from jobyard.schemas import automl
from jobyard.schemas.automl_api import ParamDetailsArgsSchema, ParamDetailsSchema

blp = Blueprint(
    "automl",
    __name__,
    url_prefix="/api/v2/orgs/<string:org_name>",
    description="AutoML: the hyperparameters a search of a base experiment tunes",
)


@blp.route("/automl:get_param_details")
class ParamDetails(MethodView):
    @blp.arguments(ParamDetailsArgsSchema, location="query")
    @blp.response(200, ParamDetailsSchema)
    def get(self, args: dict[str, Any], org_name: str) -> dict[str, Any]:
        """The tunable hyperparameters of a base experiment (or network): type, valid
        range or options, default, and whether a search varies it by default"""
        if not args.get("base_experiment_id") and not args.get("network_arch"):
            raise BadRequest(
                "give base_experiment_id (or network_arch)",
                {"base_experiment_id": ["give base_experiment_id (or network_arch)"]},
            )
        entry = catalog_entry(org_name, args)
        names = args.get("parameters") or []
        message = automl.undeclared(names, entry.hyperparameters)
        if message is not None:
            raise BadRequest(message, {"parameters": [message]})
        return {
            "base_experiment_id": entry.id,
            "network_arch": entry.network_arch,
            "metric": entry.metric,
            "metrics": list(entry.metrics),
            "algorithms": {name: list(s) for name, s in automl.ALGORITHMS.items()},
            "parameter_details": automl.param_details(entry.hyperparameters, names),
        }
