# The two commands of the README. Each sets itself up (virtualenv, packages, browser) and runs.

# The first of Python 3.11, 3.12, 3.13 that runs (scripts/find-python.sh); override with
# make PYTHON=python3.12. Evaluated once, here, not in every recipe line.
ifndef PYTHON
PYTHON := $(shell sh scripts/find-python.sh)
endif
VENV := .venv
# Two steps: `make demo` needs only the runtime (RUNTIME_STAMP: the package); `make test` and
# `make lint` add the test and lint tools (STAMP: the `test` extra).
RUNTIME_STAMP := $(VENV)/.installed-runtime
STAMP := $(VENV)/.installed

# A throwaway virtualenv with every runtime dependency at the floor pyproject.toml allows
# (scripts/lowest_constraints.py), so a floor the code has outgrown fails `make test`. The
# floors are checked on Python 3.11, the oldest the package supports.
LOWEST_PYTHON ?= $(PYTHON)
LOWEST := .venv-lowest
LOWEST_STAMP := $(LOWEST)/.installed
# Fast files that reach each runtime dependency: configuration (PyYAML, yarl), the session
# codec (cryptography), POP signing and answers (orjson), the proxy and its CRM client
# (aiohttp, multidict), metrics (prometheus-client), the Redis store (redis; skips without
# redis-server), TLS (cryptography x509) and a sign-in flow end to end.
SMOKE := tests/test_config.py tests/test_session_codec.py tests/test_pop.py \
	tests/test_proxy_headers.py tests/test_proxy.py tests/test_upstream_http.py \
	tests/test_metrics.py tests/test_session_store.py tests/test_tls.py \
	tests/test_signin_flow.py tests/test_deps.py

.PHONY: demo test smoke-lowest lint bench setup system axe

setup: $(STAMP)

$(RUNTIME_STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "No Python 3.11, 3.12 or 3.13 found; run make PYTHON=..." >&2; exit 1; }
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e .
	touch $(RUNTIME_STAMP)

$(STAMP): $(RUNTIME_STAMP)
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $(STAMP)

$(LOWEST_STAMP): pyproject.toml scripts/lowest_constraints.py
	rm -rf $(LOWEST)
	$(LOWEST_PYTHON) -m venv $(LOWEST)
	$(LOWEST)/bin/pip install --quiet --upgrade pip
	$(LOWEST_PYTHON) scripts/lowest_constraints.py > $(LOWEST)/constraints.txt
	$(LOWEST)/bin/pip install --quiet -c $(LOWEST)/constraints.txt '.[test]'
	touch $(LOWEST_STAMP)

# Debian packages the suite needs: Chromium for the browser tests (Playwright cannot download
# browsers here) and redis-server for the replica tests. Idempotent; quick when installed.
system:
	@sh scripts/install-system-packages.sh

# axe-core from npm into .cache/npm: the accessibility checks of the browser tests.
axe:
	@sh scripts/install-axe.sh

demo: $(RUNTIME_STAMP)
	$(VENV)/bin/ccc-gateway demo

test: $(STAMP) system axe smoke-lowest
	$(VENV)/bin/python -m pytest -q

smoke-lowest: $(LOWEST_STAMP)
	$(LOWEST)/bin/python -m pytest -q -p no:cacheprovider -m "not browser and not slow" $(SMOKE)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	PYTHONPATH=$(CURDIR) $(VENV)/bin/lint-imports
	@! grep -rnE "shared/[r]eference|\.\./shared|aliyun-protocol\.md|proxy-pitfalls|ccc-v2\.md" \
		ccc_gateway sample_crm tests bench \
		|| { echo "cite docs/*.md, not files outside this repository" >&2; exit 1; }

bench: $(STAMP)
	$(VENV)/bin/python -m bench
