# Two commands on a fresh Debian machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit system-deps bootstrap clean bench bundle

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

bootstrap: $(STAMP)

system-deps:
	./scripts/system-deps.sh

demo: bootstrap system-deps
	$(BIN)/python -m govnet.demo $(DEMO_ARGS)

lint: bootstrap
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: bootstrap
	$(BIN)/mypy

# Two workers on this 2-core machine: most tests wait on real components (labs, timers, browsers).
# Whole files go to one worker (`loadfile`), so a module's fixtures and fixed addresses stay together.
TEST_WORKERS ?= 2

unit: bootstrap
	GOVNET_STRICT=1 $(BIN)/pytest -q -rfEs -n $(TEST_WORKERS) --dist loadfile

test: bootstrap system-deps lint typecheck unit

bench: bootstrap system-deps
	$(BIN)/python -m bench

# Offline install bundle: dist/govnet-bundle-VERSION.tar.gz (docs/deployment.md).
bundle: bootstrap
	./scripts/bundle.sh

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
