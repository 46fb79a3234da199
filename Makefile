# ganpipe: every target bootstraps .venv on a fresh machine first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONFIG ?= configs/dcgan-digits.yaml
# pip prints one "Location ... is ignored" line per index entry on some machines: noise only.
# Its output goes to a log that is shown (filtered) only when pip fails.
PIPLOG := $(VENV)/pip.log
PIPFILTER := > $(PIPLOG) 2>&1 || (grep -v "is ignored" $(PIPLOG); exit 1)

.PHONY: install demo test test-fast bench ui clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip $(PIPFILTER)
	$(BIN)/pip install -q -c constraints.txt torch==2.13.0 $(PIPFILTER)
	$(BIN)/pip install -q -c constraints.txt -e ".[dev]" $(PIPFILTER)
	$(BIN)/pip install -q --no-deps -c constraints.txt torch-fidelity $(PIPFILTER)
	$(BIN)/python -c "import ganpipe, torch, ray, prefect, mlflow, dvc; print('ganpipe', ganpipe.__version__, 'torch', torch.__version__)"
	touch $(STAMP)

demo: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/ganpipe pipeline run $(CONFIG)

# Two lanes (pytest-xdist): tests on the session's Ray/Prefect/pipeline run in one, the rest in the other.
LANES ?= -n 2 --dist loadgroup

test: install
	bash scripts/install-browser.sh
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q $(LANES) $(PYTEST_ARGS)

# Unit and model tests only: no Ray, Prefect, DVC or MLflow-server process (tests/conftest.py marks the rest).
test-fast: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q -m "not integration" $(PYTEST_ARGS)

bench: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python benchmarks/run_all.py

ui: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/ganpipe ui

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
