# ArbitrageX: `make run` starts the platform, `make test` runs the whole suite.
# Both create the virtualenv and install what they need on first use.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: install browser run test lint bench chaos clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

install: $(STAMP)

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

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) manage.py makemigrations --check --dry-run
	$(VENV)/bin/mypy arbitragex marketdata risk trading

test: lint browser
	$(PY) -m pytest --cov --cov-report=term:skip-covered $(PYTEST_ARGS)

bench: install
	$(PY) -m bench

clean:
	rm -rf $(VENV) .data .pytest_cache .ruff_cache .mypy_cache .coverage
