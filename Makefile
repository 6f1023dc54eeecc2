# Two commands for a new user: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
export HOST PORT

.PHONY: run test bench bench-import browser migrate clean conformance

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install -q -e '.[test]'
	touch $@

migrate: $(VENV)/.installed
	$(BIN)/python manage.py migrate --noinput -v0
	$(BIN)/python manage.py collectstatic --noinput -v0

## make run: install, migrate, seed the demo, serve console + gateway on http://$(HOST):$(PORT)
# SIGTERM to `manage.py serve` drains: in-flight calls finish (GATEWAY_DRAIN_SECONDS), streams close, then exit.
# The demo API is served by this very process on 127.0.0.1, so the embedded default opens 127.0.0.1 to the egress
# policy (when GATEWAY_EGRESS_ALLOW is unset or empty); a deployment started otherwise denies loopback.
run: export GATEWAY_EGRESS_ALLOW := $(or $(GATEWAY_EGRESS_ALLOW),127.0.0.1)
run: migrate
	$(BIN)/python manage.py seed_demo --host $(HOST) --port $(PORT)
	$(BIN)/python manage.py serve --host $(HOST) --port $(PORT)

# Browser tests drive Debian's Chromium; install it when missing and we may.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) ; \
	  else echo "chromium not found: browser tests will be skipped (they fail under CI=true)"; fi; }

## make test: install what tests need and run the whole suite
test: $(VENV)/.installed-test browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## make conformance: the MCP conformance suite through a Direct Proxy in front of the reference server (npm)
conformance: $(VENV)/.installed-test
	$(BIN)/python -m pytest tests/gateway/test_conformance.py $(PYTEST_ARGS)

## make bench: gateway vs. peer benchmark (see bench/README.md)
bench: $(VENV)/.installed-test
	$(BIN)/python bench/run.py $(BENCH_ARGS)

## make bench-import: GitHub's REST description (npm @octokit/openapi) imported to a preview and confirmed
bench-import: $(VENV)/.installed
	$(BIN)/python bench/import_bench.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var
