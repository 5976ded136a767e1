# Shinrai: the two commands a new user needs are `make run` (the main job) and `make test`
# (the whole test suite, exactly what CI runs). Everything they need is installed by the targets.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
SHINRAI := $(VENV)/bin/shinrai
PYTEST_ARGS ?=

.PHONY: install run test lint format unit integration kafka-start kafka-stop clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@# setuptools' editable-install banner is a warning about this layout, not an error: quiet.
	PYTHONWARNINGS=ignore $(PY) -m pip install --quiet -e '.[dev]'
	touch $@

## install: create .venv and install Shinrai with its dev tools
install: $(VENV)/.installed

## run: the main job on its embedded defaults (local Kafka, embedded ClickHouse)
run: install
	$(SHINRAI) demo

## test: lint, type-check, start Kafka, run unit + integration tests, stop Kafka (even on failure)
test: install
	@set -euo pipefail; \
	$(MAKE) --no-print-directory lint; \
	bash deploy/ci/install-chromium.sh; \
	bash deploy/ci/install-dovecot.sh; \
	trap '$(SHINRAI) kafka stop' EXIT; \
	$(SHINRAI) kafka start; \
	$(PY) -m pytest $(PYTEST_ARGS)

## lint: ruff (lint + format check) and mypy --strict on the packages
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

unit: install
	$(PY) -m pytest -m unit $(PYTEST_ARGS)

integration: install
	$(PY) -m pytest -m integration $(PYTEST_ARGS)

kafka-start: install
	$(SHINRAI) kafka start

kafka-stop: install
	$(SHINRAI) kafka stop
