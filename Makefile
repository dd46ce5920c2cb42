# ArbitrageX: `make run` starts the platform, `make test` runs the whole suite.
# Both create the virtualenv and install what they need on first use: `run` the runtime dependencies
# only, `test` the development extras as well (linters, mypy, pytest plugins, Playwright, schemathesis).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HASH := $(shell cksum pyproject.toml | cut -d' ' -f1)
RUNTIME := $(VENV)/.runtime-$(HASH)
DEV := $(VENV)/.dev-$(HASH)
# The suite runs on this many processes (pytest-xdist), each with its own databases and Redis numbers.
TEST_WORKERS ?= 2

.PHONY: install install-dev browser run test lint bench bench-quick chaos clean

$(RUNTIME): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	@rm -f $(VENV)/.runtime-*
	@touch $(RUNTIME)

$(DEV): $(RUNTIME)
	$(PY) -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.dev-*
	@touch $(DEV)

install: $(RUNTIME)

install-dev: $(DEV)

# Chromium for the browser tests (tests/browser), from the distribution's packages; Playwright never
# downloads a browser. Best effort: without root and apt-get, or when the install fails, it prints a
# note and the build goes on; the browser tests then skip, saying why.
browser:
	@if command -v chromium >/dev/null 2>&1; then \
		:; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) \
			|| echo "note: could not install Chromium: the browser tests will be skipped"; \
	else \
		echo "note: Chromium is missing (install the chromium and chromium-driver packages as root): the browser tests will be skipped"; \
	fi

run: install
	$(PY) manage.py run

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(PY) manage.py makemigrations --check --dry-run
	$(VENV)/bin/mypy arbitragex venues marketdata risk trading notifications config

test: lint browser
	$(PY) -m pytest -n $(TEST_WORKERS) --cov --cov-report=term:skip-covered $(PYTEST_ARGS)

# Benchmarks (docs/benchmarks.md): every module of bench/, on DATABASE_URL/REDIS_URL (else the embedded
# PostgreSQL and Redis), in databases of their own. A table per benchmark, then one JSON line with every
# figure. `bench` is the full run (10-minute memory replay, 1,000,000 executions, about half an hour the
# first time); `bench-quick` takes a few minutes.
# BENCH_ARGS picks benchmarks, e.g. `make bench-quick BENCH_ARGS="api order_sync"`.
bench: install-dev
	$(PY) -m bench $(BENCH_ARGS)

bench-quick: install-dev
	$(PY) -m bench --quick $(BENCH_ARGS)

# The chaos run (tests/chaos): the whole platform (two workers, beat, the user data stream, under the
# platform's own supervisor; two fake venues) under faults, on an embedded PostgreSQL and Redis of
# its own that it kills and restarts, never the configured ones. 500 executions (CHAOS_EXECUTIONS;
# CHAOS_SEED replays a run's faults). CHAOS_VENUES picks the venues: binance (default: two fake Binance
# venues) or mixed (venue A a fake Binance, venue B a fake OKX on the ccxt family), e.g.
# `make chaos CHAOS_VENUES=mixed`. It prints its figures and every invariant. `make test` runs a short form.
chaos: install-dev
	CHAOS_EXECUTIONS=$${CHAOS_EXECUTIONS:-500} CHAOS_VENUES=$${CHAOS_VENUES:-binance} $(PY) -m pytest tests/chaos \
		-m chaos -p no:cacheprovider --timeout 3600 -q $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .data .pytest_cache .ruff_cache .mypy_cache .coverage
