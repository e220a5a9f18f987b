# Everyday verbs. Each target installs what it needs into .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements-dev.txt backend/requirements.txt bot/requirements.txt | cksum | cut -d' ' -f1)

.PHONY: install tools run test lint format audit migrate revision bench clean

install: $(STAMP)

$(STAMP): requirements-dev.txt backend/requirements.txt bot/requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

## Run the product locally (database found or embedded, migrations applied).
run: install
	$(BIN)/python scripts/dev.py run

## nginx, envsubst and openssl for the deployment checks (apt-get install when root).
tools:
	@bash scripts/ensure_nginx.sh

## Run every test (real PostgreSQL: found or embedded; real nginx for tests/deploy).
## Test files run in parallel (pytest-xdist): most of the time is spent waiting on processes.
WORKERS ?= 3
test: install tools
	$(BIN)/python -m pytest -n $(WORKERS) --dist loadfile $(ARGS)

## Known vulnerabilities in the pinned dependencies of both images (needs PyPI's JSON API).
audit: install
	$(BIN)/pip-audit --strict --no-deps --disable-pip -r backend/requirements.txt -r bot/requirements.txt

## Code (ruff, mypy) and deployment (Dockerfiles, shell scripts, Compose schema, nginx -t).
lint: install tools
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy backend bot scripts
	$(BIN)/hadolint backend/Dockerfile bot/Dockerfile
	$(BIN)/shellcheck scripts/*.sh .ci/run
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml
	bash scripts/nginx_local.sh test

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## Apply migrations to the development database.
migrate: install
	$(BIN)/python scripts/dev.py migrate

## Create a migration from the model changes: make revision m="add foo"
revision: install
	@test -n "$(m)" || (echo 'usage: make revision m="what changed"' >&2; exit 2)
	$(BIN)/python scripts/dev.py revision "$(m)"

## The performance benchmark (about 5 minutes; `make bench ARGS=--smoke` for seconds).
bench: install
	$(BIN)/python -m bench $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
