# kdq_lab: `make help` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

VENV    := .venv
PY      := $(VENV)/bin/python
KDQ     := $(VENV)/bin/kdq-lab
STAMP   := $(VENV)/.installed-stamp
JOBS    ?= 2

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

.PHONY: help
help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-10s %s\n", $$1, $$2}'

.PHONY: venv
venv: $(STAMP) ## create .venv and install the lab with its dev extras (automatic in every target)

.PHONY: report
report: $(STAMP) ## the main job: regenerate the default comparison report offline (reports/kdq-default/)
	$(KDQ) run notebooks/experiments/kdq-default.yaml --jobs $(JOBS)

.PHONY: test
test: $(STAMP) ## lint (ruff), type-check (mypy), then the tests and every notebook under nbval (small data)
	$(VENV)/bin/ruff check src tests notebooks
	$(VENV)/bin/ruff format --check src tests notebooks
	$(VENV)/bin/mypy
	$(PY) -m pytest tests --nbval-lax notebooks

.PHONY: bench
bench: $(STAMP) ## benchmarks: matrix builder vs lightfm.data.Dataset, evaluation vs lightfm.evaluation, training overhead
	$(KDQ) bench all

.PHONY: bench-scale
bench-scale: $(STAMP) ## the large catalog end to end (kdq-large, --jobs 2): seconds and peak memory per stage
	$(KDQ) bench scale

.PHONY: lab
lab: $(STAMP) ## open JupyterLab on the project kernel
	$(VENV)/bin/jupyter lab notebooks

.PHONY: clean
clean: ## remove derived data and reports (keeps .venv)
	rm -rf data/processed/* reports/*

.PHONY: distclean
distclean: clean ## also remove .venv and generated raw datasets
	rm -rf $(VENV) data/raw/kdq-catalog*
