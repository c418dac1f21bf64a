# Two commands for a fresh machine:  `make run`  and  `make test`.
PYTHON ?= python3
PIP := $(PYTHON) -m pip install --disable-pip-version-check --quiet
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install install-dev run test test-slow benchmark lint

install: .install-stamp
.install-stamp: setup.cfg pyproject.toml
	$(PIP) -e .
	@touch $@

install-dev: .install-stamp-dev
.install-stamp-dev: setup.cfg pyproject.toml
	$(PIP) -e '.[dev]'
	@touch $@

run: install
	$(PYTHON) -m studies.quickstart

test: install-dev
	$(PYTHON) -m pytest

test-slow: install-dev
	$(PYTHON) -m pytest -m slow

benchmark: install
	$(PYTHON) -m studies.benchmark_physics

lint: install-dev
	$(PYTHON) -m ruff check solvers landscape studies tests
