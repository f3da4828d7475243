# povrisk — the two set-up commands are `make demo` and `make test`; both build .venv when it is missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_DIR ?= demo

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP) ## create .venv and install povrisk with the pinned versions of constraints.txt

demo: $(STAMP) ## simulate a county, train, promote, score, serve one household over HTTP, print the flags
	$(BIN)/povrisk demo --out $(DEMO_DIR)

test: $(STAMP) ## run the whole test suite
	$(BIN)/pytest

lint: $(STAMP) ## ruff lint + format check, mypy on the packages
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP) ## run the benchmarks (JSON lines on stdout)
	@for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

fuzz: $(STAMP) ## schemathesis against a real service: 100 examples per operation, zero failures wanted
	$(BIN)/python benchmarks/bench_fuzz.py

bento: $(STAMP) ## package the registry's champions and `bentoml build` the service (bentofile.yaml)
	$(BIN)/povrisk package

mlflow-ui: $(STAMP) ## open the MLflow UI on the local store (http://127.0.0.1:5000)
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db --host 127.0.0.1 --port 5000

lock: ## refresh constraints.txt from the current .venv (after changing dependencies)
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^povrisk' > constraints.txt
	$(BIN)/python -c 'from serving.bento import REQUIREMENTS, pinned_requirements; REQUIREMENTS.write_text(pinned_requirements())'

clean: ## remove the demo output (keeps .venv)
	rm -rf $(DEMO_DIR)

.PHONY: help venv demo test lint bench fuzz bento mlflow-ui lock clean
