# kdq_lab: `make help` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

VENV    := .venv
PY      := $(VENV)/bin/python
KDQ     := $(VENV)/bin/kdq-lab
STAMP   := $(VENV)/.installed-stamp
KERNEL  := $(VENV)/share/jupyter/kernels/kdq-lab/kernel.json
REPORT  := reports/kdq-default
JOBS    ?= 2

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

# the named Jupyter kernel the notebooks declare and the runner executes with, inside .venv
$(KERNEL): $(STAMP)
	$(PY) -m ipykernel install --sys-prefix --name kdq-lab --display-name kdq-lab

.PHONY: help
help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-10s %s\n", $$1, $$2}'

.PHONY: venv
venv: $(STAMP) $(KERNEL) ## create .venv, install the lab with its dev extras, register the kdq-lab kernel (automatic)

.PHONY: report
report: $(KERNEL) ## the main job: regenerate the default comparison report offline (reports/kdq-default/)
	$(KDQ) run notebooks/experiments/kdq-default.yaml --jobs $(JOBS)

.PHONY: onboarding
onboarding: $(KERNEL) ## which sign-up questions help new users: the kdq-onboarding study (reports/kdq-onboarding/)
	$(KDQ) run notebooks/experiments/kdq-onboarding.yaml --jobs $(JOBS)
.PHONY: warm-up
warm-up: $(KERNEL) ## issue 22: the warm-up curve and the switching hybrid on the KDQ catalog (reports/kdq-warm-up/)
	$(KDQ) run notebooks/experiments/kdq-warm-up.yaml --jobs $(JOBS)

.PHONY: test
test: $(KERNEL) ## lint (ruff), type-check (mypy), then the tests and every notebook under nbval (small data)
	$(VENV)/bin/ruff check src tests notebooks
	$(VENV)/bin/ruff format --check src tests notebooks
	$(VENV)/bin/mypy
	$(PY) -m pytest tests --nbval-lax notebooks

.PHONY: test-fast
test-fast: $(KERNEL) ## lint, types and the tests not marked slow (no papermill, Dask, Chromium or whole experiment)
	$(VENV)/bin/ruff check src tests notebooks
	$(VENV)/bin/ruff format --check src tests notebooks
	$(VENV)/bin/mypy
	$(PY) -m pytest -m "not slow" tests

.PHONY: tune
tune: $(KERNEL) ## tune kdq-default with Optuna (the same budget per run) and regenerate its report with the tuned parameters
	@test -f reports/kdq-default/manifest.json || $(KDQ) run notebooks/experiments/kdq-default.yaml --jobs $(JOBS)
	$(KDQ) tune notebooks/experiments/kdq-default.yaml --jobs $(JOBS)
	$(KDQ) run notebooks/experiments/kdq-default.yaml --tuned --jobs $(JOBS)

.PHONY: bench
bench: $(KERNEL) ## benchmarks: builder vs lightfm.data.Dataset, evaluation vs lightfm.evaluation, training and cluster overhead
	$(KDQ) bench all

.PHONY: bench-ranking
bench-ranking: $(KERNEL) ## popularity on the large catalog: ranked once vs dense, identical metrics, time ratio
	$(KDQ) bench ranking

.PHONY: bench-scale
bench-scale: $(KERNEL) ## the large catalog end to end (kdq-large, --jobs 2): seconds and peak memory per stage
	$(KDQ) bench scale

.PHONY: lab
lab: $(KERNEL) ## open JupyterLab; the notebooks run on the registered kdq-lab kernel
	$(VENV)/bin/jupyter lab notebooks

.PHONY: check-report
check-report: $(STAMP) ## check reports/kdq-default/ as CI does: files, links, no network, then in headless Chromium
	$(KDQ) check-report $(REPORT) --browser

.PHONY: diff-smoke
diff-smoke: $(KERNEL) ## run the smoke experiment twice afresh (no run cache) and require a clean diff: same inputs, same numbers
	@out=$$(mktemp -d) && \
	$(KDQ) run notebooks/experiments/smoke.yaml --fresh --out $$out/first && \
	$(KDQ) run notebooks/experiments/smoke.yaml --fresh --out $$out/second && \
	$(KDQ) diff $$out/first $$out/second

.PHONY: screenshots
screenshots: $(STAMP) ## PNGs of the report's first screen and of one run page, in reports/kdq-default/screenshots/
	$(KDQ) screenshots $(REPORT)

.PHONY: clean
clean: ## remove derived data and reports (keeps .venv)
	rm -rf data/processed/* reports/*

.PHONY: distclean
distclean: clean ## also remove .venv and generated raw datasets
	rm -rf $(VENV) data/raw/kdq-catalog*
