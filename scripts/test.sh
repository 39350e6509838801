#!/usr/bin/env bash
# The whole suite: lint, then every test on the embedded default (SQLite + kombu filesystem /
# in-memory transports), then again on PostgreSQL + RabbitMQ.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VENV:-.venv}/bin
export PYTHONHASHSEED=0
export GRIDHUB_REQUIRE_BROWSER=${GRIDHUB_REQUIRE_BROWSER:-1}  # browser tests fail, not skip, without chromium
mkdir -p test-artifacts

echo "== lint (ruff, mypy --strict on hub, mappings, adapters, plugins)"
"$BIN/ruff" check hub mappings adapters plugins sandbox admin tests bench wsgi.py
"$BIN/mypy" hub mappings adapters plugins

echo "== suite on SQLite + serverless kombu"
"$BIN/pytest" -q -p no:cacheprovider --junitxml=test-artifacts/sqlite.xml "$@"

echo "== suite on PostgreSQL + RabbitMQ"
GRIDHUB_TEST_DATABASE_URL=${GRIDHUB_TEST_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test} \
GRIDHUB_TEST_BROKER_URL=${GRIDHUB_TEST_BROKER_URL:-amqp://guest:guest@127.0.0.1:5672//} \
  "$BIN/pytest" -q -p no:cacheprovider --junitxml=test-artifacts/postgres.xml "$@"
