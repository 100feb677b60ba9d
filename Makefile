# study-register: every task a developer or CI runs. `make run` and `make test` set up everything.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: help run test install install-dev lint openapi migrate seed token bench docker-build compose-up clean

help:
	@echo "make run      set up, migrate, seed an empty register, serve on http://$(HOST):$(PORT)"
	@echo "make test     set up and run every test (SQLite, and Postgres when reachable)"
	@echo "make openapi  regenerate openapi/openapi.json from the app"
	@echo "make lint     ruff"
	@echo "make bench    load benchmark (bench/README.md)"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed (set PYTHON=python3.11)")'
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(PIP) install -e .
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) install -e '.[dev]'
	@touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

migrate: install
	$(BIN)/study-register db upgrade

seed: migrate
	$(BIN)/study-register seed

run: migrate
	$(BIN)/study-register seed --if-empty
	@echo
	@echo "  Swagger UI: http://$(HOST):$(PORT)/docs"
	@echo "  Studies:    http://$(HOST):$(PORT)/studies"
	@echo
	GUNICORN_BIND=$(HOST):$(PORT) $(BIN)/gunicorn -c gunicorn.conf.py --no-control-socket service.wsgi:app

test: install-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check service tests bench seeds

openapi: install
	DATABASE_URL=sqlite:///$(CURDIR)/var/openapi.db $(BIN)/study-register openapi write openapi/openapi.json
	@echo "openapi/openapi.json written"

token: migrate
	$(BIN)/study-register token create --name "$${NAME:-local}"

bench: install-dev
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
	$(BIN)/python bench/run.py $(BENCH_ARGS)

docker-build:
	docker build -t study-register .

compose-up:
	docker compose up -d --wait

clean:
	rm -rf $(VENV) var/*.db* .pytest_cache
