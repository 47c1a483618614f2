# Two commands on a fresh machine: `make run` and `make test`. Everything else is a helper.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-spark bench lint views docs clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

## Record the built-in simulated venues for ~20 s with a live status, then summarize.
run: $(STAMP)
	$(BIN)/recorder demo --config conf/sim.toml --duration 20s --data-dir data

## The whole test suite, on TEST_JOBS workers (pytest-xdist; most tests wait on sockets and
## child processes, so more workers than cores help). `make test TEST_JOBS=0`: one process.
## Bytecode is written and kept: with PYTHONDONTWRITEBYTECODE set (as in some CI images) every
## builder, CLI and worker process would compile recorder/ and the tests again (a quarter of a
## second of CPU each, hundreds of processes).
TEST_JOBS ?= 4
test: $(STAMP)
	$(BIN)/python -m compileall -q recorder > /dev/null
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -n $(TEST_JOBS)

## Spark (local mode, a JVM) reads a recorded bucket's lake as DuckDB does: slow, so apart.
test-spark: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[dev,spark]'
	$(BIN)/python -m pytest tests/test_remote_spark.py

## Side-by-side throughput ratios, printed as a table.
bench: $(STAMP)
	$(BIN)/python -m bench

lint: $(STAMP)
	$(BIN)/ruff check recorder tests bench examples

## Regenerate queries/views.sql from the catalogue's tables.
views: $(STAMP)
	$(BIN)/recorder views --write

## Regenerate docs/tables.md (every table's columns, keys and views) from the catalogue.
docs: $(STAMP)
	$(BIN)/recorder docs --write

clean:
	rm -rf $(VENV) data/journal data/lake data/runs data/locks
