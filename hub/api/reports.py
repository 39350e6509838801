"""Grid workers' reports, photos and on-site verification (核查)."""

from __future__ import annotations

from flask_smorest import Blueprint

from hub.api.auth import load_caller

blp = Blueprint("reports", __name__, url_prefix="/api/v1",
                description="Grid workers' reports, photos and on-site verification")
blp.before_request(load_caller)
