"""The metrics a centre is judged by (JSON and CSV), and Prometheus ``/metrics``."""

from __future__ import annotations

from flask import Blueprint as FlaskBlueprint
from flask_smorest import Blueprint

from hub.api.auth import load_caller

blp = Blueprint("metrics", __name__, url_prefix="/api/v1", description="Centre metrics")
blp.before_request(load_caller)

# GET /metrics (Prometheus text format), outside the versioned API
prometheus = FlaskBlueprint("prometheus", __name__)
