# The two commands: `make demo` and `make test`. Both create or reuse .venv.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint bench lab clean-venv

$(PY):
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "wtlab needs Python 3.11+ as '$(PYTHON)' (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[lab,dist,dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(PY) -m wtlab demo

test: $(STAMP)
	@bash .ci/ensure-chromium
	$(PY) -m ruff check wtlab tests benchmarks
	$(PY) -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check wtlab tests benchmarks

bench: $(STAMP)
	$(PY) -m benchmarks

lab: $(STAMP)
	$(VENV)/bin/jupyter lab --ip=127.0.0.1 --notebook-dir=notebooks

clean-venv:
	rm -rf $(VENV)
