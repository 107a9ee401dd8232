# Two commands on a fresh Debian machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit system-deps bootstrap native clean bench bundle

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

# The compiled modules (core/native.py: the syslog parse path and the log store's numbering with mypyc, the
# log store's hashing in C with OpenSSL): a package is rebuilt whenever a compiled module's source (.py or
# .c) differs from its manifest (a no-op otherwise); pure Python without a compiler (or libssl-dev).
native: $(STAMP)
	$(BIN)/python scripts/build_native.py

bootstrap: $(STAMP) native

system-deps:
	./scripts/system-deps.sh

demo: system-deps bootstrap
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

# system-deps first: it installs the C compiler and headers bootstrap's native build uses.
test: system-deps bootstrap lint typecheck unit

bench: system-deps bootstrap
	$(BIN)/python -m bench

# Offline install bundle: dist/govnet-bundle-VERSION.tar.gz (docs/deployment.md).
bundle: bootstrap
	./scripts/bundle.sh

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build
	rm -f collectors/syslog/*.so collectors/syslog/_compiled.json logstore/*.so logstore/_compiled.json
