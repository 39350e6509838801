"""Application factory. The ordered init sequence:

1. configuration (environment, then the ``config`` dict)
2. HubContext: plugin manager (built here, per app), registry, store, bus
3. REST API (flask-smorest) with its OpenAPI document and an offline docs page
4. webhook receiver, Prometheus ``/metrics``, console, health
"""

from __future__ import annotations

import logging
from typing import Any

import swagger_ui_bundle
from flask import Flask, Response, jsonify, send_from_directory
from flask_smorest import Api

from hub.api.converters import TextConverter, text_param_schema
from hub.config import HubConfig
from hub.context import HubContext, build_context

log = logging.getLogger(__name__)

API_DOCS_STATIC = "/api/docs/static/"


def create_app(config: dict[str, Any] | None = None, *, context: HubContext | None = None,
               extra_plugins: tuple[Any, ...] = ()) -> Flask:
    app = Flask(__name__)
    hub_config = context.config if context else HubConfig.from_env(config)
    ctx = context or build_context(hub_config, extra_plugins=extra_plugins)
    app.extensions["gridhub"] = ctx
    app.config.update(
        SECRET_KEY=ctx.box.keyed_hash("flask-session"),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        TESTING=hub_config.testing,
        JSON_AS_ASCII=False,
        # a grid report or a verification carries up to 4 photos of 5 MB (base64 in JSON: 4/3 more)
        MAX_CONTENT_LENGTH=32 * 1024 * 1024,
        API_TITLE="GridHub API",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL=API_DOCS_STATIC,
    )
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    _init_api(app)
    _init_routes(app)
    return app


def _init_api(app: Flask) -> None:
    from hub.api import audit, cases, dedup, inbound, metrics, outbound, reports, systems, tasklist

    app.url_map.converters["text"] = TextConverter
    api = Api(app, spec_kwargs={"info": {"description": "GridHub: one case per street incident across "
                                                        "department systems. Authenticate with "
                                                        "`Authorization: Bearer <token>` "
                                                        "(`hub tokens create`)."}})
    api.register_converter(TextConverter, text_param_schema)
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    api.spec.options["security"] = [{"bearerAuth": []}]
    for module in (cases, systems, inbound, dedup, outbound, audit, tasklist, reports, metrics):
        api.register_blueprint(module.blp)
    # flask-smorest documents 422 and "default" errors; add the auth answers every route gives
    for path in api.spec._paths.values():
        for op in path.values():
            if not isinstance(op, dict):
                continue  # path-level "parameters"
            responses = op.setdefault("responses", {})
            responses.setdefault("401", {"description": "missing or invalid bearer token",
                                         "content": {"application/json": {"schema": {"$ref":
                                                     "#/components/schemas/Error"}}}})
            responses.setdefault("403", {"description": "the token's role may not do this",
                                         "content": {"application/json": {"schema": {"$ref":
                                                     "#/components/schemas/Error"}}}})


def _init_routes(app: Flask) -> None:
    from admin import i18n
    from admin import views as console
    from hub.api.metrics import prometheus
    from hub.api.webhooks import bp as webhooks

    i18n.init_app(app)

    app.register_blueprint(webhooks)
    app.register_blueprint(prometheus)
    app.register_blueprint(console.bp)

    @app.get(API_DOCS_STATIC + "<path:filename>")
    def api_docs_static(filename: str) -> Response:
        return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename)

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify({"status": "ok"})
