# The two commands: `make demo` and `make test`. Both create or reuse .venv.
# `make docs` builds the documentation site into docs/_build/html (opens offline).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test docs lint bench lab clean-venv

$(PY):
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "wtlab needs Python 3.11+ as '$(PYTHON)' (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[lab,dist,dev,docs]'
	@touch $(STAMP)

demo: $(STAMP)
	$(PY) -m wtlab demo

test: $(STAMP)
	@bash .ci/ensure-chromium
	$(PY) -m ruff check wtlab tests benchmarks docs
	$(PY) -m pytest -q $(PYTEST_ARGS)

# strict: a warning (broken cross-reference, public name without a docstring, failing
# notebook) fails the build; notebooks run once and are cached in docs/_build
docs: $(STAMP)
	$(PY) -m sphinx -b html -n -W --keep-going -q -d docs/_build/doctrees docs docs/_build/html
	@echo "docs: open docs/_build/html/index.html"

lint: $(STAMP)
	$(PY) -m ruff check wtlab tests benchmarks docs

bench: $(STAMP)
	$(PY) -m benchmarks

lab: $(STAMP)
	$(VENV)/bin/jupyter lab --ip=127.0.0.1 --notebook-dir=notebooks

clean-venv:
	rm -rf $(VENV)
