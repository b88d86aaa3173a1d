"""An org's quota: how many of its jobs may run at once, and how many GPUs they may hold.
Everyone in the org reads it; its admins set it (``jobyard admin quota`` too)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from jobyard.api.auth import admin_required
from jobyard.api.parser import Blueprint
from jobyard.api.services import services
from jobyard.schemas.job import QuotaSchema

blp = Blueprint(
    "quotas",
    __name__,
    url_prefix="/api/v2/orgs/<string:org_name>/quota",
    description="Per-org limits on running jobs and GPUs",
)


@blp.route("")
class Quota(MethodView):
    @blp.response(200, QuotaSchema)
    def get(self, org_name: str) -> dict[str, Any]:
        """The org's limits (null: none)"""
        return services().store.quotas.get(org_name)

    @admin_required
    @blp.arguments(QuotaSchema)
    @blp.response(200, QuotaSchema)
    def put(self, body: dict[str, Any], org_name: str) -> dict[str, Any]:
        """Set the org's limits; jobs beyond them wait Pending, saying why, and start in
        order of priority, then age, as others end"""
        return services().store.quotas.set(org_name, body)
