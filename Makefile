# Two commands set everything up on a fresh machine with Python 3.11:
#   make run    - the bot (local try-out without a Telegram token), with the bundled knowledge base
#   make test   - lint, type checks and the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
export PYTHONPATH := $(CURDIR)

.PHONY: run ask samples samples-remove test lint typecheck pytest chromium nginx screenshots bench evaluate calibrate lock clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime: requirements.lock | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
	@touch $@

$(VENV)/.dev: requirements-dev.lock | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements-dev.lock
	@touch $@ $(VENV)/.runtime

run: $(VENV)/.runtime
	$(BIN)/python -m bot run

ask: $(VENV)/.runtime
	$(BIN)/python -m bot ask

# Made-up tickets for the try-out's console (figures, charts, the log); refused with a bot token.
samples: $(VENV)/.runtime
	$(BIN)/python -m tryout.samples add

samples-remove: $(VENV)/.runtime
	$(BIN)/python -m tryout.samples remove

lint: $(VENV)/.dev
	$(BIN)/ruff check bot handlers tryout tests benchmarks
	$(BIN)/ruff format --check bot handlers tryout tests benchmarks
	$(BIN)/lint-imports --no-logo --no-cache

typecheck: $(VENV)/.dev
	$(BIN)/mypy

# On both cores (pytest-xdist; an idle worker takes tests from a busy one); PYTEST_WORKERS=0
# runs the suite in one process.
PYTEST_WORKERS ?= 2
pytest: $(VENV)/.dev chromium nginx
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

# The console's browser tests drive Debian's Chromium (never a browser Playwright downloads).
CHROMIUM ?= /usr/bin/chromium
chromium:
	@test -x $(CHROMIUM) || { \
	  echo "installing Debian's chromium for the console's browser tests"; \
	  $(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq && \
	  $(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y -qq chromium; }

# tests/test_deploy.py checks the shipped nginx site with `nginx -t` (Debian's nginx; the tests
# never start it).
nginx:
	@command -v nginx >/dev/null || test -x /usr/sbin/nginx || { \
	  echo "installing Debian's nginx for the deployment tests"; \
	  $(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq && \
	  $(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y -qq nginx; }

# The screenshots in docs/screenshots/ (needs a CJK font, e.g. Debian's fonts-wqy-microhei).
screenshots: $(VENV)/.dev chromium
	$(BIN)/python -m tests.console_screenshots

test: lint typecheck pytest

evaluate: $(VENV)/.runtime
	$(BIN)/python -m bot evaluate --set tests/data/evaluation-residents.toml --new-city
	$(BIN)/python -m bot evaluate --set tests/data/evaluation-residents.toml
	$(BIN)/python -m bot evaluate --set tests/data/evaluation.toml --new-city
	$(BIN)/python -m bot evaluate --set tests/data/evaluation.toml
	$(BIN)/python -m bot evaluate --set tests/data/evaluation-holdout.toml --new-city
	$(BIN)/python -m bot evaluate --set tests/data/evaluation-holdout.toml
	$(BIN)/python -m bot --config benchmarks/data/taipei-config.toml evaluate --set tests/data/taipei-questions.toml

calibrate: $(VENV)/.runtime
	$(BIN)/python -m bot calibrate --write

bench: $(VENV)/.dev
	$(BIN)/python -m benchmarks

# Regenerate the lock files after changing dependencies in pyproject.toml.
lock: | $(BIN)/python
	$(BIN)/python -m pip install --quiet pip-tools
	$(BIN)/pip-compile --quiet --generate-hashes --strip-extras --allow-unsafe -o requirements.lock pyproject.toml
	$(BIN)/pip-compile --quiet --generate-hashes --strip-extras --allow-unsafe --extra dev -o requirements-dev.lock pyproject.toml

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
