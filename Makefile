# `make demo` and `make test` each create .venv and install the project into it on a fresh
# machine (`pip install -e .`: the packages of requirements.txt; tests add the test extra).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: demo test test-fast bench clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e .
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(TEST_STAMP)

demo: $(STAMP)
	$(PY) demo.py

test: $(TEST_STAMP)
	$(PY) -m pytest -q tests

# Leaves out the tests marked slow (they train, start a Python process or start Ray).
test-fast: $(TEST_STAMP)
	$(PY) -m pytest -q -m "not slow" tests

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) demo_results paper_results .pytest_cache *.egg-info
