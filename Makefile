# biocurate: two commands from a fresh machine.
#   make demo   set everything up and run the main job offline on the bundled demo data
#   make test   set everything up and run the whole test suite (starts its own services)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export HOME ?= /root
export PREFECT_HOME ?= $(CURDIR)/data/out/prefect
# One stamp per install kind, named after the hash of the pins: an edit to pyproject.toml or
# constraints.txt installs again. The full install (extras test, eval, lint) also satisfies the demo's.
PINS := $(shell cat pyproject.toml constraints.txt | sha256sum | cut -c1-12)
STAMP := $(VENV)/.installed-all-$(PINS)
DEMO_STAMP := $(VENV)/.installed-demo-$(PINS)
PIP := $(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt

# Lint: ruff (rules and format), sqlfluff over sql/ (DuckDB dialect), mypy on biocurate/; settings in pyproject.toml.
.PHONY: demo test lint install install-demo label-studio label-studio-stop bench bench-scale serve prefect-server prefect-server-stop clean

# Everything: the app with the test, eval (torch, sentence-transformers) and lint extras.
install: $(STAMP)

# What the demo needs: the app alone (no torch).
install-demo: $(DEMO_STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing the app with its test, eval and lint extras into $(VENV) (about 2 min the first time) ..."
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(PIP) -e '.[test,eval,lint]'
	@rm -f $(VENV)/.installed-*; touch $@ $(DEMO_STAMP)

$(DEMO_STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing the app into $(VENV) (about 1 min the first time) ..."
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(PIP) -e .
	@rm -f $(VENV)/.installed-demo-*; touch $@

# Label Studio lives in its own virtualenv (.venv-ls): in ours it would break Prefect.
label-studio:
	scripts/label_studio.sh start

label-studio-stop:
	scripts/label_studio.sh stop

demo: install-demo
	@mkdir -p $(PREFECT_HOME)
	scripts/demo.sh

test: install
	@mkdir -p $(PREFECT_HOME)
	scripts/label_studio.sh install
	scripts/install_browser.sh
	$(BIN)/python -m pytest -q

# sql/schema is linted but must never be `sqlfluff fix`ed: applied migrations are checksummed and a
# changed file makes existing stores refuse to open (every migration passes as written).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/sqlfluff lint sql/ biocurate/publish/sql/
	$(BIN)/mypy

bench: install
	$(BIN)/python bench/executor.py

# 100,000 and 10,000 candidate calls through store, execute, synthesis, judge, quality, export.
bench-scale: install
	$(BIN)/python bench/scale.py

# Cron schedules fire only on a real Prefect server (the ephemeral one creates no scheduled runs).
prefect-server: install
	scripts/prefect_server.sh start

prefect-server-stop:
	scripts/prefect_server.sh stop

# The scheduled deployments of [schedule] in biocurate.toml, on the local Prefect server.
serve: prefect-server
	PREFECT_API_URL=http://127.0.0.1:14200/api $(BIN)/biocurate serve

clean:
	rm -rf data/out
