"""The task list (事项清单), the working calendar, deadlines and notifications."""

from __future__ import annotations

from flask_smorest import Blueprint

from hub.api.auth import load_caller

blp = Blueprint("tasklist", __name__, url_prefix="/api/v1",
                description="The task list (事项清单), working calendar, deadlines and notifications")
blp.before_request(load_caller)
