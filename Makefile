# The commands the README and CI run. `make test` works on a fresh machine: it installs what it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
REQS := fastapi/requirements.txt streamlit/requirements.txt requirements-dev.txt fastapi/pyproject.toml

.PHONY: setup browser test test-unit test-container lint bench eval clean

setup: $(STAMP) browser

$(STAMP): $(REQS)
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0  # the local CPU wheel; never an unpinned torch
	$(BIN)/pip install -q -r fastapi/requirements.txt -r streamlit/requirements.txt -r requirements-dev.txt
	$(BIN)/pip install -q --no-deps -e fastapi
	touch $(STAMP)

# Debian's chromium for the end-to-end tests (Playwright drives it; no browser download).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else echo "note: install Debian's chromium for the e2e tests (sudo apt-get install chromium)"; fi; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Unit, integration and browser tests (no Docker needed).
test: setup lint
	$(BIN)/pytest -m "not container"

test-unit: $(STAMP)
	$(BIN)/pytest -m unit

# The real docker-compose stack in containers (needs root for the docker sandbox).
test-container: $(STAMP)
	bash ../shared/tools/docker-sandbox.sh
	$(BIN)/pytest -m container

bench: $(STAMP)
	$(BIN)/python bench/run.py $(ARGS)

eval: $(STAMP)
	$(BIN)/python -m qa_api.evaluation $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
