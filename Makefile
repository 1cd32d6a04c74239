# The commands the README and CI run. `make test` works on a fresh machine: it installs what it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
REQS := fastapi/requirements.txt fastapi/requirements-int8.txt streamlit/requirements.txt \
	requirements-dev.txt fastapi/pyproject.toml

.PHONY: setup system-deps test test-unit test-container lint bench eval golden clean

setup: $(STAMP) system-deps

# fastapi/requirements-int8.txt (NNCF, for openvino-int8) is not in the backend image; tests and
# bench need it.
$(STAMP): $(REQS)
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0  # the local CPU wheel; never an unpinned torch
	$(BIN)/pip install -q -r fastapi/requirements.txt -r fastapi/requirements-int8.txt \
		-r streamlit/requirements.txt -r requirements-dev.txt
	$(BIN)/pip install -q -e 'fastapi[eval]'  # the package, and qa-eval's extra (not in the image)
	touch $(STAMP)

# Debian packages some tests drive: chromium for the browser tests (Playwright; no browser
# download) and kubectl to render the Kubernetes manifests.
system-deps:
	@missing=""; \
	[ -x /usr/bin/chromium ] || missing="chromium chromium-driver"; \
	command -v kubectl >/dev/null || missing="$$missing kubernetes-client"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "note: the browser and k8s tests need: sudo apt-get install$$missing"; fi; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy fastapi/qa_api
	$(BIN)/mypy streamlit
	$(BIN)/mypy deploy/qa_stack

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

# Decoding parity: transformers 4.57.6's QA pipeline (in bench/.venv-baseline, built if missing)
# on the tests' tiny model over SQuAD-es samples; rewrites tests/data/golden/ (commit it).
golden: $(STAMP)
	$(BIN)/python -m tests.golden.make_golden

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
