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

test: $(STAMP) browser ## run the whole test suite
	$(BIN)/pytest

CHROMIUM ?= /usr/bin/chromium
browser: ## Debian's Chromium and a Chinese font for the browser tests (installed when missing, as root)
	@if [ -x $(CHROMIUM) ] && fc-list 2>/dev/null | grep -qi "wenquanyi zen hei"; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's chromium and fonts-wqy-zenhei for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-zenhei >/dev/null; \
	else \
		echo "note: $(CHROMIUM) or a Chinese font is missing and cannot be installed here (needs root and apt-get)"; \
	fi

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

.PHONY: help venv demo test browser lint bench fuzz bento mlflow-ui lock clean
