# QualityLoop: `make run` starts the platform, `make test` runs every test tier.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install system-packages run test test-unit test-integration test-e2e test-chaos test-deploy deploy-files lint format bench demo clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import ensurepip' 2>/dev/null || $(MAKE) --no-print-directory APT_PACKAGES=python3-venv system-packages
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# nginx is the gateway; it comes from the operating system's packages.
install: $(STAMP)
	@command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || $(MAKE) --no-print-directory APT_PACKAGES=nginx-light system-packages
	@# The console's browser tests drive Debian's Chromium (a CJK font makes their screenshots legible); optional.
	@command -v chromium >/dev/null 2>&1 || $(MAKE) --no-print-directory APT_PACKAGES="chromium fonts-wqy-microhei" system-packages \
		|| echo "without chromium the console's browser tests are skipped"

system-packages:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing $(APT_PACKAGES) with apt-get"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES) >/dev/null; \
	else \
		echo "missing: $(APT_PACKAGES). Install it with: sudo apt-get install $(APT_PACKAGES)"; exit 1; \
	fi

run: install
	$(VENV)/bin/qualityloop run

# One pytest run for all tiers, so the broker and database start once.
test: install
	$(PY) -m pytest tests

test-unit: install
	$(PY) -m pytest tests/unit

test-integration: install
	$(PY) -m pytest tests/integration

test-e2e: install
	$(PY) -m pytest tests/e2e

test-chaos: install
	$(PY) -m pytest tests/chaos

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The production deployment's files validated offline (compose, kustomize overlays, rules); part of `make test`.
test-deploy: install
	$(PY) -m pytest tests/deploy

# Rewrite deploy/ files derived from the code (gateway config, topic job, settings reference) after a change.
deploy-files: install
	$(PY) -m deploy.generate

bench: install
	$(PY) -m bench

# With `make run` going in another terminal: a demo organisation, an incident, the loop closing.
demo: install
	$(PY) -m devstack.demo

clean:
	rm -rf $(VENV) .data .mypy_cache .ruff_cache
