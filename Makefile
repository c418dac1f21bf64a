# Two commands for a fresh machine:  `make run`  and  `make test`.
PYTHON ?= python3
PIP := $(PYTHON) -m pip install --disable-pip-version-check --quiet
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install install-dev run test test-slow benchmark lint reproduce

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

# The long reproductions, in the order the open issues need them; every line resumes from the
# committed records, so rerun `make reproduce` after any interruption (CPU-hours: see REPORT.md).
JOBS ?= 2
reproduce: install
	nrto reproduce thesis --items table-3.3 --tune --jobs $(JOBS)
	nrto reproduce thesis --no-run
	nrto reproduce thesis --items table-3.3 --upsampling bilinear --jobs $(JOBS)
	nrto reproduce thesis --items conclusions --no-run
	nrto reproduce paper-benchmark --plan first --jobs $(JOBS)
	nrto reproduce paper-benchmark --plan small-seeds --jobs $(JOBS)

benchmark: install
	$(PYTHON) -m studies.benchmark_physics

lint: install-dev
	$(PYTHON) -m ruff check solvers landscape studies tests
