# GridHub — the two commands a newcomer needs:
#   make run    set up and run the hub on the embedded default with the four sandbox systems
#   make test   set up and run the whole test suite (SQLite, then PostgreSQL + RabbitMQ)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PORT   ?= 8000

.PHONY: run test lint unit services bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

run: $(VENV)/.installed
	$(BIN)/hub demo --port $(PORT)

lint: $(VENV)/.installed
	$(BIN)/ruff check hub mappings adapters plugins sandbox admin tests bench wsgi.py
	$(BIN)/mypy hub mappings adapters plugins

services:
	bash scripts/services.sh

test: $(VENV)/.installed services
	bash scripts/test.sh

bench: $(VENV)/.installed
	$(BIN)/python -m bench.demo_report

clean:
	rm -rf var test-artifacts .pytest_cache .mypy_cache .ruff_cache
