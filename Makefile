# The two commands of the README. Each sets itself up (virtualenv, packages, browser) and runs.
PYTHON ?= python3.11
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench setup system

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $(STAMP)

# Debian packages the suite needs: Chromium for the browser tests (Playwright cannot download
# browsers here) and redis-server for the replica tests. Idempotent; quick when installed.
system:
	@sh scripts/install-system-packages.sh

demo: $(STAMP)
	$(VENV)/bin/ccc-gateway demo

test: $(STAMP) system
	$(VENV)/bin/python -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(VENV)/bin/python -m bench
