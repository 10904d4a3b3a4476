# provisor: the two commands of the README, and the benchmarks.
PY ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: run test bench setup lint

$(BIN)/provisor: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(BIN)/provisor

setup: $(BIN)/provisor

## Install and run the server with embedded defaults (SQLite, 127.0.0.1).
run: setup
	$(BIN)/provisor serve

## Install and run the whole test suite (SQLite, then PostgreSQL when it can be started).
test: setup
	bash scripts/test.sh

bench: setup
	bash scripts/bench.sh

lint: setup
	$(BIN)/ruff check src tests plugins bench
