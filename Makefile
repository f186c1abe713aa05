# Two commands, as the README says:
#   make lab    set up and open the course in JupyterLab
#   make test   set up and run every test: the library, the notebooks, the exercises
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: lab test bench notebooks exercises clean

$(VENV)/.test: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	touch $@

$(VENV)/.lab: $(VENV)/.test
	$(PY) -m pip install -q -e ".[test,lab]"
	touch $@

lab: $(VENV)/.lab
	$(VENV)/bin/jupyter lab notebooks/

test: $(VENV)/.test
	$(PY) -m pytest

bench: $(VENV)/.test
	$(PY) -m pip install -q -e ".[bench]"
	$(PY) -m bench

# Re-run every notebook in place to refresh its stored outputs.
notebooks: $(VENV)/.test
	cd notebooks && for nb in [0-9]*.ipynb; do \
	  ../$(PY) -m jupyter nbconvert --to notebook --execute --inplace "$$nb" || exit 1; done

# Regenerate the exercise stubs from the solutions (the one source of truth).
exercises: $(VENV)/.test
	$(PY) -m pydist._exercises build

clean:
	rm -rf $(VENV) .pytest_cache
