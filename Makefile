# Every target creates the virtualenv itself: `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test bench lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/ledger demo --serve

test: $(STAMP)
	$(BIN)/pytest

# The webhook figures are also printed against this revision, measured in the same run
# (bench/baseline.py): the main of before issue 11 (typed Stripe payloads, the command runner).
# `make bench BASELINE=` skips the comparison; any other commit or branch name may be given.
BASELINE ?= 1cb0e84

bench: $(STAMP)
	$(BIN)/python -m bench $(if $(BASELINE),--baseline $(BASELINE))

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis
